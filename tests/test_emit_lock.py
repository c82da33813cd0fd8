"""Compiles into the same OUT run one after the other: a flock beside OUT serialises them.

Before the lock, the loser of two compiles into a new OUT died with exit 4 ("Directory not
empty ... a bug in drpc") (issue 15).
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import compiler.emit_fs as emit_fs
from compiler.emit import write_tree
from compiler.errors import OutputError
from compiler.pipeline import compile_campaign
from tests.helpers import CAMPAIGNS, ROOT

THREE = CAMPAIGNS / "3x2.yaml"


def hold_lock(out: Path, pid: int = 4242) -> int:
    """Take the lock of OUT as another compile would; close the descriptor to release it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(emit_fs.lock_path(out), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.pwrite(fd, f"{pid}\n".encode(), 0)
    return fd


def test_a_compile_waits_for_the_lock_and_gives_up_clearly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = compile_campaign(THREE).files
    out = tmp_path / "out"
    fd = hold_lock(out)
    monkeypatch.setattr(emit_fs, "LOCK_WAIT_SECONDS", 0.3)
    with pytest.raises(OutputError, match=r"another drpc compile into .*out \(pid 4242\) still "
                                          r"holds .*\.out\.drpc-lock after 0\.3 s"):
        write_tree(out, files)
    assert not out.exists()
    monkeypatch.setattr(emit_fs, "LOCK_WAIT_SECONDS", 60.0)
    notes: list[str] = []
    release = threading.Timer(0.5, os.close, [fd])
    release.start()
    started = time.monotonic()
    write_tree(out, files, note=notes.append)
    assert time.monotonic() - started >= 0.4
    assert notes[0].startswith("waiting for another drpc compile into") and "(pid 4242)" in notes[0]
    assert (out / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the lock file is gone too


def test_a_lock_file_left_by_a_killed_compile_does_not_block(tmp_path: Path) -> None:
    out = tmp_path / "out"
    emit_fs.lock_path(out).write_text("99999999\n")  # nobody holds it: its process died
    write_tree(out, compile_campaign(THREE).files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_two_compiles_into_a_new_directory_both_succeed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    fd = hold_lock(out)  # both start while a third compile holds OUT, so they do meet
    logs = [tmp_path / f"compile-{i}.log" for i in range(2)]
    procs = []
    for log in logs:
        with log.open("w") as fh:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "compiler", "compile", str(THREE), "-o", str(out)],
                stdout=subprocess.DEVNULL, stderr=fh, cwd=ROOT))
    try:
        deadline = time.monotonic() + 60
        while not all("waiting for another drpc compile" in log.read_text() for log in logs):
            assert time.monotonic() < deadline, [log.read_text() for log in logs]
            assert all(p.poll() is None for p in procs), [log.read_text() for log in logs]
            time.sleep(0.05)
    finally:
        os.close(fd)
        codes = [p.wait(timeout=120) for p in procs]
    stderr = [log.read_text() for log in logs]
    assert codes == [0, 0], stderr
    summaries = sorted(text.splitlines()[-1].split(": ", 1)[1] for text in stderr)
    # one wrote the tree, the other found it up to date
    assert re.fullmatch(r"(\d+) files, 0 written, 0 removed, \1 unchanged", summaries[0]), summaries
    assert re.fullmatch(r"(\d+) files, \1 written, 0 removed, 0 unchanged", summaries[1]), summaries
    check = subprocess.run([sys.executable, "-m", "compiler", "check", str(THREE), "-o", str(out)],
                           capture_output=True, text=True, cwd=ROOT)
    assert check.returncode == 0, check.stdout
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
