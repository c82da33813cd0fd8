"""A compile killed at any point loses nothing: the next compile restores or removes what it left.

The kills are real (SIGKILL, so no cleanup runs): a child process runs `drpc compile` with a
hook at the point named, which kills the process there (issue 15).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, dump_yaml, example_data

KILLER = r"""
import os, shutil, signal, sys
from pathlib import Path
import compiler.emit_fs as fs

point = sys.argv[1]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if point == "between-renames":  # the two-rename swap, where renameat2 is missing
    fs.exchange = lambda a, b: False
    real_rename = os.rename
    def rename(src, dst, *args, **kwargs):
        if ".drpc-new-" in os.fspath(src):
            die()
        return real_rename(src, dst, *args, **kwargs)
    os.rename = rename
elif point == "building":  # half the new tree written
    real_write = Path.write_bytes
    def write_bytes(self, data):
        if "sites" in self.parts:
            die()
        return real_write(self, data)
    Path.write_bytes = write_bytes
elif point == "after-exchange":  # swapped, the previous tree not yet removed
    real_rmtree = shutil.rmtree
    def rmtree(path, *args, **kwargs):
        if ".drpc-new-" in os.fspath(path):
            die()
        return real_rmtree(path, *args, **kwargs)
    shutil.rmtree = rmtree

from compiler.cli import main
sys.argv = ["drpc", *sys.argv[2:]]
main()
"""


def drpc(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def killed_at(point: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", KILLER, point, *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def beside(out: Path) -> list[str]:
    """What drpc keeps next to OUT (nothing, once a compile has finished)."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def contents(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    """A compiled tree with a file of the user's, and the campaign changed since."""
    data = example_data("3x2.yaml")
    campaign = dump_yaml(data, tmp_path / "campaign.yaml")
    out = tmp_path / "out"
    assert drpc("compile", campaign, "-o", out).returncode == 0
    (out / "NOTES.md").write_text("mine\n")
    data["sites"]["frdf"]["ingestd"]["namespace"] = "ingest-two"
    dump_yaml(data, campaign)
    return campaign, out, contents(out)


def test_kill_between_the_renames_of_the_swap_restores_the_tree(
        tree: tuple[Path, Path, dict[str, bytes]]) -> None:
    campaign, out, before = tree
    killed = killed_at("between-renames", "compile", campaign, "-o", out)
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists()
    left = beside(out)
    assert [n for n in left if ".drpc-old-" in n] and [n for n in left if ".drpc-new-" in n], left
    check = drpc("check", campaign, "-o", out)  # reads only: restores nothing, but says so
    assert check.returncode == 3 and "the next `drpc compile` puts it back" in check.stderr
    assert not out.exists()
    result = drpc("compile", campaign, "-o", out)
    assert result.returncode == 0, result.stderr
    assert "restored" in result.stderr and "an interrupted compile had moved aside" in result.stderr
    assert (out / "NOTES.md").read_text() == "mine\n"
    assert drpc("check", campaign, "-o", out).returncode == 0
    assert beside(out) == []
    assert contents(out).keys() == before.keys()


def test_kill_while_building_leaves_the_tree_and_the_next_compile_cleans_up(
        tree: tuple[Path, Path, dict[str, bytes]]) -> None:
    campaign, out, before = tree
    killed = killed_at("building", "compile", campaign, "-o", out)
    assert killed.returncode == -signal.SIGKILL
    assert contents(out) == before
    assert [n for n in beside(out) if ".drpc-new-" in n]
    result = drpc("compile", campaign, "-o", out)
    assert result.returncode == 0, result.stderr
    assert "left behind by an interrupted compile" in result.stderr
    assert beside(out) == [] and (out / "NOTES.md").read_text() == "mine\n"
    assert drpc("check", campaign, "-o", out).returncode == 0


def test_kill_after_the_exchange_leaves_the_new_tree(
        tree: tuple[Path, Path, dict[str, bytes]]) -> None:
    campaign, out, _ = tree
    killed = killed_at("after-exchange", "compile", campaign, "-o", out)
    assert killed.returncode == -signal.SIGKILL
    assert drpc("check", campaign, "-o", out).returncode == 0  # OUT was never missing
    assert [n for n in beside(out) if ".drpc-new-" in n]
    result = drpc("compile", campaign, "-o", out)
    assert result.returncode == 0 and ", 0 written," in result.stderr
    assert "left behind by an interrupted compile" in result.stderr
    assert beside(out) == [] and (out / "NOTES.md").read_text() == "mine\n"


def test_leftovers_of_earlier_drpc_versions_go_and_look_alikes_stay(tmp_path: Path) -> None:
    campaign = dump_yaml(example_data("3x2.yaml"), tmp_path / "campaign.yaml")
    out = tmp_path / "out"
    assert drpc("compile", campaign, "-o", out).returncode == 0
    ours = [".out.drpc-k3j_x9a0", ".out.drpc-old-q1w2e3r4"]  # tempfile.mkdtemp's names
    theirs = [".out.drpc-notes", ".outer.drpc-new-1-abcd", ".out.drpc-old-keep"]
    for name in ours + theirs:
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text("x\n")
    result = drpc("compile", campaign, "-o", out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == sorted(theirs)


def test_several_moved_aside_trees_and_no_tree_is_refused(tmp_path: Path) -> None:
    campaign = dump_yaml(example_data("3x2.yaml"), tmp_path / "campaign.yaml")
    out = tmp_path / "out"
    for name in (".out.drpc-old-1-aaaa", ".out.drpc-old-2-bbbb"):
        (tmp_path / name).mkdir()
    result = drpc("compile", campaign, "-o", out)
    assert result.returncode == 2 and "rename the one to keep" in result.stderr
    assert not out.exists() and "bug in drpc" not in result.stderr


def test_kill_9_at_random_moments_of_a_dr2_scale_compile_leaves_old_or_new(
        tmp_path: Path) -> None:
    """A DR2-scale campaign (benchmarks/speed.py's: 14,121 tracts, ~700 files) compiled over its
    previous tree, killed with SIGKILL at seeded random moments of its run: OUT is always the
    old tree or the new one, whole, and the next compile finishes the new one."""
    import os
    import random
    import time

    from benchmarks.speed import generate_campaigns

    campaign = generate_campaigns(tmp_path / "c")["dr2"]
    out = tmp_path / "out"
    assert drpc("compile", campaign, "-o", out).returncode == 0
    old = contents(out)
    text = campaign.read_text()
    campaign.write_text(text.replace("request_memory_mb: 8000", "request_memory_mb: 9000", 1))
    assert campaign.read_text() != text
    started = time.monotonic()
    assert drpc("compile", campaign, "-o", out).returncode == 0
    full = time.monotonic() - started
    new = contents(out)
    assert new != old
    changed = text.replace("request_memory_mb: 8000", "request_memory_mb: 9000", 1)
    rng = random.Random(20261202)
    for n in range(8):
        # every round compiles the other tree over the one there: old <-> new
        campaign.write_text(text if n % 2 == 0 else changed)
        before, after = (new, old) if n % 2 == 0 else (old, new)
        assert contents(out) == before
        proc = subprocess.Popen([sys.executable, "-m", "compiler", "compile", str(campaign), "-o",
                                 str(out)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, full))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        now = contents(out)
        assert now in (before, after), f"round {n}: OUT is neither tree"
        result = drpc("compile", campaign, "-o", out)
        assert result.returncode == 0, result.stderr
        assert contents(out) == after and beside(out) == []
