"""The one module that decides what goes into the output directory: compare, write, check, diff.

A compile builds the whole new tree in a temporary directory beside OUT (unchanged files and
files drpc did not write are hard-linked in, so their inodes and mtimes stay), then swaps it
into place; compiler/emit_fs.py holds the lock, the recovery of interrupted compiles and the
swap. Any error before the swap leaves OUT exactly as it was.

A `--site` compile into a tree of the whole campaign replaces only `sites/<site>/`: the
manifest goes on listing every other file drpc wrote there, with the digest it had, so a later
full compile, check or diff sees the whole tree.

The no-op fast path (`up_to_date`) answers "OUT is what this compile would write" without the
plan or the templates, from the manifest (see its docstring). This module imports no part of
the pipeline, so that answer costs little more than reading OUT.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from . import __version__, build_digest, user_cache_dir
from .errors import Diagnostic, DrpcError, OutputError, Position

if TYPE_CHECKING:
    from .emit_fs import Note
    from .plan import Plan

# compiler/emit_fs.py (locks, recovery, the swap) is imported by the functions that write or
# compare OUT, not here: the no-op fast path never needs it (it is a tenth of that path's time).

MANIFEST = "manifest.json"
PROVENANCE = ("drpc_version", "spec", "inputs")  # what a manifest says its files came from


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_mode(path: str) -> int:
    return 0o755 if path.endswith(".sh") else 0o644


def _dump(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def build_manifest(plan: Plan, files: dict[str, bytes], site: str | None) -> bytes:
    """Every generated file with its sha256, the spec's sha256 and drpc's version."""
    return _dump({
        "generator": "drpc",
        "drpc_version": plan.drpc_version,
        "campaign": plan.campaign,
        "spec": {"file": plan.spec_file, "sha256": plan.spec_sha256},
        "inputs": dict(plan.inputs),
        "site": site,
        "files": {p: sha256(b) for p, b in sorted(files.items())},
    })


def with_manifest(plan: Plan, files: dict[str, bytes], site: str | None) -> dict[str, bytes]:
    for path in files:
        if not _inside(path):
            raise RuntimeError(f"refusing to write outside the output directory: {path!r}")
    return {**files, MANIFEST: build_manifest(plan, files, site)}


def _inside(path: str) -> bool:
    p = PurePosixPath(path)
    return bool(p.parts) and not p.is_absolute() and ".." not in p.parts and "\0" not in path


@dataclass
class TreeState:
    """What an existing OUT holds, as far as drpc is concerned."""

    exists: bool
    manifest_files: set[str] = field(default_factory=set)
    has_manifest: bool = False
    nonempty: bool = False
    manifest: dict[str, Any] = field(default_factory=dict)  # the earlier compile's manifest

    @property
    def site(self) -> str | None:
        site = self.manifest.get("site")
        return site if isinstance(site, str) else None


def read_state(out: Path) -> TreeState:
    if not out.exists():
        return TreeState(exists=False)
    if not out.is_dir():
        raise OutputError(f"{out} exists and is not a directory")
    nonempty = any(out.iterdir())
    mpath = out / MANIFEST
    if mpath.is_symlink():
        raise OutputError(f"{mpath} is a symbolic link; drpc reads its manifest only from a real "
                          "file inside the output directory")
    if not mpath.is_file():
        return TreeState(exists=True, nonempty=nonempty)
    doc = _read_manifest(mpath, out)
    return TreeState(exists=True, manifest_files=set(doc["files"]), has_manifest=True,
                     nonempty=nonempty, manifest=doc)


def _read_manifest(mpath: Path, out: Path) -> dict[str, Any]:
    """The manifest of an earlier compile, refused when drpc cannot have written it."""
    try:
        doc = json.loads(mpath.read_bytes())
    except (ValueError, UnicodeDecodeError):
        doc = None
    files = doc.get("files") if isinstance(doc, dict) and doc.get("generator") == "drpc" else None
    if not (isinstance(doc, dict) and isinstance(files, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
            and isinstance(doc.get("site_updates", {}), dict)):
        raise OutputError(f"{mpath} is not a drpc manifest; refusing to write into {out}")
    for path in files:
        if not _inside(path) or path == MANIFEST:
            raise OutputError(
                f"{mpath} lists {path!r}, which is not a file inside {out}: drpc never wrote "
                "that manifest, and does not touch what it names; restore the manifest drpc "
                "wrote (or remove the folder) and compile again")
    return doc


def _manifest_of(files: dict[str, bytes]) -> dict[str, Any]:
    doc = json.loads(files[MANIFEST])
    assert isinstance(doc, dict)
    return doc


@dataclass(frozen=True)
class Target:
    """What a compile makes of OUT: the files it writes and those of the tree it keeps."""

    files: dict[str, bytes]  # manifest included (for a site update, the whole tree's)
    kept: frozenset[str] = frozenset()  # written by an earlier compile, outside this one's part
    notes: tuple[str, ...] = ()


def target(out: Path, state: TreeState, files: dict[str, bytes]) -> Target:
    """The files a compile writes into OUT as it stands.

    A `--site` compile into a tree of the whole campaign replaces that site's part and keeps
    the rest: the new manifest lists the kept files with the digests they had, and records in
    `site_updates` a site whose part came from another spec or drpc version than the rest.
    Mixing two campaigns, or two sites' partial trees, is refused.
    """
    new = _manifest_of(files)
    site = new.get("site")
    if site is None or not state.has_manifest or state.site == site:
        return Target(files)
    old = state.manifest
    if old.get("campaign") != new["campaign"]:
        raise OutputError(
            f"{out} holds campaign {old.get('campaign')!r}, not {new['campaign']!r}: --site "
            f"{site} would mix two campaigns in one tree; use another output directory")
    if state.site is not None or old.get("site") is not None:
        raise OutputError(
            f"{out} holds only site {old.get('site')}'s part of the tree, not site {site}'s; "
            f"use another output directory for --site {site}, or compile the whole campaign "
            f"(without --site) into {out}")
    prefix = f"sites/{site}/"
    digests: dict[str, str] = old["files"]
    kept = frozenset(p for p in digests if not p.startswith(prefix))
    merged = {**old, "files": {**{p: digests[p] for p in kept}, **new["files"]}}
    provenance = {key: new[key] for key in PROVENANCE}
    updates = dict(old.get("site_updates") or {})
    updates.pop(site, None)
    if any(old.get(key) != value for key, value in provenance.items()):
        updates[site] = provenance
    merged.pop("site_updates", None)
    if updates:
        merged["site_updates"] = updates
    notes = [f"{out} holds the whole campaign: --site {site} covers {prefix} only, the other "
             f"{len(kept)} files drpc wrote there stay as they are"]
    if site in updates:
        what = ("another version of the campaign file" if old.get("spec") != new["spec"]
                else "another drpc version")
        notes.append(f"the rest of {out} was compiled from {what}; a compile without --site "
                     "brings it up to date (`drpc check` without --site lists what is stale)")
    return Target({**files, MANIFEST: _dump(merged)}, kept, tuple(notes))


@dataclass
class Comparison:
    missing: list[str]  # to be created
    stale: list[str]  # content differs
    extra: list[str]  # written by an earlier compile, no longer generated
    unchanged: list[str]
    kept: list[str] = field(default_factory=list)  # outside a --site compile's part, left alone

    @property
    def up_to_date(self) -> bool:
        return not (self.missing or self.stale or self.extra)


def compare(out: Path, files: dict[str, bytes], state: TreeState,
            kept: frozenset[str] = frozenset()) -> Comparison:
    missing, stale, unchanged = [], [], []
    for path, content in sorted(files.items()):
        target = out / path
        if not target.is_file():
            missing.append(path)
        elif target.read_bytes() != content or (os.stat(target).st_mode & 0o777) != file_mode(path):
            stale.append(path)
        else:
            unchanged.append(path)
    extra = sorted(p for p in state.manifest_files
                   if p not in files and p not in kept and os.path.lexists(out / p))
    return Comparison(missing, stale, extra, unchanged, sorted(kept))


def inspect(out: Path, files: dict[str, bytes],
            note: Note | None = None) -> tuple[Path, TreeState, Target]:
    """Read OUT (links resolved) and work out what a compile of `files` makes of it."""
    from . import emit_fs as fs

    out = fs.resolve_out(out)
    aside = fs.moved_aside(out)
    if aside is not None and note is not None:
        note(f"{out} is missing, but {aside} holds the tree an interrupted compile moved aside: "
             "the next `drpc compile` puts it back")
    state = read_state(out)
    return out, state, _target_checked(out, state, files)


def _target_checked(out: Path, state: TreeState, files: dict[str, bytes]) -> Target:
    from . import emit_fs as fs

    tgt = target(out, state, files)
    fs.refuse_links(out, tgt.files, state.manifest_files)
    return tgt


def check_tree(out: Path, files: dict[str, bytes], note: Note | None = None) -> Comparison:
    """What a compile of `files` would change in OUT; reads only."""
    from . import emit_fs as fs

    with fs.os_errors("read", out):
        real, state, tgt = inspect(out, files, note)
        return compare(real, tgt.files, state, tgt.kept)


def diff_tree(out: Path, files: dict[str, bytes], note: Note | None = None) -> str:
    """A unified diff from OUT to what a compile of `files` would write; reads only."""
    from . import emit_fs as fs

    with fs.os_errors("read", out):
        real, state, tgt = inspect(out, files, note)
        return unified_diff(real, tgt.files, state, tgt.kept)


def write_tree(out: Path, files: dict[str, bytes], note: Note | None = None) -> Comparison:
    """Write `files` (manifest included) into OUT atomically; return what changed.

    `note` hears what drpc did besides (a symlinked OUT, an interrupted compile put right,
    a site's part updated in a whole tree).
    """
    from . import emit_fs as fs

    say: Note = note or (lambda _message: None)
    real = fs.resolve_out(out)
    if out.is_symlink():
        say(f"{out} is a symbolic link: writing into its target {real}")
    with fs.os_errors("write", real):
        fs.make_parent(real)
        with fs.out_lock(real, say):
            fs.recover(real, say)
            return _write_locked(real, files, say)


def _write_locked(out: Path, files: dict[str, bytes], say: Note) -> Comparison:
    import shutil

    from . import emit_fs as fs

    state = read_state(out)
    if state.exists and state.nonempty and not state.has_manifest:
        raise OutputError(f"{out} is not empty and has no drpc manifest; refusing to write into "
                          "it (compile into an empty or new directory)")
    tgt = _target_checked(out, state, files)
    for message in tgt.notes:
        say(message)
    cmp = compare(out, tgt.files, state, tgt.kept)
    if state.exists and cmp.up_to_date:
        return cmp
    theirs = [p for p in cmp.stale if p not in state.manifest_files and p != MANIFEST]
    if theirs:
        raise OutputError(
            f"{out} holds {len(theirs)} file(s) drpc did not write (not in its manifest) where "
            f"this compile writes: {', '.join(theirs[:5])}{' ...' if len(theirs) > 5 else ''}; "
            "drpc never overwrites them: move them away and compile again")
    changed = _changed_since_written(out, state, set(tgt.files) | tgt.kept)
    for path in changed:
        say(f"kept {out / path}: drpc wrote it once, but it changed since (its digest is not "
            "the manifest's) and this compile no longer writes it; remove it by hand if it is "
            "not yours")
    tmp = fs.new_tree_dir(out)
    try:
        if state.exists:
            _carry_over(out, tmp, keep=set(cmp.unchanged) | tgt.kept,
                        drop=(state.manifest_files - set(changed)) | set(tgt.files))
        for path, content in tgt.files.items():
            dest = tmp / path
            if dest.exists():
                continue  # hard-linked unchanged file
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(content)
            os.chmod(dest, file_mode(path))
        fs.swap(tmp, out, existed=state.exists)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return cmp


def _changed_since_written(out: Path, state: TreeState, written: set[str]) -> list[str]:
    """Files of the old manifest that this compile would remove (it no longer writes them) but
    whose content is not what the manifest recorded: someone else's now (edited by hand, or
    named by a manifest drpc did not write), so they stay."""
    digests: dict[str, str] = state.manifest.get("files", {})
    out_of_date = []
    for path in sorted(state.manifest_files - written):
        target = out / path
        if target.is_symlink() or not target.is_file():
            continue
        if sha256(target.read_bytes()) != digests.get(path):
            out_of_date.append(path)
    return out_of_date


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


def unified_diff(out: Path, files: dict[str, bytes], state: TreeState,
                 kept: frozenset[str] = frozenset()) -> str:
    """A unified diff from what OUT holds to what a fresh compile writes."""
    cmp = compare(out, files, state, kept)
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


# -- the no-op fast path ----------------------------------------------------------------------
#
# A compile is a pure function of (drpc's build, the campaign's path as given, --site, the
# bytes of the campaign and its includes). Its manifest records the inputs' digests and every
# file's digest. A "stamp" in the user's cache, named by a digest of (build, path, site, the
# manifest's sha256), records that this build compiled exactly that manifest, with the
# warnings it gave; it is written after every full compile or check. A later compile or check
# whose OUT holds that manifest, whose inputs on disk have the manifest's digests and whose
# generated files all have theirs (and their modes) is up to date: nothing to build.

STAMPS_FOLDER = "up-to-date"
MAX_STAMPS = 256  # the oldest go first when there are more


@dataclass(frozen=True)
class UpToDate:
    """What an up-to-date OUT holds: every file of the manifest (itself included), and the
    warnings the compile that wrote it gave."""

    files: tuple[str, ...]
    warnings: tuple[Diagnostic, ...]


def _stamp_path(folder: Path, campaign: Path, site: str | None, manifest: bytes) -> Path:
    key = json.dumps([build_digest(), os.fspath(campaign), site, sha256(manifest)])
    return folder / f"{sha256(key.encode())}.json"


def remember_up_to_date(campaign: Path, site: str | None, files: dict[str, bytes],
                        warnings: Sequence[Diagnostic]) -> None:
    """Record that this build compiles `campaign` (as spelled) for `site` into exactly these
    files, with these warnings. Best effort: a cache that cannot be written only means the
    next run takes the full path."""
    folder = user_cache_dir(STAMPS_FOLDER)
    if folder is None or MANIFEST not in files:
        return
    doc = {"drpc_version": __version__, "warnings": [d.as_dict() for d in warnings]}
    path = _stamp_path(folder, campaign, site, files[MANIFEST])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(_dump(doc))
        os.replace(tmp, path)
        stamps = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in stamps[:-MAX_STAMPS]:
            old.unlink(missing_ok=True)
    except OSError:
        tmp.unlink(missing_ok=True)


def up_to_date(campaign: Path, out: Path, site: str | None) -> UpToDate | None:
    """OUT's files when it is exactly what compiling `campaign` for `site` writes, known
    without compiling; None whenever that is not certain (then the full path decides, and says
    why). Certain means: OUT is a real folder with no interrupted compile beside it; a stamp
    says this build compiled this campaign path and site into OUT's manifest; the campaign and
    its includes, as the loader finds them now, have the manifest's digests; and every file the
    manifest lists is a regular file (in real folders) with its digest and mode."""
    folder = user_cache_dir(STAMPS_FOLDER)
    if folder is None:
        return None
    try:
        return _up_to_date(folder, campaign, out, site)
    except (DrpcError, OSError, ValueError):
        return None  # unreadable, invalid, refused: the full path reports it properly


def _up_to_date(folder: Path, campaign: Path, out: Path, site: str | None) -> UpToDate | None:
    if out.is_symlink() or not out.is_dir():
        return None
    real = Path(os.path.realpath(out))
    prefix = f".{real.name}.drpc-"
    if any(entry.startswith(prefix) for entry in os.listdir(real.parent)):
        return None  # a lock, or an interrupted compile's tree: the full path deals with it
    manifest, mode = _regular_file(real, MANIFEST)
    if mode != file_mode(MANIFEST):
        return None
    stamp_path = _stamp_path(folder, campaign, site, manifest)
    if not stamp_path.is_file():
        return None
    stamp = json.loads(stamp_path.read_bytes())
    doc = json.loads(manifest)
    digests = doc.get("files") if isinstance(doc, dict) else None
    if not (isinstance(digests, dict) and doc.get("generator") == "drpc"
            and doc.get("site") == site and "site_updates" not in doc
            and doc.get("drpc_version") == __version__
            and isinstance(stamp, dict) and stamp.get("drpc_version") == __version__
            and isinstance(stamp.get("warnings"), list)
            and all(isinstance(p, str) and _inside(p) and p != MANIFEST
                    and isinstance(v, str) for p, v in digests.items())):
        return None
    from .loader import load_campaign

    loaded = load_campaign(campaign)
    if (doc.get("spec") != {"file": loaded.name, "sha256": loaded.sha256}
            or doc.get("inputs") != loaded.inputs):
        return None
    folders = {str(a) for p in digests for a in PurePosixPath(p).parents} - {"."}
    for parent in sorted(folders):
        if not stat.S_ISDIR(os.lstat(real / parent).st_mode):
            return None  # a generated folder replaced by a link
    for path, digest in digests.items():
        content, mode = _regular_file(real, path)
        if mode != file_mode(path) or sha256(content) != digest:
            return None
    os.utime(stamp_path)
    return UpToDate(tuple(sorted([*digests, MANIFEST])),
                    tuple(_diagnostic(d) for d in stamp["warnings"]))


def _regular_file(out: Path, path: str) -> tuple[bytes, int]:
    """The bytes and permission bits of OUT/path; OSError (ELOOP) for a link, ValueError for
    anything else that is not a regular file."""
    fd = os.open(out / path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{out / path} is not a regular file")
        return f.read(), st.st_mode & 0o777


def _diagnostic(d: Any) -> Diagnostic:
    """A warning as the stamp keeps it (Diagnostic.as_dict); ValueError for anything else."""
    try:
        if d["severity"] != "warning":
            raise ValueError("not a warning")
        where = (Position(str(d["file"]), int(d["line"]), int(d["column"]))
                 if d["file"] is not None else None)
        return Diagnostic("warning", str(d["path"]), str(d["message"]), where,
                          None if d["hint"] is None else str(d["hint"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a warning: {exc}") from None
