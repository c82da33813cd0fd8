"""Load a campaign file and its includes, keeping where every value came from.

The campaign language is plain YAML 1.2 data: mappings, sequences, strings, numbers, booleans
and null. ruamel.yaml's reader, scanner and parser turn the text into events; drpc composes the
events itself, straight into plain Python data plus a `SourceMap` from field path to `Position`,
so that validation errors point at the file that really holds the bad value, even after an
`include:` merge.

Composing here (instead of ruamel's composer and round-trip constructor) is what makes the
loader safe on hostile input, within limits that no real campaign comes near:

- a file is read only if it is a regular file of at most `MAX_FILE_BYTES` (so never
  /dev/zero, a FIFO or a directory), every include stays inside the campaign's folder tree (the
  top campaign file's directory; symlinks are resolved first), at most `MAX_FILES` files and
  `MAX_TOTAL_BYTES` in all are read;
- characters that YAML readers disagree about (NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR, which
  YAML 1.1 readers take for line breaks), control characters and invisible bidirectional
  controls are refused at their line and column before parsing;
- aliases may add at most `MAX_ALIAS_NODES` nodes and `MAX_ALIAS_CHARS` characters (an alias
  bomb is refused at the alias that crosses the bound), a document holds at most `MAX_NODES`
  nodes and nests at most `MAX_DEPTH` levels; recursive aliases, tags other than YAML's core
  ones, duplicate keys and keys that are not scalars are refused where they are written;
- every YAML error names the line that holds the problem (for an unclosed flow collection the
  end of its last item, for an unclosed quote the opening quote) and where the construct opened.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from ruamel.yaml.tokens import ScalarToken

from .errors import Diagnostic, Position, SpecError
from .text import CONTROL, INVISIBLE, char_name, shown

FieldPath = tuple[str | int, ...]

MAX_FILE_BYTES = 1 << 20  # one campaign or include file (the examples are 3 kB)
MAX_TOTAL_BYTES = 4 << 20  # every file of one campaign
MAX_FILES = 64  # files read for one campaign (each read of an included file counts)
MAX_DEPTH = 32  # nesting of mappings and sequences (a campaign needs 6)
MAX_NODES = 10_000  # nodes of one document, aliases expanded (a campaign holds a few hundred)
MAX_ALIAS_NODES = 2_000  # nodes aliases may add to one document
MAX_ALIAS_CHARS = 100_000  # characters of strings aliases may add to one document
MAX_INT_DIGITS = 100
MAX_INCLUDE_PATH = 1024  # characters of one include path

# Characters no campaign file may hold anywhere (comments included): what YAML forbids (C0
# controls but TAB, LF and CR; DEL; C1 controls but NEL; surrogates; U+FFFE, U+FFFF), what YAML
# 1.1 and 1.2 readers disagree about (NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR are line breaks to
# YAML 1.1 readers such as PyYAML, and text to YAML 1.2), and a byte order mark after the start.
_FORBIDDEN = re.compile("[^\x09\x0a\x0d\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
                        "|[\u2028\u2029\ufeff]")

_CORE = "tag:yaml.org,2002:"
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?(?:[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+)$")
_FLOAT = re.compile(r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                        |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                        |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                        |[-+]?\.(?:inf|Inf|INF)
                        |\.(?:nan|NaN|NAN))$""", re.VERBOSE)
_MERGE = "<<"


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


# -- errors ----------------------------------------------------------------------------------------

