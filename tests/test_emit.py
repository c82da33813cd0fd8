"""The output directory: atomic writes, manifest, stale-file removal, refusal, no rewrites, determinism."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.emit import write_tree
from compiler.errors import OutputError, UsageError
from compiler.pipeline import compile_campaign
from tests.helpers import CAMPAIGNS, ROOT, compile_data, dump_yaml, example_data


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_manifest_lists_every_file_with_sha256(tmp_path: Path) -> None:
    compiled = compile_campaign(CAMPAIGNS / "3x2.yaml")
    out = tmp_path / "out"
    write_tree(out, compiled.files)
    manifest = json.loads((out / "manifest.json").read_text())
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest
    spec_sha = hashlib.sha256((CAMPAIGNS / "3x2.yaml").read_bytes()).hexdigest()
    assert manifest["spec"] == {"file": "3x2.yaml", "sha256": spec_sha}
    assert manifest["drpc_version"] == compiled.plan.drpc_version
    assert set(manifest["inputs"]) == {"3x2.yaml", "sites/usdf.yaml", "sites/frdf.yaml", "sites/ukdf-lancs.yaml"}


def test_every_generated_file_has_a_provenance_header(tmp_path: Path) -> None:
    compiled = compile_campaign(CAMPAIGNS / "dr1.yaml")
    sha = compiled.plan.spec_sha256
    for rel, content in compiled.files.items():
        if rel.endswith(".json"):
            continue  # JSON has no comments; manifest.json carries the provenance itself
        head = content.decode()[:600]
        assert "generated - do not edit" in head and sha not in content.decode() and "dr1.yaml" in head, rel
        assert b"\r\n" not in content and content.endswith(b"\n"), rel


def test_recompile_rewrites_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    files = compile_campaign(CAMPAIGNS / "3x2.yaml").files
    write_tree(out, files)
    before = snapshot(out)
    cmp = write_tree(out, compile_campaign(CAMPAIGNS / "3x2.yaml").files)
    assert cmp.up_to_date and snapshot(out) == before


def test_changed_and_stale_files_and_foreign_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    data = example_data("3x2.yaml")
    write_tree(out, compile_data(tmp_path, data, render=True).files)
    (out / "NOTES.md").write_text("mine\n")
    (out / "sites" / "usdf" / "local.txt").write_text("mine too\n")
    before = snapshot(out)
    # drop the last stage: its submit files become stale and must go
    last = data["stages"][-1]["name"]
    data["stages"] = data["stages"][:-1]
    for d in data["datasets"]:
        d["consumed_by"] = [c for c in d.get("consumed_by", []) if c != last]
    cmp = write_tree(out, compile_data(tmp_path, data, render=True).files)
    after = snapshot(out)
    gone = f"sites/usdf/bps/{len(data['stages']) + 1:02d}-{last}.yaml"
    assert gone in cmp.extra and not (out / gone).exists()
    assert (out / "NOTES.md").read_text() == "mine\n" and after["NOTES.md"] == before["NOTES.md"]
    assert after["sites/usdf/local.txt"] == before["sites/usdf/local.txt"]
    assert after["manifest.json"] != before["manifest.json"]


def test_refuses_foreign_nonempty_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("precious\n")
    with pytest.raises(UsageError, match="no drpc manifest"):
        write_tree(out, compile_campaign(CAMPAIGNS / "3x2.yaml").files)
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]


def test_a_file_drpc_did_not_write_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "out"
    data = example_data("3x2.yaml")
    write_tree(out, compile_data(tmp_path, data, render=True).files)
    # the user's file sits where the next compile adds one (a new stage's submit file)
    data["stages"].append({"name": "extra", "subset": "step7", "runs_at": "central", "select": "all"})
    files = compile_data(tmp_path, data, render=True).files
    new = sorted(set(files) - set(json.loads((out / "manifest.json").read_text())["files"])
                 - {"manifest.json"})
    assert new and new[0].endswith("-extra.yaml"), new
    (out / new[0]).write_text("mine\n")
    before = snapshot(out)
    with pytest.raises(OutputError, match="drpc did not write .* drpc never overwrites them"):
        write_tree(out, files)
    assert snapshot(out) == before and (out / new[0]).read_text() == "mine\n"


def test_failure_leaves_output_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    data = example_data("3x2.yaml")
    write_tree(out, compile_data(tmp_path, data, render=True).files)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    data["campaign"]["stack"] = "w_2026_01"
    files = compile_data(tmp_path, data, render=True).files

    import compiler.emit_fs as emit_fs

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(out))

    monkeypatch.setattr(emit_fs, "swap", boom)
    with pytest.raises(OutputError, match="No space left on device.*left as it was"):
        write_tree(out, files)
    monkeypatch.undo()
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    # neither the unfinished tree nor the lock file stays beside OUT
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


def test_invalid_campaign_writes_nothing(tmp_path: Path) -> None:
    data = example_data("3x2.yaml")
    data["campaign"]["central_site"] = "nowhere"
    path = dump_yaml(data, tmp_path / "bad.yaml")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "compiler", "compile", str(path), "-o", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and not out.exists()
    assert "unknown site 'nowhere'" in result.stderr and "Traceback" not in result.stderr


def _tree_digest(out: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(out.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(out).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("campaign", ["3x2.yaml", "dr1.yaml"])
def test_byte_identical_across_hash_seeds(tmp_path: Path, campaign: str) -> None:
    digests = set()
    for seed in ("0", "1", "12345"):
        out = tmp_path / f"out-{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "compiler", "compile", str(CAMPAIGNS / campaign), "-o", str(out)],
                       check=True, capture_output=True, env=env, cwd=ROOT)
        digests.add(_tree_digest(out))
    assert len(digests) == 1


def test_site_option_writes_only_that_site(tmp_path: Path) -> None:
    compiled = compile_campaign(CAMPAIGNS / "3x2.yaml", site="frdf")
    assert all(p.startswith("sites/frdf/") or p == "manifest.json" for p in compiled.files)
    assert json.loads(compiled.files["manifest.json"])["site"] == "frdf"
