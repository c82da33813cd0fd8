"""The rehearsal's Butler stand-ins (drpc_rehearsal/butlers.py) and ingest consumer
(drpc_rehearsal/ingest.py), against real SQLite Butlers made by the compiled tree's own
setup-repo.sh.

The campaign is 3x2 with FRDF's tracts moved next to UKDF's (9943, 9944 beside 9941, 9942 in
ring 61) so that two sites share a tract edge: in 3x2 itself the sites' tracts are 6 tracts
apart and no visit can overlap two of them. Every site's Butler repository, datastore root and
RSE live under one temporary directory (the campaign's own paths point there).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from compiler.emit import write_tree
from compiler.pipeline import compile_campaign
from compiler.plan import Plan, tract_predicate
from drpc_rehearsal import butlers as B
from drpc_rehearsal.ingest import IngestConsumer, load_ingestd_config, real_ctrl_ingestd
from tests.helpers import shared

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGNS = ROOT / "campaigns"
PLANNER = ROOT / "tests" / "planner"
BIN = Path(sys.executable).parent
BUTLER = shutil.which("butler", path=str(BIN))
SITES = ("usdf", "frdf")  # the repositories made for real (central + one other)
OUT = "HSC/runs/drp-3x2/DM-48353"

pytestmark = pytest.mark.skipif(BUTLER is None, reason=f"no butler CLI beside {sys.executable}")


def adjacent_campaign(tmp: Path) -> Path:
    yaml = YAML()
    # the planner's fixed copy of 3x2 (tests/planner/): these tests name its stages and types
    doc = yaml.load((PLANNER / "3x2.yaml").read_text())
    shutil.copytree(PLANNER / "sites", tmp / "sites", dirs_exist_ok=True)
    doc["sky"]["assignment"]["tracts"]["frdf"] = [9943, 9944]
    for sid in doc["sites"]:
        doc["sites"][sid]["butler"] = {"repo": str(tmp / sid / "repo")}
        doc["sites"][sid]["rucio"] = {"fs_prefix": f"file://{tmp}/{sid}/rse/"}
    path = tmp / "3x2-adjacent.yaml"
    with path.open("w") as f:
        yaml.dump(doc, f)
    return path


def setup_repo(tree: Path, site: str, cwd: Path, skip: list[str]) -> subprocess.Popen[str]:
    scratch = cwd / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DRY_RUN",) and not k.startswith("BUTLER_")}
    env.update(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", TMPDIR=str(scratch),
               BUTLER_REGISTRY="", SKIP_STEPS=" ".join(skip))
    return subprocess.Popen(["bash", str(tree / "sites" / site / "butler" / "setup-repo.sh")],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(procs: dict[str, subprocess.Popen[str]]) -> dict[str, tuple[int, str]]:
    out = {}
    for site, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        out[site] = (proc.returncode, err)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Compile; setup-repo.sh (stack steps skipped) at usdf and frdf; insert_stack_records;
    setup-repo.sh again; define the visits each holds."""
    tmp = tmp_path_factory.mktemp("rehearsal-butlers")
    compiled = compile_campaign(adjacent_campaign(tmp))
    plan = compiled.plan
    tree = tmp / "tree"
    write_tree(tree, compiled.files)
    skip = B.replaced_setup_steps(plan)
    first = finish({s: setup_repo(tree, s, tmp / s, [*skip, "summary"]) for s in SITES})
    for site, (rc, err) in first.items():
        assert rc == 0, f"{site}: {err}"
        B.insert_stack_records(plan.site(site).butler_repo, plan, site)
    second = finish({s: setup_repo(tree, s, tmp / s, skip) for s in SITES})
    # the defaults chain is inputs.py's (this campaign sends no inputs: only the chain)
    chained = {s: subprocess.run([sys.executable, str(tree / "sites" / s / "butler" / "inputs.py")],
                                 env={**os.environ, "BUTLER_REPO": plan.site(s).butler_repo},
                                 capture_output=True, text=True, timeout=300) for s in SITES}
    visits = B.synthesize_visits(plan, per_tract=2, per_boundary=3)
    defined = {s: B.define_visits(plan.site(s).butler_repo, plan, s, visits) for s in SITES}
    for s in SITES:  # the raws each site holds, then its whole-visit selection (visits.sh)
        B.ingest_raws(plan.site(s).butler_repo, plan, defined[s])
        proc = subprocess.run([sys.executable, str(tree / "sites" / s / "butler" / "selection.py"),
                               "raws", s], env={**os.environ, "BUTLER_REPO": plan.site(s).butler_repo},
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    return {"tmp": tmp, "tree": tree, "plan": plan, "first": first, "second": second,
            "chained": chained, "visits": visits, "defined": defined}


def repo(world: dict[str, Any], site: str) -> str:
    return world["plan"].site(site).butler_repo


def frdf_outputs(world: dict[str, Any]) -> dict[str, B.JobResult]:
    """frdf's step1 and step2a, run once (by whichever test needs them first)."""
    if "frdf-jobs" not in world:
        plan: Plan = world["plan"]
        world["frdf-jobs"] = {job.stage: B.simulate_job(repo(world, "frdf"), plan, job, world["visits"])
                              for job in plan.jobs_at("frdf") if job.stage in ("step1", "step2a")}
    return world["frdf-jobs"]


# -- setup-repo.sh + insert_stack_records + setup-repo.sh ----------------------------------------

def test_setup_repo_runs_around_the_stack_records(world: dict[str, Any]) -> None:
    from lsst.daf.butler import Butler, CollectionType

    plan: Plan = world["plan"]
    assert B.replaced_setup_steps(plan) == ["instrument", "calibrations", "skymap"]
    for site in SITES:
        rc, err = world["second"][site]
        assert rc == 0, err
        chained = world["chained"][site]
        assert chained.returncode == 0, chained.stderr
        # no stage selects visits here, so the defaults chain holds the raws
        assert "create the defaults chain HSC/defaults over HSC/raw/all, HSC/calib, skymaps" in \
            chained.stdout
        with Butler.from_config(repo(world, site)) as butler:
            defaults = butler.collections.get_info("HSC/defaults")
            assert defaults.children == ("HSC/raw/all", "HSC/calib", "skymaps")
            assert butler.collections.get_info("HSC/calib").type is CollectionType.CALIBRATION
            assert butler.collections.get_info("skymaps").type is CollectionType.RUN
            assert [r.name for r in butler.registry.queryDimensionRecords("instrument")] == ["HSC"]
            tracts = {r.id: r for r in butler.registry.queryDimensionRecords("tract", skymap="hsc_rings_v1")}
            assert sorted(tracts) == list(plan.all_tracts)
            assert all(r.region.contains(B._unit(*plan.skymap.tract_center(t))) for t, r in tracts.items())
            # the datastore is where setup-repo.sh put it: <rse_root>/<scope> (the name rule)
            assert Path(butler._datastore.root.ospath) == Path(plan.site(site).datastore_root)
        # idempotent: a third pass of the records changes nothing
        B.insert_stack_records(repo(world, site), plan, site)


# -- visits ---------------------------------------------------------------------------------------

def test_3x2_itself_has_no_boundary_visits() -> None:
    plan = compile_campaign(CAMPAIGNS / "3x2.yaml", render=False).plan
    visits = B.synthesize_visits(plan, per_tract=2)
    assert len(visits) == 12 and {v.kind for v in visits} == {"tract"}
    counts = B.visit_counts(plan, visits)
    assert {s: (c.held, c.boundary) for s, c in counts.items()} == {
        "usdf": (12, 0), "frdf": (4, 0), "ukdf-lancs": (4, 0)}
    assert B.synthesize_visits(plan, per_tract=2) == visits  # deterministic


def test_boundary_visits_are_held_by_exactly_the_two_sites(world: dict[str, Any]) -> None:
    plan: Plan = world["plan"]
    visits = world["visits"]
    boundary = [v for v in visits if v.kind == "boundary"]
    assert boundary and {v.centred_on for v in boundary} == {(9942, 9943)}
    others = [s.id for s in plan.sites if not s.is_central]
    held = {s: {v.id for v in B.visits_held_by(plan, s, visits)} for s in others}
    for v in boundary:
        assert {s for s in others if v.id in held[s]} == {"frdf", "ukdf-lancs"}
    assert B.visits_held_by(plan, "usdf", visits) == visits
    counts = B.visit_counts(plan, visits)
    assert counts["frdf"].shared_with["ukdf-lancs"] >= len(boundary)
    assert counts["usdf"].held == len(visits)
    assert all(counts[s].held == len(held[s]) for s in others)


def test_butler_spatial_query_equals_visits_held_by(world: dict[str, Any]) -> None:
    """At the central site (every visit defined) the Butler's visit-tract join picks, for each
    site's tracts, exactly visits_held_by; at frdf exactly what it defined."""
    from lsst.daf.butler import Butler

    plan: Plan = world["plan"]
    visits = world["visits"]
    with Butler.from_config(repo(world, "usdf")) as butler:
        for site in plan.sites:
            where = f"skymap='hsc_rings_v1' AND {tract_predicate(site.processing_tracts)}"
            found = {d["visit"] for d in butler.query_data_ids(["visit"], where=where, limit=None)}
            expected = {v.id for v in B.visits_overlapping(plan, site.processing_tracts, visits)}
            if not site.is_central:
                assert expected == {v.id for v in B.visits_held_by(plan, site.id, visits)}
            assert found == expected, site.id
        regions = butler.registry.queryDimensionRecords("visit_detector_region")
        assert regions.count() == len(visits) * B.N_DETECTORS
    with Butler.from_config(repo(world, "frdf")) as butler:
        where = f"skymap='hsc_rings_v1' AND {tract_predicate(plan.site('frdf').processing_tracts)}"
        found = {d["visit"] for d in butler.query_data_ids(["visit"], where=where, limit=None)}
    assert found == {v.id for v in world["defined"]["frdf"]} == {
        v.id for v in B.visits_held_by(plan, "frdf", visits)}


# -- jobs -----------------------------------------------------------------------------------------

def test_simulate_job_makes_the_stage_outputs(world: dict[str, Any]) -> None:
    from lsst.daf.butler import Butler, CollectionType

    plan: Plan = world["plan"]
    visits = world["visits"]
    step2a = frdf_outputs(world)["step2a"]
    own = B.visits_overlapping(plan, plan.site("frdf").processing_tracts, visits)
    assert step2a.produced == {"isolated_star_presources": 2, "isolated_star_presource_associations": 2,
                               "preliminary_visit_summary": len(own)}
    assert step2a.run == f"{OUT}/step2a/20260101T020100Z" == B.run_name(plan, step2a.job)
    assert not step2a.problems
    with Butler.from_config(repo(world, "frdf")) as butler:
        info = butler.collections.get_info(f"{OUT}/step2a")
        assert info.type is CollectionType.CHAINED
        assert info.children == (step2a.run, f"{OUT}/step1")  # linear: step1's chain holds the rest
        refs = butler.query_datasets("preliminary_visit_summary", collections=f"{OUT}/step2a")
        assert {r.dataId["visit"] for r in refs} == {v.id for v in own}
        tract_refs = butler.query_datasets("isolated_star_presources", collections=f"{OUT}/step2a")
        assert {r.dataId["tract"] for r in tract_refs} == {9943, 9944}
        assert set(tract_refs[0].dataId.required) == {"instrument", "skymap", "tract"}
        root = Path(plan.site("frdf").datastore_root)
        for ref in [*refs, *tract_refs]:
            path = Path(butler.getURI(ref).ospath)
            assert path.is_file() and root in path.parents
    # usdf's own stages up to fgcm; fgcm cannot run yet: the other sites' outputs have not arrived
    for job in plan.jobs_at("usdf"):
        if job.stage == "fgcm":
            with pytest.raises(B.JobInputError, match="4 of 6 isolated_star_presources input"):
                B.simulate_job(repo(world, "usdf"), plan, job, visits)
            break
        assert not B.simulate_job(repo(world, "usdf"), plan, job, visits).problems


# -- ingest ---------------------------------------------------------------------------------------

def rucio_register_bundles(world: dict[str, Any], site: str, dataset_type: str, collection: str,
                           rucio_dataset: str) -> list[Any]:
    """rucio-register data-products' own code: its query and its DID/metadata bundles."""
    from lsst.daf.butler import Butler
    from lsst.daf.butler.script.queryDatasets import QueryDatasets
    from lsst.rucio.register.data_type import DataType
    from lsst.rucio.register.rucio_interface import RucioInterface
    from lsst.rucio.register.rucio_register_config import RucioRegisterConfig

    config = RucioRegisterConfig(str(world["tree"] / "sites" / site / "rucio" / "rucio-register.yaml"))
    butler = Butler.from_config(repo(world, site))
    query = QueryDatasets(butler=butler, glob=[dataset_type], collections=[collection], where="",
                          find_first=True, limit=0, order_by=(), show_uri=False,
                          with_dimension_records=True)
    refs = [ref for group in query.getDatasets() for ref in group]
    ri = RucioInterface.__new__(RucioInterface)  # its __init__ connects to a Rucio server
    ri.butler, ri.rse, ri.scope, ri.rse_root = butler, config.rucio_rse, config.scope, config.rse_root
    ri.dtn_url = ri.pfn_base = config.dtn_url
    ri.rubin_butler_type = DataType.DATA_PRODUCT
    return [ri._make_dataset_ref_bundle(rucio_dataset, ref) for ref in refs]


def transfer_done(plan: Plan, bundle: Any, src: str, dst: str, rucio_dataset: str) -> dict[str, Any]:
    """Rucio's replica copy (identity lfn2pfn: <rse root>/<scope>/<name>) and Hermes' event."""
    did = bundle.did
    source, dest = plan.site(src), plan.site(dst)
    src_file = Path(source.rse_root) / did.scope / did.name
    dst_file = Path(dest.rse_root) / did.scope / did.name
    dst_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src_file, dst_file)
    return {"id": "0" * 32, "event_type": "transfer-done", "services": "kafka", "payload": {
        "scope": did.scope, "name": did.name, "dataset": rucio_dataset, "datasetScope": did.scope,
        "src-rse": source.rse, "dst-rse": dest.rse, "src-url": did.pfn,
        "dst-url": f"{dest.rucio_prefix}{did.scope}/{did.name}", "file-size": did.bytes,
        "checksum-adler": did.adler32, "rubin_butler": did.meta.rubin_butler,
        "rubin_sidecar": did.meta.rubin_sidecar}}


