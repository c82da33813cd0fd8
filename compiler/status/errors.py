"""How a collector says a source could not be read: one line of reason, never a traceback."""

from __future__ import annotations


class SourceUnavailable(Exception):
    """The client is not installed, or the service did not answer; `str()` is the reason."""


def missing_client(package: str, module: str, exc: ImportError) -> SourceUnavailable:
    return SourceUnavailable(f"{package} is not installed (import {module}: {exc}); "
                             f"pip install {package}")


def reason_of(exc: BaseException) -> str:
    """A one-line reason: the exception's type and its message on one line."""
    text = " ".join(str(exc).split())
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line if len(line) <= 300 else line[:297] + "..."


__all__ = ["SourceUnavailable", "missing_client", "reason_of"]
