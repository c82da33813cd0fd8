"""Shared pytest fixtures for the drpc test suite."""

from __future__ import annotations

import pytest

try:  # `tests` importable as a package (rootdir on sys.path) ...
    from tests.services.rucio_server import RucioServer, start_rucio_server
except ImportError:  # ... or pytest's rootdir-less prepend of tests/ itself
    from services.rucio_server import RucioServer, start_rucio_server

SITES = ("SLAC", "IN2P3", "LANCS", "RAL")
RUCIO_TEST_RSES = [f"{site}_{kind}" for kind in ("BUTLER_DISK", "RAW_DISK") for site in SITES]
RUCIO_TEST_SCOPES = ["test"]


@pytest.fixture(scope="session")
def rucio_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> RucioServer:
    """A real Rucio 41.5.1 server on 127.0.0.1 (SQLite), one per session (per xdist worker)."""
    server = start_rucio_server(
        tmp_path_factory.mktemp("rucio-server"), rses=RUCIO_TEST_RSES, scopes=RUCIO_TEST_SCOPES
    )
    request.addfinalizer(server.stop)
    return server
