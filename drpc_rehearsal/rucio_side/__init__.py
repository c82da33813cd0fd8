"""The rehearsal's code that runs in the Rucio venv (``.venv-rucio``), not in drpc's.

drpc's venv has no Rucio server package (its pins clash with lsst-daf-butler's), so everything
Rucio-side runs as a subprocess of the Rucio venv's python, which has no drpc installed. The
modules here therefore import only the standard library, rucio (inside their functions, so that
importing them anywhere costs nothing) and each other (relatively); never ``compiler`` nor
anything of drpc's venv. :mod:`drpc_rehearsal.rucio` runs them as::

    <rucio venv>/bin/python -I <this folder>/__main__.py MODULE:FUNCTION [SPEC]

(see :mod:`.__main__`): SPEC is a JSON object, the function's keyword arguments; the answer is
JSON on the last line of stdout. The modules:

* :mod:`.server`: the database build, the REST server, the installed package's layout and
  the ``server_call`` snippets (core API on the server's database);
* :mod:`.client`: RSEs and scopes, datasets, rules and the ``client_call`` snippets;
* :mod:`.daemons`: Rucio's judge-evaluator and conveyor (mock transfer tool that copies the
  bytes) and the STUCK fault;
* :mod:`.messages`: the Hermes step's reader of Rucio's ``messages`` table.
"""

from __future__ import annotations

#: Starts the line of stdout that holds a function's result (JSON).
RESULT_MARK = "@@JSON@@"
#: Starts the last line of stderr when a function raised: ``{"type", "message", "module"}``.
ERROR_MARK = "@@ERROR@@"
