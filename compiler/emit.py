"""The only module that touches the output directory: compare, write atomically, check, diff.

A compile builds the whole new tree in a temporary directory beside OUT (unchanged files and
files drpc did not write are hard-linked in, so their inodes and mtimes stay), then swaps it
into place. Any error before the swap leaves OUT exactly as it was.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import UsageError
from .plan import Plan

MANIFEST = "manifest.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_mode(path: str) -> int:
    return 0o755 if path.endswith(".sh") else 0o644


def build_manifest(plan: Plan, files: dict[str, bytes], site: str | None) -> bytes:
    """Every generated file with its sha256, the spec's sha256 and drpc's version."""
    doc = {
        "generator": "drpc",
        "drpc_version": plan.drpc_version,
        "campaign": plan.campaign,
        "spec": {"file": plan.spec_file, "sha256": plan.spec_sha256},
        "inputs": dict(plan.inputs),
        "site": site,
        "files": {p: sha256(b) for p, b in sorted(files.items())},
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def with_manifest(plan: Plan, files: dict[str, bytes], site: str | None) -> dict[str, bytes]:
    for path in files:
        _check_relative(path)
    return {**files, MANIFEST: build_manifest(plan, files, site)}


def _check_relative(path: str) -> None:
    p = PurePosixPath(path)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise RuntimeError(f"refusing to write outside the output directory: {path!r}")


@dataclass
class TreeState:
    """What an existing OUT holds, as far as drpc is concerned."""

    exists: bool
    manifest_files: set[str] = field(default_factory=set)
    has_manifest: bool = False
    nonempty: bool = False


def read_state(out: Path) -> TreeState:
    if not out.exists():
        return TreeState(exists=False)
    if not out.is_dir():
        raise UsageError(f"{out} exists and is not a directory")
    nonempty = any(out.iterdir())
    mpath = out / MANIFEST
    if not mpath.is_file():
        return TreeState(exists=True, nonempty=nonempty)
    try:
        doc = json.loads(mpath.read_text())
        files = set(doc["files"]) if doc.get("generator") == "drpc" else None
    except (ValueError, KeyError, TypeError):
        files = None
    if files is None:
        raise UsageError(f"{mpath} is not a drpc manifest; refusing to write into {out}")
    for p in files:
        _check_relative(p)
    return TreeState(exists=True, manifest_files=files, has_manifest=True, nonempty=nonempty)


@dataclass
class Comparison:
    missing: list[str]  # to be created
    stale: list[str]  # content differs
    extra: list[str]  # written by an earlier compile, no longer generated
    unchanged: list[str]

    @property
    def up_to_date(self) -> bool:
        return not (self.missing or self.stale or self.extra)


def compare(out: Path, files: dict[str, bytes], state: TreeState) -> Comparison:
    missing, stale, unchanged = [], [], []
    for path, content in sorted(files.items()):
        target = out / path
        if not target.is_file():
            missing.append(path)
        elif target.read_bytes() != content or (os.stat(target).st_mode & 0o777) != file_mode(path):
            stale.append(path)
        else:
            unchanged.append(path)
    extra = sorted(p for p in state.manifest_files if p not in files and (out / p).exists())
    return Comparison(missing, stale, extra, unchanged)


def write_tree(out: Path, files: dict[str, bytes]) -> Comparison:
    """Write `files` (manifest included) into OUT atomically; return what changed."""
    state = read_state(out)
    if state.exists and state.nonempty and not state.has_manifest:
        raise UsageError(f"{out} is not empty and has no drpc manifest; refusing to write into it "
                         "(compile into an empty or new directory)")
    cmp = compare(out, files, state)
    if state.exists and cmp.up_to_date:
        return cmp
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.drpc-", dir=out.parent))
    try:
        if state.exists:
            _carry_over(out, tmp, keep=set(cmp.unchanged), drop=state.manifest_files | set(files))
        for path, content in files.items():
            target = tmp / path
            if target.exists():
                continue  # hard-linked unchanged file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            os.chmod(target, file_mode(path))
        _swap(tmp, out, existed=state.exists)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return cmp


def _carry_over(out: Path, tmp: Path, keep: set[str], drop: set[str]) -> None:
    """Hard-link into tmp the unchanged generated files and everything drpc did not write."""
    for root, dirs, names in os.walk(out):
        rel_root = Path(root).relative_to(out)
        for d in dirs:
            src = Path(root) / d
            if src.is_symlink():
                os.symlink(os.readlink(src), tmp / rel_root / d)
            else:
                (tmp / rel_root / d).mkdir(exist_ok=True)
        dirs[:] = [d for d in dirs if not (Path(root) / d).is_symlink()]
        for name in names:
            rel = (rel_root / name).as_posix()
            src = Path(root) / name
            if rel in drop and rel not in keep:
                continue
            dst = tmp / rel_root / name
            if src.is_symlink():
                os.symlink(os.readlink(src), dst)
            else:
                os.link(src, dst)
    _prune_empty_generated_dirs(tmp, drop)


def _prune_empty_generated_dirs(tmp: Path, generated: set[str]) -> None:
    parents = {str(PurePosixPath(p).parent) for p in generated}
    for rel in sorted(parents, key=lambda p: -p.count("/")):
        d = tmp / rel
        while rel not in ("", ".") and d.is_dir() and not any(d.iterdir()):
            d.rmdir()
            rel = str(PurePosixPath(rel).parent)
            d = tmp / rel


def _swap(tmp: Path, out: Path, existed: bool) -> None:
    os.chmod(tmp, 0o755)
    if not existed:
        os.rename(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.drpc-old-", dir=out.parent))
    os.rmdir(old)
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def unified_diff(out: Path, files: dict[str, bytes], state: TreeState) -> str:
    """A unified diff from what OUT holds to what a fresh compile writes."""
    cmp = compare(out, files, state)
    chunks: list[str] = []
    for path in sorted(cmp.missing + cmp.stale + cmp.extra):
        old = (out / path).read_bytes() if (out / path).is_file() else b""
        new = files.get(path, b"")
        a = old.decode("utf-8", "replace").splitlines(keepends=True)
        b = new.decode("utf-8", "replace").splitlines(keepends=True)
        diff = list(difflib.unified_diff(
            a, b, fromfile=f"a/{path}" if path not in cmp.missing else "/dev/null",
            tofile=f"b/{path}" if path in files else "/dev/null"))
        if not diff and path in cmp.stale:
            diff = [f"--- a/{path}\n", f"+++ b/{path}\n", "@@ file mode changed @@\n"]
        for line in diff:
            chunks.append(line if line.endswith("\n")
                          else line + "\n\\ No newline at end of file\n")
    return "".join(chunks)
