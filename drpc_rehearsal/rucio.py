"""A real Rucio server on loopback (PyPI ``rucio`` 41.5.1), for the rehearsal and the tests.

Follows /work/shared/reference/rucio_server.md. The calling process runs in drpc's venv, which
lacks the Rucio server package (its pins clash with lsst-daf-butler's), so everything Rucio-side
runs as a subprocess of the separate ``.venv-rucio`` python made by ``tools/bootstrap``: the
database build, the Flask REST server, the daemons, and the client/server snippets of
:meth:`RucioService.client_call` and :meth:`RucioService.server_call`.

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from ._proc import HOST, ServiceError, clean_env, free_port, spawn, stop_process

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_rucio_venv() -> Path:
    """DRPC_RUCIO_VENV, else ``.venv-rucio`` of the source checkout (editable install), else
    ``.venv-rucio`` in the current directory."""
    env = os.environ.get("DRPC_RUCIO_VENV")
    if env:
        return Path(env)
    for base in (REPO_ROOT, Path.cwd()):
        if (base / ".venv-rucio" / "bin" / "python").exists():
            return base / ".venv-rucio"
    return REPO_ROOT / ".venv-rucio"


#: The venv with the Rucio server package (evaluated at import; functions take a `venv`).
RUCIO_VENV = default_rucio_venv()

ROOT_USERNAME = "ddmlab"
ROOT_PASSWORD = "secret"
# Only blueprints that exist in rucio 41.5 (the default list names `meta`, which does not).
API_ENDPOINTS = (
    "accounts, auth, config, dids, locks, ping, replicas, requests, rses, rules, scopes, "
    "subscriptions"
)
START_TIMEOUT = 90.0  # seconds until the server must answer /ping
CALL_TIMEOUT = 300.0  # seconds for one client_call/server_call
JSON_MARK = "@@JSON@@"


class RucioServiceError(ServiceError):
    """A Rucio-side step (DB build, server start, client/server snippet) failed."""


def rucio_python(venv: Path | None = None) -> Path:
    venv = venv or default_rucio_venv()
    python = venv / "bin" / "python"
    if not python.exists():
        raise RucioServiceError(
            f"{python} not found: run tools/bootstrap to create {venv} (PyPI rucio==41.5.1)"
        )
    return python


def run_python(python: Path, code: str, env: Mapping[str, str], cwd: Path, what: str,
               timeout: float = CALL_TIMEOUT, args: Iterable[str] = ()) -> str:
    """Run `code` with `python`; its stdout, or RucioServiceError with code and output."""
    try:
        proc = subprocess.run(
            [str(python), "-c", code, *args],
            env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RucioServiceError(f"{what}: timed out after {timeout} s\n--- code ---\n{code}") from exc
    if proc.returncode != 0:
        raise RucioServiceError(
            f"{what}: exit code {proc.returncode}\n--- code ---\n{code}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return proc.stdout


def json_result(out: str, what: str) -> Any:
    """The value a snippet printed as ``@@JSON@@<json>`` (its last such line)."""
    for line in reversed(out.splitlines()):
        if line.startswith(JSON_MARK):
            return json.loads(line[len(JSON_MARK):])
    raise RucioServiceError(f"{what}: no result in output:\n{out}")


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


_BUILD_DB = """\
from rucio.db.sqla.util import build_database, create_base_vo, create_root_account
build_database()
create_base_vo()
create_root_account()
"""

_SERVE = """\
import os, sys, threading, time
parent = int(sys.argv[3])

def watchdog():  # exit when the starting process is gone, even if it was SIGKILLed
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)

threading.Thread(target=watchdog, daemon=True).start()
from rucio.web.rest.flaskapi.v1.main import application
application.run(host=sys.argv[1], port=int(sys.argv[2]), threaded=True, use_reloader=False)
"""

_SETUP = """\
import json
spec = json.loads({spec!r})
for rse in spec["new_rses"]:
    c.add_rse(rse, deterministic=True)
    c.add_protocol(rse, {{
        "scheme": "file", "hostname": "localhost", "port": 0,
        "prefix": spec["roots"][rse], "impl": "rucio.rse.protocols.posix.Default",
        "domains": {{
            "lan": {{"read": 1, "write": 1, "delete": 1}},
            "wan": {{"read": 1, "write": 1, "delete": 1,
                     "third_party_copy_read": 1, "third_party_copy_write": 1}},
        }},
    }})
    c.add_rse_attribute(rse, "lfn2pfn_algorithm", "identity")
    c.set_local_account_limit("root", rse, -1)
