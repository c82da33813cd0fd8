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
from .postgres import PostgresCluster
from .rucio import RucioService, start_rucio_server


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
    Attributes once entered: ``postgres``, ``rucio``, ``broker`` (or None), ``timings``.
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
        self.postgres: PostgresCluster | None = None
        self.rucio: RucioService | None = None
        self.broker: KafkaBroker | None = None
        self.timings: dict[str, float] = {}

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        if self._stack is not None:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._install_signal_handlers()
        stack = ExitStack()
        self._stack = stack
        try:
            if self._want_kafka:
                t0 = time.monotonic()
                self.broker = stack.enter_context(
                    KafkaBroker(log=self.workdir / "kafka.log"))
                self.timings["kafka"] = time.monotonic() - t0
            db_url = None
            if self._want_postgres:
                t0 = time.monotonic()
                self.postgres = stack.enter_context(PostgresCluster())
                self.timings["postgres"] = time.monotonic() - t0
                db_url = self.postgres.url
            t0 = time.monotonic()
            self.rucio = stack.enter_context(start_rucio_server(
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
        if self.postgres is not None and self.postgres.pid is not None:
            out["postgres"] = self.postgres.pid
        if self.rucio is not None and self.rucio.is_running():
            out["rucio"] = self.rucio.pid
        if self.broker is not None and self.broker.pid is not None:
            out["kafka"] = self.broker.pid
        return out

    def ports(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if self.postgres is not None and self.postgres.port:
            out["postgres"] = self.postgres.port
        if self.rucio is not None:
            out["rucio"] = self.rucio.port
        if self.broker is not None and self.broker.bootstrap:
            out["kafka"] = self.broker.port
        return out

    def env(self) -> dict[str, str]:
        """Environment for the compiled scripts: the Rucio client's (see RucioService.env)."""
        return self._need_rucio().env()

    def _need_rucio(self) -> RucioService:
        if self.rucio is None:
            raise RuntimeError("Services not started")
        return self.rucio

    # -- steps -----------------------------------------------------------------------------------
    def conveyor_cycle(self, copy_files: bool = True,
                       lose: str | Iterable[str] = ()) -> CycleResult:
        return conveyor_cycle(self._need_rucio(), copy_files=copy_files, lose=lose)

    def run_until_settled(self, rule_ids: Iterable[str], *, max_cycles: int = 10,
                          lose: str | Iterable[str] = ()
                          ) -> tuple[dict[str, str], list[CycleResult]]:
        return run_until_settled(self._need_rucio(), rule_ids, max_cycles=max_cycles, lose=lose)

    def make_stuck(self, rule_id: str, names: Iterable[str] | None = None) -> list[str]:
        return make_stuck(self._need_rucio(), rule_id, names)

    def hermes_step(self) -> HermesResult:
        if self.broker is None:
            raise RuntimeError("Services started without kafka")
        return hermes_step(self._need_rucio(), self.broker)
