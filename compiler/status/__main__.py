"""`python -m compiler.status [FOLDER]`: write the status model's JSON Schema into FOLDER
(default: the checkout's schema/, where it is committed as status.schema.json)."""

from __future__ import annotations

import sys
from pathlib import Path

from .model import STATUS_SCHEMA_FILE, schema_text

if __name__ == "__main__":
    default = Path(__file__).resolve().parents[2] / "schema"
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    target = folder / STATUS_SCHEMA_FILE
    target.write_text(schema_text())
    print(target)