def test_ingest_lands_the_dataset_under_the_same_run(world: dict[str, Any]) -> None:
    from lsst.daf.butler import Butler

    plan: Plan = world["plan"]
    transfer = next(t for t in plan.transfers
                    if t.dataset_type == "preliminary_visit_summary" and t.source == "frdf")
    frdf_outputs(world)
    bundles = rucio_register_bundles(world, "frdf", transfer.dataset_type, transfer.source_collection,
                                     transfer.rucio_name)
    assert bundles and all(b.did.meta.rubin_butler == "data_product" for b in bundles)
    # the name rule: the DID name is the datastore-relative path at the source
    first = bundles[0].did
    assert (Path(plan.site("frdf").datastore_root) / first.name).is_file()
    events = [transfer_done(plan, b, "frdf", "usdf", transfer.rucio_name) for b in bundles]

    config = load_ingestd_config(world["tree"], "usdf")
    assert list(config["topics"]) == ["SLAC_BUTLER_DISK-repo"]
    with IngestConsumer(config, repo(world, "usdf"), implementation="stand-in") as consumer:
        assert consumer.implementation == "drpc stand-in"
        stats = consumer.ingest_event(events[0])
        assert (stats.ingested, stats.duplicates, stats.outside_root, stats.errors) == (1, 0, 0, [])
        stats = consumer.ingest_events([json.dumps(e) for e in events])  # a batch, one duplicate
        assert (stats.ingested, stats.duplicates, stats.errors) == (len(events) - 1, 1, [])
        again = consumer.ingest_event(events[0])  # a duplicate event is harmless
        assert (again.ingested, again.duplicates, again.errors) == (0, 1, [])
        raw = json.loads(json.dumps(events[0]))
        raw["payload"]["rubin_butler"] = "raw_file"
        skipped = consumer.ingest_event(raw)
        assert skipped.ingested == 0 and sum(skipped.skipped.values()) == 1 and not skipped.errors
        wrong = json.loads(json.dumps(events[0]))
        wrong["payload"]["dst-rse"] = "NOWHERE_DISK"
        assert "not in the ctrl_ingestd config" in consumer.ingest_event(wrong).errors[0]

    source = {str(b.did.name): json.loads(b.did.meta.rubin_sidecar) for b in bundles}
    with Butler.from_config(repo(world, "usdf")) as butler:
        runs = {json.loads(b.did.meta.rubin_sidecar)["run"] for b in bundles}
        assert runs == {f"{OUT}/step2a/20260101T020100Z"}  # frdf's RUN, not usdf's own step2a RUN
        refs = butler.query_datasets(transfer.dataset_type, collections=sorted(runs), limit=None)
        assert len(refs) == len(bundles)
        root = Path(plan.site("usdf").datastore_root)
        for ref in refs:
            name = str(Path(butler.getURI(ref).ospath).relative_to(root))
            assert source[name]["id"] == str(ref.id) and source[name]["run"] == ref.run
    # the compiled tree's own arrival check finds every file
    arrived = subprocess.run(
        [sys.executable, str(world["tree"] / "sites" / "usdf" / "verify" / "butler-arrived.py"),
         "--repo", repo(world, "usdf"), "--dataset-type", transfer.dataset_type,
         "--collections", f"{transfer.source_collection}/*", "--rucio-did", transfer.rucio_did,
         "--chain", transfer.incoming_collection, "--dry-run"],
        input="".join(f"{b.did.scope}:{b.did.name}\n" for b in bundles),
        capture_output=True, text=True, timeout=120)
    assert arrived.returncode == 0, arrived.stderr
    # and would chain the arrived RUN into the incoming chain (the command it would make)
    assert shlex.split(arrived.stdout) == ["butler", "collection-chain", "--mode", "extend",
                                           repo(world, "usdf"), transfer.incoming_collection,
                                           *sorted(runs)]


