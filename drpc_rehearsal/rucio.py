"""A real Rucio server on loopback (PyPI ``rucio`` 41.5.1), for the rehearsal and the tests.

Follows /work/shared/reference/rucio_server.md. The calling process runs in drpc's venv, which
lacks the Rucio server package (its pins clash with lsst-daf-butler's), so everything Rucio-side
runs as a subprocess of the separate ``.venv-rucio`` python made by ``tools/bootstrap`` (or any
venv named by DRPC_RUCIO_VENV): the database build, the Flask REST server, the daemons, client
calls. That code is :mod:`drpc_rehearsal.rucio_side` (standard library and rucio only), run by
:func:`run_side`; :class:`RucioService` has a typed method for each client call the rehearsal
makes, and :meth:`~RucioService.client_call` / :meth:`~RucioService.server_call` for tests.

Each RSE is deterministic with a ``file`` protocol whose prefix is a local folder (its "root"),
identity lfn2pfn, lan+wan read/write/third-party-copy, unlimited quota for root and a distance
of 1 to every other RSE, so a file ``scope:name`` of RSE ``X`` lives at ``<root of X>/scope/name``.
The conveyor's transfer tool is ``mock`` (see :mod:`.conveyor`).

The server runs in its own process group and is stopped with :meth:`RucioService.stop` (also at
interpreter exit, and by a watchdog when the starting process dies).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from ._proc import HOST, clean_env, free_port, spawn, stop_process
from .errors import RUCIO_INSTALL, MissingDependencyError, ServiceError
from .rucio_side import ERROR_MARK, RESULT_MARK

__all__ = [
    "API_ENDPOINTS", "CALL_TIMEOUT", "HOST", "ROOT_PASSWORD", "ROOT_USERNAME", "START_TIMEOUT",
    "RucioServer", "RucioService", "RucioServiceError", "RucioVenvError", "default_rucio_venv",
    "rucio_python", "run_side", "side_argv", "start_rucio_server",
]

ROOT_USERNAME = "ddmlab"
ROOT_PASSWORD = "secret"
# Only blueprints that exist in rucio 41.5 (the default list names `meta`, which does not).
API_ENDPOINTS = (
    "accounts, auth, config, dids, locks, ping, replicas, requests, rses, rules, scopes, "
    "subscriptions"
)
START_TIMEOUT = 90.0  # seconds until the server must answer /ping
CALL_TIMEOUT = 300.0  # seconds for one call of Rucio-side code


class RucioServiceError(ServiceError):
    """A Rucio-side step (DB build, server start, client or server call) failed."""


class RucioVenvError(MissingDependencyError, RucioServiceError):
    """The venv the Rucio server runs from is missing, or lacks (part of) rucio."""

    def __init__(self, what: str) -> None:
        super().__init__(what, RUCIO_INSTALL)


def _checkout() -> Path:
    """The folder that holds this package (a source checkout when installed editable)."""
    return Path(__file__).resolve().parents[1]


def default_rucio_venv() -> Path:
    """DRPC_RUCIO_VENV, else ``.venv-rucio`` of the source checkout (editable install), else
    ``.venv-rucio`` in the current directory. Looked up when a server starts, not at import."""
    env = os.environ.get("DRPC_RUCIO_VENV")
    if env:
        return Path(env)
    for base in (_checkout(), Path.cwd()):
        if (base / ".venv-rucio" / "bin" / "python").exists():
            return base / ".venv-rucio"
    return _checkout() / ".venv-rucio"


def rucio_python(venv: Path | None = None) -> Path:
    """The python of `venv` (default: :func:`default_rucio_venv`); RucioVenvError if none."""
    venv = venv or default_rucio_venv()
    python = venv / "bin" / "python"
    if not python.exists():
        raise RucioVenvError(f"no Rucio venv: {python} not found")
    return python


# -- running Rucio-side code (drpc_rehearsal.rucio_side) ------------------------------------------

def side_argv(python: Path, command: str, *spec: str) -> list[str]:
    """The command line that runs ``rucio_side`` function `command` (``MODULE:FUNCTION``) with
    `python`; its spec is the JSON `spec` argument if given, else the first line of stdin."""
    runner = Path(__file__).resolve().parent / "rucio_side" / "__main__.py"
    return [str(python), "-I", str(runner), command, *spec]


def _side_error(what: str, python: Path, returncode: int, stdout: str,
                stderr: str) -> RucioServiceError:
    info: dict[str, Any] = {}
    lines = stderr.rstrip("\n").splitlines()
    if lines and lines[-1].startswith(ERROR_MARK):
        info = json.loads(lines[-1][len(ERROR_MARK):])
        lines.pop()
    tail = "\n".join(lines)[-4000:]
    if info.get("module"):  # rucio_side imports only the standard library and rucio
        return RucioVenvError(f"{what}: {python.parent.parent} is not a working Rucio venv "
                              f"({info['type']}: {info['message']})")
    reason = f"{info['type']}: {info['message']}" if info else f"exit code {returncode}"
    return RucioServiceError(f"{what}: {reason}\n--- stdout ---\n{stdout[-2000:]}"
                             f"\n--- stderr ---\n{tail}")


def run_side(python: Path, command: str, spec: Mapping[str, Any], *, env: Mapping[str, str],
             cwd: Path, what: str = "", timeout: float = CALL_TIMEOUT) -> tuple[Any, str]:
    """Run ``rucio_side`` function `command` with keyword arguments `spec` in `python`; its
    result and what it printed. RucioServiceError (with its error and stderr) if it fails."""
    what = what or f"rucio {command}"
    try:
        proc = subprocess.run(
            side_argv(python, command), input=json.dumps(dict(spec)) + "\n", env=dict(env),
            cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RucioServiceError(f"{what}: timed out after {timeout} s") from exc
    if proc.returncode != 0:
        raise _side_error(what, python, proc.returncode, proc.stdout, proc.stderr)
    printed, mark, result = proc.stdout.rpartition("\n" + RESULT_MARK)
    if not mark:
        raise RucioServiceError(f"{what}: no result in its output:\n{proc.stdout[-4000:]}")
    return json.loads(result), printed


def normalize_db_url(db_url: str) -> str:
    """Plain postgresql:// means psycopg2 to SQLAlchemy; .venv-rucio has psycopg 3."""
    if db_url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + db_url.split("://", 1)[1]
    return db_url


