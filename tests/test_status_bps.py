"""`drpc status` reads job states through ctrl_bps's real `retrieve_report`.

`FakeWmsService` is a real `BaseWmsService` subclass: ctrl_bps imports it by name (as it
imports PanDA's service), instantiates it and calls its `report`, which returns real
`WmsRunReport`s from the runs a test wrote into `$DRPC_FAKE_WMS_RUNS` (a JSON file: run id ->
state and job counts). The run ids are found the way BPS records them: links named by the run
id in the submit file's idLinkPath, under the test's own $HOME.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from lsst.ctrl.bps import BaseWmsService, WmsRunReport, WmsStates

from compiler.cli_status import status_command
from compiler.status.bps import expand_link_path, recorded_runs
from compiler.status.model import StatusReport
from tests.helpers import MINIMAL, write

FAKE = f"{__name__}.FakeWmsService"


class FakeWmsService(BaseWmsService):  # type: ignore[misc]
    """A WMS whose runs are the JSON file named by $DRPC_FAKE_WMS_RUNS."""

    def report(self, wms_workflow_id: str | None = None, user: str | None = None,
               hist: float = 0, pass_thru: str | None = None, is_global: bool = False,
               return_exit_codes: bool = False) -> tuple[list[WmsRunReport], str]:
        runs = json.loads(Path(os.environ["DRPC_FAKE_WMS_RUNS"]).read_text())
        if wms_workflow_id is None:  # like PanDA's plugin: no listing without an id
            return [], "this WMS cannot list runs without an id"
        run = runs.get(wms_workflow_id)
        if run is None:
            return [], f"no run {wms_workflow_id}"
        if run.get("raise"):
            raise ConnectionError(run["raise"])
        counts = {WmsStates[k]: v for k, v in run.get("jobs", {}).items()}
        return [WmsRunReport(wms_id=wms_workflow_id, state=WmsStates[run["state"]],
                             job_state_counts=counts, total_number_jobs=sum(counts.values()))], ""

    def get_status(self, wms_workflow_id: str, hist: float = 1,
                   is_global: bool = False) -> tuple[WmsStates, str]:
        """As PanDA's plugin does for a SubFinished task that `report` calls SUCCEEDED: the
        status must not be read from here."""
        return WmsStates.FAILED, ""


def record_run(home: Path, link_path: str, run_id: str, submit_dir: Path) -> None:
    """What ctrl_bps's makeIdLink does after a submission: a link named by the run id."""
    folder = Path(link_path.replace("${HOME}", str(home)))
    folder.mkdir(parents=True, exist_ok=True)
    submit_dir.mkdir(parents=True, exist_ok=True)
    (folder / run_id).symlink_to(submit_dir)


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    return write(tmp_path, MINIMAL)


def run_status(campaign: Path, home: Path, runs: dict[str, Any], *args: str,
               env: dict[str, str] | None = None) -> Any:
    runs_file = home / "runs.json"
    runs_file.write_text(json.dumps(runs))
    result = CliRunner().invoke(status_command, [
        str(campaign), "--wms-service", FAKE, "--lag-interval", "0", "--timeout", "0.5", *args],
        env={"HOME": str(home), "DRPC_FAKE_WMS_RUNS": str(runs_file),
             "RUCIO_CONFIG": str(home / "no-rucio.cfg"), **(env or {})})
    return result


def job(report: StatusReport, stage: str, site: str) -> Any:
    return next(j for j in report.jobs if j.stage == stage and j.site == site)