def tract_events(world: dict[str, Any], src: str, dataset_type: str) -> tuple[Any, list[dict[str, Any]]]:
    plan: Plan = world["plan"]
    frdf_outputs(world)
    transfer = next(t for t in plan.transfers if t.dataset_type == dataset_type and t.source == src)
    bundles = rucio_register_bundles(world, src, dataset_type, transfer.source_collection,
                                     transfer.rucio_name)
    assert bundles
    return transfer, [transfer_done(plan, b, src, transfer.destination, transfer.rucio_name) for b in bundles]


@pytest.mark.services
def test_kafka_consumer_ingests_what_hermes_produced(world: dict[str, Any]) -> None:
    """The same, through a real Kafka-protocol broker: the topic the config names, the consumer
    settings ctrl_ingestd uses."""
    pytest.importorskip("confluent_kafka")
    from confluent_kafka import Producer
    from lsst.daf.butler import Butler

    from compiler.naming import ingestd_topic
    from drpc_rehearsal.kafka import KafkaBroker

    transfer, events = tract_events(world, "frdf", "isolated_star_presources")
    config = load_ingestd_config(world["tree"], "usdf")
    with KafkaBroker() as broker:
        producer = Producer(broker.producer_config())
        for event in events:
            payload = event["payload"]
            topic = ingestd_topic(payload["dst-rse"], payload["scope"])
            assert topic in config["topics"]
            producer.produce(topic, json.dumps(event).encode(), key=payload["name"].encode())
        assert producer.flush(10) == 0
        with IngestConsumer(config, repo(world, "usdf"), brokers=[broker.bootstrap],
                            group_id=f"ingestd-test-{os.getpid()}", implementation="stand-in") as consumer:
            assert consumer.consumer_config()["group.id"].startswith("ingestd-test-")
            stats = consumer.drain(expect=len(events), timeout=60)
    assert (stats.consumed, stats.ingested, stats.errors) == (len(events), len(events), []), stats.summary()
    with Butler.from_config(repo(world, "usdf")) as butler:
        refs = butler.query_datasets(transfer.dataset_type, collections=sorted(stats.runs), limit=None)
        assert {r.dataId["tract"] for r in refs} == {9943, 9944}