def rucio_cfg(db_url: str, alembic_ini: Path, port: int, token_file: Path) -> str:
    url = f"http://{HOST}:{port}"
    return textwrap.dedent(f"""\
        [common]
        loglevel = ERROR

        [database]
        default = {db_url}

        [alembic]
        cfg = {alembic_ini}

        [bootstrap]
        userpass_identity = {ROOT_USERNAME}
        userpass_pwd = {ROOT_PASSWORD}
        userpass_email = rucio@localhost

        [client]
        rucio_host = {url}
        auth_host = {url}
        account = root
        auth_type = userpass
        username = {ROOT_USERNAME}
        password = {ROOT_PASSWORD}
        request_retries = 3
        auth_token_file_path = {token_file}

        [policy]
        permission = generic
        schema = generic
        lfn2pfn_algorithm_default = identity

        [api]
        endpoints = {API_ENDPOINTS}

        [conveyor]
        transfertool = mock

        [hermes]
        services_list = activemq
        """)


def alembic_ini(template: Path, db_url: str, script_location: Path) -> str:
    """The packaged template with our URL and script location, minus the duplicate keys
    (``default =``, ``version_table_schema``) that configparser rejects."""
    out = []
    for line in template.read_text().splitlines():
        key = None
        if "=" in line and not line.lstrip().startswith("#"):
            key = line.split("=", 1)[0].strip()
        if key in ("default", "version_table_schema", "sqlalchemy.url", "script_location"):
            continue
        out.append(line)
        if line.strip() == "[alembic]":
            out.append(f"sqlalchemy.url = {db_url}")
            out.append(f"script_location = {script_location}")
    return "\n".join(out) + "\n"


