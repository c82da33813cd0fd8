"""What to do next: runbook steps done, running, ready or blocked, by the runbook's numbers;
the committed schema; `--merge`; every client missing gives unknown cells, not a traceback."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from compiler.cli_status import status_command
from compiler.pipeline import compile_campaign
from compiler.plan import Plan
from compiler.status import render_json
from compiler.status.collect import assemble, merge
from compiler.status.model import (
    ArrivalStatus,
    JobStatus,
    LockCounts,
    RuleStatus,
    StatusReport,
    TransferStatus,
    schema_text,
)
from tests.helpers import MINIMAL, ROOT, write


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    return compile_campaign(write(tmp_path, MINIMAL), render=False).plan


def number(plan: Plan, site: str, key: str) -> int:
    return next(s.number for s in plan.schedule.sites[site] if s.key == key)


def job(plan: Plan, stage: str, site: str, state: str | None, *, known: bool = True) -> JobStatus:
    j = next(j for j in plan.jobs if j.stage == stage and j.site == site)
    return JobStatus(stage=stage, stage_index=j.stage_index, site=site,
                     submitted_from=j.submitted_from, id_link_path="/links", known=known,
                     submitted=state is not None, run_ids=["7"] if state else [], state=state)


def transfer(plan: Plan, kind: str, *, state: str | None = None, sent: int | None = None,
             arrived: int | None = None, known: bool = True) -> TransferStatus:
    m = next(m for m in plan.moves if m.kind == kind)
    locks = LockCounts(ok=sent or 0, replicating=0, stuck=0) if state == "OK" else None
    return TransferStatus(
        id=m.id, kind=m.kind, stage=m.stage, dataset_type=m.dataset_type, source=m.source,
        destination=m.destination, rucio_did=m.rucio_did,
        rule=RuleStatus(known=known, rule_id="r1" if state else None, state=state,  # type: ignore[arg-type]
                        locks=locks, files_sent=sent, reason=None if known else "no Rucio"),
        arrival=ArrivalStatus(known=arrived is not None, collection=m.into, ingested=arrived,
                              reason=None if arrived is not None else "not this site's Butler"))


def report_of(plan: Plan, jobs: list[JobStatus] = (), transfers: list[TransferStatus] = (),  # type: ignore[assignment]
              site: str | None = None, at: float = 1.0e9) -> StatusReport:
    return assemble(plan, site=site, generated_at=at, sources=[], jobs=list(jobs),
                    transfers=list(transfers), lag=[], repos=[])


def steps_of(report: StatusReport, site: str) -> Any:
    return next(s for s in report.sites if s.site == site)


def test_committed_schema_is_the_models() -> None:
    committed = (ROOT / "schema" / "status.schema.json").read_text()
    assert committed == schema_text(), (
        "schema/status.schema.json is stale: run `python -m compiler.status`")


def test_nothing_seen_each_site_starts_at_its_step_1(plan: Plan) -> None:
    report = report_of(plan)
    for site in ("usdf", "frdf"):
        s = steps_of(report, site)
        assert s.next == [1]
        assert s.blocked == list(range(2, len(plan.schedule.sites[site]) + 1))
    first_blocked = steps_of(report, "usdf").steps[1]
    assert first_blocked.blocked_by == ["usdf step 1"]


def test_a_finished_job_makes_its_register_the_next_step(plan: Plan) -> None:
    report = report_of(plan, jobs=[job(plan, "step1", "frdf", "SUCCEEDED")])
    frdf = steps_of(report, "frdf")
    gather = next(m for m in plan.moves if m.kind == "gather")
    register = number(plan, "frdf", f"register:{gather.id}")
    assert register in frdf.next
    step1 = number(plan, "frdf", "job:step1:frdf")
    rows = {st.number: st for st in frdf.steps}
    assert (rows[step1].state, rows[step1].observed) == ("done", True)
    # every step before it done (inferred), but the monitoring: nothing needs it, nothing shows it
    assert all(rows[n].state == "done" and not rows[n].observed for n in range(1, step1)
               if rows[n].kind != "monitoring")
    assert [rows[n].state for n in range(1, step1) if rows[n].kind == "monitoring"] == ["ready"]
    # the gather's verify at usdf waits for usdf's own step1 and for frdf's wait script
    usdf = steps_of(report, "usdf")
    verify = next(st for st in usdf.steps if st.key == f"verify:{gather.id}")
    assert verify.state == "blocked"
    wait_key = f"wait:{gather.id}"
    assert verify.blocked_by == [f"usdf step {number(plan, 'usdf', 'job:step1:usdf')}",
                                 f"frdf step {number(plan, 'frdf', wait_key)}"]


def test_running_wait_and_arrived_verify(plan: Plan) -> None:
    gather = next(m for m in plan.moves if m.kind == "gather")
    replicating = transfer(plan, "gather", state="REPLICATING", sent=4)
    report = report_of(plan, transfers=[replicating])
    rows = {st.key: st for st in steps_of(report, "frdf").steps}
    assert rows[f"register:{gather.id}"].state == "done"
    assert rows[f"wait:{gather.id}"].state == "running"
    arrived = transfer(plan, "gather", state="OK", sent=4, arrived=4)
    report = report_of(plan, transfers=[arrived])
    rows = {st.key: st for st in steps_of(report, "usdf").steps}
    assert rows[f"verify:{gather.id}"].state == "done"
    fgcm = rows["job:fgcm:usdf"]
    assert fgcm.state == "ready" and fgcm.number in steps_of(report, "usdf").next
    assert report.attention == []


def test_attention_lines(plan: Plan) -> None:
    report = report_of(plan, jobs=[job(plan, "step1", "usdf", "FAILED")],
                       transfers=[transfer(plan, "gather", state="OK", sent=4, arrived=3),
                                  transfer(plan, "scatter", state="STUCK", sent=2)])
    assert report.exit_code == 5
    gather, scatter = (next(m for m in plan.moves if m.kind == k) for k in ("gather", "scatter"))
    assert report.attention == [
        "job step1 at usdf: FAILED (run 7)",
        f"transfer {gather.id}: 4 sent, 3 arrived at usdf ({gather.into})",
        f"transfer {scatter.id}: rule r1 STUCK"]


def test_merge_takes_each_cell_from_the_view_that_read_it(plan: Plan, tmp_path: Path) -> None:
    rucio_only = report_of(plan, transfers=[transfer(plan, "gather", state="OK", sent=4)],
                           site="frdf", at=100.0)
    butler_too = report_of(plan, transfers=[transfer(plan, "gather", known=False, arrived=4)],
                           site="usdf", at=90.0)
    merged = merge(plan, [rucio_only, butler_too], ["frdf.json", "usdf.json"])
    t = merged.transfers[0]
    assert (t.rule.state, t.rule.files_sent, t.arrival.ingested) == ("OK", 4, 4)
    assert (merged.site, merged.generated_at, merged.merged_from) == (
        None, 100.0, ["frdf.json", "usdf.json"])

    campaign = tmp_path / "campaign.yaml"
    paths = []
    for name, rep in (("frdf.json", rucio_only), ("usdf.json", butler_too)):
        paths.append(tmp_path / name)
        paths[-1].write_text(render_json(rep))
    got = CliRunner().invoke(status_command, [str(campaign), "--merge", *map(str, paths),
                                              "--format", "json"])
    assert got.exit_code == 0, got.output
    assert StatusReport.model_validate_json(got.output).transfers[0].arrival.ingested == 4


def test_merge_refuses_other_campaigns_and_non_reports(plan: Plan, tmp_path: Path) -> None:
    campaign = tmp_path / "campaign.yaml"
    other = json.loads(render_json(report_of(plan)))
    other["spec_sha256"] = "0" * 64
    (tmp_path / "other.json").write_text(json.dumps(other))
    (tmp_path / "junk.json").write_text('{"campaign": 1}')
    runner = CliRunner()
    got = runner.invoke(status_command, [str(campaign), "--merge", str(tmp_path / "other.json")])
    assert got.exit_code == 2 and "not of this campaign file" in got.output
    got = runner.invoke(status_command, [str(campaign), "--merge", str(tmp_path / "junk.json")])
    assert got.exit_code == 2 and "not a drpc status JSON report" in got.output
    got = runner.invoke(status_command, [str(campaign), str(tmp_path / "junk.json")])
    assert got.exit_code == 2 and "only read with --merge" in got.output
    got = runner.invoke(status_command, [str(campaign), "--site", "nowhere"])
    assert got.exit_code == 2 and "no such site" in got.output


@pytest.mark.parametrize(("module", "package", "source"), [
    ("rucio.client", "rucio-clients", "rucio"),
    ("lsst.daf.butler", "lsst-daf-butler", "butler"),
    ("confluent_kafka", "confluent-kafka", "kafka"),
])
def test_a_missing_client_is_an_unknown_cell_with_its_reason(
        plan: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str,
        package: str, source: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import` now fails as if not installed
    campaign = tmp_path / "campaign.yaml"
    env = {"HOME": str(tmp_path), "RUCIO_CONFIG": str(tmp_path / "none.cfg")}
    got = CliRunner().invoke(status_command, [str(campaign), "--format", "json",
                                              "--lag-interval", "0", "--timeout", "0.5"], env=env)
    assert got.exit_code == 0, got.output
    report = StatusReport.model_validate_json(got.output)
    down = [s for s in report.sources if s.source == source]
    assert down and all(not s.up and f"{package} is not installed" in (s.reason or "")
                        for s in down)
    cells = {"rucio": [t.rule for t in report.transfers],
             "butler": [t.arrival for t in report.transfers],
             "kafka": report.lag}[source]
    assert cells and all(not c.known and f"pip install {package}" in (c.reason or "")
                         for c in cells)
    table = CliRunner().invoke(status_command, [str(campaign), "--lag-interval", "0",
                                                "--timeout", "0.5"], env=env).output
    assert "Traceback" not in table and "unknown [" in table
    assert f"{package} is not installed" in table


def test_numbers_and_titles_are_the_site_runbooks(plan: Plan) -> None:
    import re

    from compiler.render import runbook

    files = runbook.render(plan)
    report = report_of(plan, jobs=[job(plan, "step1", "frdf", "RUNNING")])
    for site in report.sites:
        text = files[f"sites/{site.site}/RUNBOOK.md"].decode()
        headings = [(int(n), title.replace("`", ""))
                    for n, title in re.findall(r"^### (\d+)\. (.+)$", text, re.M)]
        assert [(st.number, st.title) for st in site.steps] == headings


def arrived_whole(plan: Plan, move: Any, arrived: int) -> TransferStatus:
    return TransferStatus(
        id=move.id, kind=move.kind, stage=move.stage, dataset_type=move.dataset_type,
        source=move.source, destination=move.destination, rucio_did=move.rucio_did,
        rule=RuleStatus(known=True, rule_id="r1", state="OK",
                        locks=LockCounts(ok=2, replicating=0, stuck=0), files_sent=2),
        arrival=ArrivalStatus(known=True, collection=move.into, ingested=arrived))


def test_the_archival_check_is_done_once_every_archived_move_arrived(plan: Plan) -> None:
    archived = [m for m in plan.moves if m.archived_into is not None]
    assert archived
    key = f"archive:{plan.central_site}"

    def archival(transfers: list[TransferStatus]) -> Any:
        rows = steps_of(report_of(plan, transfers=transfers), plan.central_site).steps
        return next(st for st in rows if st.key == key)

    done = archival([arrived_whole(plan, m, 2) for m in archived])
    assert (done.state, done.observed) == ("done", False)
    short = archival([arrived_whole(plan, m, 2 if i else 1) for i, m in enumerate(archived)])
    assert short.state == "blocked" and short.blocked_by
