"""`drpc rehearse` end to end on the 3x2 example, against real services, and both injected faults.

Slow (minutes): marked `rehearsal`, so `pytest -m rehearsal` runs them alone and
`pytest -m "not rehearsal"` skips them on purpose.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from ruamel.yaml import YAML

from compiler.pipeline import compile_campaign
from compiler.render.monitoring import RULES_FILE, alerts
from tests.helpers import CAMPAIGNS, ROOT, bring_site_files, cut_inputs_for_rehearsal
from tests.test_monitoring import expected, one_rule_files, promtool_test

pytestmark = [pytest.mark.rehearsal, pytest.mark.services]

# The rehearsal moves one dataset type of each kind, so that it stays within minutes: a
# tract-level gather (FGCM's isolated stars), a visit-level gather from the visits' home sites
# (visitSummary), a visit-level scatter split by the sites holding the visits
# (fgcmPhotoCalibCatalog) and a gather to step 7 that is also archived (objectTable_tract).
# Every other move of 3x2 is of one of these kinds.
KEPT = {"isolated_star_presources", "visitSummary", "fgcmPhotoCalibCatalog", "objectTable_tract"}
FILE_LIMIT = 2  # files per Rucio dataset at the site whose moves the clean rehearsal splits


def campaign(tmp_path: Path, *, file_limit_at: str | None = None,
             two_sites: bool = False) -> Path:
    """3x2 with its moved dataset types cut to KEPT and its inputs to two types; with
    `file_limit_at`, that site's Rucio datasets hold at most 2 files (its moves split).
    `two_sites`: without ukdf-lancs (and its cross-check) and without inputs, for the injected
    faults, which need one site that sends to the central one and one move of a stage: a third
    site would only repeat its setup and raws before the fault, and the inputs' moves (the clean
    rehearsal's) would only come before it."""
    yaml = YAML()
    doc = yaml.load((CAMPAIGNS / "3x2.yaml").read_text())
    if file_limit_at is not None:
        doc["sites"][file_limit_at]["rucio"] = {"dataset_file_limit": FILE_LIMIT}
    doc["datasets"] = [d for d in doc["datasets"] if d["type"] in KEPT]
    if two_sites:
        doc["include"] = [f for f in doc["include"] if "ukdf-lancs" not in f]
        del doc["sites"]["ukdf-lancs"], doc["sky"]["assignment"]["tracts"]["ukdf-lancs"]
        doc["sites"]["usdf"]["share"] = doc["sites"]["frdf"]["share"] = 0.5
        del doc["inputs"]
    else:
        cut_inputs_for_rehearsal(doc)
        # one cross-check tract: processed at ukdf-lancs too, both results compared at usdf
        doc["sky"]["cross_check"] = [{"tract": 9948, "also_at": "ukdf-lancs"}]
    bring_site_files(tmp_path)
    path = tmp_path / "3x2.yaml"
    with path.open("w") as f:
        yaml.dump(doc, f)
    return path


def rehearse(tmp_path: Path, *extra: str, file_limit_at: str | None = None,
             two_sites: bool = False) -> subprocess.CompletedProcess[str]:
    path = campaign(tmp_path, file_limit_at=file_limit_at, two_sites=two_sites)
    return subprocess.run([sys.executable, "-m", "compiler", "rehearse", str(path),
                           "--work", str(tmp_path / "work"), *extra],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)


