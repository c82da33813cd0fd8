"""The JSON Schemas of the campaign file, generated from the pydantic models.

Two schemas, both committed under `schema/` (a test fails when either is stale; regenerate
both with `python -m compiler.schema`):

- `campaign.schema.json` (what `drpc schema` prints): a whole campaign, after its includes
  are merged;
- `campaign-fragment.schema.json`: the same definitions with nothing required wherever the
  include merge may fill a value in, for editors checking the files people edit: a campaign
  that uses `include:` and the shared fragments it includes (`campaigns/sites/*.yaml`). Lists
  are replaced, not merged, so an object inside a list (a stage, a ring) is complete in the
  file that holds it and keeps its required keys.

Point an editor at them with a first line `# yaml-language-server: $schema=<relative path>`.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from .model import Campaign

SCHEMA_BASE = "https://github.com/lsst-dm/drpc/schema/"
SCHEMA_FILE = "campaign.schema.json"
FRAGMENT_SCHEMA_FILE = "campaign-fragment.schema.json"
SCHEMA_ID = SCHEMA_BASE + SCHEMA_FILE
FRAGMENT_SCHEMA_ID = SCHEMA_BASE + FRAGMENT_SCHEMA_FILE
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _close_pattern_properties(node: Any) -> None:
    """A dict keyed by names (`sites`, `skymaps`, tract lists): a key off its pattern is wrong."""
    if isinstance(node, dict):
        if "patternProperties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_pattern_properties(value)
    elif isinstance(node, list):
        for value in node:
            _close_pattern_properties(value)


def campaign_schema() -> dict[str, Any]:
    schema = Campaign.model_json_schema(mode="validation")
    _close_pattern_properties(schema)
    return {"$schema": DIALECT, "$id": SCHEMA_ID, **schema}


def _mergeable_defs(schema: dict[str, Any]) -> set[str]:
    """Definitions reached from the root through mappings only (not through a list's items)."""
    defs = schema.get("$defs", {})
    seen: set[tuple[str, bool]] = set()
    mergeable: set[str] = set()

    def visit(node: Any, merged: bool) -> None:
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.rsplit("/", 1)[-1]
            if (name, merged) not in seen:
                seen.add((name, merged))
                if merged:
                    mergeable.add(name)
                visit(defs[name], merged)
        for key in ("properties", "patternProperties"):
            for value in node.get(key, {}).values():
                visit(value, merged)
        if isinstance(node.get("additionalProperties"), dict):
            visit(node["additionalProperties"], merged)
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            for value in node.get(key, []):
                visit(value, merged if key != "prefixItems" else False)
        if isinstance(node.get("items"), dict):
            visit(node["items"], False)

    visit(schema, True)
    return mergeable


def fragment_schema() -> dict[str, Any]:
    schema = copy.deepcopy(campaign_schema())
    for name in _mergeable_defs(schema):
        schema["$defs"][name].pop("required", None)
    schema.pop("required", None)
    schema["$id"] = FRAGMENT_SCHEMA_ID
    schema["title"] = "CampaignFragment"
    schema["description"] = (
        "A file of a drpc campaign that uses `include:`, or a fragment it includes (such as "
        "campaigns/sites/<site>.yaml): the campaign schema with nothing required where the "
        "include merge may supply it. `drpc validate` checks the merged campaign.")
    return schema


def _text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def schema_text() -> str:
    return _text(campaign_schema())


def fragment_schema_text() -> str:
    return _text(fragment_schema())


def write_schemas(folder: Path) -> list[Path]:
    """Write both schemas into `folder`; return the paths written."""
    written = []
    texts = ((SCHEMA_FILE, schema_text()), (FRAGMENT_SCHEMA_FILE, fragment_schema_text()))
    for name, text in texts:
        path = folder / name
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":  # python -m compiler.schema [FOLDER]: regenerate the committed schemas
    default = Path(__file__).resolve().parents[1] / "schema"
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    for written in write_schemas(target):
        print(written)
