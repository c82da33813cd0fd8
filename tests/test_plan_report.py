"""The capacity plan (`drpc plan`, plan.md) and the job graph (graph.mmd), checked by hand."""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from compiler.cli import cli
from compiler.cli_plan import plan_command
from compiler.loader import load_campaign
from compiler.pipeline import compile_campaign
from compiler.plan import Plan
from compiler.render import docs
from compiler.render.docs import plan_markdown
from compiler.report import capacity, num, plan_json, plan_table
from tests.helpers import ROOT, compile_data

# The planner's figures are checked by hand on fixed copies of the examples (tests/planner/):
# the examples themselves change with the pipelines they pin, these numbers must not.
PLANNER = ROOT / "tests" / "planner"
DR1 = PLANNER / "dr1.yaml"
THREE = PLANNER / "3x2.yaml"


def planner_data(name: str) -> dict[str, Any]:
    """A fixed planner campaign as plain data to modify in a test (see PLANNER)."""
    return copy.deepcopy(load_campaign(PLANNER / name).data)
MERMAID_CHECK = ROOT / "tools" / "mermaid-check"

cli.add_command(plan_command, "plan")


@pytest.fixture(scope="module")
def dr1() -> Plan:
    return compile_campaign(DR1, render=False).plan


@pytest.fixture(scope="module")
def three() -> Plan:
    return compile_campaign(THREE, render=False).plan


def hand_tract_counts() -> dict[str, int]:
    """DR1's rings applied by hand to lsst_cells_v1 (120 rings, centres (i+1)*180/121 - 90)."""
    from compiler.skymap import BUILTIN_SKYMAPS
    counts = BUILTIN_SKYMAPS["lsst_cells_v1"].ring_tract_counts()
    rings = [(-68.43, "ukdf-lancs"), (-56.53, "ukdf-ral"), (-31.24, "frdf"), (-16.36, "usdf"),
             (-11.9, "ukdf-lancs"), (-4.46, "ukdf-ral"), (11.9, "frdf"), (30.0, "usdf")]
    got: dict[str, int] = {}
    for ring in range(-1, 121):
        dec = -90.0 if ring == -1 else 90.0 if ring == 120 else (ring + 1) * 180.0 / 121 - 90.0
        if dec > 30.0:
            continue
        site = next(s for top, s in rings if dec < top or top == 30.0)
        got[site] = got.get(site, 0) + (1 if ring in (-1, 120) else counts[ring])
    return got


# -- DR1 by hand ---------------------------------------------------------------------------------

def test_dr1_tracts_by_hand(dr1: Plan) -> None:
    hand = hand_tract_counts()
    assert hand == {"frdf": 5640, "usdf": 4950, "ukdf-lancs": 1410, "ukdf-ral": 2121}
    assert sum(hand.values()) == dr1.footprint_tract_count == 14121
    cap = capacity(dr1)
    assert {s.id: s.tracts for s in cap.sites} == hand


def test_dr1_frdf_is_the_bottleneck_by_hand(dr1: Plan) -> None:
    core_hours = 40e6 * 5640 / 14121  # FRDF's fraction of the workload's core-hours
    hours = core_hours / 3000  # at its 3,000 cores
    days = hours / 24
    cap = capacity(dr1)
    frdf = cap.site("frdf")
    assert frdf.estimate is not None and frdf.hours_at_cores is not None
    assert frdf.estimate.core_hours == pytest.approx(core_hours)
    assert frdf.hours_at_cores == pytest.approx(hours)
    assert frdf.estimate.days == pytest.approx(days)
    assert frdf.over_deadline and frdf.over_storage
    # DR1's five stages weigh 1 each: stage1 everywhere (frdf, the slowest, ends at 0.2 of its
    # days), then FGCM on usdf's 6,000 cores (0.2 of the whole workload), then frdf's last three
    # stages (0.6 of its days)
    fgcm_ends = 0.2 * days + 0.2 * 40e6 / 6000 / 24
    finish = fgcm_ends + 0.6 * days
    assert frdf.estimate.finish_day == pytest.approx(finish)
    assert cap.bottleneck == "frdf" and cap.finish_days == pytest.approx(finish)
    assert cap.days_late == pytest.approx(finish - 150)
    # usdf's own work (4950 tracts at 6,000 cores) is short, but it waits for FGCM too
    usdf = cap.site("usdf")
    assert usdf.estimate is not None
    usdf_days = 40e6 * 4950 / 14121 / 6000 / 24
    assert usdf.estimate.days == pytest.approx(usdf_days)
    assert usdf.estimate.finish_day == pytest.approx(fgcm_ends + 0.6 * usdf_days)
    assert [s.id for s in cap.sites if s.over_deadline] == ["usdf", "frdf", "ukdf-lancs",
                                                            "ukdf-ral"]