for src in spec["all_rses"]:
    for dst in spec["all_rses"]:
        if src != dst and (src in spec["new_rses"] or dst in spec["new_rses"]):
            c.add_distance(src, dst, {{"distance": 1}})
for scope in spec["scopes"]:
    c.add_scope("root", scope)
print("setup ok")
"""

_CLIENT_PRELUDE = "from rucio.client import Client\nc = Client()\n"


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

    def client_call(self, code: str, timeout: float = CALL_TIMEOUT) -> str:
        """Run ``code`` in .venv-rucio after ``from rucio.client import Client; c = Client()``;
        return its stdout.  Raises RucioServiceError (with stderr) on a non-zero exit."""
        return run_python(self.python, _CLIENT_PRELUDE + textwrap.dedent(code), self.env(),
                          self.workdir, "rucio client_call", timeout)

    def client_json(self, expr: str, setup: str = "") -> Any:
        """Evaluate a Python expression (after ``setup``) with ``c`` available; return it
        decoded from JSON (non-JSON values such as datetimes become strings)."""
        code = textwrap.dedent(setup) + (
            "\nimport json as _json\n"
            f"print({JSON_MARK!r} + _json.dumps({expr}, default=str))\n"
        )
        return json_result(self.client_call(code), "client_json")

    def server_call(self, code: str, timeout: float = CALL_TIMEOUT,
                    args: Iterable[str] = ()) -> str:
        """Run ``code`` in .venv-rucio against the server's database directly (core API,
        daemons such as the conveyor), with RUCIO_CONFIG set; return its stdout."""
        return run_python(self.python, textwrap.dedent(code), self.server_env(), self.workdir,
                          "rucio server_call", timeout, args)

    def rule(self, rule_id: str) -> dict[str, Any]:
        """The rule as the client sees it (``get_replication_rule``)."""
        result: dict[str, Any] = self.client_json(f"c.get_replication_rule({rule_id!r})")
        return result

    def add_rses(self, roots: Mapping[str, Path | str]) -> None:
        """Create more RSEs (name -> local root folder), with distances to every RSE."""
        self._setup(roots, [])

    def add_scopes(self, scopes: Iterable[str]) -> None:
        self._setup({}, list(scopes))

    def _setup(self, roots: Mapping[str, Path | str], scopes: list[str]) -> None:
        new = {}
        for rse, root in roots.items():
            path = Path(root).resolve()
            path.mkdir(parents=True, exist_ok=True)
            new[rse] = path
        all_rses = [*self.rse_roots, *(r for r in new if r not in self.rse_roots)]
        spec = json.dumps({"new_rses": list(new), "all_rses": all_rses, "scopes": scopes,
                           "roots": {rse: str(p) + "/" for rse, p in new.items()}})
        self.client_call(_SETUP.format(spec=spec))
        self.rse_roots.update(new)
        self.scopes.extend(s for s in scopes if s not in self.scopes)

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
    out = run_python(
        python,
        "import os, sys, rucio\n"
        "print(os.path.dirname(rucio.__file__))\nprint(sys.prefix)\n",
        clean_env(python.parent.parent), Path.cwd(), "locating the rucio package", 60,
    ).split()
    package, prefix = Path(out[0]), Path(out[1])
    template = prefix / "rucio" / "etc" / "alembic.ini.template"
    if not template.exists():
        raise RucioServiceError(f"{template} not found (not the full PyPI rucio package?)")
    return template, package / "db" / "sqla" / "migrate_repo"


def start_rucio_server(workdir: Path, *, rses: Iterable[str] = (), scopes: Iterable[str] = (),
                       db_url: str | None = None,
                       rse_roots: Mapping[str, Path | str] | None = None,
                       venv: Path | None = None) -> RucioService:
    """Start a Rucio server on 127.0.0.1 (free port) with its files in ``workdir``.

    The database is SQLite in ``workdir`` unless ``db_url`` (e.g. a PostgreSQL URL; it must
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
    run_python(python, _BUILD_DB, env, workdir, "building the Rucio database")

    log_path = workdir / "server.log"
    last_error: Exception | None = None
    for _attempt in range(3):  # a free port may be taken by someone else before we bind it
        port = free_port()
        write_cfg(port)
        proc = spawn([str(python), "-c", _SERVE, HOST, str(port), str(os.getpid())],
                     env=env, cwd=workdir, log=log_path)
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
