"""plan.md and graph.mmd at the top of the compiled tree: the capacity plan and the job graph.

`render(plan, site)` writes both only for the whole tree (site is None); a site's part of the
tree has neither. The numbers come from `report.capacity`, the same object `drpc plan` prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..plan import Plan, Transfer
from .common import header_lines, render_template

_ID_RE = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class Node:
    id: str  # Mermaid node id: [A-Za-z0-9_] only
    label: str
    site: str


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str | None
    style: str  # "transfer" (==>) or "order" (-.->)


@dataclass(frozen=True)
class Group:
    id: str
    label: str
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class Graph:
    groups: tuple[Group, ...]
    edges: tuple[Edge, ...]
    classes: tuple[tuple[str, str, tuple[str, ...]], ...]  # (class name, style, node ids)


def mermaid_label(text: str) -> str:
    """A label safe inside Mermaid double quotes (`#quot;` is Mermaid's entity for a quote)."""
    return " ".join(str(text).replace('"', "#quot;").split())


def job_node_id(stage_index: int, site_index: int) -> str:
    return f"j{stage_index}_{site_index}"


def build_graph(plan: Plan) -> Graph:
    """Stages x sites as nodes (a subgraph per stage), transfers and per-site order as edges."""
    from ..report import site_colours

    site_index = {s.id: i + 1 for i, s in enumerate(plan.sites)}
    job_ids = {(j.stage, j.site): job_node_id(j.stage_index, site_index[j.site]) for j in plan.jobs}
    central = plan.central_site
    groups: list[Group] = []
    for st in plan.stages:
        where = "every site" if st.runs_at == "every-site" else f"central: {central}"
        nodes = tuple(
            Node(job_ids[(j.stage, j.site)], f"{j.stage} @ {j.site}<br/>{len(j.tracts):,} tracts", j.site)
            for j in plan.jobs if j.stage == st.name)
        groups.append(Group(f"st{st.index}", mermaid_label(f"{st.index}. {st.name} ({where})"), nodes))

    sinks: dict[str, Node] = {}
    if any(t.consumer == "archive" for t in plan.transfers):
        sinks["archive"] = Node("archive_node", f"archive @ {central}", central)
    if any(t.consumer == "crosscheck" for t in plan.transfers):
        sinks["crosscheck"] = Node("crosscheck_node", f"cross-check comparison @ {central}", central)
    raws_node = Node("raws_node", f"raws @ {central}", central) if plan.raws else None
    extra = [n for n in (raws_node, *sinks.values()) if n is not None]
    if extra:
        groups.append(Group("outside", mermaid_label("raws and archive"), tuple(extra)))

    edges: list[Edge] = []
    if raws_node is not None:
        first_stage = plan.stages[0].name
        for s in plan.sites:
            target = job_ids.get((first_stage, s.id))
            if target is None:
                continue
            raw = next((r for r in plan.raws if r.destination == s.id), None)
            if raw is None:
                edges.append(Edge(raws_node.id, target, None, "order"))
            else:
                edges.append(Edge(raws_node.id, target, mermaid_label(f"raws: {len(raw.tracts):,} tracts"),
                                  "transfer"))

    # The order of the stages at each site (what stays where it was made).
    for s in plan.sites:
        previous: str | None = None
        for j in plan.jobs:
            if j.site != s.id:
                continue
            if previous is not None:
                edges.append(Edge(previous, job_ids[(j.stage, j.site)], None, "order"))
            previous = job_ids[(j.stage, j.site)]
    # Transfers, one edge per (kind, source job, destination), dataset types listed.
    merged: dict[tuple[str, str, str], list[Transfer]] = {}
    for t in plan.transfers:
        source = job_ids[(t.stage, t.source)]
        if t.consumer in sinks:
            target = sinks[t.consumer].id
        else:
            target = job_ids[(t.consumer, t.destination)]
        merged.setdefault((t.kind, source, target), []).append(t)
    for (kind, source, target), ts in merged.items():
        types = list(dict.fromkeys(t.dataset_type for t in ts))
        edges.append(Edge(source, target, mermaid_label(f"{kind}: " + "<br/>".join(types)), "transfer"))

    colours = site_colours(plan)
    all_nodes = [n for g in groups for n in g.nodes]
    classes = []
    for s in plan.sites:
        ids = tuple(n.id for n in all_nodes if n.site == s.id)
        if ids:
            classes.append((f"site_{site_index[s.id]}",
                            f"fill:{colours[s.id]},stroke:#333333,color:#ffffff", ids))
    graph = Graph(tuple(groups), tuple(edges), tuple(classes))
    for node_id in [g.id for g in groups] + [n.id for n in all_nodes]:
        assert _ID_RE.match(node_id), node_id
    return graph


def mermaid_graph(plan: Plan) -> str:
    """The flowchart alone (no header), e.g. for a ```mermaid block in Markdown."""
    return render_template("docs/graph.mmd.j2", graph=build_graph(plan), header="").decode("utf-8")


def render_graph(plan: Plan) -> bytes:
    header = "".join(f"%% {line}\n" for line in header_lines(plan, "Stages x sites and transfers (graph.mmd)"))
    return render_template("docs/graph.mmd.j2", graph=build_graph(plan), header=header)


def render_plan_md(plan: Plan) -> bytes:
    from ..report import plan_markdown
    return plan_markdown(plan).encode("utf-8")


def render(plan: Plan, site: str | None = None) -> dict[str, bytes]:
    if site is not None:
        return {}
    return {"plan.md": render_plan_md(plan), "graph.mmd": render_graph(plan)}