def test_dr1_visits_and_boundary_visits(dr1: Plan) -> None:
    cap = capacity(dr1)
    for s in cap.sites:
        e = s.estimate
        assert e is not None
        assert e.visits - e.boundary_visits == round(240_000 * s.tracts / 14121)
        assert e.boundary_visits > 0  # every DR1 site has a ring boundary with another site
        assert e.boundary_storage_tb == pytest.approx(50_000 * e.boundary_visits / 240_000)
    assert cap.visits_held == sum(s.estimate.visits for s in cap.sites if s.estimate)
    assert cap.visits_held > 240_000  # boundary visits are held twice


def test_dr1_warnings(dr1: Plan) -> None:
    cap = capacity(dr1)
    assert ("frdf finishes on day 233 (15,976,206 core-hours at its 3,000 cores), after "
            "deadline_days 150") in cap.warnings
    assert "ukdf-lancs needs about 4,993 TB, over its storage_tb 300" in cap.warnings
    assert ("the workload needs 50,000 TB but the sites have 20,300 TB together: no sky assignment "
            "fits it") in cap.warnings
    assert not any("share" in w for w in cap.warnings)  # DR1's rings match its shares


def test_num_is_fixed() -> None:
    assert [num(x) for x in (0.04, 3.333, 99.94, 99.96, 100, 5325.4, 15976205.5)] == \
        ["0.0", "3.3", "99.9", "100.0", "100", "5,325", "15,976,206"]


# -- drpc plan -----------------------------------------------------------------------------------

def test_table(dr1: Plan) -> None:
    table = plan_table(dr1)
    frdf = next(line for line in table.splitlines() if line.startswith("frdf "))
    assert frdf.split() == ["frdf", "CC-IN2P3", "5640", "0.399", "0.40", "112,427", "16,570",
                            "15,976,206", "3,000", "5,325", "222!", "19,970!", "5,000"]
    assert ("the campaign finishes on day 233, when its bottleneck site frdf does (5,325 hours of its "
            "3,000 cores): 83.1 days after the 150-day deadline") in table
    assert "balanced rings (`drpc plan --balance`) would finish on day" in table
    assert "  frdf: 1622-4605, 8742-11397 (+ cross-check 5063)" in table
    # all rows of the site table are as wide as their header
    lines = table.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("site "))
    assert len({len(lines[i]) for i in range(head, head + 8)}) == 1


def test_json(dr1: Plan) -> None:
    data = plan_json(dr1)
    assert data["bottleneck"] == "frdf"
    frdf_days = 40e6 * 5640 / 14121 / 3000 / 24
    assert data["finish_days"] == round(0.8 * frdf_days + 0.2 * 40e6 / 6000 / 24, 2) == 233.07
    assert data["days_late"] == 83.07
    frdf = next(s for s in data["sites"] if s["id"] == "frdf")
    assert frdf["tract_ranges"] == [[1622, 4605], [8742, 11397]]
    assert frdf["cross_check_tracts"] == [5063]
    assert frdf["estimate"]["hours_at_cores"] == round(40e6 * 5640 / 14121 / 3000, 1)
    assert frdf["estimate"]["over_deadline"] is True
    assert data["workload"] == {"visits": 240000, "core_hours": 40000000, "storage_tb": 50000}
    json.dumps(data, sort_keys=True)  # plain data


