"""Load a campaign file and its includes, keeping where every value came from.

ruamel.yaml's round-trip loader records line and column on every mapping and sequence; we
turn the document into plain Python data plus a `SourceMap` from field path to `Position`,
so that validation errors point at the file that really holds the bad value, even after an
`include:` merge.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError

from .errors import Diagnostic, Position, SpecError

FieldPath = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Field path -> position of its value (and of its key, for mapping entries)."""

    values: dict[FieldPath, Position] = field(default_factory=dict)
    keys: dict[FieldPath, Position] = field(default_factory=dict)
    root: Position = Position("<campaign>", 1, 1)

    def locate(self, path: FieldPath, *, key: bool = False) -> Position:
        """The most precise known position for `path` (its nearest known ancestor otherwise)."""
        p = tuple(path)
        while True:
            if key and p in self.keys:
                return self.keys[p]
            if p in self.values:
                return self.values[p]
            if not p:
                return self.root
            p = p[:-1]


@dataclass
class LoadedCampaign:
    """The merged document of a campaign file and its includes."""

    path: Path  # the campaign file as given
    data: dict[str, Any]
    source: SourceMap
    inputs: dict[str, str]  # every file read (relative to the campaign's folder) -> sha256
    sha256: str  # of the campaign file's bytes

    @property
    def name(self) -> str:
        return self.path.name


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.version = (1, 2)
    y.allow_duplicate_keys = False
    return y


