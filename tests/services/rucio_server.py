"""A real Rucio server on loopback, for tests: a re-export of :mod:`drpc_rehearsal.rucio`
(the rehearsal's Rucio service), kept so that existing imports work."""

from __future__ import annotations

from drpc_rehearsal.rucio import (
    API_ENDPOINTS,
    CALL_TIMEOUT,
    HOST,
    ROOT_PASSWORD,
    ROOT_USERNAME,
    START_TIMEOUT,
    RucioServer,
    RucioService,
    RucioServiceError,
    default_rucio_venv,
    rucio_python,
    start_rucio_server,
)

__all__ = [
    "API_ENDPOINTS", "CALL_TIMEOUT", "HOST", "ROOT_PASSWORD", "ROOT_USERNAME", "START_TIMEOUT",
    "RucioServer", "RucioService", "RucioServiceError", "default_rucio_venv", "rucio_python",
    "start_rucio_server",
]
