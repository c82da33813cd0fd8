"""Every service a rehearsal needs, started together and stopped together.

:class:`Services` is a context manager (an ExitStack underneath) that starts, on 127.0.0.1 and
free ports: a PostgreSQL cluster, a Rucio server on it (one RSE per rehearsal site, file
protocol on a local folder, mock transfer tool) and a Kafka mock broker. Leaving the ``with``
block stops them in reverse order by their process groups, whatever the reason (normal exit,
exception, Ctrl-C; SIGTERM and SIGHUP are turned into the same exit while the block runs, when
entered from the main thread). Each process also dies with the harness if the harness is
SIGKILLed (parent-death signal / watchdog), so a rehearsal never leaves anything running.

    with Services(workdir, rses={"SLAC_BUTLER_DISK": root1, ...}, scopes=["dr1"]) as svc:
        ... run the compiled scripts with env=svc.rucio.env() ...
        svc.conveyor_cycle()
        svc.hermes_step()
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any, Self

from .conveyor import CycleResult, conveyor_cycle, make_stuck, run_until_settled
from .hermes import HermesResult, hermes_step
from .kafka import KafkaBroker
from .postgres import PostgresCluster, pg_bindir
from .rucio import RucioService, rucio_python, start_rucio_server

__all__ = ["Services", "Terminated"]


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM/SIGHUP while Services is active (so that the
    ``with`` block unwinds and stops everything)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signal.Signals(signum).name}")
        self.signum = signum


class Services:
    """PostgreSQL + Rucio (+ Kafka) for one rehearsal.

    ``rses``: RSE names (roots under ``workdir/rses/``) or a mapping RSE -> local root folder.
    ``kafka=False`` skips the broker; ``postgres=False`` puts Rucio on SQLite (then the JSON
    DID-metadata plugin is off: no ``rubin_*`` metadata, so no Hermes events).
    Once entered: ``postgres``, ``rucio``, ``broker`` (each a RuntimeError before it started, or
    when asked for without it), ``timings``; they stay readable after :meth:`stop`.
    Signal handlers (SIGTERM, SIGHUP -> :class:`Terminated`) are installed only while entered.
    """

    def __init__(self, workdir: Path, *, rses: Iterable[str] | Mapping[str, Path | str],
                 scopes: Iterable[str], kafka: bool = True, postgres: bool = True,
                 rucio_venv: Path | None = None, handle_signals: bool = True) -> None:
        self.workdir = Path(workdir).resolve()
        if isinstance(rses, Mapping):
            self._roots = {rse: Path(root) for rse, root in rses.items()}
        else:
            self._roots = {rse: self.workdir / "rses" / rse for rse in rses}
        self._scopes = list(scopes)
        self._want_kafka = kafka
        self._want_postgres = postgres
        self._venv = rucio_venv
        self._handle_signals = handle_signals
        self._stack: ExitStack | None = None
        self._old_handlers: dict[int, Any] = {}
        self._stopping = False
        self._postgres: PostgresCluster | None = None
        self._rucio: RucioService | None = None
        self._broker: KafkaBroker | None = None
        self.timings: dict[str, float] = {}

    # -- the services --------------------------------------------------------------------------
    @property
    def postgres(self) -> PostgresCluster:
        if self._postgres is None:
            raise RuntimeError("Services not started" if self._want_postgres
                               else "Services started without PostgreSQL")
        return self._postgres

    @property
    def rucio(self) -> RucioService:
        if self._rucio is None:
            raise RuntimeError("Services not started")
        return self._rucio

    @property
    def broker(self) -> KafkaBroker:
        if self._broker is None:
            raise RuntimeError("Services not started" if self._want_kafka
                               else "Services started without kafka")
        return self._broker

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        if self._stack is not None:
            return self
        # What is not installed fails now, before anything starts (MissingDependencyError).
        rucio_python(self._venv)
        if self._want_postgres:
            pg_bindir()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._install_signal_handlers()
        stack = ExitStack()
        self._stack = stack
        try:
            if self._want_kafka:
                t0 = time.monotonic()
                self._broker = stack.enter_context(
                    KafkaBroker(log=self.workdir / "kafka.log"))
                self.timings["kafka"] = time.monotonic() - t0
            db_url = None
            if self._want_postgres:
                t0 = time.monotonic()
                self._postgres = stack.enter_context(PostgresCluster())
                self.timings["postgres"] = time.monotonic() - t0
                db_url = self._postgres.url
            t0 = time.monotonic()
            self._rucio = stack.enter_context(start_rucio_server(
                self.workdir / "rucio", rse_roots=self._roots, scopes=self._scopes,
                db_url=db_url, venv=self._venv))
            self.timings["rucio"] = time.monotonic() - t0
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything (reverse order of start); idempotent."""
        stack, self._stack = self._stack, None
        self._stopping = True  # a second SIGTERM must not interrupt the shutdown
        try:
            if stack is not None:
                stack.close()
        finally:
            self._restore_signal_handlers()
            self._stopping = False

    def _install_signal_handlers(self) -> None:
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            if not self._stopping:
                raise Terminated(signum)

        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, handler)

    def _restore_signal_handlers(self) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers.clear()

    # -- introspection ---------------------------------------------------------------------------
    def pids(self) -> dict[str, int]:
        """Process (group) id of each running service."""
        out: dict[str, int] = {}
        if self._postgres is not None and self._postgres.pid is not None:
            out["postgres"] = self._postgres.pid
        if self._rucio is not None and self._rucio.is_running():
            out["rucio"] = self._rucio.pid
        if self._broker is not None and self._broker.pid is not None:
            out["kafka"] = self._broker.pid
        return out

    def ports(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if self._postgres is not None and self._postgres.port:
            out["postgres"] = self._postgres.port
        if self._rucio is not None:
            out["rucio"] = self._rucio.port
        if self._broker is not None and self._broker.bootstrap:
            out["kafka"] = self._broker.port
        return out

    def env(self) -> dict[str, str]:
        """Environment for the compiled scripts: the Rucio client's (see RucioService.env)."""
        return self.rucio.env()

    # -- steps -----------------------------------------------------------------------------------
    def conveyor_cycle(self, copy_files: bool = True,
                       lose: str | Iterable[str] = ()) -> CycleResult:
        return conveyor_cycle(self.rucio, copy_files=copy_files, lose=lose)

    def run_until_settled(self, rule_ids: Iterable[str], *, max_cycles: int = 10,
                          lose: str | Iterable[str] = ()
                          ) -> tuple[dict[str, str], list[CycleResult]]:
        return run_until_settled(self.rucio, rule_ids, max_cycles=max_cycles, lose=lose)

    def make_stuck(self, rule_id: str, names: Iterable[str] | None = None) -> list[str]:
        return make_stuck(self.rucio, rule_id, names)

    def hermes_step(self) -> HermesResult:
        return hermes_step(self.rucio, self.broker)
