"""`sites/<site>/butler/inputs.py` against real daf_butler repositories (SQLite).

The central site holds a calibration collection (two biases of one detector with consecutive
validity ranges, another detector's with an open-ended one), a refcat collection CHAINED over
two RUNs and an ancillary input in a RUN of the collection's own name. Its inputs.py writes the
manifest; the datasets then "arrive" at a destination as ctrl_ingestd leaves them (same dataset
ids and RUN collections: daf_butler's transfer_from), and the destination's inputs.py certifies
and chains them; each step run twice reports "0 changes".
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from compiler.emit import write_tree
from compiler.pipeline import compile_campaign
from drpc_rehearsal import butlers as B
from tests.helpers import CAMPAIGNS, bring_site_files

CENTRAL, DEST = "usdf", "frdf"
CALIBS = "HSC/calib/DM-50000"
REFCATS = "refcats/DM-49042"
LUT = "HSC/fgcmcal/lut/DM-40001"
# Stand-in storage classes daf_butler has without the LSST stack (afw's are not on PyPI).
SDD = "StructuredDataDict"


def inputs_campaign(tmp: Path) -> Path:
    yaml = YAML()
    doc = yaml.load((CAMPAIGNS / "3x2.yaml").read_text())
    bring_site_files(tmp)
    for sid in doc["sites"]:
        doc["sites"][sid]["butler"] = {"repo": str(tmp / sid / "repo")}
        doc["sites"][sid]["rucio"] = {"fs_prefix": f"file://{tmp}/{sid}/rse/"}
    doc["inputs"] = {
        "calibrations": {"collection": CALIBS, "types": [
            {"type": "bias", "dimensions": ["instrument", "detector"], "storage_class": SDD}]},
        "refcats": [{"collection": REFCATS, "types": [
            {"type": "gaia_test", "dimensions": ["htm7"], "storage_class": SDD}]}],
        "ancillary": [{"collection": LUT, "types": [
            {"type": "fgcmLookUpTable", "dimensions": ["instrument"], "storage_class": SDD}]}],
    }
    path = tmp / "3x2-inputs.yaml"
    with path.open("w") as f:
        yaml.dump(doc, f)
    return path


def tai(text: str) -> Any:
    import astropy.time

    return astropy.time.Time(text, scale="tai")


def make_central(repo: str, plan: Any) -> dict[str, Any]:
    from lsst.daf.butler import Butler, CollectionType, DatasetType, Timespan

    Butler.makeRepo(repo)
    B.insert_stack_records(repo, plan, CENTRAL, n_detectors=2)
    with Butler.from_config(repo, writeable=True) as butler:
        universe = butler.dimensions
        bias = DatasetType("bias", ["instrument", "detector"], SDD, universe=universe,
                           isCalibration=True)
        gaia = DatasetType("gaia_test", ["htm7"], SDD, universe=universe)
        lut = DatasetType("fgcmLookUpTable", ["instrument"], SDD, universe=universe)
        for dt in (bias, gaia, lut):
            butler.registry.registerDatasetType(dt)
        for run in ("HSC/calib/bias/2024", "HSC/calib/bias/2025", "refcats/gaia/a",
                    "refcats/gaia/b", LUT, "HSC/raw/all"):
            butler.collections.register(run)
        old = butler.put({"v": 1}, bias, instrument="HSC", detector=0, run="HSC/calib/bias/2024")
        new = butler.put({"v": 2}, bias, instrument="HSC", detector=0, run="HSC/calib/bias/2025")
        other = butler.put({"v": 3}, bias, instrument="HSC", detector=1,
                           run="HSC/calib/bias/2025")
        butler.collections.register(CALIBS, CollectionType.CALIBRATION)
        spans = {old.id: Timespan(tai("2024-01-01T00:00:00"), tai("2025-01-01T00:00:00")),
                 new.id: Timespan(tai("2025-01-01T00:00:00"), None),
                 other.id: Timespan(None, None)}
        butler.registry.certify(CALIBS, [old], spans[old.id])
        butler.registry.certify(CALIBS, [new], spans[new.id])
        butler.registry.certify(CALIBS, [other], spans[other.id])
        refs = [old, new, other]
        refs.append(butler.put({"s": 1}, gaia, htm7=131072, run="refcats/gaia/a"))
        refs.append(butler.put({"s": 2}, gaia, htm7=131073, run="refcats/gaia/b"))
        butler.collections.register(REFCATS, CollectionType.CHAINED)
        butler.collections.redefine_chain(REFCATS, ["refcats/gaia/a", "refcats/gaia/b"])
        refs.append(butler.put({"lut": 1}, lut, instrument="HSC", run=LUT))
    return {"refs": refs, "spans": spans}


def run_inputs(tree: Path, site: str, repo: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = tree / "sites" / site / "butler" / "inputs.py"
    full = {k: v for k, v in os.environ.items() if k not in ("DRY_RUN", "BUTLER_REPO")}
    full.update(BUTLER_REPO=repo, **env)
    return subprocess.run([sys.executable, str(script)], env=full, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("inputs")
    compiled = compile_campaign(inputs_campaign(tmp))
    plan = compiled.plan
    tree = tmp / "tree"
    write_tree(tree, compiled.files)
    central = plan.site(CENTRAL).butler_repo
    made = make_central(central, plan)
    return {"plan": plan, "tree": tree, "central": central, "dest": plan.site(DEST).butler_repo,
            **made}


def arrive(world: dict[str, Any], refs: list[Any]) -> None:
    """The destination as ctrl_ingestd leaves it: same dataset ids, same RUN collections."""
    from lsst.daf.butler import Butler

    with Butler.from_config(world["central"]) as src, \
            Butler.from_config(world["dest"], writeable=True) as dst:
        dst.transfer_from(src, refs, transfer="copy", register_dataset_types=True,
                          transfer_dimensions=True)


def test_the_central_site_writes_the_manifest_once(world: dict[str, Any]) -> None:
    from lsst.daf.butler import Butler

    first = run_inputs(world["tree"], CENTRAL, world["central"])
    assert first.returncode == 0, first.stderr
    assert f"{CALIBS}: 3 bias to send" in first.stdout
    assert f"{REFCATS}: 2 gaia_test to send" in first.stdout
    assert "write the inputs' manifest" in first.stdout
    again = run_inputs(world["tree"], CENTRAL, world["central"])
    assert again.returncode == 0, again.stderr
    assert "0 changes" in again.stdout and "unchanged" in again.stdout
    with Butler.from_config(world["central"]) as butler:
        run = world["plan"].inputs_manifest_run
        (ref,) = butler.query_datasets("drpc_inputs_manifest", collections=run)
        manifest = butler.get(ref)
        defaults = butler.collections.get_info(world["plan"].defaults_collection)
        assert list(defaults.children) == list(world["plan"].defaults_children)
    calib = next(e for e in manifest["inputs"] if e["kind"] == "calibrations")
    rows = {row[0]: row for row in calib["types"]["bias"]}
    assert len(rows) == 3
    for key, span in world["spans"].items():
        assert rows[str(key)][2] == span.model_dump(mode="json")
    refcat = next(e for e in manifest["inputs"] if e["kind"] == "refcats")
    assert sorted(row[1] for row in refcat["types"]["gaia_test"]) == [
        "refcats/gaia/a", "refcats/gaia/b"]


def test_a_destination_certifies_and_chains_what_arrived(world: dict[str, Any]) -> None:
    from lsst.daf.butler import Butler, CollectionType, Timespan

    assert run_inputs(world["tree"], CENTRAL, world["central"]).returncode == 0
    Butler.makeRepo(world["dest"])
    B.insert_stack_records(world["dest"], world["plan"], DEST, n_detectors=2)
    with Butler.from_config(world["central"]) as src:
        manifest_refs = list(src.query_datasets(
            "drpc_inputs_manifest", collections=world["plan"].inputs_manifest_run))
    early = run_inputs(world["tree"], DEST, world["dest"])
    assert early.returncode == 1 and "has not arrived" in early.stderr, early.stderr

    # all but one bias: the missing one is named, nothing is certified
    arrive(world, [*world["refs"][1:], *manifest_refs])
    partial = run_inputs(world["tree"], DEST, world["dest"])
    assert partial.returncode == 1, partial.stdout
    assert "1 of 3 sent dataset(s) are not in this repository" in partial.stderr
    assert str(world["refs"][0].id) in partial.stderr

    arrive(world, world["refs"][:1])
    dry = run_inputs(world["tree"], DEST, world["dest"], DRY_RUN="1")
    assert dry.returncode == 0 and "would certify" in dry.stdout, dry.stderr
    done = run_inputs(world["tree"], DEST, world["dest"])
    assert done.returncode == 0, done.stderr
    assert "certify" in done.stdout and "create the defaults chain" in done.stdout
    again = run_inputs(world["tree"], DEST, world["dest"])
    assert again.returncode == 0 and "0 changes" in again.stdout, again.stdout + again.stderr

    with Butler.from_config(world["dest"]) as butler:
        assert butler.collections.get_info(CALIBS).type == CollectionType.CALIBRATION
        found = {a.ref.id: a.timespan for a in butler.registry.queryDatasetAssociations(
            "bias", collections=CALIBS)}
        assert found == world["spans"]
        # a lookup by time finds the bias valid then, as at the central site
        for when, expected in (("2024-06-01T00:00:00", world["refs"][0]),
                               ("2025-06-01T00:00:00", world["refs"][1])):
            span = Timespan(tai(when), tai(when.replace("T00", "T01")))
            found_ref = butler.find_dataset("bias", instrument="HSC", detector=0,
                                            collections=CALIBS, timespan=span)
            assert found_ref is not None and found_ref.id == expected.id
        refcat = butler.collections.get_info(REFCATS)
        assert refcat.type == CollectionType.CHAINED
        assert list(refcat.children) == ["refcats/gaia/a", "refcats/gaia/b"]
        assert butler.collections.get_info(LUT).type == CollectionType.RUN
        defaults = butler.collections.get_info(world["plan"].defaults_collection)
        assert list(defaults.children) == list(world["plan"].defaults_children)
        assert CALIBS in defaults.children and REFCATS in defaults.children
        assert LUT in defaults.children


def test_a_collection_of_the_wrong_type_is_an_error(tmp_path: Path,
                                                    world: dict[str, Any]) -> None:
    from lsst.daf.butler import Butler, CollectionType

    repo = str(tmp_path / "wrong")
    Butler.makeRepo(repo)
    B.insert_stack_records(repo, world["plan"], DEST, n_detectors=2)
    assert run_inputs(world["tree"], CENTRAL, world["central"]).returncode == 0
    with Butler.from_config(world["central"]) as src, \
            Butler.from_config(repo, writeable=True) as dst:
        refs = list(src.query_datasets("drpc_inputs_manifest",
                                       collections=world["plan"].inputs_manifest_run))
        dst.transfer_from(src, [*world["refs"], *refs], transfer="copy",
                          register_dataset_types=True, transfer_dimensions=True)
        dst.collections.register(CALIBS, CollectionType.TAGGED)
    out = run_inputs(world["tree"], DEST, repo)
    assert out.returncode == 1
    assert f"{CALIBS} exists here as a TAGGED collection" in out.stderr


def test_a_defaults_chain_with_other_children_is_an_error(tmp_path: Path,
                                                          world: dict[str, Any]) -> None:
    from lsst.daf.butler import Butler, CollectionType

    plan = world["plan"]
    repo = str(tmp_path / "other-defaults")
    make_central(repo, plan)
    with Butler.from_config(repo, writeable=True) as butler:
        butler.collections.register(plan.defaults_collection, CollectionType.CHAINED)
        butler.collections.redefine_chain(plan.defaults_collection, ["skymaps"])
    out = run_inputs(world["tree"], CENTRAL, repo)
    assert out.returncode == 1
    assert f"defaults chain {plan.defaults_collection} holds [skymaps]" in out.stderr
    assert "butler collection-chain --mode redefine" in out.stderr
