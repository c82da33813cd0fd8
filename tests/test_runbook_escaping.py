"""Runbooks: spec values reach Markdown escaped and runbook commands quoted (security issue).

Validation refuses these values already; here the plan is forged past validation, as the
last line of defence is the renderer's escaping.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import subprocess
from pathlib import Path

from compiler.pipeline import compile_campaign
from compiler.render import runbook
from tests.helpers import CAMPAIGNS

HOSTILE_REPO = "/sps/repo;touch${IFS}/tmp/PWNED_RB;:"
HOSTILE_TEXT = "<script>alert(1)</script> [click](javascript:alert(1)) `rm -rf /` *bold* | cell"


def forged_runbooks() -> dict[str, str]:
    plan = compile_campaign(CAMPAIGNS / "3x2.yaml", render=False).plan
    sites = tuple(dataclasses.replace(s, butler_repo=HOSTILE_REPO, facility=HOSTILE_TEXT)
                  for s in plan.sites)
    forged = dataclasses.replace(plan, sites=sites, description=HOSTILE_TEXT)
    return {k: v.decode() for k, v in runbook.render(forged).items()}


def code_spans(text: str) -> list[str]:
    return [m.group(2) for m in re.finditer(r"(`+)(.+?)\1", text)]


def test_runbook_commands_keep_the_value_one_word(tmp_path: Path) -> None:
    files = forged_runbooks()
    commands = [c for text in files.values() for c in code_spans(text)
                if c.split(" ", 1)[0] in ("butler", "bps", "kubectl")]
    with_repo = [c for c in commands if "/sps/repo" in c]
    assert with_repo
    for command in with_repo:
        assert HOSTILE_REPO in shlex.split(command), command
    # pasted into bash (with a `butler` that only prints its arguments), nothing is touched
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "butler").write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (stub / "butler").chmod(0o755)
    marker = Path("/tmp/PWNED_RB")
    marker.unlink(missing_ok=True)
    for command in with_repo:
        out = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                             env={"PATH": f"{stub}:/usr/bin:/bin"})
        assert HOSTILE_REPO in out.stdout.splitlines(), command
    assert not marker.exists()


def test_free_text_is_markdown_text() -> None:
    for rel, text in forged_runbooks().items():
        body = text.split("-->", 1)[1]
        assert "<script>" not in body and "](javascript:" not in body, rel
        assert "`rm -rf /`" not in body, rel  # no code span made of the value
        for line in body.splitlines():
            if line.startswith("| ") and "alert" in line:  # a table row keeps its cells
                header = next(h for h in body.splitlines() if h.startswith("| site"))
                assert line.count(" | ") - line.count("\\|") >= header.count(" | ") - 1, line
