"""Lint and types are part of the suite: ruff (the rules pyproject.toml selects) and mypy
--strict with the pydantic plugin over the compiler and the rehearsal package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

BIN = Path(sys.executable).parent


def run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / tool), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_ruff() -> None:
    out = run("ruff", "check", "--no-cache", "compiler", "drpc_rehearsal", "tests", "benchmarks")
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_strict() -> None:
    out = run("mypy", "--no-incremental", "compiler", "drpc_rehearsal")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Success: no issues found" in out.stdout
