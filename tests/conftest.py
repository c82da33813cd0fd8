"""Shared pytest fixtures for the drpc test suite."""

from __future__ import annotations

import os
import tempfile

import pytest

try:  # `tests` importable as a package (rootdir on sys.path) ...
    from tests.services.rucio_server import RucioServer, start_rucio_server
except ImportError:  # ... or pytest's rootdir-less prepend of tests/ itself
    from services.rucio_server import RucioServer, start_rucio_server



def pytest_configure(config: pytest.Config) -> None:
    """The drpc processes the tests start (hundreds of `python -m compiler`, the rehearsal's own)
    keep their bytecode in a private cache outside the checkout, as an installed drpc keeps its
    .pyc files: where PYTHONDONTWRITEBYTECODE is set, each would compile every module of drpc
    from source again (a few hundred ms a process)."""
    if os.environ.get("PYTHONDONTWRITEBYTECODE") and not os.environ.get("PYTHONPYCACHEPREFIX"):
        os.environ["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(),
                                                         f"drpc-test-pycache-{os.getuid()}")
        del os.environ["PYTHONDONTWRITEBYTECODE"]


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the longest tests (the rehearsals, minutes each) first, so that pytest-xdist's two
    workers share them instead of one worker finishing them alone at the end."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("rehearsal") else 1)
