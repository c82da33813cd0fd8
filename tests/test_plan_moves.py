"""The plan's one move type, its schedule and its one capacity model (and two bugs they fixed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from compiler import paths
from compiler.pipeline import compile_campaign
from compiler.plan import Move, Plan, Sink
from compiler.render import runbook
from tests.helpers import CAMPAIGNS, MINIMAL, ROOT, compile_data, example_data, replace_line, write

EXAMPLES = ("3x2.yaml", "dr1.yaml")


def plan_of(path: Path) -> Plan:
    return compile_campaign(path, render=False).plan


def test_every_move_is_one_type_with_a_typed_sink() -> None:
    for name in EXAMPLES:
        plan = plan_of(CAMPAIGNS / name)
        assert plan.moves and all(type(m) is Move for m in plan.moves)
        assert plan.moves == (*plan.raws, *plan.transfers)  # raws first, as they come first
        for m in plan.moves:
            assert isinstance(m.sink, Sink)
            if m.sink.kind == "stage":
                assert m.sink.stage in {st.name for st in plan.stages}, m.id
            elif m.sink.kind == "inputs":
                assert m.sink.stage is None and m.kind == "input", m.id
            else:
                assert m.sink.stage is None and m.kind in ("return", "crosscheck"), m.id
            if m.is_raw:
                assert m.incoming_collection is None and m.sink.stage == plan.stages[0].name
            elif m.is_input:  # inputs.py makes their collections; nothing chains them
                assert m.incoming_collection is None and m.source == plan.central_site, m.id
            else:
                assert m.incoming_collection == f"{plan.output_collection}/incoming/{m.sink.label}"


def test_selection_words_are_the_same_in_every_file() -> None:
    """The register script, the verify script and the runbook quote the plan's one text."""
    compiled = compile_campaign(CAMPAIGNS / "dr1.yaml")
    plan, files = compiled.plan, compiled.files
    big = next(m for m in plan.moves if len(m.tracts) >= 1000)
    assert f"{len(big.tracts):,} tract(s)" in big.selection
    for path in (paths.register_script(big), paths.verify_script(big),
                 paths.site_runbook(big.source)):
        assert big.selection in files[path].decode(), path


def stage_named(tmp_path: Path, name: str) -> Path:
    text = MINIMAL.replace("name: step3", f"name: {name}").replace("[step3]", f"[{name}]")
    text = text.replace("produced_by: step3", f"produced_by: {name}")
    return write(tmp_path, text, f"{name}.yaml")


def test_a_stage_may_be_named_like_a_sink(tmp_path: Path) -> None:
    """Sinks are typed, so a stage named `archive` or `crosscheck` is just a stage."""
    for name in ("archive", "crosscheck"):
        compiled = compile_campaign(stage_named(tmp_path, name))
        plan = compiled.plan
        ret = next(m for m in plan.moves if m.kind == "return")
        assert ret.stage == name and ret.sink == Sink("archive")
        scatter = next(m for m in plan.moves if m.kind == "scatter")
        assert scatter.sink == Sink("stage", name)
        # the job of that stage waits for the scatter, the archival for the return
        job = plan.schedule.step(f"job:{name}:frdf")
        assert f"verify:{scatter.id}" in job.deps
        archive = plan.schedule.steps[-1]
        assert archive.kind == "archive" and f"verify:{ret.id}" in archive.deps
        assert "RUNBOOK.md" in compiled.files


def test_crosscheck_of_consecutive_tracts_carries_them_all(tmp_path: Path) -> None:
    """Five consecutive cross-check tracts are written as a range in the query; the move still
    names every one, and the rehearsal expects the datasets of each (it read the query before)."""
    text = replace_line(MINIMAL, "      usdf: [9469, 9470]\n",
                        "      usdf: [9469, 9470, 9471, 9472, 9473, 9474]\n")
    text = replace_line(text, "      frdf: [9948, 9949]\n", "      frdf: [9948, 9949]\n  cross_check:\n"
                        + "".join(f"    - {{tract: {t}, also_at: frdf}}\n" for t in range(9469, 9474)))
    text += "  - {type: deepCoadd_calexp, dimensions: [skymap, tract, patch, band], produced_by: step3}\n"
    path = write(tmp_path, text)
    plan = plan_of(path)
    cc = next(m for m in plan.moves if m.kind == "crosscheck" and m.source == "frdf")
    assert cc.tracts == (9469, 9470, 9471, 9472, 9473)
    assert cc.select_by == "tracts" and cc.selection_collection.endswith("/outgoing/" + cc.id)

    from drpc_rehearsal.orchestrate import Rehearsal

    rehearsal = Rehearsal(path, tmp_path / "work")
    rehearsal.plan = plan
    # deepCoadd_calexp has patch and band: a dataset per patch and band of each of the 5 tracts,
    # as many as the stand-in world's Butler has data IDs (dr1's maps and ss_source_associated
    # are such; the count was once the tracts alone)
    calexp = cc
    assert calexp.dataset_type == "deepCoadd_calexp"
    from lsst.daf.butler import Butler

    from drpc_rehearsal import butlers as B

    repo = str(tmp_path / "repo")
    Butler.makeRepo(repo)
    B.insert_stack_records(repo, plan, "usdf", tracts=[9469, 9470])  # the rehearsal's world
    with Butler.from_config(repo) as butler:
        for dims in (calexp.dimensions, ("instrument", "physical_filter"),
                     ("instrument", "detector"), ("skymap", "tract", "band")):
            where = "skymap = s AND tract = 9469" if "tract" in dims else ""
            found = butler.query_data_ids(list(dims), where=where, bind={"s": plan.skymap.name},
                                          limit=None, explain=False)
            assert len(found) == B.data_ids_per_unit(plan, dims), dims
    per = B.data_ids_per_unit(plan, calexp.dimensions)
    assert per > 5 and rehearsal.expected_count(calexp) == 5 * per