def test_rehearsal_of_3x2_loses_nothing(tmp_path: Path) -> None:
    # frdf's Rucio holds at most FILE_LIMIT files per dataset: its moves are split and verified
    # whole (the other sites keep the default limit: one dataset per move)
    result = rehearse(tmp_path, file_limit_at="frdf")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    out = result.stdout
    last = out.strip().splitlines()[-1]
    m = re.fullmatch(r"(\d+) datasets sent, (\d+) arrived, 0 lost", last)
    assert m and m.group(1) == m.group(2) and int(m.group(1)) > 0, last
    # every move of the plan went through register, wait and verify, with the plan's counts
    assert "FAILED" not in out
    report = json.loads((tmp_path / "work" / "report.json").read_text())
    assert report["ok"] and report["lost"] == 0
    verifies = [s for s in report["steps"] if s["key"].startswith("verify:") and not s["key"].startswith("verify:raw.")]
    plan = compile_campaign(tmp_path / "3x2.yaml", render=False).plan
    # 8 gathers and scatters, 6 input moves (bias, the refcat and the manifest to 2 sites) and
    # 4 cross-check returns (2 tract-level types from the owner frdf and from ukdf-lancs)
    assert len(verifies) == len(plan.transfers) == 18
    assert sum(s["key"].startswith("verify:inputs.") for s in verifies) == 6
    assert sum(s["key"].startswith("verify:crosscheck.") for s in verifies) == 4
    compare = next(s for s in report["steps"] if s["key"] == "crosscheck:usdf")
    assert compare["status"] == "ok" and compare["note"] == "2 comparison(s)"
    # the whole-visit selections ran for real at every site
    visits = [s for s in report["steps"] if s["key"].startswith("visits:")]
    assert len(visits) == len(plan.sites) and all(s["status"] == "ok" for s in visits), visits
    for step in verifies:
        assert step["expected"] == step["sent"] == step["arrived"] and step["expected"] > 0, step
    # each move's wait tells its own transfer, whichever batch of Rucio's daemons carried it
    waits = {s["key"].split(":", 1)[1]: s for s in report["steps"] if s["key"].startswith("wait:")}
    for step in verifies:
        move = step["key"].split(":", 1)[1]
        n, dest = step["expected"], step["site"]
        assert waits[move]["note"] == f"rule OK, {n} event(s) to Kafka, {n} ingested at {dest}"
    assert sum(s["sent"] for s in verifies) == report["sent"]
    # what was real and what was simulated is part of the report
    assert "simulated PanDA jobs" in out.replace("  ", " ")
    assert "ingest    at the destinations: drpc stand-in" in out
    # progress lines went to stderr, one per step, in the schedule's order (though independent
    # steps ran side by side), and the report's rows are in the same order
    started = re.findall(r"^\[(\S+)\] (\S+)$", result.stderr, re.MULTILINE)
    assert started == [(s.site, s.key) for s in plan.schedule.steps]
    assert "[usdf] setup-repo:usdf" in result.stderr and "[frdf] verify:step2c" in result.stderr
    keys = [s["key"] for s in report["steps"] if not s["key"].endswith(":again")]
    assert keys == [s.key for s in plan.schedule.steps]
    # it ends with drpc status of every site, merged: all green, read from the real services
    assert report["status"]["green"] and report["status"]["not_green"] == []
    assert "drpc status of every site, merged (" in out and "): all green" in out
    status = json.loads(Path(report["status"]["files"]["json"]).read_text())
    jsonschema.validate(status, json.loads((ROOT / "schema" / "status.schema.json").read_text()))
    assert status["merged_from"] == [f"{s.id}.json" for s in plan.sites]
    assert status["attention"] == [] and all(s["up"] for s in status["sources"])
    assert {(j["stage"], j["site"]) for j in status["jobs"]} == {(j.stage, j.site)
                                                                for j in plan.jobs}
    assert all(j["state"] == "SUCCEEDED" and j["run_ids"] for j in status["jobs"])
    assert len(status["transfers"]) == len(plan.moves)
    for t in status["transfers"]:
        assert t["rule"]["state"] == "OK" and t["arrival"]["ingested"] == t["rule"]["files_sent"]
    assert status["lag"] and all(x["known"] and x["lag"] == 0 for x in status["lag"])
    assert status["crosscheck"]["ok"] and status["crosscheck"]["counts"]["ok"] == 2
    # the moves from frdf were split into datasets of at most FILE_LIMIT files, the others not
    assert {s.id: s.dataset_file_limit == FILE_LIMIT for s in plan.sites} == {
        "usdf": False, "frdf": True, "ukdf-lancs": False}
    split = 0
    for move in plan.transfers:
        [manifest] = list((tmp_path / "work").rglob(f"{move.id}.manifest.json"))
        got = json.loads(manifest.read_text())
        sent = got["rucio_files"]
        assert sent == got["butler_datasets"] > 0, move.id
        if move.source == "frdf":
            assert got["rucio_datasets"] == -(-sent // FILE_LIMIT), (move.id, got)
            split += got["rucio_datasets"] > 1
        else:
            assert got["rucio_datasets"] == 1, (move.id, got)
    assert split, "some move from frdf was over the limit"
    # nothing left running: no process of the rehearsal's services survives
    assert _leftovers(tmp_path) == []


def test_injected_loss_fails_at_that_transfers_verify(tmp_path: Path) -> None:
    # on a sample of one tract per site of two sites: every count before the loss still
    # matches the plan's
    result = rehearse(tmp_path, "--inject", "loss", "--sample", "1", two_sites=True)
    assert result.returncode == 1
    out = result.stdout
    assert ("  sample    sampled 2 of 4 tracts (usdf 9469; frdf 9948), "
            "0 boundary pair(s) between sites") in out, out[-3000:]
    assert "REHEARSAL FAILED: injected fault found: sites/usdf/verify/" in out
    assert re.search(r"  missing: HSC/runs/drp-3x2/DM-48353/step2a-visits/\S+", out)
    assert out.strip().splitlines()[-1].endswith(", 1 lost")
    # the run stopped there: what it tells is the schedule up to that verify, in order
    assert _started(tmp_path, result)[-1].startswith("verify:step2a-visits.")
    assert _leftovers(tmp_path) == []


def test_injected_stuck_rule_stops_at_its_wait_script(tmp_path: Path) -> None:
    # on a sample of two sites too: the fault goes into the campaign's first move of a stage,
    # which every sample holds (the same move as the loss's)
    result = rehearse(tmp_path, "--inject", "stuck", "--sample", "1", two_sites=True)
    assert result.returncode == 1
    out = result.stdout
    m = re.search(r"exited 1 on the STUCK rule ([0-9a-f]{32}) of (\S+) and named its stuck locks", out)
    assert m, out[-3000:]
    log = next((tmp_path / "work" / "logs").glob(f"wait_{m.group(2)}.log")).read_text()
    assert f"rule {m.group(1)}" in log and "is STUCK" in log and "STUCK Requests:" in log
    assert _started(tmp_path, result)[-1] == f"wait:{m.group(2)}"
    # drpc status at the end shows it: the rule STUCK, exit-5 attention, and the metric that
    # makes the source site's RucioRuleStuck alert fire (promtool, with the generated rule)
    report = json.loads((tmp_path / "work" / "report.json").read_text())
    move = m.group(2)
    assert any(line.startswith(f"transfer {move}: rule {m.group(1)} STUCK")
               for line in report["status"]["not_green"]), report["status"]
    status = json.loads(Path(report["status"]["files"]["json"]).read_text())
    stuck = next(t for t in status["transfers"] if t["id"] == move)
    assert stuck["rule"]["state"] == "STUCK" and stuck["rule"]["locks"]["stuck"] > 0
    prom = Path(report["status"]["files"]["prometheus"]).read_text()
    metric = next(line for line in prom.splitlines()
                  if line.startswith("drpc_rule_stuck{") and f'transfer="{move}"' in line)
    assert metric.endswith("} 1"), metric
    plan = compile_campaign(tmp_path / "3x2.yaml", render=False).plan
    source = next(mv.source for mv in plan.moves if mv.id == move)
    alert = next(a for a in alerts(plan, source)
                 if a.name == "RucioRuleStuck" and a.labels["transfer"] == move)
    labels = dict(re.findall(r'(\w+)="([^"]*)"', metric))
    rules = one_rule_files(
        (tmp_path / "work" / "tree" / "sites" / source / "monitoring" / RULES_FILE).read_bytes(),
        tmp_path)
    rule = next(p for p in rules
                if (r := yaml.safe_load(p.read_text())["groups"][0]["rules"][0])["alert"]
                == "RucioRuleStuck" and r["labels"].get("transfer") == move)
    test = {"name": "the rehearsal's stuck rule", "interval": "1m",
            "input_series": [{"series": metric.rsplit(" ", 1)[0], "values": "1x40"}],
            "alert_rule_test": [{"eval_time": "30m", "alertname": "RucioRuleStuck",
                                 "exp_alerts": [expected(alert, labels, "1")]}]}
    fired = promtool_test(rule, [test], tmp_path)
    assert fired.returncode == 0, fired.stdout + fired.stderr
    assert _leftovers(tmp_path) == []


def _started(tmp_path: Path, result: subprocess.CompletedProcess[str]) -> list[str]:
    """The steps the progress lines name; checked to be the schedule's first ones, in order."""
    started = re.findall(r"^\[\S+\] (\S+)$", result.stderr, re.MULTILINE)
    keys = [s.key for s in compile_campaign(tmp_path / "3x2.yaml", render=False).plan.schedule.steps]
    assert started == keys[:len(started)], started
    return started


def _leftovers(tmp_path: Path) -> list[str]:
    """Processes whose command line names the rehearsal's work directory."""
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(tmp_path / "work") in line and "ps -eo" not in line]


def test_readme_lists_what_the_report_prints() -> None:
    from drpc_rehearsal.report import REAL_AND_SIMULATED

    readme = (ROOT / "README.md").read_text()
    for kind, what in REAL_AND_SIMULATED:
        assert f"| {kind} | {what.replace('|', '/')} |" in readme, what