def test_cli_formats() -> None:
    runner = CliRunner()
    table = runner.invoke(cli, ["plan", str(DR1)])
    assert table.exit_code == 0, table.output
    assert "frdf" in table.stdout and "5,325" in table.stdout
    as_json = runner.invoke(cli, ["plan", str(DR1), "--format", "json"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["bottleneck"] == "frdf"
    md = runner.invoke(cli, ["plan", str(DR1), "--format", "markdown"])
    assert md.exit_code == 0
    plan = compile_campaign(DR1, render=False).plan
    assert md.stdout == plan_markdown(plan) == docs.render(plan)["plan.md"].decode()
    bad = runner.invoke(cli, ["plan", str(DR1), "--format", "yaml"])
    assert bad.exit_code == 2


# -- plan.md -----------------------------------------------------------------------------------------

def table_blocks(text: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    current: list[str] = []
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def cells(row: str) -> list[str]:
    assert row.startswith("|") and row.endswith("|"), row
    return [c.strip() for c in re.split(r"(?<!\\)\|", row[1:-1])]


def test_plan_md_is_github_markdown(dr1: Plan) -> None:
    text = docs.render(dr1)["plan.md"].decode()
    assert text.startswith("<!--\nCapacity plan (plan.md) of campaign 'dr1'\n")
    header = text[: text.index("-->")]
    assert "generated - do not edit: drpc" in header and dr1.spec_sha256 not in text
    assert text.endswith("```\n") and "\r" not in text and "{{" not in text and "{%" not in text
    blocks = table_blocks(text)
    assert len(blocks) >= 5
    for block in blocks:  # GitHub renders a table only if every row has the header's cell count
        assert re.fullmatch(r"\|(-+:?\|)+|\|(---:?\|)+|(\|[-:]+)+\|", block[1]), block[1]
        width = len(cells(block[0]))
        assert all(len(cells(row)) == width for row in block), block
    capacity_table = next(b for b in blocks if cells(b[0])[:2] == ["site", "visits"])
    frdf = cells(next(r for r in capacity_table if r.startswith("| `frdf`")))
    assert frdf == ["`frdf`", "112,427", "16,570", "15,976,206", "3,000", "5,325", "**222**",
                    "**83.1 days late** (day 233)", "**19,970**", "3,452", "5,000",
                    "**14,970 TB short**"]
    assert "| finish | day 233 at `frdf` (**83.1 days late**) |" in text
    assert ("**Bottleneck**: The campaign finishes on day 233, when its bottleneck site frdf does "
            "(5,325 hours of its 3,000 cores): 83.1 days after the 150-day deadline.") in text
    assert "- frdf finishes on day 233 (15,976,206 core-hours at its 3,000 cores)" in text
    assert "```mermaid\nflowchart LR\n" in text


def test_plan_md_is_deterministic_and_only_for_the_whole_tree(dr1: Plan) -> None:
    first = docs.render(dr1)
    again = docs.render(compile_campaign(DR1, render=False).plan)
    assert first == again and sorted(first) == ["graph.mmd", "plan.md"]
    assert docs.render(dr1, site="frdf") == {}


def test_plan_md_without_deadline_or_workload(tmp_path: Path, three: Plan) -> None:
    text = docs.render(three)["plan.md"].decode()
    assert "| deadline | none (`campaign.deadline_days`) |" in text
    assert "when its bottleneck site ukdf-lancs does (13.3 hours of its 1,500 cores)" in text
    assert "| `ukdf-lancs` | 267 | 0 | 20,000 | 1,500 | 13.3 | 0.6 | - |" in text
    data = planner_data("3x2.yaml")
    del data["workload"]
    plan = compile_data(tmp_path, data).plan
    text = docs.render(plan)["plan.md"].decode()
    assert "No estimate: the campaign has no `workload:` section" in text
    assert "| finish | no estimate (no `workload:`) |" in text
    assert "no estimate: the campaign has no `workload:` section" in plan_table(plan)
    assert plan_json(plan)["finish_days"] is None


def test_share_warning(tmp_path: Path) -> None:
    data = planner_data("dr1.yaml")
    data["sites"]["frdf"]["share"] = 0.30
    data["sites"]["usdf"]["share"] = 0.45
    cap = capacity(compile_data(tmp_path, data).plan)
    assert "frdf owns 0.399 of the footprint's tracts, but its share is 0.3" in cap.warnings
    assert cap.site("frdf").off_share and not cap.site("ukdf-ral").off_share


def test_bottleneck_moves_with_cores(tmp_path: Path) -> None:
    data = planner_data("dr1.yaml")
    data["sites"]["frdf"]["cores"] = 12000
    cap = capacity(compile_data(tmp_path, data).plan)
    assert cap.bottleneck == "ukdf-lancs"
    lancs_days = 40e6 * 1410 / 14121 / 1000 / 24  # stage1 at lancs is now the slowest
    assert cap.finish_days == pytest.approx(0.8 * lancs_days + 0.2 * 40e6 / 6000 / 24)


# -- graph.mmd -------------------------------------------------------------------------------------

NODE = re.compile(r'^    ([A-Za-z0-9_]+)\["([^"]*)"\]$')
SUBGRAPH = re.compile(r'^  subgraph ([A-Za-z0-9_]+)\["([^"]*)"\]$')
EDGE = re.compile(r'^  ([A-Za-z0-9_]+) (==>|-\.->)(?:\|"([^"]*)"\|)? ([A-Za-z0-9_]+)$')
CLASSDEF = re.compile(r"^  classDef ([A-Za-z0-9_]+) fill:#[0-9a-f]{6},stroke:#[0-9a-f]{6},color:#[0-9a-f]{6}$")
CLASS = re.compile(r"^  class ([A-Za-z0-9_,]+) ([A-Za-z0-9_]+)$")


def parse_graph(text: str) -> dict:
    """A strict reader of the Mermaid subset drpc writes; any other line fails the test."""
    lines = text.splitlines()
    body = [line for line in lines if not line.startswith("%%")]
    assert body[0] == "flowchart LR"
    nodes: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    edges: list[tuple[str, str, str, str | None]] = []
    classes: dict[str, list[str]] = {}
    group: str | None = None
    for line in body[1:]:
        if m := SUBGRAPH.match(line):
            assert group is None, "nested subgraph"
            group = m.group(1)
            groups[group] = []
        elif line == "  end":
            assert group is not None
            group = None
        elif m := NODE.match(line):
            assert group is not None and m.group(1) not in nodes
            nodes[m.group(1)] = m.group(2)
            groups[group].append(m.group(1))
        elif m := EDGE.match(line):
            edges.append((m.group(1), m.group(4), m.group(2), m.group(3)))
        elif CLASSDEF.match(line):
            pass
        elif m := CLASS.match(line):
            classes[m.group(2)] = m.group(1).split(",")
        else:
            raise AssertionError(f"unexpected line in graph.mmd: {line!r}")
    assert group is None, "unclosed subgraph"
    return {"nodes": nodes, "groups": groups, "edges": edges, "classes": classes}


def test_graph_structure(dr1: Plan) -> None:
    text = docs.render(dr1)["graph.mmd"].decode()
    assert text.startswith("%% Stages x sites and transfers (graph.mmd) of campaign 'dr1'\n")
    assert dr1.spec_sha256 not in text
    g = parse_graph(text)
    # a node per job, in a subgraph per stage
    assert len([n for n in g["nodes"] if n.startswith("j")]) == len(dr1.jobs) == 17
    assert g["nodes"]["j2_1"] == "fgcm @ usdf<br/>14,121 tracts"
    assert g["groups"]["st2"] == ["j2_1"] and len(g["groups"]["st1"]) == 4
    for src, dst, _, _ in g["edges"]:
        assert src in g["nodes"] and dst in g["nodes"]
    transfers = {(s, d, label) for s, d, arrow, label in g["edges"] if arrow == "==>"}
    # frdf (site 2) stage1 -> fgcm at usdf; usdf fgcm -> recalibrate at ukdf-ral (site 4); returns
    gather = ("gather: isolated_star_presource_associations<br/>isolated_star_presources"
              "<br/>preliminary_visit_summary")
    assert ("j1_2", "j2_1", gather) in transfers
    assert ("j2_1", "j3_4", "scatter: fgcm_photoCalibCatalog") in transfers
    assert ("j5_3", "archive_node", "return: dia_object") in transfers
    assert ("raws_node", "j1_2", "raws: 5,641 tracts") in transfers
    kinds = {label.split(":")[0] for _, _, label in transfers}
    # the cross-check of tract 5063 comes back as moves of its own (it was swallowed by the
    # return of the same types from frdf before)
    assert kinds == {"gather", "scatter", "return", "crosscheck", "raws"}
    # every transfer of the plan is on an edge
    for t in dr1.transfers:
        assert any(label.startswith(f"{t.kind}:") and t.dataset_type in label.split(": ", 1)[1].split("<br/>")
                   for _, _, label in transfers)
    # one class per site, covering every node
    assert sorted(n for ids in g["classes"].values() for n in ids) == sorted(g["nodes"])


def test_graph_crosscheck_and_single_site(tmp_path: Path, three: Plan) -> None:
    g = parse_graph(docs.render(three)["graph.mmd"].decode())
    assert "archive_node" in g["nodes"]
    data = planner_data("dr1.yaml")
    data["datasets"].append({"type": "object_patch", "dimensions": ["skymap", "tract", "patch"],
                             "produced_by": "coadd"})
    plan = compile_data(tmp_path, data).plan
    g = parse_graph(docs.render(plan)["graph.mmd"].decode())
    assert any(d == "crosscheck_node" for _, d, _, _ in g["edges"])


def test_graph_parses_with_mermaid(tmp_path: Path, dr1: Plan, three: Plan) -> None:
    assert shutil.which("node") and (MERMAID_CHECK / "node_modules" / "mermaid").is_dir(), (
        "needs node and mermaid's parser: run tools/bootstrap")
    paths = []
    for name, plan in (("dr1", dr1), ("3x2", three)):
        path = tmp_path / f"{name}.mmd"
        path.write_bytes(docs.render(plan)["graph.mmd"])
        paths.append(path)
        md = docs.render(plan)["plan.md"].decode()
        block = md[md.index("```mermaid\n") + 11: md.rindex("```")]
        (tmp_path / f"{name}-md.mmd").write_text(block)
        paths.append(tmp_path / f"{name}-md.mmd")
    broken = tmp_path / "broken.mmd"  # the checker must be able to fail
    broken.write_text('flowchart LR\n  a["x] --> b\n')
    result = subprocess.run(["node", str(MERMAID_CHECK / "check.mjs"), *map(str, paths)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": ok (flowchart") == len(paths)
    bad = subprocess.run(["node", str(MERMAID_CHECK / "check.mjs"), str(broken)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 1 and "Parse error" in bad.stdout


def test_hand_days_formula_matches_table_rounding(dr1: Plan) -> None:
    # the table's "222" is FRDF's 221.9 days rounded by `num`
    days = 40e6 * 5640 / 14121 / 3000 / 24
    assert num(days) == "222" and math.isclose(days, 221.9, abs_tol=0.05)
