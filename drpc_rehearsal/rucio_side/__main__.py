"""Run one function of this package in the Rucio venv's python::

    python -I .../rucio_side/__main__.py MODULE:FUNCTION [SPEC]

SPEC (default: the first line of stdin) is a JSON object: the keyword arguments of the
function, which must be in its module's ``__all__``. The function's result is written as the last
line of stdout, ``@@JSON@@<json>`` (after a newline, so anything the function printed stays
apart); an exception exits 1 with its traceback on stderr and a last stderr line
``@@ERROR@@{"type": ..., "message": ..., "module": ...}`` (``module``: the one a
ModuleNotFoundError could not find).

``-I`` keeps this file's folder, PYTHONPATH and the user site-packages off ``sys.path``: the
package is loaded from this file's folder by explicit path, under its own name, so the Rucio
venv sees no other part of drpc (none of it is installed there) and nothing of drpc can shadow
one of its packages (drpc_rehearsal has a ``rucio.py``).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any


def load_package(name: str = "drpc_rucio_side") -> ModuleType:
    """This file's folder imported as package `name` (once per process)."""
    if name in sys.modules:
        return sys.modules[name]
    here = Path(__file__).resolve().parent
    spec = importlib.util.spec_from_file_location(name, here / "__init__.py",
                                                  submodule_search_locations=[str(here)])
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {here} as a package")
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    spec.loader.exec_module(package)
    return package


def resolve(package: ModuleType, command: str) -> Any:
    """The function ``MODULE:FUNCTION`` names, if its module exports it."""
    module_name, _, function_name = command.partition(":")
    if not module_name.isidentifier() or not function_name.isidentifier():
        raise ValueError(f"not MODULE:FUNCTION: {command!r}")
    module = importlib.import_module(f"{package.__name__}.{module_name}")
    if function_name not in getattr(module, "__all__", ()):
        raise ValueError(f"{module_name} has no command {function_name}")
    return getattr(module, function_name)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        sys.stderr.write(f"usage: {argv[0]} MODULE:FUNCTION [SPEC]\n")
        return 2
    package = load_package()
    try:
        function = resolve(package, argv[1])
        spec = json.loads(argv[2] if len(argv) == 3 else sys.stdin.readline() or "{}")
        if not isinstance(spec, dict):
            raise ValueError("SPEC must be a JSON object")
        result = function(**spec)
    except Exception as exc:
        traceback.print_exc()
        missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
        sys.stderr.write(package.ERROR_MARK + json.dumps(
            {"type": type(exc).__name__, "message": str(exc), "module": missing}) + "\n")
        return 1
    sys.stdout.write("\n" + package.RESULT_MARK + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
