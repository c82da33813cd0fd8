"""A real Rucio server on loopback, for tests.

Follows /work/shared/reference/rucio_server.md (PyPI ``rucio`` 41.5.1).  The test process runs in
``.venv``, which lacks the Rucio server package (its pins clash with lsst-daf-butler's), so
everything Rucio-side runs as a subprocess of the ``.venv-rucio`` python made by
``tools/bootstrap``: the database build, the Flask REST server, and the client/admin snippets of
:meth:`RucioServer.client_call` and :meth:`RucioServer.server_call`.

The server runs in its own process group and is stopped with :meth:`RucioServer.stop` (also at
interpreter exit, as a safety net).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The venv with the Rucio server package; override with DRPC_RUCIO_VENV.
RUCIO_VENV = Path(os.environ.get("DRPC_RUCIO_VENV", REPO_ROOT / ".venv-rucio"))

HOST = "127.0.0.1"
ROOT_USERNAME = "ddmlab"
ROOT_PASSWORD = "secret"
# Only blueprints that exist in rucio 41.5 (the default list names `meta`, which does not).
API_ENDPOINTS = (
    "accounts, auth, config, dids, locks, ping, replicas, requests, rses, rules, scopes, "
    "subscriptions"
)
START_TIMEOUT = 90.0  # seconds until the server must answer /ping
CALL_TIMEOUT = 300.0  # seconds for one client_call/server_call


class RucioServiceError(RuntimeError):
    """A Rucio-side step (DB build, server start, client/server snippet) failed."""


def rucio_python(venv: Path = RUCIO_VENV) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        raise RucioServiceError(
            f"{python} not found: run tools/bootstrap to create {venv} (PyPI rucio==41.5.1)"
        )
    return python


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _clean_env(venv: Path) -> dict[str, str]:
    """os.environ minus the test venv's traces, with ``venv``'s bin first on PATH."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "__PYVENV_LAUNCHER__",
            "RUCIO_CLIENT_MODE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    test_bin = str(Path(sys.prefix) / "bin")
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != test_bin]
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *path])
    env["VIRTUAL_ENV"] = str(venv)
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run_python(python: Path, code: str, env: dict[str, str], cwd: Path, what: str,
                timeout: float = CALL_TIMEOUT) -> str:
    try:
        proc = subprocess.run(
            [str(python), "-c", code],
            env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RucioServiceError(
            f"{what}: timed out after {timeout} s\n--- code ---\n{code}"
        ) from exc
    if proc.returncode != 0:
        raise RucioServiceError(
            f"{what}: exit code {proc.returncode}\n--- code ---\n{code}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return proc.stdout


def _normalize_db_url(db_url: str) -> str:
    # Plain postgresql:// means psycopg2 to SQLAlchemy; .venv-rucio has psycopg 3.
    if db_url.startswith("postgresql://") or db_url.startswith("postgres://"):
        return "postgresql+psycopg://" + db_url.split("://", 1)[1]
    return db_url


def _rucio_cfg(db_url: str, alembic_ini: Path, port: int, token_file: Path) -> str:
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
        """)


def _alembic_ini(template: Path, db_url: str, script_location: Path) -> str:
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

def watchdog():  # exit when the test process is gone, even if it was SIGKILLed
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
for rse in spec["rses"]:
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
for src in spec["rses"]:
    for dst in spec["rses"]:
        if src != dst:
            c.add_distance(src, dst, {{"distance": 1}})
for scope in spec["scopes"]:
    c.add_scope("root", scope)
print("setup ok")
"""

_CLIENT_PRELUDE = "from rucio.client import Client\nc = Client()\n"


@dataclass
class RucioServer:
    url: str
    config_path: Path
    workdir: Path
    pid: int
    python: Path  # the .venv-rucio python
    rse_roots: dict[str, Path] = field(default_factory=dict)
    _proc: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    @property
    def venv(self) -> Path:
        return self.python.parent.parent

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def env(self) -> dict[str, str]:
        """Environment for generated scripts / the ``rucio`` CLI against this server:
        RUCIO_CONFIG set, .venv-rucio/bin first on PATH (so ``rucio`` and ``python`` are the
        server venv's), the test venv's PYTHONPATH/VIRTUAL_ENV dropped."""
        env = _clean_env(self.venv)
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
        return _run_python(self.python, _CLIENT_PRELUDE + textwrap.dedent(code), self.env(),
                           self.workdir, "rucio client_call", timeout)

    def client_json(self, expr: str, setup: str = "") -> object:
        """Evaluate a Python expression (after ``setup``) with ``c`` available; return it
        decoded from JSON (non-JSON values such as datetimes become strings)."""
        code = textwrap.dedent(setup) + (
            "\nimport json as _json\n"
            f"print('@@JSON@@' + _json.dumps({expr}, default=str))\n"
        )
        out = self.client_call(code)
        for line in reversed(out.splitlines()):
            if line.startswith("@@JSON@@"):
                return json.loads(line[len("@@JSON@@"):])
        raise RucioServiceError(f"client_json: no result in output:\n{out}")

    def server_call(self, code: str, timeout: float = CALL_TIMEOUT) -> str:
        """Run ``code`` in .venv-rucio against the server's database directly (core API,
        daemons such as the conveyor), with RUCIO_CONFIG set; return its stdout."""
        return _run_python(self.python, textwrap.dedent(code), self.server_env(), self.workdir,
                           "rucio server_call", timeout)

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """Stop the server (its whole process group); idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        atexit.unregister(self.stop)
        _kill_group(proc)


def _kill_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=grace)
    else:
        # The leader is gone; make sure nothing it started survives.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_until_up(proc: subprocess.Popen, url: str, log_path: Path, timeout: float) -> None:
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
    out = _run_python(
        python,
        "import os, sys, rucio\n"
        "print(os.path.dirname(rucio.__file__))\nprint(sys.prefix)\n",
        _clean_env(python.parent.parent), Path.cwd(), "locating the rucio package", 60,
    ).split()
    package, prefix = Path(out[0]), Path(out[1])
    template = prefix / "rucio" / "etc" / "alembic.ini.template"
    if not template.exists():
        raise RucioServiceError(f"{template} not found (not the full PyPI rucio package?)")
    return template, package / "db" / "sqla" / "migrate_repo"


def start_rucio_server(workdir: Path, *, rses: list[str], scopes: list[str],
                       db_url: str | None = None) -> RucioServer:
    """Start a Rucio server on 127.0.0.1 (free port) with its files in ``workdir``.

    The database is SQLite in ``workdir`` unless ``db_url`` (e.g. a PostgreSQL URL; it must
    point to an empty database) is given.  Creates ``rses`` (deterministic, ``file`` protocol
    on ``workdir/rses/<RSE>/``, identity lfn2pfn, unlimited root quota, distance 1 between every
    pair) and ``scopes`` (owned by root).  Call ``stop()`` when done.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    python = rucio_python()
    db_url = _normalize_db_url(db_url) if db_url else f"sqlite:///{workdir / 'rucio.db'}"
    config_path = workdir / "rucio.cfg"
    alembic_ini = workdir / "alembic.ini"
    token_file = workdir / "tokens" / "auth_token_root"
    token_file.parent.mkdir(exist_ok=True)

    template, migrate_repo = _rucio_layout(python)
    alembic_ini.write_text(_alembic_ini(template, db_url, migrate_repo))

    def write_cfg(port: int) -> None:
        config_path.write_text(_rucio_cfg(db_url, alembic_ini, port, token_file))

    env = _clean_env(python.parent.parent)
    env["RUCIO_CONFIG"] = str(config_path)
    write_cfg(0)
    _run_python(python, _BUILD_DB, env, workdir, "building the Rucio database")

    log_path = workdir / "server.log"
    last_error: Exception | None = None
    for _attempt in range(3):  # a free port may be taken by someone else before we bind it
        port = _free_port()
        write_cfg(port)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [str(python), "-c", _SERVE, HOST, str(port), str(os.getpid())],
                env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        server = RucioServer(url=f"http://{HOST}:{port}", config_path=config_path,
                             workdir=workdir, pid=proc.pid, python=python, _proc=proc)
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
        roots = {}
        for rse in rses:
            root = workdir / "rses" / rse
            root.mkdir(parents=True, exist_ok=True)
            roots[rse] = str(root) + "/"
        server.rse_roots = {rse: Path(p) for rse, p in roots.items()}
        spec = json.dumps({"rses": list(rses), "scopes": list(scopes), "roots": roots})
        server.client_call(_SETUP.format(spec=spec))
    except BaseException:
        server.stop()
        raise
    return server