@dataclass
class RucioService:
    """A running Rucio server; see :func:`start_rucio_server`."""

    url: str
    config_path: Path
    workdir: Path
    pid: int
    python: Path  # the .venv-rucio python
    db_url: str = ""
    rse_roots: dict[str, Path] = field(default_factory=dict)
    scopes: list[str] = field(default_factory=list)
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def venv(self) -> Path:
        return self.python.parent.parent

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    @property
    def rses(self) -> list[str]:
        return list(self.rse_roots)

    def file_path(self, rse: str, scope: str, name: str) -> Path:
        """Where file ``scope:name`` lives on `rse` (identity lfn2pfn, deterministic RSE)."""
        return self.rse_roots[rse] / scope / name

    def rse_url(self, rse: str) -> str:
        """The RSE's URL prefix as Rucio writes it in PFNs and ``dst-url``
        (``file://localhost<root>/``): ctrl_ingestd's ``rucio_prefix`` for this RSE."""
        return f"file://localhost{self.rse_roots[rse]}/"

    def env(self) -> dict[str, str]:
        """Environment for generated scripts / the ``rucio`` CLI against this server:
        RUCIO_CONFIG set, .venv-rucio/bin first on PATH (so ``rucio`` and ``python`` are the
        server venv's), the calling venv's PYTHONPATH/VIRTUAL_ENV dropped."""
        env = clean_env(self.venv)
        env["RUCIO_CONFIG"] = str(self.config_path)
        env["RUCIO_ACCOUNT"] = "root"
        # The config has a [database] section (the server's), which would put clients in
        # "server mode": config_get then falls back to the DB config table, importing
        # rucio.core and the ORM models (+0.5 s per CLI call) and opening the database.
        env["RUCIO_CLIENT_MODE"] = "1"
        return env

    def server_env(self) -> dict[str, str]:
        """Environment for server-side code (core API, daemons) on this server's database."""
        env = self.env()
        del env["RUCIO_CLIENT_MODE"]
        return env

    # -- Rucio-side calls ----------------------------------------------------------------------
    def call(self, command: str, spec: Mapping[str, Any] | None = None, *,
             server: bool = False, timeout: float = CALL_TIMEOUT) -> Any:
        """The result of ``rucio_side`` function `command` (``MODULE:FUNCTION``, e.g.
        ``client:rule_ids``) called with keyword arguments `spec`; with `server`, against the
        server's database (core API, daemons) instead of as a client."""
        env = self.server_env() if server else self.env()
        result, _ = run_side(self.python, command, spec or {}, env=env, cwd=self.workdir,
                             timeout=timeout)
        return result

    def rule(self, rule_id: str) -> dict[str, Any]:
        """The rule as the client sees it (``get_replication_rule``)."""
        result: dict[str, Any] = self.call("client:rule", {"rule_id": rule_id})
        return result

    def rule_states(self, rule_ids: Iterable[str]) -> dict[str, str]:
        """Rule id -> state (``OK``, ``REPLICATING``, ``STUCK``, ...)."""
        result: dict[str, str] = self.call("client:rule_states", {"rule_ids": list(rule_ids)})
        return result

    def rule_ids(self, scope: str, name: str, rse_expression: str | None = None) -> list[str]:
        """Ids of the replication rules on ``scope:name``; with `rse_expression`, only those
        whose RSE expression is exactly that (e.g. the destination RSE of a move)."""
        result: list[str] = self.call("client:rule_ids", {
            "scope": scope, "name": name, "rse_expression": rse_expression})
        return result

    def dataset_files(self, scope: str, name: str) -> list[str]:
        """Names of the files in dataset or container ``scope:name`` (a move's DID is a
        container of datasets: ``list_files`` resolves them), sorted (empty: no files)."""
        result: list[str] = self.client_json(
            f"sorted(str(f['name']) for f in c.list_files({scope!r}, {name!r}))")
        return result

    def add_dataset(self, scope: str, name: str, files: Sequence[Mapping[str, Any]] = (),
                    rse: str | None = None) -> None:
        """Dataset ``scope:name`` with `files` attached and replicas on `rse`; each file is
        ``{"name", "bytes", "adler32"}`` (``scope``: the dataset's unless given), with
        ``meta``: DID metadata to set on it (e.g. ``rubin_butler``, ``rubin_sidecar``)."""
        self.call("client:add_dataset", {"scope": scope, "name": name, "rse": rse,
                                         "files": [dict(f) for f in files]})

    def add_rule(self, scope: str, name: str, rse_expression: str, *, copies: int = 1,
                 grouping: str = "DATASET", activity: str | None = None,
                 lifetime: int | None = None, comment: str | None = None) -> str:
        """A replication rule on ``scope:name`` to `rse_expression`; its id."""
        rule_id: str = self.call("client:add_rule", {
            "scope": scope, "name": name, "rse_expression": rse_expression, "copies": copies,
            "grouping": grouping, "activity": activity, "lifetime": lifetime,
            "comment": comment})
        return rule_id

    def update_rule(self, rule_id: str, **options: Any) -> None:
        """``update_replication_rule(rule_id, options)``, e.g. ``state="STUCK"``."""
        self.call("client:update_rule", {"rule_id": rule_id, "options": options})

    # -- snippets (tests) ----------------------------------------------------------------------
    def client_call(self, code: str, timeout: float = CALL_TIMEOUT) -> str:
        """Run Python `code` in .venv-rucio with ``c`` a ``rucio.client.Client()``; return what
        it printed. Raises RucioServiceError (with the error and stderr) if it raises."""
        _, printed = run_side(self.python, "client:run_code", {"code": textwrap.dedent(code)},
                              env=self.env(), cwd=self.workdir, what="rucio client_call",
                              timeout=timeout)
        return printed

    def client_json(self, expr: str, setup: str = "") -> Any:
        """Evaluate a Python expression (after ``setup``) with ``c`` available; return it
        decoded from JSON (non-JSON values such as datetimes become strings). Prefer the typed
        methods (:meth:`rule_ids`, :meth:`dataset_files`, ...) in code that is not a test."""
        result, _ = run_side(self.python, "client:run_code",
                             {"code": textwrap.dedent(setup), "expr": expr.strip()},
                             env=self.env(), cwd=self.workdir, what="rucio client_json")
        return result["value"]

    def server_call(self, code: str, timeout: float = CALL_TIMEOUT,
                    args: Iterable[str] = ()) -> str:
        """Run Python `code` in .venv-rucio against the server's database directly (core API,
        daemons), with RUCIO_CONFIG set and ``sys.argv[1:]`` = `args`; return what it printed."""
        _, printed = run_side(self.python, "server:run_code",
                              {"code": textwrap.dedent(code), "argv": list(args)},
                              env=self.server_env(), cwd=self.workdir,
                              what="rucio server_call", timeout=timeout)
        return printed

    # -- RSEs and scopes -----------------------------------------------------------------------
    def _setup(self, roots: Mapping[str, Path | str], scopes: list[str]) -> None:
        """Create RSEs (name -> local root folder), with distances to every RSE, and scopes."""
        new = {}
        for rse, root in roots.items():
            path = Path(root).resolve()
            path.mkdir(parents=True, exist_ok=True)
            new[rse] = path
        all_rses = [*self.rse_roots, *(r for r in new if r not in self.rse_roots)]
        self.call("client:setup", {"new_rses": list(new), "all_rses": all_rses,
                                   "roots": {rse: f"{p}/" for rse, p in new.items()},
                                   "scopes": scopes})
        self.rse_roots.update(new)
        self.scopes.extend(s for s in scopes if s not in self.scopes)

    # -- lifecycle -----------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server (its whole process group); idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        atexit.unregister(self.stop)
        stop_process(proc)