def test_schedule_steps_have_kinds_and_files(tmp_path: Path) -> None:
    """The rehearsal dispatches on kind; every step but two checks (and a job another site
    submits) names a generated file."""
    compiled = compile_campaign(CAMPAIGNS / "3x2.yaml")
    sched = compiled.plan.schedule
    kinds = {s.kind for s in sched.steps}
    assert kinds == {"setup-repo", "visits", "rucio-setup", "ingestd", "datastore", "apply-rules",
                     "monitoring", "inputs", "register", "wait", "verify", "submit", "job", "archive"}
    for site, steps in sched.sites.items():
        assert [s.number for s in steps] == list(range(1, len(steps) + 1)), site
        assert all(s.site == site for s in steps)
    for s in sched.steps:  # numbered as in its site's list
        assert sched.sites[s.site][s.number - 1].key == s.key
        assert all(sched.steps.index(sched.step(d)) < sched.steps.index(s) for d in s.deps)
    texts = runbook.build(compiled.plan)
    for t in texts.steps:
        remote_job = t.kind == "job" and t.job is not None and t.job.is_remote  # submit step has it
        if t.kind not in ("archive", "datastore") and not remote_job:
            assert any(part in compiled.files
                       or any(f.startswith(part.rstrip("/") + "/") for f in compiled.files)
                       for part in t.command.split() if part.startswith("sites/")), t.key


def test_one_capacity_model(tmp_path: Path) -> None:
    """plan.md, RUNBOOK.md and `drpc plan --format json` give the same finish day."""
    compiled = compile_campaign(CAMPAIGNS / "dr1.yaml")
    cap = compiled.plan.capacity
    assert cap is not None
    finish = f"day {cap.finish_day:,.1f}"
    assert f"Processing alone ends on {finish}, at {cap.bottleneck}" in \
        compiled.files["RUNBOOK.md"].decode()
    assert f"day {cap.finish_day:,.0f} at `{cap.bottleneck}`" in compiled.files["plan.md"].decode()
    out = subprocess.run([sys.executable, "-m", "compiler", "plan", str(CAMPAIGNS / "dr1.yaml"),
                          "--format", "json"], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(out.stdout)["finish_days"] == round(cap.finish_day, 2)

    # a stage's days are its weight's share of the workload: a heavier global step 1d (central:
    # all the sky on the central site's cores) takes longer
    data = example_data("dr1.yaml")
    global_step = next(st for st in data["stages"] if st["name"] == "step1d")
    global_step["weight"] = 2.0
    total = sum(st.get("weight", 1.0) for st in data["stages"])
    heavier = compile_data(tmp_path, data).plan.capacity
    assert heavier is not None
    job = heavier.job("step1d", "usdf")
    assert job.days > cap.job("step1d", "usdf").days
    cores = data["sites"]["usdf"]["cores"]
    core_hours = data["workload"]["core_hours"]
    assert job.days == pytest.approx(core_hours * 2 / total / cores / 24)  # its share, all the sky


def test_importing_the_compiler_imports_no_rehearsal_nor_stack() -> None:
    code = ("import sys, compiler, compiler.cli, compiler.pipeline, compiler.render;"
            "from compiler.pipeline import compile_campaign;"
            f"compile_campaign({str(CAMPAIGNS / '3x2.yaml')!r});"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('drpc_rehearsal', 'lsst', 'rucio', 'confluent_kafka', 'matplotlib'));"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    assert out.stdout.strip() == "[]"
