"""The file-system side of writing OUT safely: lock, recovery, swap, links, OS errors.

Everything drpc keeps beside OUT is named `.<OUT's name>.drpc-*`: the lock file
(`-lock`), the tree being built (`-new-<pid>-<random>`) and, during a two-rename swap, the
previous tree (`-old-<pid>-<random>`). A compile holds the lock from before it looks at OUT
until its swap is done, so whatever else it finds under those names was left by a compile that
was killed: it restores or removes it, and says so.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from .errors import OutputError

Note = Callable[[str], None]

LOCK_WAIT_SECONDS = 300.0  # how long a compile waits for another one into the same OUT
_POLL_SECONDS = 0.1
_LEGACY_SUFFIX = "[a-z0-9_]{8}"  # tempfile.mkdtemp's names, used by drpc before the lock


def resolve_out(out: Path) -> Path:
    """OUT with every link resolved: a symlinked OUT is written into its target, in place."""
    resolved = Path(os.path.realpath(out))
    if not resolved.name:
        raise OutputError(f"{out}: the root folder cannot be an output directory")
    return resolved


def make_parent(out: Path) -> None:
    """Create OUT's parent folders; a file on the way is the user's to move, said as such."""
    for folder in (out.parent, *out.parent.parents):
        if os.path.lexists(folder):
            if not folder.is_dir():
                raise OutputError(f"{folder} is not a folder, so it cannot hold {out}")
            break
    out.parent.mkdir(parents=True, exist_ok=True)


def lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.drpc-lock"


@contextmanager
def out_lock(out: Path, note: Note) -> Iterator[None]:
    """Hold an exclusive flock beside OUT, so compiles into one OUT run one after the other.

    The lock file goes away when the compile ends (a tree kept in git shows no stray file): a
    compile that waited on a file since removed finds another inode at its path and tries again.
    """
    path = lock_path(out)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    waiting = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while not _try_lock(fd):
                holder = _lock_holder(fd)
                if time.monotonic() >= deadline:
                    raise OutputError(
                        f"another drpc compile into {out} ({holder}) still holds {path} after "
                        f"{LOCK_WAIT_SECONDS:g} s; let it finish, then compile again")
                if not waiting:
                    note(f"waiting for another drpc compile into {out} ({holder}) to finish")
                    waiting = True
                time.sleep(_POLL_SECONDS)
            if _same_file(fd, path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        try:
            os.unlink(path)  # still holding the lock: nobody can hold this inode now
        except FileNotFoundError:
            pass
        os.close(fd)  # releases the lock


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _lock_holder(fd: int) -> str:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return f"pid {text}" if text.isdigit() else "pid unknown"


def _leftovers(out: Path, kind: str) -> list[Path]:
    """Trees of earlier, interrupted compiles into OUT: kind is 'new' or 'old'."""
    name = re.escape(out.name)
    legacy = "old-" if kind == "old" else ""
    pattern = re.compile(rf"\.{name}\.drpc-(?:{kind}-\d+-[A-Za-z0-9_]+|{legacy}{_LEGACY_SUFFIX})")
    try:
        entries = sorted(out.parent.iterdir())
    except FileNotFoundError:
        return []
    return [p for p in entries if pattern.fullmatch(p.name) and p.is_dir() and not p.is_symlink()]


def moved_aside(out: Path) -> Path | None:
    """The tree a compile killed mid-swap moved aside, when OUT is missing (`recover` brings it)."""
    olds = _leftovers(out, "old")
    return olds[0] if olds and not os.path.lexists(out) else None


def recover(out: Path, note: Note) -> None:
    """Put right what a killed compile left beside OUT (call with the lock held).

    A compile killed between the two renames of its swap left no OUT and the previous tree
    under an `-old-` name: that tree comes back as OUT, as if the compile had never started.
    Unfinished new trees, and previous trees whose swap was complete, are removed.
    """
    olds = _leftovers(out, "old")
    if olds and not os.path.lexists(out):
        if len(olds) > 1:
            raise OutputError(
                f"{out} is missing and several earlier trees of it were left by interrupted "
                f"compiles: {', '.join(str(p) for p in olds)}; rename the one to keep to {out} "
                "and compile again")
        os.rename(olds[0], out)
        note(f"restored {out} from {olds[0].name}, the tree an interrupted compile had moved "
             "aside")
        olds = []
    for path in [*olds, *_leftovers(out, "new")]:
        shutil.rmtree(path)
        note(f"removed {path}, left behind by an interrupted compile")


def new_tree_dir(out: Path) -> Path:
    path = out.parent / f".{out.name}.drpc-new-{os.getpid()}-{os.urandom(4).hex()}"
    path.mkdir(mode=0o755)
    return path


def swap(tmp: Path, out: Path, existed: bool) -> None:
    """Put the finished tree `tmp` in place of OUT.

    Where the kernel can exchange two names in one step (Linux renameat2), OUT is never
    missing; elsewhere OUT moves aside first, and `recover` restores it if the compile is
    killed between the two renames.
    """
    os.chmod(tmp, 0o755)
    if not existed:
        os.rename(tmp, out)
        return
    if exchange(tmp, out):
        shutil.rmtree(tmp, ignore_errors=True)  # now the previous tree; `recover` ends the job
        return
    old = out.parent / f".{out.name}.drpc-old-{os.getpid()}-{os.urandom(4).hex()}"
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with renameat2(RENAME_EXCHANGE); False where unsupported."""
    import ctypes  # only for the swap of an existing OUT

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # this kernel or file system cannot: fall back to two renames
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def refuse_links(out: Path, written: Iterable[str], known: Iterable[str]) -> None:
    """Refuse a link (or a file where a folder belongs) on the way to a path drpc manages.

    `written` are the paths this compile writes, `known` those an earlier compile wrote. drpc
    never reads or writes through a link, so a generated folder or file replaced by a symbolic
    link cannot lead it outside OUT.
    """
    seen: set[str] = set()
    files = set(written)
    for rel in sorted(files | set(known)):
        parts = PurePosixPath(rel).parts
        for depth in range(1, len(parts) + 1):
            sub = "/".join(parts[:depth])
            if sub in seen:
                continue
            seen.add(sub)
            path = out / sub
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                break
            leaf = depth == len(parts)
            if stat.S_ISLNK(mode):
                raise OutputError(
                    f"{path} is a symbolic link where drpc manages a {'file' if leaf else 'folder'}"
                    f" ({rel}); drpc never follows links out of the output directory: replace "
                    "it with a real one or remove it, then run drpc again")
            if not leaf and not stat.S_ISDIR(mode):
                raise OutputError(f"{path} is not a folder, but drpc writes {rel} inside it; "
                                  "move it away, then run drpc again")
            if leaf and rel in files and stat.S_ISDIR(mode):
                raise OutputError(f"{path} is a folder where drpc writes a file; move it away, "
                                  "then run drpc again")


_ENVIRONMENT_HINTS = {
    errno.ENOSPC: "free some space",
    errno.EDQUOT: "free some space (disk quota exceeded)",
    errno.EROFS: "drpc builds the new tree beside OUT and swaps it in, so OUT's parent folder "
                 "must be writable",
    errno.EACCES: "drpc builds the new tree beside OUT and swaps it in, so OUT and its parent "
                  "folder must be writable",
    errno.EPERM: "drpc builds the new tree beside OUT and swaps it in, so OUT and its parent "
                 "folder must be writable",
}


@contextmanager
def os_errors(action: str, out: Path) -> Iterator[None]:
    """Report what the file system refused as a user error, naming the path and what to do."""
    try:
        yield
    except OSError as exc:
        where = exc.filename if exc.filename is not None else out
        hint = _ENVIRONMENT_HINTS.get(exc.errno or 0)
        kept = f"; {out} is left as it was" if action == "write" else ""
        raise OutputError(f"cannot {action} {out}: {exc.strerror or exc} ({where}){kept}"
                          + (f" ({hint})" if hint else "")) from exc
