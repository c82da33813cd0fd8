"""drpc: compile one campaign YAML into everything each Rubin data facility needs.

Besides the version, this module says what this drpc *is* (a digest of its code, templates and
rendering libraries, so that a cache never outlives the code that filled it) and where it keeps
its per-user cache. It imports only the standard library: `drpc --version` loads it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

__version__ = "0.1.0"

__all__ = ["__version__", "build_digest", "tree_digest", "templates_path", "user_cache_dir"]

# Libraries whose version can change what a compile writes (parsing, rendering).
_RENDERING_LIBRARIES = ("jinja2", "ruamel.yaml", "pydantic", "pydantic_core", "markupsafe")


def templates_path() -> Path:
    """Templates ship inside the wheel (compiler/templates); a source checkout has them at the
    root."""
    packaged = Path(__file__).resolve().parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "templates"


def tree_digest(root: Path, suffixes: tuple[str, ...] = ()) -> str:
    """sha256 of every file under `root` (names and contents, in sorted order); `suffixes`
    keeps only the files whose name ends so. Caches are never part of it."""
    import hashlib

    digest = hashlib.sha256()
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if suffixes and not name.endswith(suffixes):
                continue
            path = Path(folder) / name
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


@lru_cache(maxsize=1)
def build_digest() -> str:
    """What a compile's output depends on besides its inputs: drpc's version, its code and
    templates, the Python and the installed rendering libraries (their files' size and mtime:
    a reinstall of another version changes them), hashed without importing any of them."""
    import hashlib
    import importlib.util
    import sys

    parts = [__version__, sys.version, tree_digest(Path(__file__).resolve().parent, (".py",)),
             tree_digest(templates_path())]
    for name in _RENDERING_LIBRARIES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
        if origin and os.path.isfile(origin):
            st = os.stat(origin)
            parts.append(f"{name}:{origin}:{st.st_size}:{st.st_mtime_ns}")
        else:
            parts.append(f"{name}:absent")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def user_cache_dir(*parts: str) -> Path | None:
    """`$XDG_CACHE_HOME/drpc/<parts>` (default `~/.cache/drpc/...`), made private to the user;
    None when it cannot be made or is not the user's own folder (then drpc runs uncached)."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    folder = root / "drpc"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if hasattr(os, "getuid") and os.stat(folder).st_uid != os.getuid():
            return None
        target = folder.joinpath(*parts)
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not os.access(target, os.W_OK | os.X_OK):
            return None
        return target
    except (OSError, RuntimeError):  # RuntimeError: Path.home() without a home
        return None
