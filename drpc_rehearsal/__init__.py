"""The local rehearsal: every site of a campaign stood in for on one machine.

The services layer (this package's modules) starts PostgreSQL, a real Rucio server with one
file-protocol RSE per site, Rucio's conveyor with a mock transfer tool that copies the bytes,
a Kafka mock broker and a Rubin-style Hermes step, all on 127.0.0.1, and stops them all.
Nothing here imports confluent-kafka or Rucio at import time: the broker and Hermes need
confluent-kafka (the ``rehearsal`` extra) only when used; Rucio runs from ``.venv-rucio``.
"""

from __future__ import annotations

from ._proc import ServiceError
from .conveyor import CycleResult, conveyor_cycle, make_stuck, rule_states, run_until_settled
from .hermes import HermesResult, hermes_step
from .kafka import KafkaBroker
from .postgres import PostgresCluster
from .rucio import RucioServer, RucioService, RucioServiceError, start_rucio_server
from .services import Services, Terminated

__all__ = [
    "CycleResult", "HermesResult", "KafkaBroker", "PostgresCluster", "RucioServer",
    "RucioService", "RucioServiceError", "ServiceError", "Services", "Terminated",
    "conveyor_cycle", "hermes_step", "make_stuck", "rule_states", "run_until_settled",
    "start_rucio_server",
]
