"""plan.md and graph.mmd at the top of the compiled tree: the capacity plan and the job graph.

`render(plan, site)` writes both only for the whole tree (site is None); a site's part of the
tree has neither. The numbers come from `report.capacity` (the plan's one capacity model), the
same object `drpc plan` prints; `drpc plan --format markdown` prints this plan.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..plan import Move, Plan
from ..report import (
    balance_hint,
    capacity,
    finish_sentence,
    finish_short,
    num,
    ranges_text,
    site_colours,
)
from ..text import md_text
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
    site_index = {s.id: i + 1 for i, s in enumerate(plan.sites)}
    job_ids = {(j.stage, j.site): job_node_id(j.stage_index, site_index[j.site]) for j in plan.jobs}
    central = plan.central_site
    groups: list[Group] = []
    for st in plan.stages:
        where = "every site" if st.runs_at == "every-site" else f"central: {central}"
        nodes = tuple(
            Node(job_ids[(j.stage, j.site)], f"{j.stage} @ {j.site}<br/>{len(j.tracts):,} tracts",
                 j.site)
            for j in plan.jobs if j.stage == st.name)
        groups.append(Group(f"st{st.index}", mermaid_label(f"{st.index}. {st.name} ({where})"),
                            nodes))

    sinks: dict[str, Node] = {}
    if any(t.sink.kind == "archive" for t in plan.transfers):
        sinks["archive"] = Node("archive_node", f"archive @ {central}", central)
    if any(t.sink.kind == "crosscheck" for t in plan.transfers):
        sinks["crosscheck"] = Node("crosscheck_node", f"cross-check comparison @ {central}",
                                   central)
    raws_node = Node("raws_node", f"raws @ {central}", central) if plan.raws else None
    inputs_node = (Node("inputs_node", f"inputs @ {central}", central) if plan.input_moves
                   else None)
    extra = [n for n in (raws_node, inputs_node, *sinks.values()) if n is not None]
    if extra:
        groups.append(Group("outside", mermaid_label(
            "raws, inputs and archive" if inputs_node else "raws and archive"), tuple(extra)))

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
                edges.append(Edge(raws_node.id, target,
                                  mermaid_label(f"raws: {len(raw.tracts):,} tracts"), "transfer"))

    if inputs_node is not None:
        first_stage = plan.stages[0].name
        for s in plan.sites:
            target = job_ids.get((first_stage, s.id))
            sent = [m.dataset_type for m in plan.input_moves if m.destination == s.id]
            if target is not None and sent:
                edges.append(Edge(inputs_node.id, target, mermaid_label(
                    f"inputs: {len(sent)} dataset types"), "transfer"))

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
    merged: dict[tuple[str, str, str], list[Move]] = {}
    for t in plan.transfers:
        if t.is_input:
            continue
        assert t.stage is not None
        source = job_ids[(t.stage, t.source)]
        if t.sink.kind in sinks:
            target = sinks[t.sink.kind].id
        else:
            assert t.sink.stage is not None
            target = job_ids[(t.sink.stage, t.destination)]
        merged.setdefault((t.kind, source, target), []).append(t)
    for (kind, source, target), ts in merged.items():
        types = list(dict.fromkeys(t.dataset_type for t in ts))
        edges.append(Edge(source, target, mermaid_label(f"{kind}: " + "<br/>".join(types)),
                          "transfer"))

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
    header = "".join(f"%% {line}\n"
                     for line in header_lines(plan, "Stages x sites and transfers (graph.mmd)"))
    return render_template("docs/graph.mmd.j2", graph=build_graph(plan), header=header)


# -- plan.md (also `drpc plan --format markdown`) --------------------------------------------------

def html_comment(lines: list[str]) -> str:
    """An HTML comment block that no value can close early."""
    safe = [line.replace("--", "- -") for line in lines]
    return "<!--\n" + "".join(f"{line}\n" for line in safe) + "-->\n"


def markdown_context(plan: Plan) -> dict[str, Any]:
    """Everything templates/docs/plan.md.j2 prints, already formatted."""
    cap = capacity(plan)
    fp = plan.footprint
    sites = []
    for s in cap.sites:
        e = s.estimate
        row: dict[str, Any] = {
            "id": s.id, "facility": md_text(s.facility), "panda_site": md_text(s.panda_site),
            "tracts": f"{s.tracts:,}", "ranges": ranges_text(plan.site(s.id).owned_tracts),
            "cross_check": ranges_text(s.cross_check_tracts) if s.cross_check_tracts else "",
            "fraction": f"{s.fraction:.3f}", "share": f"{s.share:.3f}".rstrip("0").rstrip("."),
            "off_share": s.off_share, "cores": f"{s.cores:,}", "storage_cap": num(s.storage_cap_tb),
            "central": plan.site(s.id).is_central,
        }
        if e is not None and s.hours_at_cores is not None:
            if cap.deadline_days is None:
                versus = "-"
            elif s.over_deadline:
                versus = (f"**{num(e.finish_day - cap.deadline_days)} days late** "
                          f"(day {num(e.finish_day)})")
            else:
                versus = f"{num(cap.deadline_days - e.finish_day)} days to spare"
            room = s.storage_cap_tb - e.storage_tb
            row.update({
                "visits": f"{e.visits:,}", "boundary_visits": f"{e.boundary_visits:,}",
                "core_hours": num(e.core_hours), "hours": num(s.hours_at_cores),
                "days": f"**{num(e.days)}**" if s.over_deadline else num(e.days),
                "versus_deadline": versus,
                "storage": f"**{num(e.storage_tb)}**" if s.over_storage else num(e.storage_tb),
                "boundary_storage": num(e.boundary_storage_tb),
                "storage_room": (f"**{num(-room)} TB short**" if room < 0
                                 else f"{num(room)} TB free"),
            })
        sites.append(row)
    return {
        "header": html_comment(header_lines(plan, "Capacity plan (plan.md)")),
        "plan": plan,
        "description": md_text(plan.description),
        "ticket": md_text(plan.ticket) if plan.ticket else None,
        "footprint": (f"footprint dec {fp.dec_min:g} to {fp.dec_max:g}"
                      if plan.assigned_by == "rings"
                      else "listed under `sky.assignment.tracts`"),
        "tract_count": f"{plan.footprint_tract_count:,}",
        "cap": cap,
        "sites": sites,
        "workload": ({"visits": f"{cap.visits:,}", "core_hours": num(cap.core_hours),
                      "storage": num(cap.storage_tb or 0.0)}
                     if cap.core_hours is not None else None),
        "totals": {"visits_held": f"{cap.visits_held:,}",
                   "boundary_visits": f"{cap.boundary_visits:,}",
                   "boundary_storage": num(cap.boundary_storage_tb),
                   "cores": f"{cap.total_cores:,}",
                   "storage_cap": num(cap.total_storage_cap_tb)},
        "deadline": f"{cap.deadline_days:g}" if cap.deadline_days is not None else None,
        "finish": finish_sentence(plan, cap),
        "finish_short": finish_short(cap),
        "balance": balance_hint(plan),
        "infeasible": md_text(cap.infeasible) if cap.infeasible else None,
        "fov": f"{cap.fov_radius_deg:g}",
        "warnings": [md_text(w) for w in cap.warnings],
        "stages": [{"index": st.index, "name": st.name, "subset": st.subset,
                    "runs_at": st.runs_at, "sites": ", ".join(st.sites)} for st in plan.stages],
        "transfers": [{"id": t.id, "kind": t.kind, "dataset_type": t.dataset_type,
                       "source": t.source, "destination": t.destination,
                       "consumer": t.sink.label} for t in plan.transfers],
        "graph": mermaid_graph(plan),
    }


def plan_markdown(plan: Plan) -> str:
    """plan.md: the capacity plan as GitHub Markdown (also `drpc plan --format markdown`)."""
    return render_template("docs/plan.md.j2", **markdown_context(plan)).decode("utf-8")



def render(plan: Plan, site: str | None = None) -> dict[str, bytes]:
    if site is not None:
        return {}
    return {"plan.md": plan_markdown(plan).encode("utf-8"), "graph.mmd": render_graph(plan)}
