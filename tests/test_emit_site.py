"""`--site` into a tree of the whole campaign: that site's part is updated, the rest is kept.

The manifest keeps listing every file of the tree, so a later full compile, check and diff
agree with what is on disk (issue 15).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import CAMPAIGNS, ROOT, dump_yaml, example_data

THREE = str(CAMPAIGNS / "3x2.yaml")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def manifest(out: Path) -> dict[str, Any]:
    doc = json.loads((out / "manifest.json").read_text())
    assert isinstance(doc, dict)
    return doc


def full_tree(tmp_path: Path, campaign: str | Path = THREE) -> Path:
    out = tmp_path / "out"
    result = run("compile", campaign, "-o", out)
    assert result.returncode == 0, result.stderr
    return out


def test_site_compile_of_an_unchanged_campaign_changes_nothing(tmp_path: Path) -> None:
    out = full_tree(tmp_path)
    (out / "sites" / "usdf" / "local.txt").write_text("mine\n")
    before = snapshot(out)
    result = run("compile", THREE, "-o", out, "--site", "frdf")
    assert result.returncode == 0, result.stderr
    assert ", 0 written, 0 removed," in result.stderr and "of the rest of the tree kept" in result.stderr
    assert snapshot(out) == before
    for command in ("check", "diff"):
        for site in ([], ["--site", "frdf"]):
            checked = run(command, THREE, "-o", out, *site)
            assert checked.returncode == 0, (command, site, checked.stdout, checked.stderr)
            assert "extra" not in checked.stdout and not checked.stdout.startswith("-"), checked.stdout


def test_site_compile_updates_only_that_site_and_keeps_the_manifest_whole(tmp_path: Path) -> None:
    data = example_data("3x2.yaml")
    changed = dump_yaml(data, tmp_path / "campaign.yaml")
    out = full_tree(tmp_path, changed)
    full = manifest(out)
    before = snapshot(out)
    data["sites"]["frdf"]["ingestd"]["namespace"] = "ingest-two"
    dump_yaml(data, changed)
    check_site = run("check", changed, "-o", out, "--site", "frdf")
    assert check_site.returncode == 3
    assert "extra:" not in check_site.stdout and "sites/frdf/ingestd/configmap.yaml" in check_site.stdout
    assert "--site frdf" in check_site.stderr
    result = run("compile", changed, "-o", out, "--site", "frdf")
    assert result.returncode == 0, result.stderr
    assert " 0 removed," in result.stderr
    assert "the rest of" in result.stderr and "another version of the campaign file" in result.stderr
    after = snapshot(out)
    # every file of the tree is still there; outside sites/frdf/ not one was rewritten
    assert set(after) == set(before)
    for rel in before:
        if not rel.startswith("sites/frdf/") and rel != "manifest.json":
            assert after[rel] == before[rel], rel
    assert after["sites/frdf/ingestd/configmap.yaml"] != before["sites/frdf/ingestd/configmap.yaml"]
    # the manifest lists the whole tree, each file with the digest of what is on disk
    doc = manifest(out)
    assert doc["site"] is None and set(doc["files"]) == set(full["files"])
    for rel, digest in doc["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest, rel
    assert doc["spec"] == full["spec"]
    assert doc["site_updates"]["frdf"]["spec"]["sha256"] != full["spec"]["sha256"]
    # the site is up to date, the whole tree is not: the campaign runbook names frdf's namespace
    assert run("check", changed, "-o", out, "--site", "frdf").returncode == 0
    check = run("check", changed, "-o", out)
    assert check.returncode == 3
    assert check.stdout.splitlines() == ["stale: RUNBOOK.md", "stale: manifest.json"]
    # a full compile brings the rest up to date and writes a plain manifest again
    assert run("compile", changed, "-o", out).returncode == 0
    assert "site_updates" not in manifest(out)
    assert run("check", changed, "-o", out).returncode == 0


def test_site_compile_removes_the_site_files_it_no_longer_writes(tmp_path: Path) -> None:
    data = example_data("3x2.yaml")
    changed = dump_yaml(data, tmp_path / "campaign.yaml")
    out = full_tree(tmp_path, changed)
    gone = [s["name"] for s in data["stages"]].index("step6")
    data["stages"] = [s for s in data["stages"] if s["name"] != "step6"]
    for d in data["datasets"]:
        d["consumed_by"] = [c for c in d.get("consumed_by", []) if c != "step6"]
    data["datasets"] = [d for d in data["datasets"] if d.get("produced_by") != "step6"]
    dump_yaml(data, changed)
    result = run("compile", changed, "-o", out, "--site", "frdf")
    assert result.returncode == 0, result.stderr
    submit = f"bps/{gone + 1:02d}-step6.yaml"
    assert not (out / "sites/frdf" / submit).exists()
    assert (out / "sites/usdf" / submit).is_file() and (out / "plan.md").is_file()
    doc = manifest(out)
    assert f"sites/frdf/{submit}" not in doc["files"] and f"sites/usdf/{submit}" in doc["files"]


def test_site_compile_into_a_new_directory_writes_only_that_site(tmp_path: Path) -> None:
    out = tmp_path / "frdf-only"
    assert run("compile", THREE, "-o", out, "--site", "frdf").returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "sites"]
    assert [p.name for p in (out / "sites").iterdir()] == ["frdf"]
    assert manifest(out)["site"] == "frdf"
    # the same site again is an ordinary recompile; a full compile replaces the partial tree
    assert ", 0 written, 0 removed," in run("compile", THREE, "-o", out, "--site", "frdf").stderr
    assert run("compile", THREE, "-o", out).returncode == 0
    assert manifest(out)["site"] is None and (out / "sites/usdf").is_dir()


def test_mixing_partial_trees_or_campaigns_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "frdf-only"
    assert run("compile", THREE, "-o", out, "--site", "frdf").returncode == 0
    before = snapshot(out)
    other = run("compile", THREE, "-o", out, "--site", "usdf")
    assert other.returncode == 2 and "holds only site frdf's part" in other.stderr
    assert "bug in drpc" not in other.stderr
    full = tmp_path / "full"
    assert run("compile", THREE, "-o", full).returncode == 0
    dr1 = run("compile", CAMPAIGNS / "dr1.yaml", "-o", full, "--site", "frdf")
    assert dr1.returncode == 2 and "would mix two campaigns" in dr1.stderr
    assert snapshot(out) == before
