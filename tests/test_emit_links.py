"""drpc never follows a link out of OUT, and a forged manifest cannot send it there (issue 15).

A generated folder or file replaced by a symbolic link is refused with its path (compile,
check and diff); OUT itself a link is written in its target; a link of the user's elsewhere in
OUT is kept as a link.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import CAMPAIGNS, ROOT

THREE = str(CAMPAIGNS / "3x2.yaml")


def drpc(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def contents(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    tree = tmp_path / "out"
    assert drpc("compile", THREE, "-o", tree).returncode == 0
    return tree


def _outside(tmp_path: Path) -> Path:
    victim = tmp_path / "elsewhere"
    victim.mkdir()
    (victim / "precious.txt").write_text("precious\n")
    return victim


def _refused(result: subprocess.CompletedProcess[str], path: Path) -> None:
    assert result.returncode == 2, result.stderr
    assert f"{path} is a symbolic link" in result.stderr and "bug in drpc" not in result.stderr


def test_a_generated_folder_replaced_by_a_link_is_refused(tmp_path: Path, out: Path) -> None:
    victim = _outside(tmp_path)
    (out / "sites/frdf/bps").rename(victim / "bps")
    (out / "sites/frdf/bps").symlink_to(victim / "bps")
    (victim / "bps" / "01-step1.yaml").write_text("edited\n")
    before = contents(victim)
    for command in ("compile", "check", "diff"):
        _refused(drpc(command, THREE, "-o", out), out / "sites/frdf/bps")
    _refused(drpc("compile", THREE, "-o", out, "--site", "frdf"), out / "sites/frdf/bps")
    assert contents(victim) == before
    assert (out / "sites/frdf/bps").is_symlink()


def test_a_generated_file_replaced_by_a_link_is_refused(tmp_path: Path, out: Path) -> None:
    victim = _outside(tmp_path)
    (out / "RUNBOOK.md").unlink()
    (out / "RUNBOOK.md").symlink_to(victim / "precious.txt")
    _refused(drpc("compile", THREE, "-o", out), out / "RUNBOOK.md")
    _refused(drpc("check", THREE, "-o", out), out / "RUNBOOK.md")
    assert (victim / "precious.txt").read_text() == "precious\n"


def test_a_folder_where_a_file_belongs_is_refused(out: Path) -> None:
    (out / "plan.md").unlink()
    (out / "plan.md").mkdir()
    (out / "plan.md" / "mine.txt").write_text("mine\n")
    result = drpc("compile", THREE, "-o", out)
    assert result.returncode == 2 and "is a folder where drpc writes a file" in result.stderr
    assert (out / "plan.md" / "mine.txt").read_text() == "mine\n"


def test_out_a_link_is_written_in_its_target(tmp_path: Path) -> None:
    target = tmp_path / "real"
    link = tmp_path / "out"
    assert drpc("compile", THREE, "-o", target).returncode == 0
    (target / "NOTES.md").write_text("mine\n")
    link.symlink_to(target)
    (target / "plan.md").write_text("edited\n")
    result = drpc("compile", THREE, "-o", link)
    assert result.returncode == 0, result.stderr
    assert "is a symbolic link: writing into its target" in result.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert (target / "plan.md").read_text() != "edited\n"
    assert (target / "NOTES.md").read_text() == "mine\n"
    assert drpc("check", THREE, "-o", link).returncode == 0
    assert drpc("check", THREE, "-o", target).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "real"]


def test_a_link_of_the_users_is_kept_and_not_followed(tmp_path: Path, out: Path) -> None:
    victim = _outside(tmp_path)
    (out / "data").symlink_to(victim)
    (out / "sites/usdf/logs").symlink_to(victim)
    (out / "plan.md").write_text("edited\n")
    assert drpc("compile", THREE, "-o", out).returncode == 0
    assert os.readlink(out / "data") == str(victim) and os.readlink(out / "sites/usdf/logs") == str(victim)
    assert contents(victim) == {"precious.txt": b"precious\n"}


@pytest.mark.parametrize("forged", ["../victim", "/tmp/victim", "sites/../../victim"])
def test_a_forged_manifest_cannot_point_outside(tmp_path: Path, out: Path, forged: str) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    doc = json.loads((out / "manifest.json").read_text())
    doc["files"][forged] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(doc))
    for command in ("compile", "check", "diff"):
        result = drpc(command, THREE, "-o", out)
        assert result.returncode == 2, (command, result.stderr)
        assert f"lists {forged!r}, which is not a file inside" in result.stderr
        assert "bug in drpc" not in result.stderr
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("doc", ['{"generator": "drpc", "files": ["a"]}',
                                 '{"generator": "drpc", "files": {"a": 1}}', "[]", "\xff"])
def test_a_manifest_drpc_cannot_have_written_is_refused(out: Path, doc: str) -> None:
    (out / "manifest.json").write_bytes(doc.encode("latin-1"))
    result = drpc("compile", THREE, "-o", out)
    assert result.returncode == 2 and "is not a drpc manifest" in result.stderr


def test_a_forged_manifest_cannot_remove_a_users_file_inside(out: Path) -> None:
    """A manifest naming a file drpc never wrote (here: the user's notes) with some digest: the
    compile that no longer writes it keeps it, because it is not what the manifest recorded."""
    (out / "NOTES.md").write_text("mine\n")
    doc = json.loads((out / "manifest.json").read_text())
    doc["files"]["NOTES.md"] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(doc))
    result = drpc("compile", THREE, "-o", out)
    assert result.returncode == 0, result.stderr
    assert (out / "NOTES.md").read_text() == "mine\n"
    assert f"kept {out / 'NOTES.md'}: drpc wrote it once, but it changed since" in result.stderr
    assert "NOTES.md" not in json.loads((out / "manifest.json").read_text())["files"]


def test_a_file_drpc_wrote_and_no_longer_writes_is_removed(out: Path) -> None:
    """The same manifest entry with the file's true digest: drpc's own leftover, removed."""
    import hashlib

    (out / "old-plan.md").write_text("from an older compile\n")
    doc = json.loads((out / "manifest.json").read_text())
    doc["files"]["old-plan.md"] = hashlib.sha256(b"from an older compile\n").hexdigest()
    (out / "manifest.json").write_text(json.dumps(doc))
    result = drpc("compile", THREE, "-o", out)
    assert result.returncode == 0, result.stderr
    assert not (out / "old-plan.md").exists() and "kept" not in result.stderr
