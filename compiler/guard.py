"""The one place that turns every failure into its exit code (CONTRACT section 4).

Every command of `drpc` (and `drpc rehearse` in its own package) runs through `guarded`: a
`DrpcError` prints its message (a `SpecError` its diagnostics) and exits with the class's
exit code; an `OSError` the file system raised is a usage error (exit 2); anything else is a
crash, reported in one paragraph, never as a traceback unless `--debug` is given.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import Diagnostic, DrpcError, ExitCode, SpecError, format_diagnostics


def emit_diagnostics(diags: list[Diagnostic], fmt: str) -> None:
    """Text for people on stderr; `github` and `json` for machines on stdout (CONTRACT rev 2),
    so `drpc validate --format json x.yaml > diags.json` keeps them."""
    if not diags:
        return
    click.echo(format_diagnostics(diags, fmt), err=fmt == "text")


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every failure into its exit code; a crash becomes a short report, not a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = bool(ctx.find_root().params.get("debug"))
        fmt = kwargs.get("fmt") or "text"
        try:
            return fn(*args, **kwargs)
        except SpecError as exc:
            emit_diagnostics(list(exc.diagnostics),
                             fmt if fmt in ("text", "github", "json") else "text")
            ctx.exit(int(ExitCode.INVALID))
        except DrpcError as exc:
            click.echo(f"drpc: error: {exc}", err=True)
            ctx.exit(int(exc.exit_code))
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except KeyboardInterrupt:
            click.echo("drpc: interrupted", err=True)
            ctx.exit(130)
        except OSError as exc:
            # the file system refused (disk full, read-only, permissions): the user's
            # environment, not a bug; commands that write OUT say more (compiler/emit_fs.py)
            if debug:
                traceback.print_exc()
            where = f" ({exc.filename})" if exc.filename is not None else ""
            click.echo(f"drpc: error: {exc.strerror or exc}{where}", err=True)
            ctx.exit(int(ExitCode.USAGE))
        except Exception as exc:  # noqa: BLE001 - the one place that turns crashes into exit 4
            if debug:
                traceback.print_exc()
            inputs = " ".join(str(a) for v in ctx.params.values()
                              for a in (v if isinstance(v, tuple) else (v,)) if isinstance(a, Path))
            click.echo(
                f"drpc: internal error in '{ctx.command.name}' ({type(exc).__name__}: {exc}) while "
                f"processing {inputs or 'the command line'}. This is a bug in drpc {__version__}, "
                "not in your campaign; rerun with --debug for the traceback and report it with the "
                "campaign file.", err=True)
            ctx.exit(int(ExitCode.INTERNAL))

    return wrapper
