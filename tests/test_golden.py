"""Golden trees: the compiled examples, byte for byte (datamodel-code-generator style).

On a mismatch the test prints a unified diff; `DRPC_UPDATE_GOLDEN=1 pytest tests/test_golden.py`
rewrites the golden trees after a deliberate change (review the git diff).
"""

from __future__ import annotations

import difflib
import os
import shutil
from pathlib import Path

import pytest

from compiler.pipeline import compile_campaign
from tests.helpers import CAMPAIGNS

GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = sorted(p.name for p in CAMPAIGNS.glob("*.yaml"))


@pytest.mark.parametrize("campaign", EXAMPLES)
def test_golden_tree(campaign: str) -> None:
    files = compile_campaign(CAMPAIGNS / campaign).files
    root = GOLDEN / Path(campaign).stem
    if os.environ.get("DRPC_UPDATE_GOLDEN") == "1":
        shutil.rmtree(root, ignore_errors=True)
        for rel, content in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(content)
    expected = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert sorted(files) == sorted(expected), "file list differs from the golden tree"
    diffs = []
    for rel in sorted(files):
        if files[rel] != expected[rel]:
            diffs.extend(difflib.unified_diff(expected[rel].decode().splitlines(True),
                                              files[rel].decode().splitlines(True), f"golden/{rel}", rel))
    assert not diffs, "".join(diffs[:200])