@pytest.mark.services
def test_kafka_errors_do_not_count_as_events(world: dict[str, Any]) -> None:
    """A destination's config names topics that never get an event (its raw RSE's, in the
    rehearsal): Kafka reports each as an error message, which a drain does not count as one of
    the events it waits for (it used to return one event short)."""
    pytest.importorskip("confluent_kafka")
    from confluent_kafka import Producer

    from compiler.naming import ingestd_topic
    from drpc_rehearsal.kafka import KafkaBroker

    _, events = tract_events(world, "frdf", "isolated_star_presources")
    config = load_ingestd_config(world["tree"], "usdf")
    config["topics"]["NOWHERE_DISK-never"] = {"rucio_prefix": "file://localhost/nowhere/",
                                              "fs_prefix": "file:///nowhere/"}
    with KafkaBroker() as broker:
        producer = Producer(broker.producer_config())
        for event in events:
            payload = event["payload"]
            producer.produce(ingestd_topic(payload["dst-rse"], payload["scope"]),
                             json.dumps(event).encode(), key=payload["name"].encode())
        assert producer.flush(10) == 0
        with IngestConsumer(config, repo(world, "usdf"), brokers=[broker.bootstrap],
                            group_id=f"ingestd-errors-{os.getpid()}",
                            implementation="stand-in") as consumer:
            stats = consumer.drain(expect=len(events), timeout=60)
    assert stats.kafka_errors >= 1, stats.summary()  # the missing topic's
    assert stats.consumed - stats.kafka_errors == len(events), stats.summary()
    # ingested now, or by the test above (the same events into the same repository)
    assert stats.ingested + stats.duplicates == len(events) and not stats.errors, stats.summary()


