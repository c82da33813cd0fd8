"""A throw-away PostgreSQL cluster on 127.0.0.1, for the rehearsal's Rucio database.

Rucio stores rucio-register's `rubin_butler`/`rubin_sidecar` DID metadata through its JSON
metadata plugin, which it switches off on SQLite: the rehearsal therefore needs PostgreSQL.
Debian's server binaries (`/usr/lib/postgresql/<major>/bin`) are enough: `initdb` into a fresh
temporary directory, then the `postmaster` itself in the foreground (its PID is ours to stop; a
SIGINT is `pg_ctl stop -m fast`). PostgreSQL refuses to run as root, so as root every step runs
as the `postgres` user, with its files in a directory under /tmp that user owns (pytest's own
temporary directories are private to root).

Loopback only: TCP on 127.0.0.1, a password for the database user (scram), trust on the Unix
socket in the private socket directory, durability off (fsync) for speed.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

from ._proc import HOST, clean_env, free_port, spawn, stop_process
from .errors import POSTGRES_INSTALL, MissingDependencyError, ServiceError

__all__ = ["DEFAULT_BINDIRS", "PostgresCluster", "pg_bindir"]

#: Where Debian puts the server binaries; override with DRPC_PG_BINDIR.
DEFAULT_BINDIRS = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin",
                   "/usr/lib/postgresql/15/bin")
START_TIMEOUT = 60.0
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def pg_bindir() -> Path:
    """DRPC_PG_BINDIR, else the newest of Debian's; MissingDependencyError if it has no initdb."""
    env = os.environ.get("DRPC_PG_BINDIR")
    candidates = [env] if env else list(DEFAULT_BINDIRS)
    for cand in candidates:
        if cand and (Path(cand) / "initdb").exists():
            return Path(cand)
    where = f"DRPC_PG_BINDIR={env}" if env else ", ".join(candidates)
    raise MissingDependencyError(f"no PostgreSQL server binaries (initdb) in {where}",
                                 POSTGRES_INSTALL)


