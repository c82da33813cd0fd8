"""Rucio rules, DID names and rucio-register configs, checked by the real consumers.

- every `<transfer>.rules.json` rule validates with Rucio 41.5.1's own
  `rucio.common.schema.validate_schema("rule", ...)` (and its DIDs with the `dids` schema, which
  carries the scope/name limits), run in .venv-rucio;
- every DID name obeys Rucio's limits, also for a campaign with names as long as the spec allows;
- every `rucio-register.yaml` loads with lsst-rucio-register's own `RucioRegisterConfig`, and
  rucio-register's own DID naming (`RucioInterface._make_did`) turns a file under the plan's
  datastore root into the datastore-relative DID name that Rucio maps back to the same file.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from compiler.defaults import STORAGE_CLASSES
from compiler.naming import rucio_dataset_name
from compiler.plan import Plan
from compiler.render import rucio, verify
from compiler.rucio_names import CONTAINER_NAME_MAX, chunk_name
from tests.helpers import CAMPAIGNS, MINIMAL, compile_data, example_data

RUCIO_VENV = Path(os.environ.get("DRPC_RUCIO_VENV", Path(__file__).resolve().parents[1] / ".venv-rucio"))
SCOPE_RE = re.compile(r"^[a-zA-Z_\-.0-9]+$")
NAME_RE = re.compile(r"^[/A-Za-z0-9][/A-Za-z0-9\.\-_]*$")
EXPECTED_KEYS = {"rucio_rse", "scope", "rse_root", "dtn_url"}


def _plan(tmp_path: Path, data: dict[str, Any]) -> Plan:
    return compile_data(tmp_path, data).plan


def long_names_data() -> dict[str, Any]:
    """MINIMAL with names as long as the spec allows: campaign/site/stage ids 40 characters,
    scopes 25 (a 40-character campaign name needs an explicit scope), dataset types as long as
    their files' Rucio names allow (20 characters with 40-character stages: the type is in every
    file's path twice, see compiler/rucio_names.py)."""
    data = YAML(typ="safe").load(MINIMAL)
    data["metadata"]["name"] = "c" * 36 + "-dr1"
    sites = {"usdf": "u" * 35 + "-usdf", "frdf": "f" * 35 + "-frdf"}
    data["sites"] = {sites[k]: v for k, v in data["sites"].items()}
    for i, site in enumerate(data["sites"].values()):
        site["rucio"]["scope"] = f"scope{i}" + "x" * 19
    data["campaign"]["central_site"] = sites["usdf"]
    data["sky"]["assignment"]["tracts"] = {sites[k]: v for k, v in data["sky"]["assignment"]["tracts"].items()}
    stages = {st["name"]: ("s" * 40)[: 40 - len(st["name"])] + st["name"] for st in data["stages"]}
    for st in data["stages"]:
        st["name"] = stages[st["name"]]
    for ds in data["datasets"]:
        # renamed types are no longer in the table of known storage classes: say theirs
        if "storage_class" not in ds:
            ds["storage_class"] = STORAGE_CLASSES[ds["type"]]
        ds["type"] = (ds["type"] + "T" * 20)[:20]
        ds["produced_by"] = stages[ds["produced_by"]]
        ds["consumed_by"] = [stages[c] for c in ds.get("consumed_by", [])]
    return data


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Plan]:
    out = {}
    for name in sorted(p.name for p in CAMPAIGNS.glob("*.yaml")):
        out[name] = _plan(tmp_path_factory.mktemp(name), example_data(name))
    out["long"] = _plan(tmp_path_factory.mktemp("long"), long_names_data())
    return out


def _files(plan: Plan) -> dict[str, bytes]:
    return {**rucio.render(plan), **verify.render(plan)}


def _rucio_python(code: str, config: Path) -> str:
    python = RUCIO_VENV / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} not found: run tools/bootstrap (PyPI rucio==41.5.1)")
    env = {"PATH": "/usr/bin:/bin", "RUCIO_CONFIG": str(config), "RUCIO_CLIENT_MODE": "1",
           "PYTHONNOUSERSITE": "1", "HOME": os.environ.get("HOME", "/tmp")}
    proc = subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_rules_validate_with_rucios_own_schema(plans: dict[str, Plan], tmp_path: Path) -> None:
    rules = []
    for key, plan in plans.items():
        files = _files(plan)
        moves = [*plan.raws, *plan.transfers]
        assert moves, key
        for move in moves:
            rel = f"sites/{move.source}/rucio/{move.id}.rules.json"
            on_disk = json.loads(files[rel])
            assert on_disk == [rucio.rule_for(plan, move)], rel
            rules.extend(on_disk)
    config = tmp_path / "rucio.cfg"
    config.write_text("[common]\nloglevel = ERROR\n[policy]\npermission = generic\nschema = generic\n")
    code = textwrap.dedent(f"""\
        import json
        from rucio.common.exception import InvalidObject
        from rucio.common.schema import validate_schema
        rules = json.loads({json.dumps(json.dumps(rules))})
        for rule in rules:
            validate_schema("rule", rule)
            validate_schema("dids", rule["dids"])
            for did in rule["dids"]:
                validate_schema("scope", did["scope"])
                validate_schema("name", did["name"])
        bad = dict(rules[0], unknown_key=1)
        try:
            validate_schema("rule", bad)
        except InvalidObject:
            pass
        else:
            raise SystemExit("an unknown key was accepted: the check checks nothing")
        print("validated", len(rules))
        """)
    assert _rucio_python(code, config).split() == ["validated", str(len(rules))]