class _RawIngestStandIn:
    """lsst.obs.base.ingest's RawIngestConfig and RawIngestTask as far as ctrl_ingestd's
    RseButler needs them for data products: it builds the task in its constructor and calls it
    only for raws (which this test does not send)."""

    def __init__(self, **kwargs: Any) -> None:
        self.transfer = None

    def run(self, files: Any) -> None:
        raise AssertionError("raw ingest needs the real lsst.obs.base")


@pytest.fixture
def real_ctrl_ingestd_on_pypi_butler(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The real ctrl_ingestd (CTRL_INGESTD_DIR, default the vendored 2.1) with PyPI's
    daf_butler: lsst.obs.base (not on PyPI) is replaced, where missing, by the two names its
    RseButler imports; what the test imports is forgotten afterwards, so that other tests of
    this process keep the stand-in ingest."""
    import importlib.util
    import types

    monkeypatch.setenv("CTRL_INGESTD_DIR", os.environ.get("CTRL_INGESTD_DIR")
                       or str(shared("vendor", "ctrl_ingestd-2.1", "python")))
    before = set(sys.modules)
    if importlib.util.find_spec("lsst.obs") is None:
        for name in ("lsst.obs", "lsst.obs.base", "lsst.obs.base.ingest"):
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
        ingest = sys.modules["lsst.obs.base.ingest"]
        ingest.RawIngestConfig = _RawIngestStandIn  # type: ignore[attr-defined]
        ingest.RawIngestTask = _RawIngestStandIn  # type: ignore[attr-defined]
    yield
    for name in set(sys.modules) - before:
        if name.startswith(("lsst.ctrl.ingestd", "lsst.obs")):
            del sys.modules[name]
    import lsst.ctrl

    if hasattr(lsst.ctrl, "ingestd") and "lsst.ctrl.ingestd" not in sys.modules:
        delattr(lsst.ctrl, "ingestd")


@pytest.mark.usefixtures("real_ctrl_ingestd_on_pypi_butler")
def test_real_ctrl_ingestd_ingests_the_same_events(world: dict[str, Any]) -> None:
    """ctrl_ingestd's own Message, Mapper, EntryFactory and RseButler.ingest on the events."""
    real, why = real_ctrl_ingestd()
    assert real is not None, why
    _, events = tract_events(world, "frdf", "isolated_star_presource_associations")
    config = load_ingestd_config(world["tree"], "usdf")
    with IngestConsumer(config, repo(world, "usdf"), implementation="ctrl_ingestd") as consumer:
        assert consumer.implementation == "ctrl_ingestd"
        stats = consumer.ingest_events(events)
        assert (stats.ingested, stats.errors) == (len(events), [])
        assert consumer.ingest_events(events[:1]).duplicates == 1


@pytest.mark.parametrize("storage_class", ["DataFrame", "ArrowAstropy"])
def test_stand_in_catalogs_read_back_as_their_storage_class(tmp_path: Path,
                                                            storage_class: str) -> None:
    """What a simulated job leaves behind reads back as a real output would: crosscheck.py
    reads a DataFrame's `columns` component, then the table (dr1's dia_object)."""
    from lsst.daf.butler import Butler, DatasetRef, DatasetType

    Butler.makeRepo(str(tmp_path / "repo"))
    with Butler.from_config(str(tmp_path / "repo"), writeable=True) as butler:
        dtype = DatasetType("table_" + storage_class, (), storage_class,
                            universe=butler.dimensions)
        butler.registry.registerDatasetType(dtype)
        butler.collections.register("run")
        ref = DatasetRef(dtype, butler.registry.expandDataId({}), run="run")
        [path] = B._ingest_stand_in_files(butler, [ref])  # noqa: SLF001
        assert path.suffix == ".parq"
        table = butler.get(ref)
        columns = (list(butler.get(ref.makeComponentRef("columns")))
                   if storage_class == "DataFrame" else list(table.colnames))
        assert "dataset_id" in columns and "run" in columns
        assert len(table) == 1


def test_expected_home_visit_gathers_equal_what_the_selection_sends(world: dict[str, Any]) -> None:
    """A `home-visits` gather sends each visit from its home site only: the rehearsal's expected
    count is what frdf's generated selection puts into the move, boundary visits at home
    elsewhere left out (dr1's rehearsal counted them once)."""
    from drpc_rehearsal.orchestrate import Rehearsal

    plan: Plan = world["plan"]
    frdf_outputs(world)
    rehearsal = Rehearsal(world["tmp"] / "3x2-adjacent.yaml", world["tmp"] / "work")
    rehearsal.plan, rehearsal.visits = plan, world["visits"]
    moves = [m for m in plan.moves if m.select_by == "home-visits" and m.source == "frdf"
             and m.stage in ("step1", "step2a")]
    assert moves
    left_out = 0
    for move in moves:
        proc = subprocess.run(
            [sys.executable, str(world["tree"] / "sites" / "frdf" / "butler" / "selection.py"),
             "move", move.id], env={**os.environ, "BUTLER_REPO": repo(world, "frdf")},
            capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        found = re.search(r": (\d+) dataset\(s\) in ", proc.stdout)
        assert found, proc.stdout
        selected = int(found.group(1))
        assert selected == rehearsal.expected_count(move) > 0, (move.id, proc.stdout)
        held = B.visits_overlapping(plan, list(move.tracts), world["visits"])
        left_out += len(held) - selected
    assert left_out > 0  # the boundary visits whose home is usdf
