"""The rehearsal's own errors: a service that cannot start or answer, a dependency not installed.

Both are user or environment errors, not bugs in drpc: they are :class:`compiler.errors.DrpcError`
with exit code 2 (usage/environment), so ``drpc rehearse`` prints ``drpc: error: <message>`` and
exits 2, with no traceback. A missing dependency's message says what to install.
"""

from __future__ import annotations

from compiler.errors import DrpcError, ExitCode

#: How to install the rehearsal's Python dependencies (confluent-kafka, daf_butler, ...).
REHEARSAL_EXTRA = "pip install 'drpc[rehearsal]'"
#: How to make the venv the Rucio server runs from.
RUCIO_INSTALL = (
    "run tools/bootstrap (it makes .venv-rucio in the checkout), or pip install "
    "\"rucio[postgresql]==41.5.1\" into a venv and name that venv with DRPC_RUCIO_VENV"
)
#: How to get PostgreSQL's server binaries.
POSTGRES_INSTALL = (
    "install PostgreSQL's server (tools/bootstrap does: apt-get install postgresql) or name "
    "the folder that holds its initdb with DRPC_PG_BINDIR"
)


class ServiceError(DrpcError, RuntimeError):
    """A rehearsal service failed to start, answer or stop."""

    exit_code = ExitCode.USAGE


class MissingDependencyError(ServiceError):
    """An optional dependency or a service's software is not installed; says what to install."""

    def __init__(self, what: str, hint: str) -> None:
        super().__init__(f"{what}: {hint}")
        self.what = what
        self.hint = hint


def missing_module(module: str, python: str, hint: str = REHEARSAL_EXTRA) -> MissingDependencyError:
    """`module` cannot be imported by `python`."""
    return MissingDependencyError(f"the Python module {module} is not installed for {python}",
                                  f"drpc rehearse needs it: {hint}")
