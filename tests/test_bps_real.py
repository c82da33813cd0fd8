"""Every generated BPS submit file, loaded by the real ctrl_bps exactly as `bps submit` does.

CTRL_BPS_PANDA_DIR points at the vendored ctrl_bps_panda configs, so the real PanDA site
configs are included; DRP_PIPE_DIR at drp_pipe's BPS include files.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import Any

import pytest

from compiler.pipeline import compile_campaign
from tests.helpers import CAMPAIGNS, shared

EXAMPLES = sorted(p.name for p in CAMPAIGNS.glob("*.yaml"))

# Filled in by BPS itself for each job or quantum, never by the submit file.
RUNTIME_VARIABLES = {
    "qgraphFile", "qgraphNodeId", "qgraphId", "inputQgraphFile",
    "label", "tract", "patch", "band", "subfilter", "physical_filter", "visit", "exposure", "detector",
    # ctrl_bps_panda's remote build passes it when it expands remoteBuild.runnerCommand
    # (panda/utils.py: cvals["IDDS_MAX_NAME_LENGTH"], from the environment or its default)
    "IDDS_MAX_NAME_LENGTH",
}
VARIABLE = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")


@pytest.fixture(scope="module", autouse=True)
def bps_environment() -> Any:
    saved = dict(os.environ)
    os.environ["CTRL_BPS_PANDA_DIR"] = str(shared("vendor", "ctrl_bps_panda"))
    os.environ["DRP_PIPE_DIR"] = str(shared("vendor", "drp_pipe"))
    os.environ["PANDA_BEHIND_REAL_LB"] = "true"
    os.environ.pop("LSST_RUN_TEMP_SPACE", None)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _submit_files(tmp_path: Path, campaign: str) -> list[tuple[str, Path]]:
    compiled = compile_campaign(CAMPAIGNS / campaign)
    out = []
    for rel, content in compiled.files.items():
        if "/bps/" in rel:
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            out.append((rel, path))
    assert out, "no submit files generated"
    return out


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def _resolves(cfg: Any, name: str) -> bool:
    curvals = {"curr_site": cfg["computeSite"], "curr_cloud": cfg["computeCloud"]}
    for extra in ({}, {"searchobj": cfg["finalJob"]}):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                cfg.search(name, opt={"required": True, "curvals": curvals, **extra})
            return True
        except KeyError:
            continue
    return False


@pytest.mark.parametrize("campaign", EXAMPLES)
def test_submit_files_load_in_real_bps(tmp_path: Path, campaign: str) -> None:
    from lsst.ctrl.bps import BPS_DEFAULTS, BPS_SEARCH_ORDER, BpsConfig
    from lsst.ctrl.bps.initialize import (
        init_submission,
        out_collection_validator,
        output_run_validator,
        submit_path_validator,
    )

    plan = compile_campaign(CAMPAIGNS / campaign, render=False).plan
    jobs = {j.path: j for j in plan.jobs}
    for rel, path in _submit_files(tmp_path, campaign):
        job = jobs[rel]
        site = plan.site(job.site)
        # What `bps submit` does first: load with the defaults, then the validators.
        cfg = BpsConfig(str(path), search_order=BPS_SEARCH_ORDER, defaults=BPS_DEFAULTS)
        for validator in (submit_path_validator, output_run_validator, out_collection_validator):
            validator(cfg)
        assert cfg["computeSite"] == site.panda_site
        assert cfg["computeCloud"] == site.cloud
        assert cfg["wmsServiceClass"] == "lsst.ctrl.bps.panda.PanDAService"
        assert cfg["LSST_VERSION"] == plan.stack
        assert cfg[".payload.butlerConfig"] == site.butler_repo
        assert cfg[".payload.dataQuery"] == job.data_query
        assert cfg[".payload.inCollection"] == ",".join(job.in_collections)
        assert cfg[".payload.output"] == job.output
        assert cfg["pipelineYaml"] == job.pipeline_yaml.replace("${DRP_PIPE_DIR}", os.environ["DRP_PIPE_DIR"])
        assert cfg["project"] == (plan.ticket or plan.campaign) and cfg["campaign"] == plan.campaign
        assert "outCollection" not in cfg[".payload"]
        # The PanDA queue of the final job: our explicit value beats the site config's.
        with contextlib.redirect_stdout(io.StringIO()):
            _, queue = cfg.search("queue", opt={"searchobj": cfg["finalJob"], "curvals": {"curr_site": site.panda_site}})
        assert queue == f"{site.panda_site}_Rubin_Merge"
        for key, value in job.overrides:
            with contextlib.redirect_stdout(io.StringIO()):
                _, found = cfg.search(key, opt={"curvals": {"curr_site": site.panda_site}})
            assert found == value, key

        # The full initialisation of `bps submit` (no WMS contact), then a strict variable pass.
        full = init_submission(str(path), validators=[submit_path_validator, output_run_validator,
                                                      out_collection_validator],
                               submit_path=str(tmp_path / "submit" / rel))
        names = {n for s in _strings(full.toDict()) for n in VARIABLE.findall(s)}
        undefined = sorted(n for n in names - RUNTIME_VARIABLES if not _resolves(full, n))
        assert undefined == [], f"{rel}: BPS would silently turn {undefined} into empty strings"
        assert full["uniqProcName"].startswith(job.output.replace("/", "_"))

        curvals = {"curr_site": site.panda_site}
        # The graph is built where the repository is: the resolved pipetask command names the
        # compute site's Butler, with remote build for a job submitted from the central site.
        with contextlib.redirect_stdout(io.StringIO()):
            _, qgraph = full.search("createQuantumGraph", opt={"curvals": curvals, "replaceVars": True})
        assert f"--butler-config {site.butler_repo} " in qgraph
        assert f" -i {','.join(job.in_collections)} " in qgraph
        remote = full["remoteBuild"]["enabled"] if "remoteBuild" in full else False
        assert remote == (site.submit == "remote") == job.is_remote, rel
        if job.select == "visits":  # whole visits: the site's selection first, no tract
            assert job.in_collections[0] == site.raw_selection and "tract" not in job.data_query
        # run ids are kept, per campaign, stage and site
        assert full["makeIdLink"] is True
        assert full["idLinkPath"] == os.path.expandvars(job.id_link_path)
        assert f"/{plan.campaign}/{job.stage_index:02d}-{job.stage}-{job.site}" in full["idLinkPath"]
        # per-task values reach that task only, never pipetaskInit
        for label, values in job.task_overrides:
            for key, value in values:
                with contextlib.redirect_stdout(io.StringIO()):
                    _, got = full.search(key, opt={"curvals": {**curvals, "curr_pipetask": label}})
                    _, init = full.search(key, opt={"curvals": {**curvals, "curr_pipetask": "pipetaskInit"}})
                assert got == value and init != value, (rel, label, key)


def test_examples_show_remote_and_local_submission_and_task_overrides() -> None:
    plans = [compile_campaign(CAMPAIGNS / c, render=False).plan for c in EXAMPLES]
    jobs = [j for p in plans for j in p.jobs]
    assert {j.submit for j in jobs} == {"local", "remote"}
    assert any(j.task_overrides for j in jobs)
    assert {j.select for j in jobs} == {"visits", "tracts", "all"}


def test_strict_pass_catches_an_undefined_variable(tmp_path: Path) -> None:
    """The strict pass above is able to fail: a file with an undefined {var} is caught."""
    from lsst.ctrl.bps.initialize import init_submission

    rel, path = _submit_files(tmp_path, "3x2.yaml")[0]
    path.write_text(path.read_text().replace('outputRun: "{output}/{timestamp}"',
                                             'outputRun: "{output}/{noSuchVariable}/{timestamp}"'))
    full = init_submission(str(path), submit_path=str(tmp_path / "submit"))
    names = {n for s in _strings(full.toDict()) for n in VARIABLE.findall(s)}
    undefined = sorted(n for n in names - RUNTIME_VARIABLES if not _resolves(full, n))
    assert "noSuchVariable" in undefined


def test_unset_include_variable_fails_like_bps(tmp_path: Path) -> None:
    from lsst.ctrl.bps import BPS_DEFAULTS, BPS_SEARCH_ORDER, BpsConfig

    _, path = _submit_files(tmp_path, "3x2.yaml")[0]
    os.environ.pop("CTRL_BPS_PANDA_DIR")
    try:
        with pytest.raises(ValueError, match="could not be loaded"):
            BpsConfig(str(path), search_order=BPS_SEARCH_ORDER, defaults=BPS_DEFAULTS)
    finally:
        os.environ["CTRL_BPS_PANDA_DIR"] = str(shared("vendor", "ctrl_bps_panda"))
