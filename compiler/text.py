"""Text in and out: the one place that quotes, escapes or shows a value.

Every output language drpc writes has its own function here, and nothing else in drpc quotes
a value by hand:

- `sh_quote`: one POSIX shell word;
- `yaml_scalar`: a YAML scalar that every YAML 1.1 and 1.2 reader reads back as the value;
- `json_text`: JSON, with the characters some readers take for line breaks escaped;
- `md_text`, `md_code`, `md_link`: Markdown text, inline code spans and links;
- `bps_value`, `bps_problem`: a value in a BPS submit file, which ctrl_bps expands again;
- `comment_line`: one line of a generated header comment (refuses what could end it);
- `safe_file_name`: a file name as shown in generated headers;
- `shown`: a value inside a diagnostic (escaped and cut to a few dozen characters).
"""

from __future__ import annotations

import json
import math
import re
import reprlib
import shlex
import unicodedata
from typing import Any

# Characters that end a line for some reader of the files drpc writes: YAML 1.1 (PyYAML,
# libyaml) also breaks lines at NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR, Python's
# str.splitlines() also at VT, FF and the file/group/record separators.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"

# C0 and C1 control characters, DEL, and the YAML 1.1 line breaks: never part of a header line,
# a diagnostic or a name.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

# Invisible characters that reorder or hide text in an editor or a review ("Trojan source").
INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")

# What a YAML or JSON writer escapes beyond what json.dumps does: DEL and C1 controls (not
# printable in YAML), the YAML 1.1 line breaks, non-characters, lone surrogates and the
# invisible characters above (so that a reviewer sees them).
_ESCAPE_IN_QUOTES = re.compile(r"[\x7f-\x9f\u2028\u2029\ufffe\uffff\ud800-\udfff"
                               r"\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")

SHOWN_LIMIT = 80  # characters of a value a diagnostic shows


def char_name(ch: str) -> str:
    """`U+2028 LINE SEPARATOR`, `U+0000 NUL`: a character named without writing it."""
    code = ord(ch)
    names = {0: "NUL", 0x9: "TAB", 0xA: "LINE FEED", 0xD: "CARRIAGE RETURN", 0x1B: "ESCAPE",
             0x7F: "DELETE", 0x85: "NEXT LINE"}
    name = names.get(code) or unicodedata.name(ch, "")
    return f"U+{code:04X} {name}".rstrip() if name else f"U+{code:04X}"


def first_control(text: str) -> int | None:
    """Index of the first control character or YAML 1.1 line break in `text`, else None."""
    m = CONTROL.search(text)
    return m.start() if m else None


# -- diagnostics -----------------------------------------------------------------------------------

_repr = reprlib.Repr()
_repr.maxstring = SHOWN_LIMIT
_repr.maxother = SHOWN_LIMIT
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 6
_repr.maxlevel = 3


