"""What the file system refuses is the user's problem, said clearly: exit 2, never "a bug in drpc".

Disk full and a read-only parent are simulated at the system call drpc makes (these tests may
run as root, whom permissions do not stop); a parent that is a file is real (issue 15).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from compiler.cli import cli
from tests.helpers import CAMPAIGNS

THREE = str(CAMPAIGNS / "3x2.yaml")


def compile_into(out: Path) -> Result:
    return CliRunner().invoke(cli, ["compile", THREE, "-o", str(out)])


def contents(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _user_error(result: Result, *expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert "bug in drpc" not in result.output and "Traceback" not in result.output
    for text in expected:
        assert text in result.output, result.output


def test_disk_full_while_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    assert compile_into(out).exit_code == 0
    (out / "plan.md").write_text("edited\n")
    before = contents(out)
    real = Path.write_bytes

    def full(self: Path, data: Any) -> int:
        if tmp_path in self.parents:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    result = compile_into(out)
    _user_error(result, f"cannot write {out}: No space left on device", "is left as it was",
                "free some space")
    assert contents(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("existed", [False, True])
def test_read_only_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existed: bool) -> None:
    parent = tmp_path / "ro"
    out = parent / "out"
    if existed:
        assert compile_into(out).exit_code == 0
        (out / "plan.md").write_text("edited\n")
    else:
        parent.mkdir()
    before = contents(parent)
    real_open, real_mkdir = os.open, os.mkdir

    def refuse(path: Any) -> None:
        if Path(path).parent == parent:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    def ro_open(path: Any, *args: Any, **kwargs: Any) -> int:
        refuse(path)
        return real_open(path, *args, **kwargs)

    def ro_mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        refuse(path)
        real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", ro_open)
    monkeypatch.setattr(os, "mkdir", ro_mkdir)
    result = compile_into(out)
    _user_error(result, "Read-only file system", "OUT's parent folder must be writable")
    monkeypatch.undo()
    assert contents(parent) == before and out.exists() == existed


def test_a_parent_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine\n")
    result = compile_into(tmp_path / "notes.txt" / "out")
    _user_error(result, f"{tmp_path / 'notes.txt'} is not a folder, so it cannot hold")
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def test_out_a_file(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("mine\n")
    _user_error(compile_into(tmp_path / "out"), "is a file")
    assert (tmp_path / "out").read_text() == "mine\n"