def _plain(node: Any, path: FieldPath, file: str, src: SourceMap) -> Any:
    """Convert ruamel nodes to plain Python, recording positions (1-based)."""
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for k in node:
            kp = path + (str(k),)
            try:
                kl, kc = node.lc.key(k)
                src.keys[kp] = Position(file, kl + 1, kc + 1)
                vl, vc = node.lc.value(k)
                src.values[kp] = Position(file, vl + 1, vc + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            out[str(k)] = _plain(node[k], kp, file, src)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, v in enumerate(node):
            ip = path + (i,)
            try:
                il, ic = node.lc.item(i)
                src.values[ip] = Position(file, il + 1, ic + 1)
            except (KeyError, TypeError, AttributeError, IndexError):
                pass
            items.append(_plain(v, ip, file, src))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def _merge(base: Any, over: Any, base_src: SourceMap, over_src: SourceMap,
           path: FieldPath, out_src: SourceMap) -> Any:
    """Deep-merge `over` onto `base`: mappings merge, everything else (lists too) is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        merged: dict[str, Any] = {}
        for k in list(base) + [k for k in over if k not in base]:
            kp = path + (k,)
            if k in over and k in base:
                merged[k] = _merge(base[k], over[k], base_src, over_src, kp, out_src)
                _copy_positions(over_src, kp, out_src, only_self=True)
            elif k in over:
                merged[k] = over[k]
                _copy_positions(over_src, kp, out_src)
            else:
                merged[k] = base[k]
                _copy_positions(base_src, kp, out_src)
        return merged
    _copy_positions(over_src, path, out_src)
    return over


def _copy_positions(src: SourceMap, path: FieldPath, dst: SourceMap, *, only_self: bool = False) -> None:
    if src is dst:
        return
    n = len(path)
    for table_name in ("values", "keys"):
        table = getattr(src, table_name)
        target = getattr(dst, table_name)
        if only_self:
            if path in table:
                target[path] = table[path]
            continue
        # drop stale positions of a replaced subtree, then copy the new ones
        for p in [p for p in target if p[:n] == path]:
            del target[p]
        for p, pos in table.items():
            if p[:n] == path:
                target[p] = pos


def _read_file(path: Path, display: str, included_at: Position | None) -> tuple[Any, SourceMap, bytes]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError([Diagnostic("error", "include" if included_at else "",
                                    f"file not found: {display}", included_at or Position(display, 1, 1))])
    except OSError as exc:
        raise SpecError([Diagnostic("error", "", f"cannot read {display}: {exc.strerror}",
                                    included_at or Position(display, 1, 1))])
    src = SourceMap(root=Position(display, 1, 1))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([Diagnostic("error", "", f"not UTF-8 text (byte {exc.start})", Position(display, 1, 1))])
    try:
        docs = list(_yaml().load_all(text))
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        pos = Position(display, mark.line + 1, mark.column + 1) if mark else Position(display, 1, 1)
        raise SpecError([Diagnostic("error", "", _one_line(exc.problem or "duplicate key"), pos,
                                    "each key may appear once in a mapping")])
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Position(display, mark.line + 1, mark.column + 1) if mark else Position(display, 1, 1)
        raise SpecError([Diagnostic("error", "", f"YAML syntax error: {_one_line(exc.problem or str(exc))}", pos)])
    except Exception as exc:  # ruamel raises a few unmarked errors (e.g. bad tags)
        raise SpecError([Diagnostic("error", "", f"YAML error: {_one_line(str(exc))}", Position(display, 1, 1))])
    if len(docs) != 1:
        raise SpecError([Diagnostic("error", "", f"expected exactly one YAML document, found {len(docs)}",
                                    Position(display, 1, 1))])
    doc = docs[0]
    if not isinstance(doc, CommentedMap):
        raise SpecError([Diagnostic("error", "", "the campaign file must be a mapping at the top level",
                                    Position(display, 1, 1))])
    return _plain(doc, (), display, src), src, raw


def _one_line(s: str) -> str:
    return " ".join(s.split())


def _load_tree(path: Path, display: str, chain: tuple[Path, ...], inputs: dict[str, str],
               base_dir: Path, included_at: Position | None) -> tuple[dict[str, Any], SourceMap]:
    real = path.resolve()
    if real in chain:
        cycle = " -> ".join([p.name for p in chain[chain.index(real):]] + [real.name])
        raise SpecError([Diagnostic("error", "include", f"include cycle: {cycle}", included_at,
                                    "remove one of the includes")])
    data, src, raw = _read_file(path, display, included_at)
    rel = os.path.relpath(real, base_dir).replace(os.sep, "/")
    inputs[rel] = hashlib.sha256(raw).hexdigest()
    includes = data.pop("include", None)
    if includes is None:
        return data, src
    inc_pos = src.locate(("include",))
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise SpecError([Diagnostic("error", "include", "must be a list of file paths", inc_pos)])
    merged: dict[str, Any] = {}
    merged_src = SourceMap(root=src.root)
    errors: list[Diagnostic] = []
    for i, inc in enumerate(includes):
        inc_path = path.parent / inc
        inc_display = os.path.normpath(os.path.join(os.path.dirname(display), inc))
        try:
            sub, sub_src = _load_tree(inc_path, inc_display, chain + (real,), inputs, base_dir,
                                      src.locate(("include", i)))
        except SpecError as exc:
            errors.extend(exc.diagnostics)
            continue
        merged = _merge(merged, sub, merged_src, sub_src, (), merged_src)
    if errors:
        raise SpecError(errors)
    for p in [p for p in src.values if p[:1] == ("include",)]:
        del src.values[p]
    src.keys.pop(("include",), None)
    result = _merge(merged, data, merged_src, src, (), merged_src)
    return result, merged_src


def load_campaign(path: str | os.PathLike[str]) -> LoadedCampaign:
    """Read a campaign file, resolve its includes and return the merged document."""
    p = Path(path)
    display = os.fspath(path)
    inputs: dict[str, str] = {}
    data, src = _load_tree(p, display, (), inputs, p.resolve().parent, None)
    root_sha = inputs[p.name] if p.name in inputs else hashlib.sha256(p.read_bytes()).hexdigest()
    return LoadedCampaign(path=p, data=data, source=src, inputs=dict(sorted(inputs.items())), sha256=root_sha)


def get_path(data: Mapping[str, Any], path: FieldPath) -> Any:
    cur: Any = data
    for part in path:
        cur = cur[part]
    return cur
