"""Stage subsets checked against the real pipeline (compiler.pipeline_check).

The real pipelines are drp_pipe, analysis_tools and meas_extensions_multiprofit at w.2025.30
(../shared/vendor, the stack the example campaigns pin), read by lsst-pipe-base from PyPI.
The small fixtures of tests/pipelines/ cover what the real files do not (a parse error, a range).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from compiler.errors import Diagnostic
from compiler.loader import load_campaign
from compiler.pipeline_check import pipeline_problems
from compiler.validate import validate_loaded

from .helpers import MINIMAL, replace_line, shared, write

FIXTURES = Path(__file__).resolve().parent / "pipelines"
RC2_STAGES = "  - {name: fgcm, subset: fgcm, runs_at: central}"


@pytest.fixture(scope="module")
def real_env() -> dict[str, str]:
    """The environment that makes the vendored w.2025.30 pipelines readable."""
    try:
        import lsst.pipe.base  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"lsst-pipe-base is needed by these tests (pip install lsst-pipe-base): {exc}", pytrace=False)
    return {
        "DRP_PIPE_DIR": str(shared("vendor", "drp_pipe-w.2025.30")),
        "ANALYSIS_TOOLS_DIR": str(shared("vendor", "analysis_tools-w.2025.30")),
        "MEAS_EXTENSIONS_MULTIPROFIT_DIR": str(shared("vendor", "meas_extensions_multiprofit-w.2025.30")),
    }


def check(tmp_path: Path, text: str, environ: dict[str, str] | None) -> list[Diagnostic]:
    loaded = load_campaign(write(tmp_path, text))
    spec, _ = validate_loaded(loaded)
    return pipeline_problems(spec, loaded, environ=environ)


def position_of(text: str, line_text: str, value: str) -> tuple[int, int]:
    """1-based line and column of `value` on the one line of `text` that is `line_text`."""
    lines = text.splitlines()
    assert lines.count(line_text) == 1
    n = lines.index(line_text)
    return n + 1, line_text.index(value) + 1


def with_stage(subset: str) -> tuple[str, str]:
    line = RC2_STAGES.replace("subset: fgcm", f"subset: {subset}")
    return replace_line(MINIMAL, RC2_STAGES, line), line


def test_real_subsets_pass(tmp_path: Path, real_env: dict[str, str]) -> None:
    # MINIMAL's subsets step1, fgcm and step3 are labeled subsets of HSC/DRP-RC2.yaml at w.2025.30
    assert check(tmp_path, MINIMAL, real_env) == []
    # a list of subsets and task labels, a range of task labels
    text = MINIMAL.replace("subset: step1,", "subset: 'step1,step2a,gbdesAstrometricFit',")
    text = text.replace("subset: step3,", "subset: makeDirectWarp..assembleCoadd,")
    assert check(tmp_path, text, real_env) == []


def test_unknown_subset_is_an_error_at_the_subset(tmp_path: Path, real_env: dict[str, str]) -> None:
    # step2c-recalibrate-healpix first appears in drp_pipe w.2025.35 (and in LSSTCam/DRP.yaml)
    text, line = with_stage("step2c-recalibrate-healpix")
    (d,) = check(tmp_path, text, real_env)
    assert d.severity == "error"
    assert d.path == "stages[1].subset"
    assert d.position is not None
    assert (d.position.line, d.position.column) == position_of(text, line, "step2c-recalibrate-healpix")
    assert d.position.file.endswith("campaign.yaml")
    assert "'step2c-recalibrate-healpix' is neither a labeled subset nor a task label" in d.message
    assert "${DRP_PIPE_DIR}/pipelines/HSC/DRP-RC2.yaml" in d.message
    assert d.hint is not None
    assert d.hint.startswith("did you mean '")
    for existing in ("step1", "step2a", "step2cde", "step3", "step7", "fgcm"):
        assert existing in d.hint
    assert "subsets of HSC/DRP-RC2.yaml:" in d.hint
    assert "read from " + real_env["DRP_PIPE_DIR"] in d.hint


def test_unknown_task_label_in_a_list(tmp_path: Path, real_env: dict[str, str]) -> None:
    text, line = with_stage("'isr,notATask'")
    (d,) = check(tmp_path, text, real_env)
    assert d.severity == "error" and d.path == "stages[1].subset"
    assert d.position is not None
    assert (d.position.line, d.position.column) == position_of(text, line, "'isr,notATask'")
    assert "'notATask' (in 'isr,notATask')" in d.message
    assert "'isr'" not in d.message.split("(in")[0]


def test_close_match_first(tmp_path: Path, real_env: dict[str, str]) -> None:
    text, _ = with_stage("'isr,calibrateImages'")
    (d,) = check(tmp_path, text, real_env)
    assert d.hint is not None and d.hint.startswith("did you mean 'calibrateImage'?")


def test_every_unknown_label_reported(tmp_path: Path, real_env: dict[str, str]) -> None:
    text = MINIMAL.replace("subset: step1,", "subset: 'step1,nope1',").replace("subset: step3,", "subset: step9,")
    diags = check(tmp_path, text, real_env)
    assert [(d.path, d.message.split()[0]) for d in diags] == [
        ("stages[0].subset", "'nope1'"), ("stages[2].subset", "'step9'")]


def test_drp_pipe_dir_unset_is_one_warning(tmp_path: Path, real_env: dict[str, str]) -> None:
    env = {k: v for k, v in real_env.items() if k != "DRP_PIPE_DIR"}
    (d,) = check(tmp_path, MINIMAL, env)
    assert d.severity == "warning" and d.path == "campaign.pipeline"
    assert d.position is not None and (d.position.line, d.position.column) == (9, 13)
    assert "not checked" in d.message and "DRP_PIPE_DIR is not set" in d.message
    assert d.hint is not None and "pip install lsst-pipe-base" in d.hint and "DRP_PIPE_DIR" in d.hint


def test_os_environ_is_the_default(tmp_path: Path, real_env: dict[str, str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in real_env.items():
        monkeypatch.setenv(k, v)
    assert check(tmp_path, MINIMAL, None) == []
    monkeypatch.delenv("DRP_PIPE_DIR")
    (d,) = check(tmp_path, MINIMAL, None)
    assert d.severity == "warning" and "DRP_PIPE_DIR is not set" in d.message


def test_import_of_an_unset_variable_is_one_warning(tmp_path: Path, real_env: dict[str, str]) -> None:
    # DRP-RC2.yaml imports $ANALYSIS_TOOLS_DIR/pipelines/...: unset, pipe_base cannot read it
    env = {k: v for k, v in real_env.items() if k != "ANALYSIS_TOOLS_DIR"}
    saved = dict(os.environ)
    (d,) = check(tmp_path, MINIMAL, env)
    assert dict(os.environ) == saved  # the environment of the parse is restored
    assert d.severity == "warning" and d.path == "campaign.pipeline"
    assert "ANALYSIS_TOOLS_DIR is not set" in d.message
    assert "${ANALYSIS_TOOLS_DIR}/pipelines/" in d.message


def test_missing_file_is_one_warning(tmp_path: Path, real_env: dict[str, str]) -> None:
    text = MINIMAL.replace("HSC/DRP-RC2.yaml", "HSC/DRP-RC3.yaml")
    (d,) = check(tmp_path, text, real_env)
    assert d.severity == "warning" and "DRP-RC3.yaml does not exist" in d.message


def test_pipe_base_missing_is_one_warning(tmp_path: Path, real_env: dict[str, str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lsst.pipe.base", None)  # import lsst.pipe.base raises ImportError
    (d,) = check(tmp_path, MINIMAL, real_env)
    assert d.severity == "warning" and "lsst-pipe-base is not installed" in d.message
    assert d.hint is not None and "pip install lsst-pipe-base" in d.hint
    (d,) = check(tmp_path, MINIMAL, {})  # both reasons in the one warning
    assert "DRP_PIPE_DIR is not set; lsst-pipe-base is not installed" in d.message


def test_remote_pipeline_is_not_read(tmp_path: Path) -> None:
    text = MINIMAL.replace("${DRP_PIPE_DIR}/pipelines", "https://example.org/pipelines")
    (d,) = check(tmp_path, text, {})
    assert d.severity == "warning" and "remote URI (https://)" in d.message


# -- small fixture pipelines ------------------------------------------------------------------------

def fixture_campaign(pipeline: str, *subsets: str) -> str:
    text = MINIMAL.replace("${DRP_PIPE_DIR}/pipelines/HSC/DRP-RC2.yaml", str(FIXTURES / pipeline))
    for old, new in zip(("step1", "fgcm", "step3"), subsets, strict=False):
        text = text.replace(f"subset: {old},", f"subset: {new},")
    return text


def test_parse_error_is_one_error_without_traceback(tmp_path: Path, real_env: dict[str, str]) -> None:
    (d,) = check(tmp_path, fixture_campaign("broken.yaml", "alpha", "alpha", "alpha"), {})
    assert d.severity == "error" and d.path == "campaign.pipeline"
    assert d.message == ("lsst-pipe-base cannot read the pipeline: Labels {'omega'} were not found in "
                         "the declared pipeline")
    assert "Traceback" not in d.text() and "\n" not in d.text()


def test_empty_subset_and_nested_import_through_environ(tmp_path: Path, real_env: dict[str, str]) -> None:
    # excluding.yaml imports $DRPC_TEST_PIPELINES_DIR/small.yaml without alpha: 'first' is empty
    assert "DRPC_TEST_PIPELINES_DIR" not in os.environ
    env = {"DRPC_TEST_PIPELINES_DIR": str(FIXTURES)}
    text = fixture_campaign("excluding.yaml", "later", "first", "'beta,gamma'")
    (d,) = check(tmp_path, text, env)
    assert "DRPC_TEST_PIPELINES_DIR" not in os.environ
    assert d.severity == "error" and d.path == "stages[1].subset"
    assert "subset 'first' holds no task" in d.message and "empty quantum graph" in d.message
    (d,) = check(tmp_path, text, {})
    assert d.severity == "warning" and "DRPC_TEST_PIPELINES_DIR is not set" in d.message


def test_ranges(tmp_path: Path, real_env: dict[str, str]) -> None:
    ok = fixture_campaign("small.yaml", "alpha..gamma", "beta..", "..beta")
    assert check(tmp_path, ok, {}) == []
    bad = fixture_campaign("small.yaml", "alpha..omega", "later..gamma", "'alpha,beta..gamma'")
    diags = check(tmp_path, bad, {})
    assert [d.path for d in diags] == ["stages[0].subset", "stages[1].subset", "stages[2].subset"]
    assert "the end of the range 'alpha..omega', 'omega', is not a task label" in diags[0].message
    assert "(a labeled subset; a range runs between task labels)" in diags[1].message
    assert "mixes a list (a,b) and a range (a..b)" in diags[2].message


def test_empty_label_in_a_list(tmp_path: Path, real_env: dict[str, str]) -> None:
    (d,) = check(tmp_path, fixture_campaign("small.yaml", "'alpha,,beta'", "alpha", "beta"), {})
    assert "holds an empty label" in d.message


def test_pipeline_parsed_once_per_call(tmp_path: Path, real_env: dict[str, str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from lsst.pipe.base import Pipeline

    calls: list[object] = []
    real = Pipeline.from_uri.__func__  # type: ignore[attr-defined]

    def counting(cls: type, uri: object) -> object:
        calls.append(uri)
        return real(cls, uri)

    monkeypatch.setattr(Pipeline, "from_uri", classmethod(counting))
    text = fixture_campaign("small.yaml", "first", "nope", "later")
    assert len(check(tmp_path, text, {})) == 1
    assert len(calls) == 1


def test_drpc_validate_check_pipeline(tmp_path: Path, real_env: dict[str, str]) -> None:
    """`drpc validate --check-pipeline`: a real subset passes, an unknown one is exit 1 at its
    position; without the flag the pipeline is not read."""
    import subprocess

    from .helpers import ROOT

    env = {**os.environ, **real_env}
    good = write(tmp_path, MINIMAL, "good.yaml")
    text, line = with_stage("step2c-recalibrate-healpix")
    bad = write(tmp_path, text, "bad.yaml")

    def validate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "compiler", "validate", *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120)

    assert validate("--check-pipeline", str(good)).returncode == 0
    out = validate("--check-pipeline", str(bad))
    row, col = position_of(text, line, "step2c")
    assert out.returncode == 1 and f"{bad}:{row}:{col}: error: stages[1].subset: " in out.stderr
    assert validate(str(bad)).returncode == 0


def test_task_override_of_a_task_outside_the_subset(tmp_path: Path, real_env: dict[str, str]) -> None:
    """`stages[].tasks` names task labels of the stage's subset: one elsewhere is reported at
    its key, with the subset's tasks; one inside passes."""
    good = RC2_STAGES.replace("runs_at: central}", "runs_at: central, tasks: {fgcmFitCycle: {request_memory_mb: 1000}}}")
    text = replace_line(MINIMAL, RC2_STAGES, good)
    assert check(tmp_path, text, real_env) == []
    bad = RC2_STAGES.replace("runs_at: central}", "runs_at: central, tasks: {isr: {request_memory_mb: 1000}}}")
    text = replace_line(MINIMAL, RC2_STAGES, bad)
    (d,) = check(tmp_path, text, real_env)
    assert d.severity == "error" and d.path == "stages[1].tasks.isr"
    assert d.position is not None and (d.position.line, d.position.column) == position_of(text, bad, "isr")
    assert "'isr' is not a task of the stage's subset 'fgcm'" in d.message
    assert d.hint is not None and "fgcmFitCycle" in d.hint


@pytest.mark.parametrize("campaign", ["3x2.yaml", "dr1.yaml"])
def test_example_campaigns_pass_against_their_pinned_pipelines(real_env: dict[str, str],
                                                               campaign: str) -> None:
    from tests.helpers import CAMPAIGNS

    loaded = load_campaign(CAMPAIGNS / campaign)
    spec, _ = validate_loaded(loaded)
    assert pipeline_problems(spec, loaded, environ=real_env) == []


def test_drpc_init_starter_campaign_passes_the_pinned_pipeline(tmp_path: Path,
                                                               real_env: dict[str, str]) -> None:
    """What `drpc init` writes names subsets and dataset types that exist in LSSTCam/DRP.yaml
    at the stack it pins (lsst-pipe-base parses the vendored pipelines)."""
    import subprocess

    env = {**os.environ, **real_env}

    def drpc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "compiler", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    assert drpc("init", "c.yaml").returncode == 0
    checked = drpc("validate", "--strict", "--check-pipeline", "c.yaml")
    assert checked.returncode == 0, checked.stderr
