"""Big moves in bounded Rucio datasets (compiler/rucio_names.py and the Rucio scripts).

- names: the chunk datasets of a container, and the longest file DID name of a moved type,
  checked against the paths a real daf_butler `put` writes with daf_butler's default template;
  a campaign whose files would get names over Rucio's 250 gets an error at the spec value;
- a raw distribution, for real on a PostgreSQL Rucio: the whole visits frdf holds, selected by
  selection.py, split into closed datasets of at most DATASET_FILE_LIMIT files under the move's
  container (made with its rule before any data, by apply-rules.sh), each registered by
  register-raws.py with rucio-register's own library; a second run adds nothing; Rucio's judge
  and conveyor replicate it, wait-<move>.sh says OK from the datasets' lengths, and frdf's
  verify script fails until the copies are ingested, then passes;
- scatters split by visits and by tracts, registered by the real `rucio-register
  data-products`: each container holds exactly what the destination needs;
- end to end: tests/test_rehearsal.py's clean rehearsal of 3x2 limits frdf's datasets to 2 files,
  so its moves of every kind are split, replicated, waited for and verified there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from compiler import rucio_names as rn
from compiler.defaults import RUCIO_NAME_MAX
from compiler.pipeline import compile_campaign
from compiler.render import rucio
from tests.helpers import CAMPAIGNS, bring_site_files
from tests.test_rucio_scripts import write_tree

TEST_BIN = str(Path(sys.prefix) / "bin")

# -- names ------------------------------------------------------------------------------------------


def test_chunk_names_keep_the_container_as_prefix_and_fit_rucio() -> None:
    assert rn.chunk_name("c.x", 1) == "c.x.0001" and rn.chunk_name("c.x", 12345) == "c.x.12345"
    with pytest.raises(ValueError):
        rn.chunk_name("c.x", 0)
    long = "a" * RUCIO_NAME_MAX
    base = rn.chunk_base(long)
    assert len(base) == rn.CONTAINER_NAME_MAX and re.search(r"-[0-9a-f]{16}$", base)
    assert base != rn.chunk_base("a" * (RUCIO_NAME_MAX - 1))  # distinct containers, distinct names
    assert len(rn.chunk_name(long, 999_999)) == RUCIO_NAME_MAX
    fits = "b" * rn.CONTAINER_NAME_MAX
    assert rn.chunk_base(fits) == fits


def test_file_names_equal_the_paths_daf_butler_writes(tmp_path: Path) -> None:
    """file_path with given values == the datastore-relative path of a real put."""
    from lsst.daf.butler import Butler, DatasetType
    from lsst.resources import ResourcePath

    Butler.makeRepo(str(tmp_path))
    values: dict[str, Any] = {
        "instrument": "LSSTCam", "physical_filter": "ph_5", "band": "y", "day_obs": 20250730,
        "detector": 188, "full_name": "R44_SW1", "visit": 2025073000123, "exposure": 2025073000123,
        "group": "2025-07-30T12:34:56.123456", "obs_id": "MC_O_20250730_000123",
        "skymap": "lsst_cells_v1", "tract": 18937, "patch": 99}
    with Butler.from_config(str(tmp_path), writeable=True) as butler:
        reg = butler.registry
        reg.insertDimensionData("instrument", {"name": "LSSTCam", "detector_max": 1000,
                                               "visit_max": 10**14, "exposure_max": 10**14,
                                               "visit_system": 1})
        reg.insertDimensionData("physical_filter", {"instrument": "LSSTCam", "name": "ph_5", "band": "y"})
        reg.insertDimensionData("day_obs", {"instrument": "LSSTCam", "id": 20250730})
        reg.insertDimensionData("group", {"instrument": "LSSTCam", "name": values["group"]})
        reg.insertDimensionData("detector", {"instrument": "LSSTCam", "id": 188, "full_name": "R44_SW1"})
        reg.insertDimensionData("visit", {"instrument": "LSSTCam", "id": values["visit"],
                                          "physical_filter": "ph_5", "day_obs": 20250730})
        reg.insertDimensionData("exposure", {
            "instrument": "LSSTCam", "id": values["exposure"], "physical_filter": "ph_5",
            "day_obs": 20250730, "group": values["group"], "obs_id": values["obs_id"]})
        reg.insertDimensionData("skymap", {"name": "lsst_cells_v1", "hash": b"h", "tract_max": 20000,
                                           "patch_nx_max": 10, "patch_ny_max": 10})
        reg.insertDimensionData("tract", {"skymap": "lsst_cells_v1", "id": 18937})
        reg.insertDimensionData("patch", {"skymap": "lsst_cells_v1", "tract": 18937, "id": 99,
                                          "cell_x": 9, "cell_y": 9})
        run = f"LSSTCam/runs/DRP/DR1/step1/{rn.BPS_TIMESTAMP}"
        butler.collections.register(run)
        root = ResourcePath(f"{tmp_path}/", forceDirectory=True)
        cases = [("visitSummary", ("instrument", "visit")),
                 ("calexp_like", ("instrument", "visit", "detector")),
                 ("objectTable_tract", ("skymap", "tract")),
                 ("deepCoadd_like", ("skymap", "tract", "patch", "band")),
                 ("raw_like", ("instrument", "exposure", "detector")),
                 ("camera_like", ("instrument",))]
        for name, dims in cases:
            dtype = DatasetType(name, dims, "StructuredDataDict", universe=butler.dimensions)
            reg.registerDatasetType(dtype)
            ref = butler.put({"a": 1}, dtype, {k: values[k] for k in dims}, run=run)
            real = butler.getURI(ref).relative_to(root)
            assert real == rn.file_path(name, dims, run, values, rn.file_extension("StructuredDataDict")), name


def _campaign_doc() -> Any:
    yaml = YAML()
    return yaml, yaml.load((CAMPAIGNS / "3x2.yaml").read_text())


def _compile(tmp_path: Path, doc: Any) -> Any:
    """The plan of `doc`, also where validation refuses it (validate wires in name_errors:
    these tests call it themselves)."""
    yaml = YAML()
    bring_site_files(tmp_path)
    path = tmp_path / "3x2.yaml"
    with path.open("w") as f:
        yaml.dump(doc, f)
    from unittest import mock

    with mock.patch("compiler.validate.name_errors", return_value=[]):
        return compile_campaign(path, render=False)


def test_3x2_file_names_fit_and_an_overlong_output_collection_is_reported(tmp_path: Path) -> None:
    _, doc = _campaign_doc()
    compiled = _compile(tmp_path / "ok", doc)
    assert rn.name_errors(compiled.plan, compiled.loaded) == []
    plan = compiled.plan
    longest = max(len(rn.longest_file_name(plan, m.dataset_type, m.dimensions, m.storage_class,
                                           f"{plan.output_collection}/{m.stage}"))
                  for m in plan.transfers)
    assert 200 < longest <= RUCIO_NAME_MAX

    # 30 characters more in the output collection: 60 more in every name
    doc["campaign"]["output_collection"] += "/" + "x" * 29
    compiled = _compile(tmp_path / "long", doc)
    errors = rn.name_errors(compiled.plan, compiled.loaded)
    assert [e.path for e in errors] == ["campaign.output_collection"]  # one, for every type
    text = (tmp_path / "long" / "3x2.yaml").read_text().splitlines()
    for e in errors:
        assert e.severity == "error" and e.position is not None
        assert "output_collection" in text[e.position.line - 1]
        m = re.search(r"up to (\d+) characters, (\d+) over Rucio's 250", e.message)
        assert m and int(m.group(1)) - 250 == int(m.group(2)) > 0
        assert "shorten campaign.output_collection by" in (e.hint or "")

    # a dataset type whose name alone is too long is reported at its type
    _, doc = _campaign_doc()
    i = next(k for k, d in enumerate(doc["datasets"]) if d["type"] == "visitSummary")
    doc["datasets"][i]["type"] = "visitSummary" + "Z" * 88  # 100 characters: the most allowed
    doc["campaign"]["output_collection"] = "HSC/x"
    compiled = _compile(tmp_path / "type", doc)
    errors = rn.name_errors(compiled.plan, compiled.loaded)
    assert [e.path for e in errors] == [f"datasets[{i}].type"]
    text = (tmp_path / "type" / "3x2.yaml").read_text().splitlines()
    assert "visitSummaryZZZ" in text[errors[0].position.line - 1]


# -- the raw register script against a PostgreSQL Rucio, for real ------------------------------------

CENTRAL = "usdf"
DETECTORS = 4


def _world(tmp_path: Path, extra_datasets: list[dict[str, Any]] = ()) -> tuple[Any, Path, Any]:
    """3x2 with its repositories and RSE roots under tmp_path, compiled (Rucio, verify and
    selection scripts written); the central site's Butler and frdf's, datastore root
    <rse_root>/<scope>, with the stack's records, visits, and every raw at the central site."""
    from lsst.daf.butler import Butler, Config

    from drpc_rehearsal import butlers as B

    yaml, doc = _campaign_doc()
    doc["datasets"] = [*doc["datasets"], *extra_datasets]
    bring_site_files(tmp_path)
    for sid in doc["sites"]:
        doc["sites"][sid]["butler"] = {"repo": str(tmp_path / sid / "repo")}
        doc["sites"][sid]["rucio"] = {"fs_prefix": f"file://{tmp_path}/{sid}/rse/"}
    path = tmp_path / "3x2.yaml"
    with path.open("w") as f:
        yaml.dump(doc, f)
    plan = compile_campaign(path, render=False).plan
    tree = tmp_path / "tree"
    write_tree(plan, tree)
    for sid in (CENTRAL, "frdf"):  # the central site holds every raw, frdf receives its own
        s = plan.site(sid)
        Butler.makeRepo(s.butler_repo, config=Config({"datastore": {"root": s.datastore_root}}),
                        forceConfigRoot=False)
        B.insert_stack_records(s.butler_repo, plan, sid, n_detectors=DETECTORS)
    visits = B.synthesize_visits(plan, per_tract=1, per_boundary=1)
    B.define_visits(plan.site(CENTRAL).butler_repo, plan, CENTRAL, visits, n_detectors=DETECTORS)
    B.ingest_raws(plan.site(CENTRAL).butler_repo, plan, visits, n_detectors=DETECTORS)
    return plan, tree, visits