class PostgresCluster:
    """One PostgreSQL cluster with one database and one password-protected user.

    Use as a context manager, or call :meth:`start` and :meth:`stop` (idempotent)."""

    def __init__(self, *, database: str = "rucio", user: str = "rucio",
                 password: str | None = None, bindir: Path | None = None,
                 os_user: str | None = None) -> None:
        for ident in (database, user):
            if not _IDENT.match(ident):
                raise ValueError(f"not a plain SQL identifier: {ident!r}")
        self.database = database
        self.user = user
        self.password = password or secrets.token_hex(12)
        self.bindir = bindir or pg_bindir()
        #: The OS account that runs PostgreSQL: `postgres` when we are root, else ourselves.
        self.os_user = os_user if os_user is not None else (
            "postgres" if os.geteuid() == 0 else None)
        self.port: int = 0
        self.base: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- paths ---------------------------------------------------------------------------------
    @property
    def datadir(self) -> Path:
        assert self.base is not None, "not started"
        return self.base / "data"

    @property
    def sockdir(self) -> Path:
        assert self.base is not None, "not started"
        return self.base / "sock"

    @property
    def log_path(self) -> Path:
        assert self.base is not None, "not started"
        return self.base / "postgres.log"

    @property
    def url(self) -> str:
        """`postgresql://user:password@127.0.0.1:port/database` (SQLAlchemy adds its driver)."""
        return f"postgresql://{self.user}:{self.password}@{HOST}:{self.port}/{self.database}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        if self._proc is not None:
            return self
        try:
            self._initdb()
            self._serve()
            self._create_database()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster), SIGKILL of its group after 10 s, then
        remove the cluster's files. Idempotent."""
        proc, self._proc = self._proc, None
        stop_process(proc, sig=signal.SIGINT, grace=10.0)
        base, self.base = self.base, None
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)

    # -- steps ---------------------------------------------------------------------------------
    def _run(self, argv: list[str], what: str, timeout: float = 120.0) -> str:
        proc = subprocess.run(argv, env=self._env(), cwd=self.base, capture_output=True,
                              text=True, timeout=timeout, check=False, user=self.os_user,
                              group=self._gid())
        if proc.returncode != 0:
            raise ServiceError(f"{what}: exit code {proc.returncode}\n{proc.stdout}{proc.stderr}")
        return proc.stdout

    def _env(self) -> dict[str, str]:
        env = clean_env()
        env.update(LC_ALL="C", LANG="C", PGTZ="UTC", TZ="UTC")
        if self.os_user:
            env["HOME"] = str(self.base)
            env["USER"] = env["LOGNAME"] = self.os_user
        return env

    def _gid(self) -> int | None:
        return pwd.getpwnam(self.os_user).pw_gid if self.os_user else None

    @staticmethod
    def reap_stale(max_age: float = 600.0) -> list[Path]:
        """Remove the files of clusters whose harness was SIGKILLed (the postmaster died with
        it, its temporary directory stayed): /tmp/drpc-pg-* older than `max_age` seconds with
        no live postmaster."""
        removed = []
        for base in Path("/tmp").glob("drpc-pg-*"):
            try:
                if time.time() - base.stat().st_mtime < max_age:
                    continue
                pidfile = base / "data" / "postmaster.pid"
                if pidfile.exists():
                    pid = int(pidfile.read_text().split()[0])
                    if Path(f"/proc/{pid}").exists():
                        continue
            except (OSError, ValueError, IndexError):
                continue
            shutil.rmtree(base, ignore_errors=True)
            removed.append(base)
        return removed

    def _initdb(self) -> None:
        self.reap_stale()
        # /tmp itself (not TMPDIR or pytest's private tree) so that `postgres` can reach it
        self.base = Path(tempfile.mkdtemp(prefix="drpc-pg-", dir="/tmp" if self.os_user else None))
        (self.base / "data").mkdir()
        (self.base / "sock").mkdir()
        pwfile = self.base / "superuser.pw"
        pwfile.write_text(secrets.token_hex(12) + "\n")
        if self.os_user:
            entry = pwd.getpwnam(self.os_user)
            for path in (self.base, self.base / "data", self.base / "sock", pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chmod(self.base, 0o700)
        self._run([str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres",
                   "--pwfile", str(pwfile), "-E", "UTF8", "--locale=C", "--no-sync",
                   "--no-instructions", "--auth-local=trust", "--auth-host=scram-sha-256"],
                  "initdb")
        if self.os_user:
            entry = pwd.getpwnam(self.os_user)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)

    def _serve(self) -> None:
        last = ""
        for _attempt in range(5):  # a free port may be taken before the postmaster binds it
            self.port = free_port()
            if self.log_path.exists():
                self.log_path.unlink()
            self._proc = spawn(
                [str(self.bindir / "postgres"), "-D", str(self.datadir),
                 "-c", f"listen_addresses={HOST}", "-p", str(self.port),
                 "-c", f"unix_socket_directories={self.sockdir}",
                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=200",
                 "-c", "logging_collector=off"],
                env=self._env(), cwd=self.base, log=self._log_file(), user=self.os_user,
                deathsig=signal.SIGINT)
            if self._wait_ready():
                return
            last = self.log_path.read_text(errors="replace")[-3000:]
            stop_process(self._proc, sig=signal.SIGINT)
            self._proc = None
            if "could not bind" not in last and "Address already in use" not in last:
                break
        raise ServiceError(f"PostgreSQL did not start; log:\n{last}")

    def _log_file(self) -> Path:
        log = self.log_path
        log.touch()
        if self.os_user:
            entry = pwd.getpwnam(self.os_user)
            os.chown(log, entry.pw_uid, entry.pw_gid)
        return log

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        isready = [str(self.bindir / "pg_isready"), "-q", "-h", HOST, "-p", str(self.port),
                   "-d", "postgres", "-U", "postgres"]
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if subprocess.run(isready, env=self._env(), check=False,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
                return True
            time.sleep(0.05)
        return False

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser over the private Unix socket; return psql's output."""
        return self._run([str(self.bindir / "psql"), "-X", "-q", "-A", "-t",
                          "-v", "ON_ERROR_STOP=1", "-h", str(self.sockdir), "-p", str(self.port),
                          "-U", "postgres", "-d", database, "-c", sql], "psql")

    def _create_database(self) -> None:
        pw = self.password.replace("'", "''")
        self.psql(f"CREATE ROLE {self.user} LOGIN PASSWORD '{pw}'")
        self.psql(f"CREATE DATABASE {self.database} OWNER {self.user}")
