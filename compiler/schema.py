"""The JSON Schema of the campaign file, generated from the pydantic models."""

from __future__ import annotations

import json
from typing import Any

from .model import Campaign

SCHEMA_ID = "https://github.com/lsst-dm/drpc/schema/campaign.schema.json"


def campaign_schema() -> dict[str, Any]:
    schema = Campaign.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def schema_text() -> str:
    return json.dumps(campaign_schema(), indent=2, sort_keys=True) + "\n"
