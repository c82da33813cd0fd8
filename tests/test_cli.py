"""The command line: exit codes, output formats, and never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler import __version__
from compiler.cli import cli
from tests.helpers import CAMPAIGNS, MINIMAL, ROOT, replace_line, write

THREE = str(CAMPAIGNS / "3x2.yaml")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "compiler", *args], capture_output=True, text=True, cwd=ROOT)


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"drpc {__version__}"


def test_validate_ok_and_invalid(tmp_path: Path) -> None:
    assert run("validate", THREE).returncode == 0
    bad = write(tmp_path, replace_line(MINIMAL, "  central_site: usdf", "  central_site: usdf2"))
    result = run("validate", THREE, str(bad))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{bad}:10:17: error: campaign.central_site: unknown site 'usdf2' (did you mean 'usdf'?)",
        "2 campaign(s): 1 error(s)"]


def test_formats(tmp_path: Path) -> None:
    bad = write(tmp_path, replace_line(MINIMAL, "  central_site: usdf", "  central_site: usdf2"))
    gh = run("validate", "--format", "github", str(bad))
    # machine formats on stdout (CONTRACT rev 2), so `> diags.json` keeps them; summary on stderr
    assert gh.returncode == 1
    assert gh.stdout.strip() == (f"::error file={bad},line=10,col=17,title=campaign.central_site::"
                                 "unknown site 'usdf2' (did you mean 'usdf'?)")
    assert gh.stderr.strip() == "1 campaign(s): 1 error(s)"
    js = run("validate", "--format", "json", str(bad))
    assert json.loads(js.stdout) == [{"severity": "error", "file": str(bad), "line": 10, "column": 17,
                                      "path": "campaign.central_site", "message": "unknown site 'usdf2'",
                                      "hint": "did you mean 'usdf'?"}]


def test_strict_turns_warnings_into_failure(tmp_path: Path) -> None:
    warn = write(tmp_path, replace_line(MINIMAL, "      frdf: [9948, 9949]", "      frdf: [9948]"))
    assert run("validate", str(warn)).returncode == 0
    strict = run("validate", "--strict", str(warn))
    assert strict.returncode == 1 and "warning: sites.usdf.share" in strict.stderr
    assert "--strict fails on warnings" in strict.stderr
    out = tmp_path / "out"
    compiled = run("compile", str(warn), "-o", str(out), "--strict")
    assert compiled.returncode == 1 and not out.exists()
    warnings = sum(": warning: " in line for line in compiled.stderr.splitlines())
    assert warnings >= 1 and compiled.stderr.splitlines()[-1] == (
        f"drpc: error: --strict: {warnings} warning(s) fail the run; nothing was written")


def test_plan_balance_refuses_markdown() -> None:
    result = run("plan", str(CAMPAIGNS / "dr1.yaml"), "--balance", "--format", "markdown")
    assert result.returncode == 2 and result.stdout == ""
    assert "--balance prints YAML" in result.stderr and "--format markdown" in result.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run("compile", THREE).returncode == 2  # missing -o
    assert run("frobnicate").returncode == 2
    result = run("compile", THREE, "-o", str(tmp_path / "o"), "--site", "frfd")
    assert result.returncode == 2 and "did you mean 'frdf'?" in result.stderr
    result = run("explain", THREE, "tract", "banana")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "the tract id must be a whole number, got 'banana'" in result.stderr
    assert "invalid literal" not in result.stderr
    result = run("explain", THREE, "radec", "12", "north")
    assert result.returncode == 2 and "RA and DEC must be numbers, in degrees, got 'north'" in result.stderr
    assert "could not convert" not in result.stderr
    result = run("explain", THREE, "tract", "99999")
    assert result.returncode == 2 and "not in skymap hsc_rings_v1" in result.stderr


def test_missing_file_and_garbage_never_traceback(tmp_path: Path) -> None:
    cases = [tmp_path / "nope.yaml", write(tmp_path, "\x00\x01: [", "bin.yaml"),
             write(tmp_path, "a: *undefined_alias\n", "alias.yaml"), write(tmp_path, "!!python/object:os.system x\n", "tag.yaml")]
    for path in cases:
        result = run("validate", str(path))
        assert result.returncode in (1, 2), (path, result)
        assert "Traceback" not in result.stderr and result.stderr.strip(), path


def test_check_and_diff(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("compile", THREE, "-o", str(out)).returncode == 0
    assert run("check", THREE, "-o", str(out)).returncode == 0
    assert run("diff", THREE, "-o", str(out)).returncode == 0
    target = out / "sites/frdf/bps/01-step1.yaml"
    target.write_text(target.read_text().replace("CC-IN2P3_Rubin_Merge", "CC-IN2P3_Rubin_Himem"))
    (out / "sites/usdf/bps/12-step7.yaml").unlink()
    check = run("check", THREE, "-o", str(out))
    assert check.returncode == 3
    assert check.stdout.splitlines() == ["missing: sites/usdf/bps/12-step7.yaml", "stale: sites/frdf/bps/01-step1.yaml"]
    diff = run("diff", THREE, "-o", str(out))
    assert diff.returncode == 3
    assert "-  queue: \"CC-IN2P3_Rubin_Himem\"\n+  queue: \"CC-IN2P3_Rubin_Merge\"" in diff.stdout
    assert "+++ b/sites/usdf/bps/12-step7.yaml" in diff.stdout
    # check and diff write nothing
    assert not (out / "sites/usdf/bps/12-step7.yaml").exists()


def test_plan_and_explain() -> None:
    table = run("plan", THREE)
    assert table.returncode == 0 and "frdf" in table.stdout and "9948-9949" in table.stdout
    data = json.loads(run("plan", THREE, "--format", "json").stdout)
    assert {s["id"]: s["tracts"] for s in data["sites"]} == {"usdf": 2, "frdf": 2, "ukdf-lancs": 2}
    explained = run("explain", THREE, "tract", "9948")
    assert explained.returncode == 0
    assert "owned by frdf (FRDF (CC-IN2P3)): listed under sky.assignment.tracts.frdf" in explained.stdout
    radec = run("explain", str(CAMPAIGNS / "dr1.yaml"), "radec", "53.1", "-27.5")
    assert radec.returncode == 0
    assert "lies in tract 5063" in radec.stdout and "owned by usdf" in radec.stdout
    assert "also processed at frdf as a cross-check tract" in radec.stdout


def test_schema_command_matches_committed() -> None:
    assert run("schema").stdout == (ROOT / "schema" / "campaign.schema.json").read_text()


def test_internal_error_is_exit_4_without_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import compiler.cli as cli_module

    def crash(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(cli_module, "compile_campaign", crash)
    result = CliRunner().invoke(cli, ["validate", THREE])
    assert result.exit_code == 4
    assert "internal error in 'validate' (ZeroDivisionError: boom)" in result.output
    assert "Traceback" not in result.output
    debug = CliRunner().invoke(cli, ["--debug", "validate", THREE])
    assert debug.exit_code == 4 and "Traceback" in debug.output


def test_a_file_system_error_is_the_users_not_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    import compiler.cli as cli_module

    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", "/somewhere/campaign.yaml")

    monkeypatch.setattr(cli_module, "compile_campaign", refused)
    result = CliRunner().invoke(cli, ["validate", THREE])
    assert result.exit_code == 2
    assert result.output == "drpc: error: Permission denied (/somewhere/campaign.yaml)\n"