def test_states_from_retrieve_report_in_every_format(campaign: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    record_run(home, "${HOME}/drpc-runs/mini/01-step1-usdf", "1001", tmp_path / "submit/a")
    record_run(home, "${HOME}/drpc-runs/mini/01-step1-frdf", "2001", tmp_path / "submit/b")
    runs = {"1001": {"state": "SUCCEEDED", "jobs": {"SUCCEEDED": 40}},
            "2001": {"state": "RUNNING", "jobs": {"RUNNING": 12, "SUCCEEDED": 3}}}
    result = run_status(campaign, home, runs, "--format", "json")
    assert result.exit_code == 0, result.output
    report = StatusReport.model_validate_json(result.output)
    usdf, frdf = job(report, "step1", "usdf"), job(report, "step1", "frdf")
    assert (usdf.state, usdf.run_ids, usdf.job_counts) == ("SUCCEEDED", ["1001"],
                                                           {"SUCCEEDED": 40})
    assert (frdf.state, frdf.job_counts) == ("RUNNING", {"RUNNING": 12, "SUCCEEDED": 3})
    fgcm = job(report, "fgcm", "usdf")
    assert (fgcm.known, fgcm.submitted, fgcm.state) == (True, False, None)
    assert "no run id recorded in " + str(home) in (fgcm.reason or "")

    table = run_status(campaign, home, runs).output
    grid = {line.split()[1]: line for line in table.splitlines() if line[:2] in ("1 ", "2 ")}
    assert grid["step1"].split()[2:4] == ["SUCCEEDED", "(40"]
    assert "RUNNING (12 running, 3 succeeded)" in grid["step1"]
    assert "not submitted" in grid["fgcm"]

    prom = run_status(campaign, home, runs, "--format", "prometheus").output
    assert 'drpc_job_state{campaign="mini",site="usdf",stage="step1",state="succeeded"} 1' in prom
    assert 'drpc_job_state{campaign="mini",site="frdf",stage="step1",state="running"} 1' in prom
    assert 'stage="fgcm"' not in prom  # not submitted: no state to show
    assert 'drpc_status_source_up{campaign="mini",site="usdf",source="bps"} 1' in prom

    page = run_status(campaign, home, runs, "--format", "html").output
    assert 'class="ok" data-site="usdf" data-stage="1 step1">SUCCEEDED (40 succeeded)' in page
    assert 'class="running" data-site="frdf" data-stage="1 step1">RUNNING' in page


def test_newest_run_is_the_current_one(tmp_path: Path) -> None:
    folder = tmp_path / "links"
    folder.mkdir()
    for i, name in enumerate(["900", "1000", "80"]):
        (folder / name).symlink_to(tmp_path)
        os.utime(folder / name, (1_000_000 + i, 1_000_000 + i), follow_symlinks=False)
    assert recorded_runs(folder) == ["900", "1000", "80"]
    assert recorded_runs(tmp_path / "missing") == []


def test_id_link_path_expands_home(campaign: Path) -> None:
    from compiler.pipeline import compile_campaign
    plan = compile_campaign(campaign, render=False).plan
    assert expand_link_path(plan.jobs[0], {"HOME": "/home/op"}) == \
        "/home/op/drpc-runs/mini/01-step1-usdf"


def test_failed_job_needs_attention_exit_5(campaign: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    record_run(home, "${HOME}/drpc-runs/mini/01-step1-frdf", "2001", tmp_path / "s")
    runs = {"2001": {"state": "FAILED", "jobs": {"FAILED": 2, "SUCCEEDED": 10}}}
    result = run_status(campaign, home, runs)
    assert result.exit_code == 5, result.output
    assert "Needs attention (exit 5)\n  - job step1 at frdf: FAILED (run 2001)" in result.output
    from compiler.pipeline import compile_campaign
    steps = compile_campaign(campaign, render=False).plan.schedule.sites["frdf"]
    number = next(s.number for s in steps if s.key == "job:step1:frdf")
    monitoring = next(s.number for s in steps if s.kind == "monitoring")
    # the step, by the number the site's runbook gives it; only the monitoring can start (no
    # source shows it installed, nothing waits for it)
    assert (f"  frdf: can start {monitoring} Install the monitoring: the alert rules and the "
            f"status exporter; FAILED {number} Run stage 1 step1") in result.output


def test_wms_that_does_not_answer_is_unknown_with_its_reason(campaign: Path,
                                                            tmp_path: Path) -> None:
    home = tmp_path / "home"
    record_run(home, "${HOME}/drpc-runs/mini/01-step1-usdf", "1001", tmp_path / "s")
    result = run_status(campaign, home, {"1001": {"raise": "PanDA server unreachable"}},
                        "--format", "json")
    assert result.exit_code == 0, result.output
    report = StatusReport.model_validate_json(result.output)
    usdf = job(report, "step1", "usdf")
    assert (usdf.known, usdf.state) == (False, None)
    assert usdf.reason == "ConnectionError: PanDA server unreachable"
    bps = {s.site: s for s in report.sources if s.source == "bps"}
    assert (bps["usdf"].up, bps["frdf"].up) == (False, True)


def test_missing_ctrl_bps_is_unknown_not_a_traceback(campaign: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    record_run(home, "${HOME}/drpc-runs/mini/01-step1-usdf", "1001", tmp_path / "s")
    monkeypatch.setitem(sys.modules, "lsst.ctrl.bps.report", None)  # import fails as if absent
    result = run_status(campaign, home, {"1001": {"state": "SUCCEEDED"}})
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "1 step1  unknown [1]" in result.output
    assert "lsst-ctrl-bps is not installed" in result.output
    assert "pip install lsst-ctrl-bps" in result.output
    prom = run_status(campaign, home, {"1001": {"state": "SUCCEEDED"}},
                      "--format", "prometheus").output
    assert 'drpc_status_source_up{campaign="mini",site="usdf",source="bps"} 0' in prom
    assert "drpc_job_state{" not in prom


def test_site_view_reads_only_its_submit_host(campaign: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    record_run(home, "${HOME}/drpc-runs/mini/01-step1-usdf", "1001", tmp_path / "s")
    result = run_status(campaign, home, {"1001": {"state": "SUCCEEDED"}}, "--site", "usdf",
                        "--format", "json")
    assert result.exit_code == 0, result.output
    report = StatusReport.model_validate_json(result.output)
    assert job(report, "step1", "usdf").state == "SUCCEEDED"
    frdf = job(report, "step1", "frdf")
    assert (frdf.known, frdf.reason) == (
        False, "submitted from frdf: its runs are recorded there (drpc status --site frdf)")
    assert [(s.source, s.site) for s in report.sources if s.source == "bps"] == [("bps", "usdf")]
    assert [s.site for s in report.sites] == ["usdf"]  # only its own runbook's steps
    table = run_status(campaign, home, {"1001": {"state": "SUCCEEDED"}}, "--site", "usdf").output
    header = next(line for line in table.splitlines() if line.startswith("stage "))
    assert header.split() == ["stage", "usdf", "frdf"]  # the grid still has every site's jobs