def shown(value: Any, limit: int = SHOWN_LIMIT) -> str:
    """A value as a diagnostic shows it: Python's repr (control characters and line breaks
    escaped), cut after `limit` characters with the full length named, never the whole of a
    50 MB description. Never use it for a value that may be a secret: say what it is instead."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    if isinstance(value, (bool, int, float)) or value is None:
        text = repr(value)
        return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} digits)"
    text = _repr.repr(value)
    return text if len(text) <= 3 * limit else text[: 3 * limit] + "..."


# -- shell -----------------------------------------------------------------------------------------

def sh_quote(value: Any) -> str:
    """One shell word that expands to exactly `value`: a spec value can never run a command."""
    text = str(value)
    if "\x00" in text:
        raise ValueError("a NUL character cannot be part of a shell word")
    return shlex.quote(text)


# -- YAML and JSON ---------------------------------------------------------------------------------

def _escape_in_quotes(text: str) -> str:
    return _ESCAPE_IN_QUOTES.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def yaml_scalar(value: Any) -> str:
    """A YAML scalar that reads back as exactly `value` in YAML 1.2 and in YAML 1.1 readers.

    Strings are double-quoted JSON (JSON is a subset of YAML 1.2), with NEL, LINE SEPARATOR,
    PARAGRAPH SEPARATOR, DEL, C1 controls and invisible characters escaped as `\\uXXXX`:
    json.dumps(ensure_ascii=False) writes them raw, and a YAML 1.1 reader (PyYAML) takes the
    first three for line breaks, so a raw U+2028 could start a new key.
    """
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        # YAML 1.1 (PyYAML) reads 1e+300 as a string, 1.0e+300 as a float
        if e and "." not in mantissa:
            text = f"{mantissa}.0e{exponent}"
        return text
    return _escape_in_quotes(json.dumps(str(value), ensure_ascii=False))


def json_text(value: Any, **kwargs: Any) -> str:
    """JSON of `value` (keys sorted unless told otherwise), with the YAML 1.1 line breaks and
    the invisible characters escaped: they can only occur inside JSON strings, where
    `\\uXXXX` means the same character."""
    kwargs.setdefault("sort_keys", True)
    return _escape_in_quotes(json.dumps(value, ensure_ascii=False, **kwargs))


# -- Markdown --------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#!{}$])")  # no ( ): with [ ] escaped no link forms
_MD_LINE_START = re.compile(r"^(\s*)([-+=>]|\d+[.)])")
_UNSAFE_SCHEME = re.compile(r"\b(javascript|vbscript|data|file)(\s*):", re.IGNORECASE)


def _one_line(text: str) -> str:
    """Line breaks and control characters become spaces: a value never starts a Markdown block."""
    return CONTROL.sub(" ", str(text))


def md_text(value: Any) -> str:
    """Plain text inside Markdown: no markup, no HTML, no link, no new block.

    Backslash-escapes every ASCII punctuation character Markdown gives a meaning to inline
    (`` ` * _ [ ] < > | ~ & # ! { } $ ``), a list or heading marker at the start, turns line
    breaks into spaces and breaks `javascript:`-like schemes, so that no renderer makes a link
    of them.
    """
    text = _MD_SPECIAL.sub(r"\\\1", _one_line(value))
    text = _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text)
    return _UNSAFE_SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}\\:", text)


def md_code(value: Any, *, in_table: bool = False) -> str:
    """An inline code span showing exactly `value` (on one line).

    The fence is one backtick longer than the longest run of backticks inside; a space pads a
    value that starts or ends with a backtick. In a table cell, `|` is written `\\|` (GFM
    splits cells before it parses code spans).
    """
    text = _one_line(value)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    if (text.startswith("`") or text.endswith("`")
            or (text.startswith(" ") and text.endswith(" ") and text.strip())):
        text = f" {text} "
    if in_table:
        text = text.replace("|", "\\|")
    return f"{fence}{text}{fence}"


def md_fence(value: Any, *, lang: str = "bash", indent: int = 0) -> str:
    """A fenced code block showing exactly the lines of `value` (a multi-line command), indented
    by `indent` spaces (inside a list item). The fence is longer than any backtick run inside."""
    lines = [_one_line(line) for line in str(value).split("\n")]
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    pad = " " * indent
    return "\n".join(f"{pad}{line}".rstrip() for line in [fence + lang, *lines, fence])


_SAFE_URL = re.compile(r"^(https?://[^\s<>\"'`]+|mailto:[^\s<>\"'`]+|(?![A-Za-z][A-Za-z0-9+.-]*:)(?!//)[^\s<>\"'`]*)$")


def md_link(text: Any, url: str) -> str:
    """A Markdown link; only http(s), mailto and relative URLs (never `javascript:` and the
    like)."""
    if CONTROL.search(url) or not _SAFE_URL.match(url):
        raise ValueError(f"refusing to write a Markdown link to {shown(url)}: only http(s), mailto "
                         "and relative links")
    target = url.replace("(", "%28").replace(")", "%29").replace(" ", "%20")
    return f"[{md_text(text)}]({target})"


# -- BPS -------------------------------------------------------------------------------------------

_ENV_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_BPS_PLACEHOLDER = re.compile(r"<(ENV|FILE|BPSTMP2?|LAZY)[:>]|bpsEval\s*\(", re.IGNORECASE)
_SHELL_WORD_CHAR = re.compile(r"[^A-Za-z0-9_./:@%+=,~#-]")
_SHELL_QUOTED_CHAR = re.compile(r'["`\\$!]')


