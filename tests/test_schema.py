"""The committed JSON Schema matches the models, and every example campaign validates against it."""

from __future__ import annotations

import json

import jsonschema
import pytest

from compiler.loader import load_campaign
from compiler.schema import schema_text
from tests.helpers import CAMPAIGNS, ROOT

COMMITTED = ROOT / "schema" / "campaign.schema.json"


def test_committed_schema_is_fresh() -> None:
    assert COMMITTED.read_text() == schema_text(), (
        "schema/campaign.schema.json is stale: run `drpc schema > schema/campaign.schema.json`")


def test_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(COMMITTED.read_text()))


@pytest.mark.parametrize("campaign", sorted(p.name for p in CAMPAIGNS.glob("*.yaml")))
def test_examples_validate_against_schema(campaign: str) -> None:
    schema = json.loads(COMMITTED.read_text())
    jsonschema.Draft202012Validator(schema).validate(load_campaign(CAMPAIGNS / campaign).data)


def test_schema_rejects_unknown_keys() -> None:
    schema = json.loads(COMMITTED.read_text())
    data = load_campaign(CAMPAIGNS / "3x2.yaml").data
    data["sites"]["usdf"]["colour"] = "red"
    with pytest.raises(jsonschema.ValidationError, match="colour"):
        jsonschema.Draft202012Validator(schema).validate(data)