def test_rule_contents(plans: dict[str, Plan]) -> None:
    plan = plans["3x2.yaml"]
    for t in plan.transfers:
        rule = rucio.rule_for(plan, t)
        assert rule["dids"] == [{"scope": t.rucio_scope, "name": t.rucio_name}]
        assert (rule["copies"], rule["grouping"], rule["lifetime"]) == (1, "DATASET", None)
        assert rule["activity"] == rucio.ACTIVITY == "Data Consolidation"
        assert rule["rse_expression"] == t.destination_rse == plan.site(t.destination).rse
        assert rule["source_replica_expression"] == t.source_rse
        assert plan.campaign in rule["comment"] and t.id in rule["comment"]
        assert "account" not in rule  # no account in the spec: the applying account owns it
    for r in plan.raws:
        rule = rucio.rule_for(plan, r)
        assert rule["rse_expression"] == plan.site(r.destination).raw_rse
        assert rule["source_replica_expression"] == plan.site(plan.central_site).raw_rse


def test_did_names_obey_rucio_limits(plans: dict[str, Plan]) -> None:
    for key, plan in plans.items():
        names = set()
        for move in [*plan.raws, *plan.transfers]:
            assert len(move.rucio_scope) <= 25 and SCOPE_RE.match(move.rucio_scope), (key, move.id)
            assert len(move.rucio_name) <= 250 and NAME_RE.match(move.rucio_name), (key, move.id)
            for index in (1, 9999, 999_999):  # the container's datasets, however many
                chunk = chunk_name(move.rucio_name, index)
                assert len(chunk) <= 250 and NAME_RE.match(chunk), (key, move.id, index)
            names.add(move.rucio_did)
            rule = rucio.rule_for(plan, move)
            assert len(rule["comment"]) <= 250
        assert len(names) == len(plan.raws) + len(plan.transfers), f"{key}: two transfers share a DID"
        chunks = {chunk_name(m.rucio_name, 1) for m in [*plan.raws, *plan.transfers]}
        assert len(chunks) == len(names), f"{key}: two containers share a dataset name"


def test_long_names_are_shortened_deterministically(plans: dict[str, Plan], tmp_path: Path) -> None:
    """A transfer id too long for a container name (a valid campaign's cross-check move can be)
    is cut with a hash, deterministically, leaving room for the datasets' suffixes."""
    long_id = "crosscheck." + "s" * 40 + "." + "T" * 80 + "." + "u" * 40 + "-to-" + "f" * 40
    name = rucio_dataset_name("c" * 40, long_id, CONTAINER_NAME_MAX)
    assert len(name) == CONTAINER_NAME_MAX and name.startswith("c" * 40 + ".crosscheck.")
    assert re.search(r"-[0-9a-f]{16}$", name), name
    assert name == rucio_dataset_name("c" * 40, long_id, CONTAINER_NAME_MAX)
    assert name != rucio_dataset_name("c" * 40, long_id + "x", CONTAINER_NAME_MAX)
    assert len(chunk_name(name, 999_999)) <= 250
    plan = plans["long"]
    again = _plan(tmp_path, long_names_data())
    assert [t.rucio_name for t in plan.transfers] == [t.rucio_name for t in again.transfers]
    assert _files(plan) == _files(again)
    for rel in _files(plan):  # every path component stays a valid file name
        assert all(len(part.encode()) <= 255 for part in rel.split("/")), rel
    for t in plan.transfers:
        assert len(t.rucio_name) <= CONTAINER_NAME_MAX
        assert len(rucio.rule_for(plan, t)["comment"]) <= 250


