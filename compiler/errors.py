"""Diagnostics and the one exception hierarchy of drpc.

A user error is a list of diagnostics that point at file:line:column and the field path;
a crash is different (exit 4) and is never shown as a traceback unless asked for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal

Severity = Literal["error", "warning"]


class ExitCode(IntEnum):
    OK = 0
    INVALID = 1
    USAGE = 2
    OUT_OF_DATE = 3
    INTERNAL = 4
    NEEDS_ATTENTION = 5  # `drpc status`: a failed job, a stuck rule, a move short of files


@dataclass(frozen=True, order=True)
class Position:
    """Where a value came from: the file that really holds it (after includes)."""

    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    path: str  # dotted field path, e.g. "sites.frdf.cores"
    message: str
    position: Position | None = None
    hint: str | None = None

    def sort_key(self) -> tuple[object, ...]:
        pos = self.position or Position("", 0, 0)
        return (pos.file, pos.line, pos.column, self.path, self.message)

    def text(self) -> str:
        where = str(self.position) if self.position else "<campaign>"
        msg = f"{where}: {self.severity}: {self.path or '<root>'}: {self.message}"
        if self.hint:
            msg += f" ({self.hint})"
        return msg

    def github(self) -> str:
        """One GitHub Actions workflow command (`::error file=F,line=L,col=C,title=T::MESSAGE`),
        escaped as the runner unescapes them (actions/runner ActionCommand.cs): `%`, CR and LF
        in the message; those and `:` and `,` in every property, the file name too (a `,` in it
        would end the property early, a `:` could end the command)."""
        props = []
        if self.position:
            props = [
                f"file={_gh_escape_prop(self.position.file)}",
                f"line={self.position.line}",
                f"col={self.position.column}",
            ]
        props.append(f"title={_gh_escape_prop(self.path or 'campaign')}")
        body = self.message + (f" ({self.hint})" if self.hint else "")
        return f"::{self.severity} {','.join(props)}::{_gh_escape_data(body)}"

    def as_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "file": self.position.file if self.position else None,
            "line": self.position.line if self.position else None,
            "column": self.position.column if self.position else None,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }


def _gh_escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_escape_prop(s: str) -> str:
    return _gh_escape_data(s).replace(":", "%3A").replace(",", "%2C")


def format_diagnostics(diags: Iterable[Diagnostic], fmt: str) -> str:
    """Render diagnostics for stderr: text, GitHub annotations, or a JSON list."""
    items = list(diags)
    if fmt == "json":
        return json.dumps([d.as_dict() for d in items], indent=2)
    if fmt == "github":
        return "\n".join(d.github() for d in items)
    return "\n".join(d.text() for d in items)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A hint naming the closest allowed word, or listing the allowed words."""
    import difflib  # only when a hint is wanted: ~5 ms of every command's start otherwise

    options = sorted(set(choices))
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    if options and len(options) <= 20:
        return "allowed: " + ", ".join(f"'{o}'" for o in options)
    return None


class DrpcError(Exception):
    """Base of every error drpc raises on purpose."""

    exit_code: ExitCode = ExitCode.INTERNAL


@dataclass
class SpecError(DrpcError):
    """The campaign is invalid; carries every problem found."""

    diagnostics: Sequence[Diagnostic] = field(default_factory=list)
    exit_code: ExitCode = ExitCode.INVALID

    def __str__(self) -> str:
        return format_diagnostics(self.diagnostics, "text")


class UsageError(DrpcError):
    """The command line or the output directory is not usable as asked."""

    exit_code = ExitCode.USAGE


class OutputError(UsageError):
    """OUT cannot be read or written as asked: the file system refused (disk full, read-only,
    permissions), a link or a forged manifest would lead drpc outside OUT, or another compile
    holds it. The user's environment, not a bug in drpc (exit 2)."""