def bps_problem(value: str, *, env: bool = False, shell: str | None = None) -> str | None:
    """Why `value` cannot be written into a BPS submit file as it is, or None.

    ctrl_bps (BpsConfig.search and the command-line builders of transform.py) expands every
    value again: `{name}` becomes the submit file's variable `name` (or an empty string),
    `$NAME` and `${NAME}` the environment variable (os.path.expandvars), `<ENV:NAME>` and
    `<FILE:name>` placeholders are replaced and `bpsEval(...)` is evaluated. There is no
    escape that every consumer honours (`{{` is undone only where BPS formats the value,
    and expandvars has none), so such values are refused. With `env=True` (paths BPS is meant
    to expand, such as `${DRP_PIPE_DIR}/pipelines/...`) exactly `${NAME}` references are allowed.

    BPS then pastes values into the shell command lines of its jobs without quoting them
    (`-b {butlerConfig} -i {inCollection} ... -d "{dataQuery}"` in bps_defaults.yaml):
    `shell="word"` refuses every character a shell word gives a meaning to (`;`, `&`, `|`,
    `<`, `*`, quotes, ...; a leading `#` or `~`), `shell="quoted"` (a value inside `"..."`)
    refuses `"`, backquote, backslash, `$` and `!`.
    """
    rest = _ENV_REFERENCE.sub("", value) if env else value
    if "$" in rest:
        return ("BPS expands '$NAME' and '${NAME}' from the environment at submit time"
                + (" (only '${NAME}' references are allowed here)" if env
                   else " and has no escape for a literal '$'"))
    if "{" in rest or "}" in rest:
        return ("BPS expands '{name}' to the submit file's variable 'name' (an empty string when "
                "undefined) and has no escape for a literal brace")
    if _BPS_PLACEHOLDER.search(value):
        return "BPS replaces '<ENV:...>' and '<FILE:...>' placeholders and evaluates 'bpsEval(...)'"
    if shell == "word":
        m = _SHELL_WORD_CHAR.search(rest) or re.match(r"[#~]", rest)
        if m:
            return (f"BPS pastes it unquoted into the shell command lines of its jobs, where "
                    f"{shown(m.group())} is shell syntax")
    elif shell == "quoted":
        m = _SHELL_QUOTED_CHAR.search(value)
        if m:
            return ("BPS pastes it between double quotes into the shell command lines of its jobs, "
                    f"where {shown(m.group())} is shell syntax")
    return None


def bps_value(value: Any, *, env: bool = False, shell: str | None = "word") -> str:
    """A YAML scalar for a BPS submit file; refuses a value BPS would expand or a job's shell
    would read as syntax (see `bps_problem`)."""
    if isinstance(value, str):
        problem = bps_problem(value, env=env, shell=shell)
        if problem:
            raise ValueError(f"refusing to write {shown(value)} into a BPS submit file: {problem}")
    return yaml_scalar(value)


# -- headers ---------------------------------------------------------------------------------------

SAFE_FILE_NAME = re.compile(r"[^A-Za-z0-9._/+@-]")
FILE_NAME_LIMIT = 120


def safe_file_name(name: str) -> tuple[str, bool]:
    """`name` with every character outside `[A-Za-z0-9._/+@-]` shown as `?` (and cut after 120
    characters), and whether anything was replaced: a file name is the one thing of a
    campaign that no validation sees, and it goes into every generated header."""
    text = SAFE_FILE_NAME.sub("?", name)
    if len(text) > FILE_NAME_LIMIT:
        text = text[:FILE_NAME_LIMIT] + "..."
    return text, text != name


_STRAY = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def plain_lines(text: str, what: str) -> str:
    """`text` (a whole generated YAML or shell file), refused (ValueError) if it holds a control
    character or a line break other than LF anywhere: every value inside is escaped, so such a
    character can only come from a value that reached the file unescaped."""
    m = _STRAY.search(text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        raise ValueError(f"refusing to write {what}: line {line} holds {char_name(m.group())}, "
                         "which a reader could take for the end of the line")
    return text


def comment_line(line: str) -> str:
    """One line of a header comment, refused (ValueError) if anything in it could end the
    comment in some reader: a line break of YAML 1.1 or 1.2, or any control character."""
    i = first_control(line)
    if i is not None:
        raise ValueError(f"refusing to write a header line holding {char_name(line[i])}: "
                         f"{shown(line)} (only validated text goes into headers)")
    if INVISIBLE.search(line):
        j = INVISIBLE.search(line).start()  # type: ignore[union-attr]
        raise ValueError(f"refusing to write a header line holding {char_name(line[j])}: "
                         f"{shown(line)}")
    return line