def test_register_configs_load_with_the_real_package(plans: dict[str, Plan], tmp_path: Path) -> None:
    from lsst.rucio.register.rucio_register_config import RucioRegisterConfig

    for key, plan in plans.items():
        files = rucio.render(plan)
        for site in plan.sites:
            rel = f"sites/{site.id}/rucio/rucio-register.yaml"
            text = files[rel].decode()
            assert text.startswith("# ") and "generated - do not edit" in text and plan.spec_sha256 not in text
            assert f"Butler datastore root == <rse_root>/<scope> == {site.rse_root.rstrip('/')}/{site.scope}" in text
            assert set(YAML(typ="safe").load(text)) == EXPECTED_KEYS, rel
            path = tmp_path / key / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            config = RucioRegisterConfig(str(path))
            assert config.rucio_rse == site.rse
            assert config.scope == site.scope
            assert config.rse_root == site.rse_root.rstrip("/")
            assert config.dtn_url == site.rucio_prefix.rstrip("/")
            assert site.datastore_root == f"{config.rse_root}/{config.scope}"
        for raw in plan.raws:
            src = plan.site(raw.source)
            rel = f"sites/{src.id}/rucio/rucio-register-raw.yaml"
            path = tmp_path / key / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(files[rel])
            config = RucioRegisterConfig(str(path))
            assert (config.rucio_rse, config.scope) == (raw.source_rse, raw.rucio_scope)


def test_rucio_register_names_files_as_rucio_finds_them(plans: dict[str, Plan], tmp_path: Path) -> None:
    """rucio-register's own _make_did on a file in the plan's datastore root gives the DID name
    `<datastore-relative path>` and a PFN equal to Rucio's `<RSE prefix><scope>/<name>`."""
    from lsst.resources import ResourcePath
    from lsst.rucio.register.data_type import DataType
    from lsst.rucio.register.rucio_interface import RucioInterface

    plan = plans["3x2.yaml"]
    site = plan.site("frdf")
    root = tmp_path / "rse"
    # The site as the spec would describe it with its storage at `root` (trailing slash kept).
    local = replace(site, rse_root=f"{root}/", rucio_prefix="davs://dtn.example:2880/rubin/",
                    datastore_root=f"{root}/{site.scope}")
    config = rucio.register_config(local)
    relative = "HSC/runs/x/step2a/20250101T000000Z/isolated_star_presources/9948/f.parq"
    path = Path(local.datastore_root) / relative
    path.parent.mkdir(parents=True)
    path.write_bytes(b"payload")

    ri = RucioInterface.__new__(RucioInterface)  # no Rucio client needed for naming
    ri.rse, ri.scope, ri.rse_root, ri.dtn_url = (config["rucio_rse"], config["scope"],
                                                   config["rse_root"], config["dtn_url"])
    ri.pfn_base = config["dtn_url"]
    ri.rubin_butler_type = DataType.DATA_PRODUCT
    did = ri._make_did(ResourcePath(str(path)), "{}")
    assert did.name == relative
    assert did.scope == site.scope
    assert did.pfn == f"{local.rucio_prefix}{site.scope}/{relative}"  # Rucio's identity PFN
    assert NAME_RE.match(did.name)


def test_render_is_deterministic_and_per_site(plans: dict[str, Plan]) -> None:
    plan = plans["3x2.yaml"]
    everything = _files(plan)
    assert everything == _files(plan)
    for site in plan.sites:
        part = {**rucio.render(plan, site.id), **verify.render(plan, site.id)}
        assert part == {k: v for k, v in everything.items() if k.startswith(f"sites/{site.id}/")}
    central = plan.central_site
    assert f"sites/{central}/rucio/rucio-register-raw.yaml" in everything
    for raw in plan.raws:
        assert f"sites/{raw.source}/rucio/{raw.id}.register.sh" in everything
        assert f"sites/{raw.destination}/verify/{raw.id}.sh" in everything
    for t in plan.transfers:
        for rel in (f"sites/{t.source}/rucio/{t.id}.register.sh", f"sites/{t.source}/rucio/wait-{t.id}.sh",
                    f"sites/{t.source}/rucio/{t.id}.rules.json", f"sites/{t.destination}/verify/{t.id}.sh"):
            assert rel in everything
    for content in everything.values():
        assert b"\r" not in content and content.endswith(b"\n")


def test_datastore_root_mismatch_is_flagged(tmp_path: Path) -> None:
    data = copy.deepcopy(example_data("3x2.yaml"))
    data["sites"]["frdf"].setdefault("butler", {})["datastore_root"] = "/elsewhere/datastore"
    plan = _plan(tmp_path, data)
    text = rucio.render(plan, "frdf")["sites/frdf/rucio/rucio-register.yaml"].decode()
    assert "WARNING" in text and "/elsewhere/datastore" in text