def _script_env(svc: Any, **extra: str) -> dict[str, str]:
    """The generated scripts' environment against the services: the Rucio client of the
    server's venv first on PATH, then the test venv's (butler, rucio-register)."""
    env = svc.rucio.env()
    env["PATH"] = env["PATH"] + os.pathsep + TEST_BIN
    env.update(BUTLER_PYTHON=sys.executable, **extra)
    return env


def _stand_in_config(tmp_path: Path, svc: Any, site: Any, *, raw: bool) -> Path:
    """The generated rucio-register config with the stand-in RSE's URL (the site's is a
    davs:// door)."""
    config = tmp_path / ("rucio-register-raw.yaml" if raw else "rucio-register.yaml")
    rse = site.raw_rse if raw else site.rse
    config.write_text(json.dumps(rucio.register_config(site, raw=raw) | {
        "dtn_url": svc.rucio.rse_url(rse).rstrip("/")}))
    return config


@pytest.mark.services
def test_raw_distribution_is_split_replicated_and_verified_end_to_end(tmp_path: Path) -> None:
    from lsst.daf.butler import Butler

    from drpc_rehearsal import butlers as B
    from drpc_rehearsal.services import Services

    plan, tree, visits = _world(tmp_path)
    site = plan.site(CENTRAL)
    repo = site.butler_repo
    raw = next(m for m in plan.raws if m.destination == "frdf")
    held = B.visits_held_by(plan, "frdf", visits)
    B.define_visits(plan.site("frdf").butler_repo, plan, "frdf", held, n_detectors=DETECTORS)
    expected = len(held) * DETECTORS
    limit = 3
    assert expected > 2 * limit  # at least three datasets

    dest = plan.site("frdf")
    rses = {site.raw_rse: site.raw_rse_root, dest.raw_rse: dest.raw_rse_root}
    with Services(tmp_path / "services", rses=rses, scopes=[raw.rucio_scope], kafka=False,
                  handle_signals=False) as svc:
        env = _script_env(svc, BUTLER_REPO=repo, MANIFEST_DIR=str(tmp_path),
                          DATASET_FILE_LIMIT=str(limit), RUCIO_REGISTER_RAW_CONFIG=str(
                              _stand_in_config(tmp_path, svc, site, raw=True)))
        register_script = tree / paths_register(raw)

        def register() -> subprocess.CompletedProcess[str]:
            return subprocess.run(["bash", str(register_script)], env=env, capture_output=True, text=True,
                                  timeout=600, check=False)

        def script(rel: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(["bash", str(tree / rel), *args], env=env | extra,
                                  capture_output=True, text=True, timeout=600, check=False)

        # rules before data: the rule on the (empty) container, made in the site setup
        rules = script(f"sites/{CENTRAL}/rucio/apply-rules.sh", raw.id)
        assert rules.returncode == 0, rules.stderr[-3000:]
        [rule_id] = svc.rucio.rule_ids(raw.rucio_scope, raw.rucio_name, raw.destination_rse)

        first = register()
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        container = svc.rucio.client_json(
            f"[d['name'] for d in c.list_content({raw.rucio_scope!r}, {raw.rucio_name!r})]")
        n_chunks = -(-expected // limit)
        assert container == [rn.chunk_name(raw.rucio_name, k) for k in range(1, n_chunks + 1)]
        lengths = svc.rucio.client_json(
            f"[(c.get_did({raw.rucio_scope!r}, n)['open'], c.get_did({raw.rucio_scope!r}, n)['length']) "
            f"for n in {container!r}]")
        assert all(not is_open for is_open, _ in lengths)
        assert [n for _, n in lengths] == [limit] * (expected // limit) + (
            [expected % limit] if expected % limit else [])
        files = svc.rucio.dataset_files(raw.rucio_scope, raw.rucio_name)
        assert len(files) == expected

        # every file is a raw of a whole visit frdf holds, with rucio-register's raw metadata
        with Butler.from_config(repo) as butler:
            refs = butler.query_datasets("raw", collections=raw.selection_collection,
                                         find_first=False, limit=None, explain=False)
            assert {int(r.dataId["exposure"]) for r in refs} == {v.id for v in held}
            root = Path(site.datastore_root)
            paths = sorted(str(Path(butler.getURI(r).ospath).relative_to(root)) for r in refs)
        assert files == paths
        meta = svc.rucio.client_json(
            f"c.get_metadata({raw.rucio_scope!r}, {files[0]!r}, plugin='ALL')['rubin_butler']")
        from lsst.rucio.register.data_type import DataType

        assert meta == DataType.RAW_FILE  # what `rucio-register raws` attaches
        manifest = json.loads((tmp_path / f"{raw.id}.manifest.json").read_text())
        assert (manifest["rucio_files"], manifest["butler_datasets"], manifest["rucio_datasets"]) == (
            expected, expected, n_chunks)

        # again: every chunk is closed, nothing is registered twice, no chunk is added
        again = register()
        assert again.returncode == 0, again.stderr[-3000:]
        assert again.stdout.count("is closed") == n_chunks and "register-raws.py" not in again.stdout
        assert svc.rucio.dataset_files(raw.rucio_scope, raw.rucio_name) == files

        # Rucio's judge and conveyor replicate every file of every dataset of the container
        wait = f"sites/{CENTRAL}/rucio/wait-{raw.id}.sh"
        early = script(wait, WAIT_INTERVAL="1", WAIT_TIMEOUT="0")
        assert early.returncode == 1 and "timed out" in early.stderr
        from drpc_rehearsal.conveyor import run_until_settled

        states, _ = run_until_settled(svc.rucio, [rule_id])
        assert states == {rule_id: "OK"}
        rule = svc.rucio.rule(rule_id)
        assert (rule["locks_ok_cnt"], rule["did_type"]) == (expected, "CONTAINER")
        done = script(wait, WAIT_INTERVAL="1", WAIT_TIMEOUT="60")
        assert done.returncode == 0, done.stderr[-3000:]
        assert (f"rule {rule_id} of {raw.rucio_did}: OK, {expected} of {expected} file(s) in "
                f"{n_chunks} dataset(s) at {raw.destination_rse}") in done.stdout
        # the poll read the datasets' lengths, never the file list
        assert "list_files" not in done.stdout

        # at frdf: nothing ingested yet, then each arrived file ingested in place, as
        # ctrl_ingestd does with a raw (same RUN, same path under the datastore root)
        verify = f"sites/frdf/verify/{raw.id}.sh"
        missing = script(verify, BUTLER_REPO=dest.butler_repo)
        assert missing.returncode == 1
        assert f"0 of {expected} file(s) arrived" in missing.stderr
        _ingest_arrived(repo, dest.butler_repo, raw.selection_collection,
                        Path(dest.raw_rse_root) / raw.rucio_scope)
        ok = script(verify, BUTLER_REPO=dest.butler_repo)
        assert ok.returncode == 0, ok.stderr[-3000:]
        assert f"{expected} of {expected} file(s) arrived" in ok.stderr
        assert f"{raw.rucio_did}: {n_chunks} dataset(s)" in ok.stdout


# A tract-level output of the central FGCM stage that every site's step3 reads: a scatter
# split by the tracts each site processes (3x2 itself scatters only visit-level types).
TRACT_SCATTER = {"type": "fgcmTractSummary", "dimensions": ["skymap", "tract"],
                 "storage_class": "StructuredDataDict", "produced_by": "step2c",
                 "consumed_by": ["step3"]}


@pytest.mark.services
def test_scatters_split_by_visits_and_by_tracts_register_with_rucio_register(
        tmp_path: Path) -> None:
    """The data-products register scripts with the real `rucio-register data-products` (its
    command line parses with w.2025.30's interface: test_rucio_scripts) into a PostgreSQL
    Rucio: each container holds exactly what the destination needs, in closed datasets of at
    most the limit."""
    from lsst.daf.butler import Butler, CollectionType, DatasetRef, DatasetType

    from drpc_rehearsal import butlers as B
    from drpc_rehearsal.services import Services

    plan, tree, visits = _world(tmp_path, [TRACT_SCATTER])
    site = plan.site(CENTRAL)
    by_visits = next(m for m in plan.transfers if m.kind == "scatter" and m.destination == "frdf"
                     and m.select_by == "visits-held")
    by_tracts = next(m for m in plan.transfers if m.kind == "scatter" and m.destination == "frdf"
                     and m.select_by == "tracts")
    assert by_tracts.dataset_type == TRACT_SCATTER["type"]
    # the central stage's outputs: one dataset per visit, one per campaign tract
    with Butler.from_config(site.butler_repo, writeable=True) as butler:
        for move, dims, ids in ((by_visits, ("instrument", "visit"), [v.id for v in visits]),
                                (by_tracts, ("skymap", "tract"), sorted(plan.ownership.owner))):
            dtype = DatasetType(move.dataset_type, dims, move.storage_class or "",
                                universe=butler.dimensions)
            butler.registry.registerDatasetType(dtype)
            run = f"{move.source_collection}/{rn.BPS_TIMESTAMP}"
            butler.collections.register(run)
            key = dims[1]
            refs = [DatasetRef(dtype, butler.registry.expandDataId(
                        {"instrument": plan.instrument, "skymap": plan.skymap.name, key: i},
                        dimensions=dims), run=run) for i in ids]
            B._ingest_stand_in_files(butler, refs)  # noqa: SLF001 - what a job leaves behind
            butler.collections.register(move.source_collection, CollectionType.CHAINED)
            butler.collections.redefine_chain(move.source_collection, [run])
    want_visits = {v.id for v in B.visits_held_by(plan, "frdf", visits)}
    want_tracts = set(plan.site("frdf").processing_tracts)
    assert 0 < len(want_visits) < len(visits) and 0 < len(want_tracts) < len(plan.ownership.owner)

    limit = 2
    with Services(tmp_path / "services", rses={site.rse: site.rse_root},
                  scopes=[site.scope], kafka=False, handle_signals=False) as svc:
        env = _script_env(svc, BUTLER_REPO=site.butler_repo, MANIFEST_DIR=str(tmp_path),
                          DATASET_FILE_LIMIT=str(limit), RUCIO_REGISTER_CONFIG=str(
                              _stand_in_config(tmp_path, svc, site, raw=False)))
        for move, key, want in ((by_visits, "visit", want_visits),
                                (by_tracts, "tract", want_tracts)):
            proc = subprocess.run(["bash", str(tree / paths_register(move))], env=env,
                                  capture_output=True, text=True, timeout=600, check=False)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            names = svc.rucio.client_json(
                f"[d['name'] for d in c.list_content({move.rucio_scope!r}, {move.rucio_name!r})]")
            n_chunks = -(-len(want) // limit)
            assert names == [rn.chunk_name(move.rucio_name, k) for k in range(1, n_chunks + 1)]
            shown = svc.rucio.client_json(
                f"[c.get_did({move.rucio_scope!r}, n) for n in {names!r}]")
            assert all(not d["open"] and 0 < d["length"] <= limit for d in shown)
            files = svc.rucio.dataset_files(move.rucio_scope, move.rucio_name)
            with Butler.from_config(site.butler_repo) as butler:
                refs = butler.query_datasets(move.dataset_type, collections=move.selection_collection,
                                             find_first=False, limit=None, explain=False)
                assert {int(r.dataId[key]) for r in refs} == want
                root = Path(site.datastore_root)
                assert files == sorted(str(Path(butler.getURI(r).ospath).relative_to(root))
                                       for r in refs)
            meta = svc.rucio.client_json(
                f"c.get_metadata({move.rucio_scope!r}, {files[0]!r}, plugin='ALL')")
            assert meta["rubin_butler"] == "data_product"
            assert json.loads(meta["rubin_sidecar"])["datasetType"]["name"] == move.dataset_type
            manifest = json.loads((tmp_path / f"{move.id}.manifest.json").read_text())
            assert (manifest["rucio_files"], manifest["rucio_datasets"]) == (len(want), n_chunks)


def _ingest_arrived(source_repo: str, repo: str, collection: str, arrived_root: Path) -> None:
    """Ingest the copies Rucio made at the destination (same relative paths), in place, with
    the formatter the source recorded (the stand-in's: obs_base is not installed here)."""
    from lsst.daf.butler import Butler, FileDataset

    with Butler.from_config(source_repo) as src:
        refs = src.query_datasets("raw", collections=collection, find_first=False, limit=None,
                                  explain=False, with_dimension_records=True)
        datastore = src._datastore  # noqa: SLF001 - the file records: path and formatter
        root = Path(datastore.root.ospath)  # type: ignore[attr-defined]
        arrived = []
        for ref in refs:
            [info] = datastore.getStoredItemsInfo(ref)  # type: ignore[attr-defined]
            rel = Path(src.getURI(ref).ospath).relative_to(root)
            arrived.append(FileDataset(path=str(arrived_root / rel), refs=[ref],
                                       formatter=info.formatter))
    with Butler.from_config(repo, writeable=True) as butler:
        butler.registry.registerDatasetType(refs[0].datasetType)
        butler.collections.register(refs[0].run)
        butler.ingest(*arrived, transfer=None)


def paths_register(move: Any) -> str:
    from compiler import paths

    return paths.register_script(move)