class _Refused(Exception):
    """A problem of one file, at a 0-based (line, column) of it."""

    def __init__(self, message: str, line: int, column: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.line, self.column, self.hint = message, line, column, hint


def _at(mark: Any) -> tuple[int, int]:
    return (mark.line, mark.column) if mark is not None else (0, 0)


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _one_line(s: str, limit: int = 200) -> str:
    text = " ".join(str(s).split())
    return text if len(text) <= limit else text[:limit] + "..."


# -- reading files ---------------------------------------------------------------------------------

@dataclass
class _Budget:
    """What one campaign may read: files and bytes, over all its includes."""

    files: int = 0
    size: int = 0


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _read_bytes(path: Path, display: str, at: Position | None, budget: _Budget) -> bytes:
    """The bytes of a regular file of bounded size; never blocks, never reads a device."""
    where = at or Position(display, 1, 1)
    path_field = "include" if at else ""

    def refuse(message: str, hint: str | None = None) -> SpecError:
        return SpecError([Diagnostic("error", path_field, message, where, hint)])

    budget.files += 1
    if budget.files > MAX_FILES:
        raise refuse(f"more than {MAX_FILES} files read for one campaign (includes included)",
                     "include each shared file once")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise refuse(f"file not found: {display}") from None
    except (OSError, ValueError) as exc:
        raise refuse(f"cannot read {display}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
            raise refuse(f"{display} is {kind}, not a regular file",
                         "a campaign reads regular files only")
        if st.st_size > MAX_FILE_BYTES:
            raise refuse(f"{display} is {st.st_size:,} bytes; a campaign file may be at most "
                         f"{MAX_FILE_BYTES:,} bytes")
        chunks: list[bytes] = []
        total = 0
        while total <= MAX_FILE_BYTES:
            chunk = os.read(fd, min(1 << 16, MAX_FILE_BYTES + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > MAX_FILE_BYTES:
            raise refuse(f"{display} is more than {MAX_FILE_BYTES:,} bytes; a campaign file may be "
                         f"at most {MAX_FILE_BYTES:,} bytes")
    except OSError as exc:
        raise refuse(f"cannot read {display}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    budget.size += total
    if budget.size > MAX_TOTAL_BYTES:
        raise refuse(f"the campaign's files hold more than {MAX_TOTAL_BYTES:,} bytes in all")
    return b"".join(chunks)


def _decode(raw: bytes) -> str:
    """UTF-8 text; a bad byte or a forbidden character is refused at its line and column."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start)
        column = len(raw[line_start:exc.start].decode("utf-8", errors="replace"))
        raise _Refused(f"not UTF-8 text: byte 0x{raw[exc.start]:02X} cannot start or continue a "
                       "UTF-8 character", line, column,
                       "save the file as UTF-8 (it looks like Latin-1 or another 8-bit "
                       "encoding)") from None
    text = text.removeprefix("\ufeff")
    m = _FORBIDDEN.search(text) or INVISIBLE.search(text)
    if m:
        i = m.start()
        ch = text[i]
        line = text.count("\n", 0, i)
        column = i - (text.rfind("\n", 0, i) + 1)
        if ch in "\x85\u2028\u2029":
            why = "a line break to YAML 1.1 readers (PyYAML) and text to YAML 1.2 ones"
        elif INVISIBLE.match(ch):
            why = "an invisible character that changes how the text around it looks"
        else:
            why = "not allowed in YAML"
        raise _Refused(f"character {char_name(ch)} is {why}", line, column,
                       "a campaign file holds printable text only; remove the character")
    return text


# -- composing YAML events into plain data ---------------------------------------------------------

class _Node:
    """A composed node: a scalar (value: resolved Python value), a sequence or a mapping."""

    __slots__ = ("anchor", "chars", "kind", "merge", "size", "start", "text", "value")

    def __init__(self, kind: str, value: Any, start: Any, text: str | None = None) -> None:
        self.kind, self.value, self.start, self.text = kind, value, start, text
        self.size = 1
        self.chars = len(text) if isinstance(text, str) else 0
        self.anchor: str | None = None
        self.merge = False  # a plain, untagged '<<' key


class _Ref:
    """A node where it is used: its own position, or the position of the alias naming it."""

    __slots__ = ("node", "start")

    def __init__(self, node: _Node, start: Any) -> None:
        self.node, self.start = node, start


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE):] if tag.startswith(_CORE) else tag


class _Composer:
    """Events -> nodes, with every bound of the module docstring checked as it goes."""

    def __init__(self, parser: Any) -> None:
        self.parser = parser
        self.anchors: dict[str, _Node] = {}
        self.open_anchors: set[str] = set()
        self.nodes = 0
        self.alias_nodes = 0
        self.alias_chars = 0
        self.prev_end: Any = None

    def next_event(self) -> Any:
        return self.parser.get_event()

    def document(self) -> _Node | None:
        """The one document of the stream (None if the stream is empty)."""
        self.next_event()  # StreamStart
        if self.parser.check_event(StreamEndEvent):
            return None
        start = self.next_event()
        assert isinstance(start, DocumentStartEvent)
        root = self.compose(0)
        self.next_event()  # DocumentEnd
        if not self.parser.check_event(StreamEndEvent):
            second = self.parser.peek_event()
            line, column = _at(second.start_mark)
            raise _Refused("a second YAML document starts here; a campaign file holds exactly one",
                           line, column,
                           "remove this line and everything after it, or split the file")
        return root.node

    def count(self, mark: Any, nodes: int = 1) -> None:
        self.nodes += nodes
        if self.nodes > MAX_NODES:
            line, column = _at(mark)
            raise _Refused(f"more than {MAX_NODES:,} values in one file (aliases expanded)",
                           line, column,
                           "a campaign is a few hundred values; list tracts as rings or ranges")

    def compose(self, depth: int) -> _Ref:
        event = self.next_event()
        if isinstance(event, AliasEvent):
            return self.alias(event)
        anchor = event.anchor
        if isinstance(event, ScalarEvent):
            ref = self.scalar(event)
        elif isinstance(event, (SequenceStartEvent, MappingStartEvent)):
            if depth >= MAX_DEPTH:
                line, column = _at(event.start_mark)
                raise _Refused(f"nesting deeper than {MAX_DEPTH} levels", line, column,
                               "a campaign nests a few levels; this looks generated or hostile")
            self.check_tag(event, "seq" if isinstance(event, SequenceStartEvent) else "map")
            if anchor is not None:
                self.open_anchors.add(anchor)
            if isinstance(event, SequenceStartEvent):
                ref = self.sequence(event, depth)
            else:
                ref = self.mapping(event, depth)
        else:  # pragma: no cover - the parser emits nothing else here
            line, column = _at(event.start_mark)
            raise _Refused(f"unexpected YAML event {type(event).__name__}", line, column)
        if anchor is not None:
            self.open_anchors.discard(anchor)
            ref.node.anchor = anchor
            self.anchors[anchor] = ref.node
        return ref

    def alias(self, event: Any) -> _Ref:
        name = event.anchor
        line, column = _at(event.start_mark)
        if name in self.open_anchors:
            raise _Refused(f"alias *{shown(name, 40)[1:-1]} refers to the node that contains it "
                           "(a recursive alias)", line, column)
        node = self.anchors.get(name)
        if node is None:
            raise _Refused(f"alias *{shown(name, 40)[1:-1]} names no anchor defined before it",
                           line, column, "define the anchor (&name) before its first use")
        self.alias_nodes += node.size
        self.alias_chars += node.chars
        if self.alias_nodes > MAX_ALIAS_NODES or self.alias_chars > MAX_ALIAS_CHARS:
            raise _Refused(f"alias *{shown(name, 40)[1:-1]} expands to {node.size:,} values "
                           f"({node.chars:,} characters): aliases may add at most "
                           f"{MAX_ALIAS_NODES:,} values and {MAX_ALIAS_CHARS:,} characters to a "
                           "file", line, column,
                           "nested aliases multiply (an alias bomb); write the values out")
        self.count(event.start_mark, node.size)
        self.prev_end = event.end_mark
        return _Ref(node, event.start_mark)

    def check_tag(self, event: Any, kind: str) -> str | None:
        tag: str | None = event.tag
        if tag is None or tag == "!":
            return None
        allowed = {"seq": ("seq",), "map": ("map",),
                   "scalar": ("str", "int", "float", "bool", "null")}[kind]
        if tag.startswith(_CORE) and tag[len(_CORE):] in allowed:
            return tag[len(_CORE):]
        line, column = _at(event.start_mark)
        raise _Refused(f"YAML tag {shown(_short_tag(tag), 40)} is not allowed here", line, column,
                       "a campaign holds plain data; drop the tag (allowed: "
                       + ", ".join(f"!!{a}" for a in allowed) + ")")

    def scalar(self, event: Any) -> _Ref:
        self.count(event.start_mark)
        tag = "str" if event.tag == "!" else self.check_tag(event, "scalar")  # '!' forces a string
        text = event.value
        start = event.start_mark
        if text == "" and event.style is None and self.prev_end is not None \
                and start.line > self.prev_end.line:
            start = self.prev_end  # an empty value: at the ':' or '-' that has none
        self.prev_end = event.end_mark
        plain = event.style is None and tag is None
        node = _Node("scalar", self.resolve(text, tag, plain, event.start_mark), start, text)
        node.merge = plain and text == _MERGE
        return _Ref(node, start)

    @staticmethod
    def resolve(text: str, tag: str | None, plain: bool, mark: Any) -> Any:
        """YAML 1.2 core schema for plain scalars (underscores in numbers allowed, as before)."""
        if tag == "str" or (tag is None and not plain):
            return text
        if (tag in (None, "null")) and _NULL.match(text):
            return None
        if tag in (None, "bool") and text in _BOOL:
            return _BOOL[text]
        if tag in (None, "int") and _INT.match(text):
            digits = text.replace("_", "")
            if len(digits) > MAX_INT_DIGITS:
                line, column = _at(mark)
                raise _Refused(f"an integer of {len(digits):,} digits", line, column,
                               f"integers have at most {MAX_INT_DIGITS} digits")
            sign = -1 if digits.startswith("-") else 1
            body = digits.lstrip("+-")
            try:
                for prefix, base in (("0o", 8), ("0x", 16), ("0b", 2)):
                    if body.startswith(prefix):
                        return sign * int(body[2:], base)
                return sign * int(body, 10)
            except ValueError:
                return text
        if tag in (None, "float") and (_FLOAT.match(text) or (tag == "float" and _INT.match(text))):
            if len(text) > MAX_INT_DIGITS:
                line, column = _at(mark)
                raise _Refused(f"a number of {len(text):,} characters", line, column)
            t = text.replace("_", "").lower()
            try:
                return float(t.replace(".", "") if t.endswith((".inf", ".nan")) else t)
            except ValueError:
                return text
        if tag is None:
            return text
        line, column = _at(mark)
        raise _Refused(f"{shown(text, 40)} is not a valid !!{tag}", line, column)

    def sequence(self, event: Any, depth: int) -> _Ref:
        self.count(event.start_mark)
        self.prev_end = event.end_mark
        node = _Node("seq", [], event.start_mark)
        while not self.parser.check_event(SequenceEndEvent):
            item = self.compose(depth + 1)
            node.value.append(item)
            node.size += item.node.size
            node.chars += item.node.chars
        self.prev_end = self.next_event().end_mark
        return _Ref(node, event.start_mark)

    def mapping(self, event: Any, depth: int) -> _Ref:
        self.count(event.start_mark)
        self.prev_end = event.end_mark
        node = _Node("map", [], event.start_mark)
        seen: dict[str, Any] = {}
        while not self.parser.check_event(MappingEndEvent):
            key = self.compose(depth + 1)
            if key.node.kind != "scalar":
                line, column = _at(key.start)
                raise _Refused("a mapping key must be a plain name, not a "
                               f"{'mapping' if key.node.kind == 'map' else 'sequence'}",
                               line, column)
            name = key.node.text if isinstance(key.node.text, str) else str(key.node.value)
            is_merge = key.node.merge
            if not is_merge:
                if name in seen:
                    line, column = _at(key.start)
                    raise _Refused(f"duplicate key {shown(name, 60)} "
                                   f"(first given at {_where(seen[name])})",
                                   line, column, "each key may appear once in a mapping")
                seen[name] = key.start
            value = self.compose(depth + 1)
            if is_merge:
                self._check_merge(value)
            node.value.append((name, key.start, value, is_merge))
            node.size += key.node.size + value.node.size
            node.chars += key.node.chars + value.node.chars
        self.prev_end = self.next_event().end_mark
        return _Ref(node, event.start_mark)

    @staticmethod
    def _check_merge(value: _Ref) -> None:
        sources = value.node.value if value.node.kind == "seq" else [value]
        for src in sources:
            if src.node.kind != "map":
                line, column = _at(src.start)
                raise _Refused("a merge key '<<' takes a mapping or a list of mappings",
                               line, column)


def _pos(file: str, mark: Any) -> Position:
    return Position(file, mark.line + 1, mark.column + 1)


def _map_items(node: _Node) -> list[tuple[str, Any, _Ref]]:
    """A mapping's entries with its merge keys applied: explicit keys win, earlier merges win."""
    explicit = [(k, km, v) for k, km, v, merge in node.value if not merge]
    names = {k for k, _, _ in explicit}
    merged: list[tuple[str, Any, _Ref]] = []
    for _, _, value, merge in node.value:
        if not merge:
            continue
        for src in (value.node.value if value.node.kind == "seq" else [value]):
            for k, km, v in _map_items(src.node):
                if k not in names:
                    names.add(k)
                    merged.append((k, km, v))
    return merged + explicit


def _plain(ref: _Ref, path: FieldPath, file: str, src: SourceMap) -> Any:
    """Convert nodes to plain Python, recording 1-based positions of values and keys."""
    src.values[path] = _pos(file, ref.start)
    node = ref.node
    if node.kind == "scalar":
        return node.value
    if node.kind == "seq":
        return [_plain(item, path + (i,), file, src) for i, item in enumerate(node.value)]
    out: dict[str, Any] = {}
    for key, key_mark, value in _map_items(node):
        kp = path + (key,)
        src.keys[kp] = _pos(file, key_mark)
        out[key] = _plain(value, kp, file, src)
    return out


def _end_of_content_before(text: str, line: int) -> tuple[int, int] | None:
    """0-based (line, column) just after the last non-blank, non-comment text above `line`."""
    lines = text.split("\n")
    for i in range(min(line, len(lines)) - 1, -1, -1):
        content = re.sub(r"(^|\s)#.*$", "", lines[i]).rstrip()
        if content:
            return i, len(content)
    return None


def _runaway_quote(text: str, mark: Any) -> tuple[Any, Any] | None:
    """(start, end) marks of the last quoted scalar before `mark` that spans lines, if any."""
    if mark is None:
        return None
    found = None
    try:
        for token in YAML(typ="safe", pure=True).scan(text):
            if (token.start_mark.line, token.start_mark.column) >= (mark.line, mark.column):
                break
            if isinstance(token, ScalarToken) and token.style in ("'", '"') \
                    and token.end_mark.line > token.start_mark.line:
                found = (token.start_mark, token.end_mark)
    except YAMLError:
        pass
    return found


def _syntax_error(exc: MarkedYAMLError, text: str) -> _Refused:
    """A YAML error at the line that holds the problem, naming where the construct opened."""
    problem = _one_line(exc.problem or "")
    context = _one_line(exc.context or "")
    mark = exc.problem_mark or exc.context_mark
    opened = exc.context_mark
    if opened is not None and "end of stream" in problem and "quoted scalar" in context:
        # an unclosed quote: the scanner reads to the end of the file
        line, column = _at(opened)
        return _Refused("YAML syntax error: this quoted string is never closed", line, column,
                        "close the quote on this line")
    if context.startswith("while parsing a flow") and opened is not None and mark is not None \
            and mark.line > opened.line:
        # a flow collection left open: the problem is after its last item, not where the parser
        # noticed (the next key, or the end of the file)
        end = _end_of_content_before(text, mark.line)
        kind = "sequence '['" if "sequence" in context else "mapping '{'"
        closer = "]" if "sequence" in context else "}"
        if end is not None and end >= (opened.line, opened.column):
            return _Refused(f"YAML syntax error: the flow {kind} opened at {_where(opened)} "
                            f"is not closed (expected ',' or '{closer}' at the end of this line)",
                            *end,
                            f"add the missing '{closer}'")
    if opened is not None and "end of stream" in problem:
        line, column = _at(opened)
        return _Refused(f"YAML syntax error: {context}: {problem}", line, column)
    runaway = _runaway_quote(text, mark)
    if runaway is not None:
        # a quote left open finds its end in a later line's quote: the error shows up there
        start, end = runaway
        line, column = _at(start)
        return _Refused(f"YAML syntax error: this quoted string runs on to line {end.line + 1}: "
                        f"is its closing quote missing? ({problem or context} at {_where(mark)})",
                        line, column,
                        "close the quote on this line")
    message = f"YAML syntax error: {problem or context}"
    if (context and opened is not None and mark is not None
            and (opened.line, opened.column) != (mark.line, mark.column)):
        message += f" ({context} at {_where(opened)})"
    elif context and problem:
        message += f" ({context})"
    line, column = _at(mark)
    return _Refused(message, line, column)


def _parse(text: str) -> Any:
    """The document of `text` as plain data with positions; raises _Refused."""
    y = YAML(typ="safe", pure=True)
    y.version = (1, 2)
    _, parser = y.get_constructor_parser(text)
    composer = _Composer(parser)
    try:
        return composer.document()
    except MarkedYAMLError as exc:
        raise _syntax_error(exc, text) from None
    except YAMLError as exc:  # e.g. a ReaderError: already caught by _decode, kept as a guard
        position = getattr(exc, "position", 0) or 0
        line = text.count("\n", 0, position)
        raise _Refused(f"YAML error: {_one_line(str(exc))}", line,
                       position - (text.rfind("\n", 0, position) + 1)) from None
    except RecursionError:  # pragma: no cover - MAX_DEPTH keeps recursion shallow
        raise _Refused(f"nesting deeper than {MAX_DEPTH} levels", 0, 0) from None
    except (IndexError, AttributeError, TypeError, ValueError, KeyError) as exc:
        # ruamel's own failures on input it does not expect (a %YAML or %TAG directive with the
        # version fixed at 1.2 ends in an IndexError): still the file's problem, said where
        directive = re.search(r"^%", text, re.M)
        if directive is not None:
            line = text.count("\n", 0, directive.start())
            raise _Refused("this line is a YAML directive (%YAML, %TAG); drpc reads every campaign "
                           "file as YAML 1.2 and takes none", line, 0,
                           "remove the line") from None
        mark = getattr(getattr(parser, "scanner", None), "reader", None)
        line, column = (mark.line, mark.column) if mark is not None else (0, 0)
        raise _Refused(f"YAML the parser cannot read ({type(exc).__name__}: "
                       f"{_one_line(str(exc))[:200]})", line, column) from None


def _read_file(path: Path, display: str, included_at: Position | None,
               budget: _Budget) -> tuple[dict[str, Any], SourceMap, bytes]:
    raw = _read_bytes(path, display, included_at, budget)
    src = SourceMap(root=Position(display, 1, 1))
    try:
        root = _parse(_decode(raw))
        if root is None or root.kind != "map":
            what = ("empty" if root is None
                    else ("a list" if root.kind == "seq" else "a single value"))
            raise _Refused(f"the campaign file must be a mapping at the top level, and this one is "
                           f"{what}",
                           *((0, 0) if root is None else _at(root.start)))
        data = _plain(_Ref(root, root.start), (), display, src)
    except _Refused as exc:
        raise SpecError([Diagnostic("error", "", exc.message,
                                    Position(display, exc.line + 1, exc.column + 1),
                                    exc.hint)]) from None
    src.values.pop((), None)
    return data, src, raw


# -- includes --------------------------------------------------------------------------------------

def _take(value: Any, src: SourceMap, path: FieldPath, out: SourceMap) -> None:
    """Copy the positions of the subtree at `path` from `src` into `out` (linear in its size)."""
    if path in src.values:
        out.values[path] = src.values[path]
    if path in src.keys:
        out.keys[path] = src.keys[path]
    if isinstance(value, dict):
        for k, v in value.items():
            _take(v, src, path + (k,), out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _take(v, src, path + (i,), out)


def _merge(base: Any, over: Any, base_src: SourceMap, over_src: SourceMap,
           path: FieldPath, out_src: SourceMap) -> Any:
    """Deep-merge `over` onto `base`: mappings merge, everything else (lists too) is replaced.

    Positions go into `out_src` (a fresh map): each path's from the file whose value won.
    """
    if isinstance(base, dict) and isinstance(over, dict):
        for table, name in ((over_src.values, "values"), (over_src.keys, "keys")):
            if path in table:
                getattr(out_src, name)[path] = table[path]
            elif path in getattr(base_src, name):
                getattr(out_src, name)[path] = getattr(base_src, name)[path]
        merged: dict[str, Any] = {}
        for k in list(base) + [k for k in over if k not in base]:
            kp = path + (k,)
            if k in over and k in base:
                merged[k] = _merge(base[k], over[k], base_src, over_src, kp, out_src)
            elif k in over:
                merged[k] = over[k]
                _take(over[k], over_src, kp, out_src)
            else:
                merged[k] = base[k]
                _take(base[k], base_src, kp, out_src)
        return merged
    _take(over, over_src, path, out_src)
    return over


def _inside(real: str, root: str) -> bool:
    try:
        return os.path.commonpath([real, root]) == root
    except ValueError:
        return False


def _load_tree(path: Path, display: str, chain: tuple[str, ...], inputs: dict[str, str],
               root: str, included_at: Position | None,
               budget: _Budget) -> tuple[dict[str, Any], SourceMap]:
    real = os.path.realpath(path)
    if real in chain:
        names = [os.path.basename(p) for p in chain[chain.index(real):]] + [os.path.basename(real)]
        raise SpecError([Diagnostic("error", "include", f"include cycle: {' -> '.join(names)}",
                                    included_at, "remove one of the includes")])
    data, src, raw = _read_file(Path(real) if included_at else path, display, included_at, budget)
    rel = os.path.relpath(real, root).replace(os.sep, "/")
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
        at = src.locate(("include", i))
        try:
            inc_real = _include_target(inc, real, root, at)
            inc_display = os.path.normpath(os.path.join(os.path.dirname(display), inc))
            sub, sub_src = _load_tree(Path(inc_real), inc_display, chain + (real,), inputs, root,
                                      at, budget)
        except SpecError as exc:
            errors.extend(d for d in exc.diagnostics if d not in errors)
            if budget.files > MAX_FILES or budget.size > MAX_TOTAL_BYTES:
                break  # one report of the exhausted budget, not one per remaining include
            continue
        out = SourceMap(root=src.root)
        merged = _merge(merged, sub, merged_src, sub_src, (), out)
        merged_src = out
    if errors:
        raise SpecError(errors)
    out = SourceMap(root=src.root)
    result = _merge(merged, data, merged_src, src, (), out)
    return result, out


def _include_target(inc: str, including: str, root: str, at: Position) -> str:
    """The real path of an include, refused unless it is a relative path inside the tree."""
    def refuse(message: str, hint: str) -> SpecError:
        return SpecError([Diagnostic("error", "include", message, at, hint)])

    if not inc:
        raise refuse("an include must name a file", "a path relative to the including file")
    odd = CONTROL.search(inc) or INVISIBLE.search(inc)
    if odd:
        raise refuse(f"include {shown(inc)} holds {char_name(odd.group())}",
                     "an include is a plain relative path; its name goes into diagnostics")
    if len(inc) > MAX_INCLUDE_PATH:
        raise refuse(f"include {shown(inc)} is longer than {MAX_INCLUDE_PATH} characters",
                     "an include is a plain relative path")
    if os.path.isabs(inc) or inc.startswith("~"):
        raise refuse(f"include {shown(inc)} is an absolute path",
                     "includes are paths relative to the including file, inside the campaign's "
                     "folder")
    target = os.path.realpath(os.path.join(os.path.dirname(including), inc))
    if not _inside(target, root):
        raise refuse(f"include {shown(inc)} is outside the campaign's folder {root}",
                     "includes stay inside the folder of the campaign file (symlinks are followed "
                     "before this check); copy the shared file into it")
    return target


def load_campaign(path: str | os.PathLike[str]) -> LoadedCampaign:
    """Read a campaign file, resolve its includes and return the merged document."""
    p = Path(path)
    display = os.fspath(path)
    inputs: dict[str, str] = {}
    root = os.path.dirname(os.path.realpath(p))
    data, src = _load_tree(p, display, (), inputs, root, None, _Budget())
    top = os.path.relpath(os.path.realpath(p), root).replace(os.sep, "/")
    return LoadedCampaign(path=p, data=data, source=src, inputs=dict(sorted(inputs.items())),
                          sha256=inputs[top])
