"""Rucio's server side, in the Rucio venv: the installed package's layout, the database build,
the REST server and ``server_call`` snippets, all on the database RUCIO_CONFIG names.

Standard library and rucio only (see the package's docstring).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

__all__ = ["build_database", "layout", "run_code", "serve"]


def layout() -> dict[str, str]:
    """Where the installed rucio package (``package``) and its venv (``prefix``) are: the
    ``alembic.ini`` template is under ``<prefix>/rucio/etc``, the migrations in the package."""
    import rucio

    return {"package": str(Path(rucio.__file__).parent), "prefix": sys.prefix}


def build_database() -> None:
    """Rucio's tables, the base VO and the root account, in this order (without the VO every
    scope call fails with "VO def not found")."""
    from rucio.db.sqla.util import build_database as build
    from rucio.db.sqla.util import create_base_vo, create_root_account

    build()
    create_base_vo()
    create_root_account()


def _exit_with(parent: int) -> None:
    """Exit when process `parent` is no longer ours, even if it was SIGKILLed."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def serve(host: str, port: int, parent: int) -> None:
    """The Flask REST server on `host`:`port`, until stopped or until `parent` is gone."""
    threading.Thread(target=_exit_with, args=(parent,), daemon=True,
                     name="parent-watchdog").start()
    from rucio.web.rest.flaskapi.v1.main import application

    application.run(host=host, port=port, threaded=True, use_reloader=False)


def run_code(code: str, argv: list[str] | None = None) -> None:
    """Execute `code` (a ``server_call`` snippet: core API, daemons) with ``sys.argv`` =
    ``["-c", *argv]``, as ``python -c code ARGV...`` would; what it prints is the answer."""
    saved = sys.argv
    sys.argv = ["-c", *(argv or [])]
    try:
        exec(compile(code, "<server_call>", "exec"), {"__name__": "__main__"})
    finally:
        sys.argv = saved
