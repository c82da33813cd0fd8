"""The committed JSON Schemas match the models, say what every field is, and work in editors.

Editors (yaml-language-server) and `check-jsonschema` read the committed schemas with an
ECMA-262 regex engine, so every pattern must compile there with the `u` flag and mean what
it means to pydantic-core's Rust engine; each example and fragment names its schema in its
first line and validates against it with check-jsonschema's default engine.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import jsonschema
import pytest
from pydantic import StringConstraints, TypeAdapter, ValidationError

from compiler.loader import load_campaign
from compiler.schema import fragment_schema_text, schema_text
from tests.helpers import CAMPAIGNS, ROOT

COMMITTED = ROOT / "schema" / "campaign.schema.json"
FRAGMENT = ROOT / "schema" / "campaign-fragment.schema.json"
SCHEMAS = (COMMITTED, FRAGMENT)
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
EXAMPLES = sorted(p.name for p in CAMPAIGNS.glob("*.yaml"))
EDITED_FILES = sorted(p.relative_to(CAMPAIGNS).as_posix() for p in CAMPAIGNS.rglob("*.yaml"))
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)\n")


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def nodes(node: Any, path: str = "#") -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from nodes(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from nodes(value, f"{path}/{i}")


def patterns(schema: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for _, node in nodes(schema):
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.add(node["pattern"])
            found.update(node.get("patternProperties", {}))
    return found


def check_jsonschema(schema: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CHECK_JSONSCHEMA), "--schemafile", str(schema), *map(str, files)],
                          capture_output=True, text=True, timeout=120)


def node_js(script: str, data: Any) -> Any:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    result = subprocess.run([node, "-e", script], input=json.dumps(data), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# -- the committed files ----------------------------------------------------------------------------

def test_committed_schema_is_fresh() -> None:
    assert COMMITTED.read_text() == schema_text(), (
        "schema/campaign.schema.json is stale: run `python -m compiler.schema`")


def test_committed_fragment_schema_is_fresh() -> None:
    assert FRAGMENT.read_text() == fragment_schema_text(), (
        "schema/campaign-fragment.schema.json is stale: run `python -m compiler.schema`")


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda p: p.name)
def test_schema_is_valid_json_schema(schema: Path) -> None:
    jsonschema.Draft202012Validator.check_schema(load(schema))


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda p: p.name)
def test_every_field_and_object_has_a_description(schema: Path) -> None:
    doc = load(schema)
    missing = []
    for path, node in nodes(doc):
        if path.endswith("/properties") and isinstance(node, dict):
            missing += [f"{path}/{name}" for name, prop in node.items() if not prop.get("description")]
    missing += [f"#/$defs/{name}" for name, d in doc["$defs"].items() if not d.get("description")]
    assert not missing, "fields without a description:\n" + "\n".join(missing)
    assert sum(1 for p, n in nodes(doc) if p.endswith("/properties") for _ in n) > 100


def test_stage_weight_is_documented() -> None:
    weight = load(COMMITTED)["$defs"]["Stage"]["properties"]["weight"]
    assert "core-hours" in weight["description"] and "Default 1" in weight["description"]
    assert weight["default"] == 1.0


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda p: p.name)
def test_every_number_is_bounded(schema: Path) -> None:
    unbounded = []
    for path, node in nodes(load(schema)):
        if isinstance(node, dict) and node.get("type") in ("number", "integer"):
            low = "minimum" in node or "exclusiveMinimum" in node
            high = "maximum" in node or "exclusiveMaximum" in node
            if not (low and high):
                unbounded.append(path)
    assert not unbounded, unbounded


def test_dict_keys_are_checked_by_the_schema() -> None:
    sites = load(COMMITTED)["properties"]["sites"]
    assert sites["additionalProperties"] is False and list(sites["patternProperties"]) == [
        "^[a-z][a-z0-9-]{0,39}$"]


def test_fragment_schema_requires_nothing_a_merge_may_supply() -> None:
    main, fragment = load(COMMITTED), load(FRAGMENT)
    assert "required" in main and "required" not in fragment
    assert "required" in main["$defs"]["Site"] and "required" not in fragment["$defs"]["Site"]
    # lists are replaced, not merged: an object inside a list is complete where it is written
    for name in ("Stage", "Ring", "DatasetSpec", "CrossCheck", "AncillaryInput"):
        assert fragment["$defs"][name]["required"] == main["$defs"][name]["required"]
    assert fragment["$defs"]["Site"]["properties"] == main["$defs"]["Site"]["properties"]


# -- the examples -----------------------------------------------------------------------------------

@pytest.mark.parametrize("campaign", EXAMPLES)
def test_examples_validate_against_schema(campaign: str) -> None:
    jsonschema.Draft202012Validator(load(COMMITTED)).validate(load_campaign(CAMPAIGNS / campaign).data)


def test_schema_rejects_unknown_keys() -> None:
    data = load_campaign(CAMPAIGNS / "3x2.yaml").data
    data["sites"]["usdf"]["colour"] = "red"
    with pytest.raises(jsonschema.ValidationError, match="colour"):
        jsonschema.Draft202012Validator(load(COMMITTED)).validate(data)


def schema_named_by(path: Path) -> Path:
    match = MODELINE.match(path.read_text())
    assert match, f"{path}: the first line must be `# yaml-language-server: $schema=<relative path>`"
    return (path.parent / match.group(1)).resolve()


@pytest.mark.parametrize("name", EDITED_FILES)
def test_every_example_and_fragment_names_the_right_schema(name: str) -> None:
    path = CAMPAIGNS / name
    text = path.read_text()
    partial = name.startswith("sites/") or re.search(r"^include:", text, re.MULTILINE) is not None
    assert schema_named_by(path) == (FRAGMENT if partial else COMMITTED).resolve()


def test_check_jsonschema_accepts_every_example_and_fragment() -> None:
    by_schema: dict[Path, list[Path]] = {}
    for name in EDITED_FILES:
        by_schema.setdefault(schema_named_by(CAMPAIGNS / name), []).append(CAMPAIGNS / name)
    for schema, files in by_schema.items():
        result = check_jsonschema(schema, *files)
        assert result.returncode == 0, result.stdout + result.stderr


def test_check_jsonschema_accepts_the_merged_examples(tmp_path: Path) -> None:
    files = []
    for campaign in EXAMPLES:
        files.append(tmp_path / f"{campaign}.json")
        files[-1].write_text(json.dumps(load_campaign(CAMPAIGNS / campaign).data))
    result = check_jsonschema(COMMITTED, *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_jsonschema_rejects_a_broken_fragment(tmp_path: Path) -> None:
    text = (CAMPAIGNS / "sites" / "usdf.yaml").read_text()
    for old, new in (("    cloud: US\n", "    cloud: UK\n    cores: .inf\n"),
                     ("    facility: USDF (SLAC)\n", '    facility: "USDF\\u2028panda_site: X"\n'),
                     ("fs_prefix: file:///", "fs_prefix: /"),
                     ("      namespace: ingestd\n", "      namespace: ingestd\n      replicas: 1e999\n")):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    broken = tmp_path / "usdf.yaml"
    broken.write_text(text)
    result = check_jsonschema(FRAGMENT, broken)
    assert result.returncode == 1, result.stdout + result.stderr
    for where in ("$.sites.usdf.cloud", "$.sites.usdf.cores", "$.sites.usdf.facility",
                  "$.sites.usdf.rucio.fs_prefix", "$.sites.usdf.ingestd.replicas"):
        assert where in result.stdout, result.stdout


def test_check_jsonschema_requires_a_whole_campaign_without_includes(tmp_path: Path) -> None:
    result = check_jsonschema(COMMITTED, CAMPAIGNS / "sites" / "usdf.yaml")
    assert result.returncode == 1 and "'apiVersion' is a required property" in result.stdout


# -- the patterns -----------------------------------------------------------------------------------

def all_patterns() -> list[str]:
    return sorted(patterns(load(COMMITTED)) | patterns(load(FRAGMENT)))


def test_every_pattern_compiles_in_python_and_in_ecma262_unicode_mode() -> None:
    for pattern in all_patterns():
        re.compile(pattern)
    errors = node_js("""
        const out = {};
        for (const p of JSON.parse(require("fs").readFileSync(0, "utf8"))) {
          try { new RegExp(p, "u"); } catch (e) { out[p] = e.message; }
        }
        console.log(JSON.stringify(out));
    """, all_patterns())
    assert errors == {}


# Every character that matters (controls, white space, line breaks, quotes) alone, after a letter
# and inside a file URL, so each pattern sees it where its class applies.
PROBE_CHARS = [chr(c) for c in range(0x00, 0xA1)] + [
    "\u1680", "\u2000", "\u200a", "\u200b", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000",
    "\ufeff", "\u00e9", "\U0001F600"]
PROBES = sorted({s for c in PROBE_CHARS for s in (c, f"a{c}", f"a{c}b", f"file:///a{c}", f"A{c}:1")}
                | {"", "a", "file:///data/", "kafka:9092", "USDF (SLAC)", "a" * 501})


def test_patterns_mean_the_same_to_pydantic_and_ecma262() -> None:
    """What drpc validate accepts is what an editor accepts, character by character."""
    pats = all_patterns()
    ecma = node_js("""
        const {patterns, probes} = JSON.parse(require("fs").readFileSync(0, "utf8"));
        console.log(JSON.stringify(patterns.map(p => probes.map(s => new RegExp(p, "u").test(s)))));
    """, {"patterns": pats, "probes": PROBES})
    differ = []
    for pattern, row in zip(pats, ecma, strict=True):
        adapter = TypeAdapter(Annotated[str, StringConstraints(pattern=pattern)])
        for probe, editor in zip(PROBES, row, strict=True):
            try:
                adapter.validate_python(probe)
                ours = True
            except ValidationError:
                ours = False
            if ours != editor:
                differ.append((pattern, probe, ours, editor))
    assert not differ, differ[:20]