#: The name the tests' fixture has always used.
RucioServer = RucioService


def _wait_until_up(proc: subprocess.Popen[bytes], url: str, log_path: Path,
                   timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RucioServiceError(
                f"Rucio server exited with code {proc.returncode} before answering; log:\n"
                + log_path.read_text(errors="replace")[-4000:]
            )
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as resp:
                if resp.status == 200 and b"version" in resp.read():
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RucioServiceError(
                f"Rucio server at {url} did not answer /ping within {timeout} s; log:\n"
                + log_path.read_text(errors="replace")[-4000:]
            )
        time.sleep(0.1)


def _rucio_layout(python: Path) -> tuple[Path, Path]:
    """(alembic.ini template, migrate_repo directory) of the installed rucio package."""
    where, _ = run_side(python, "server:layout", {}, env=clean_env(python.parent.parent),
                        cwd=Path.cwd(), what="locating the rucio package", timeout=60)
    package, prefix = Path(where["package"]), Path(where["prefix"])
    template = prefix / "rucio" / "etc" / "alembic.ini.template"
    if not template.exists():
        raise RucioVenvError(f"{template} not found (not the full PyPI rucio package?)")
    return template, package / "db" / "sqla" / "migrate_repo"


def start_rucio_server(workdir: Path, *, rses: Iterable[str] = (), scopes: Iterable[str] = (),
                       db_url: str | None = None,
                       rse_roots: Mapping[str, Path | str] | None = None,
                       venv: Path | None = None) -> RucioService:
    """Start a Rucio server on 127.0.0.1 (free port) with its files in ``workdir``.

    The server runs from `venv` (default: :func:`default_rucio_venv`, looked up now). The
    database is SQLite in ``workdir`` unless ``db_url`` (e.g. a PostgreSQL URL; it must
    point to an empty database) is given.  Creates ``rses`` (root folder ``workdir/rses/<RSE>/``
    unless ``rse_roots`` names one; ``rse_roots`` alone also creates its RSEs) and ``scopes``
    (owned by root).  Call ``stop()`` when done (or use it as a context manager).
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    python = rucio_python(venv)
    db_url = normalize_db_url(db_url) if db_url else f"sqlite:///{workdir / 'rucio.db'}"
    config_path = workdir / "rucio.cfg"
    ini = workdir / "alembic.ini"
    token_file = workdir / "tokens" / "auth_token_root"
    token_file.parent.mkdir(exist_ok=True)

    template, migrate_repo = _rucio_layout(python)
    ini.write_text(alembic_ini(template, db_url, migrate_repo))

    def write_cfg(port: int) -> None:
        config_path.write_text(rucio_cfg(db_url, ini, port, token_file))

    env = clean_env(python.parent.parent)
    env["RUCIO_CONFIG"] = str(config_path)
    write_cfg(0)
    run_side(python, "server:build_database", {}, env=env, cwd=workdir,
             what="building the Rucio database")

    log_path = workdir / "server.log"
    last_error: Exception | None = None
    for _attempt in range(3):  # a free port may be taken by someone else before we bind it
        port = free_port()
        write_cfg(port)
        spec = json.dumps({"host": HOST, "port": port, "parent": os.getpid()})
        proc = spawn(side_argv(python, "server:serve", spec), env=env, cwd=workdir,
                     log=log_path)
        server = RucioService(url=f"http://{HOST}:{port}", config_path=config_path,
                              workdir=workdir, pid=proc.pid, python=python, db_url=db_url,
                              _proc=proc)
        atexit.register(server.stop)
        try:
            _wait_until_up(proc, server.url, log_path, START_TIMEOUT)
        except RucioServiceError as exc:
            server.stop()
            last_error = exc
            if re.search(r"Address already in use", str(exc)):
                continue
            raise
        break
    else:
        raise RucioServiceError(f"could not start the Rucio server: {last_error}")

    try:
        roots: dict[str, Path | str] = {rse: workdir / "rses" / rse for rse in rses}
        roots.update(rse_roots or {})
        server._setup(roots, list(scopes))
    except BaseException:
        server.stop()
        raise
    return server
