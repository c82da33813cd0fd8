"""The local rehearsal: every site of a campaign stood in for on one machine.

The services layer (this package's modules) starts PostgreSQL, a real Rucio server with one
file-protocol RSE per site, Rucio's conveyor with a mock transfer tool that copies the bytes,
a Kafka mock broker and a Rubin-style Hermes step, all on 127.0.0.1, and stops them all.

Importing any of it has no side effects: nothing imports confluent-kafka, Rucio or the LSST
stack at import time (the broker and Hermes need confluent-kafka, the ``rehearsal`` extra, only
when used; Rucio runs from its own venv, looked up when a server starts, with the code of
:mod:`.rucio_side`), and no signal handler, ``sys.path`` entry or environment variable is set.
A service or dependency that is missing is a :class:`ServiceError` (exit code 2, with what to
install), not a crash.
"""

from __future__ import annotations

from .conveyor import CycleResult, conveyor_cycle, make_stuck, rule_states, run_until_settled
from .errors import MissingDependencyError, ServiceError
from .hermes import HermesResult, hermes_step
from .kafka import KafkaBroker
from .postgres import PostgresCluster
from .rucio import RucioServer, RucioService, RucioServiceError, start_rucio_server
from .services import Services, Terminated

__all__ = [
    "CycleResult", "HermesResult", "KafkaBroker", "MissingDependencyError", "PostgresCluster",
    "RucioServer", "RucioService", "RucioServiceError", "ServiceError", "Services",
    "Terminated", "conveyor_cycle", "hermes_step", "make_stuck", "rule_states",
    "run_until_settled", "start_rucio_server",
]
