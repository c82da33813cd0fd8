"""`drpc status` against the real systems, on loopback: rules in OK, REPLICATING and STUCK on
the Rucio server fixture, arrivals counted in real SQLite Butlers, and a lagging ctrl_ingestd
group on librdkafka's mock broker. Every state is checked in the table, the JSON (against the
committed schema), the Prometheus text (with promtool) and the HTML; then `--site` views and
`--merge`.

The status runs as its own process, as an operator runs it: Rucio's client reads its
configuration once per process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from compiler.naming import ingestd_topic
from compiler.plan import Move, Plan
from compiler.render.ingestd import default_group_id
from compiler.render.rucio import rule_comment
from compiler.status.model import StatusReport
from drpc_rehearsal.conveyor import conveyor_cycle
from drpc_rehearsal.kafka import KafkaBroker
from tests.helpers import MINIMAL, ROOT, compile_data

try:
    from tests.services.rucio_server import RucioServer
except ImportError:  # pragma: no cover
    from services.rucio_server import RucioServer

SKYMAP = "hsc_rings_v1"
SCHEMA = json.loads((ROOT / "schema" / "status.schema.json").read_text())
STATUS = ("import sys; from compiler.cli_status import status_command; "
          "status_command.main(sys.argv[1:], prog_name='drpc status')")


def status_campaign(tmp_path: Path, brokers: str) -> tuple[Plan, Path]:
    """MINIMAL under a unique name, tract-level moved types (no visit records needed), the
    sites' Butlers under tmp_path and their ctrl_ingestd on the mock broker."""
    data = YAML(typ="safe").load(MINIMAL)
    data["metadata"]["name"] = f"s{uuid.uuid4().hex[:10]}"
    for site in ("usdf", "frdf"):
        data["sites"][site]["butler"] = {"repo": str(tmp_path / site / "repo")}
        data["sites"][site]["ingestd"]["kafka_brokers"] = [brokers]
    data["datasets"] = [
        {"type": "tractSummary", "dimensions": ["skymap", "tract"], "produced_by": "step1",
         "consumed_by": ["fgcm"], "storage_class": "StructuredDataDict"},
        {"type": "tractCalib", "dimensions": ["skymap", "tract"], "produced_by": "fgcm",
         "consumed_by": ["step3"], "storage_class": "StructuredDataDict"},
        {"type": "objectTable_tract", "dimensions": ["skymap", "tract"], "produced_by": "step3",
         "archive": True, "storage_class": "StructuredDataDict"}]
    compiled = compile_data(tmp_path, data)
    return compiled.plan, tmp_path / "campaign.yaml"


def move_of(plan: Plan, kind: str) -> Move:
    return next(m for m in plan.moves if m.kind == kind)


def rucio_dataset(server: RucioServer, plan: Plan, move: Move, names: list[str]) -> str:
    """The move's Rucio container holding one dataset of the files `names` (replicas at the
    source) and the container's rule, as apply-rules and a register script make them; the
    rule's id."""
    chunk = f"{move.rucio_name}.0001"
    server.client_call(f"""
        from rucio.common.exception import Duplicate
        try:
            c.add_scope("root", {move.rucio_scope!r})
        except Duplicate:
            pass
        c.add_container({move.rucio_scope!r}, {move.rucio_name!r})
        """)
    server.add_dataset(move.rucio_scope, chunk,
                       [{"name": n, "bytes": 7, "adler32": "0a0b0c0d"} for n in names],
                       rse=move.source_rse)
    server.client_call(f"c.attach_dids({move.rucio_scope!r}, {move.rucio_name!r}, "
                       f"[{{'scope': {move.rucio_scope!r}, 'name': {chunk!r}}}])")
    return server.add_rule(move.rucio_scope, move.rucio_name, move.destination_rse,
                           comment=rule_comment(plan, move))


def make_butler(plan: Plan, site: str, arrived: dict[Move, int]) -> dict[Move, list[str]]:
    """The site's repository with its incoming chains (what setup-repo.sh makes) and, for each
    move, that many datasets in a RUN chained into the move's incoming chain (what verify
    does); each move's files, as paths under the datastore root (their Rucio DID names)."""
    from lsst.daf.butler import Butler, CollectionType, DatasetType
    from lsst.resources import ResourcePath

    repo = plan.site(site).butler_repo
    Butler.makeRepo(repo)
    root = ResourcePath(repo, forceDirectory=True)  # the default datastore root
    butler = Butler.from_config(repo, writeable=True)
    butler.registry.insertDimensionData("skymap", {
        "name": SKYMAP, "hash": b"h", "tract_max": 20000, "patch_nx_max": 10,
        "patch_ny_max": 10})
    butler.registry.insertDimensionData("tract", *[{"skymap": SKYMAP, "id": t}
                                                   for t in range(1, 11)])
    for chain in plan.incoming_chains(site):
        butler.collections.register(chain, CollectionType.CHAINED)
    files: dict[Move, list[str]] = {}
    for move, count in arrived.items():
        dtype = DatasetType(move.dataset_type, ("skymap", "tract"), "StructuredDataDict",
                            universe=butler.dimensions)
        butler.registry.registerDatasetType(dtype)
        run = f"{plan.campaign}/{move.kind}/{move.source}"  # unique names on the shared Rucio
        butler.collections.register(run)
        files[move] = []
        for tract in range(1, count + 1):
            ref = butler.put({"tract": tract}, dtype, {"skymap": SKYMAP, "tract": tract}, run=run)
            files[move].append(str(butler.getURI(ref).relative_to(root)))
        butler.collections.extend_chain(move.into, [run])
    butler.close()
    return files


def lagging_group(broker: KafkaBroker, plan: Plan, site: str, sent: int, committed: int) -> str:
    """`sent` transfer-done messages on the site's topic, its ctrl_ingestd group committed at
    `committed` (partition 0); the topic."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    arrival = plan.arrivals(site)[0]
    topic = ingestd_topic(arrival.rse, arrival.scope)
    producer = Producer(broker.producer_config())
    for i in range(sent):
        producer.produce(topic, value=json.dumps({"n": i}).encode(), partition=0)
    assert producer.flush(20) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap,
                         "group.id": default_group_id(plan, site), "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(topic, 0, committed)], asynchronous=False)
    consumer.close()
    return topic


def run_status(campaign: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", STATUS, str(campaign), "--lag-interval", "0.5",
                           "--timeout", "5", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=240, check=False)


def transfer(report: StatusReport, move: Move) -> Any:
    return next(t for t in report.transfers if t.id == move.id)


@pytest.fixture
def broker(tmp_path: Path) -> Any:
    with KafkaBroker(log=tmp_path / "kafka.log") as running:
        yield running


@pytest.mark.services
def test_status_of_real_rules_butlers_and_lag(rucio_server: RucioServer, broker: KafkaBroker,
                                              tmp_path: Path) -> None:
    plan, campaign = status_campaign(tmp_path, broker.bootstrap)
    gather, scatter = move_of(plan, "gather"), move_of(plan, "scatter")
    back, raw = move_of(plan, "return"), move_of(plan, "raw")
    at_usdf = make_butler(plan, "usdf", {gather: 3, back: 1})  # the gather arrived whole
    at_frdf = make_butler(plan, "frdf", {scatter: 1})  # one of the scatter's two files is missing
    lost = f"{plan.campaign}/lost/file.json"
    ok_ids = [rucio_dataset(rucio_server, plan, gather, at_usdf[gather]),
              rucio_dataset(rucio_server, plan, scatter, [*at_frdf[scatter], lost])]
    for _ in range(5):  # the real conveyor with Rucio's mock transfer tool (no bytes copied)
        conveyor_cycle(rucio_server, copy_files=False)
        if set(rucio_server.rule_states(ok_ids).values()) == {"OK"}:
            break
    assert set(rucio_server.rule_states(ok_ids).values()) == {"OK"}
    stuck_id = rucio_dataset(rucio_server, plan, back, [*at_usdf[back], lost + "2"])
    rucio_server.update_rule(stuck_id, state="STUCK")
    replicating_id = rucio_dataset(rucio_server, plan, raw, [f"{plan.campaign}/raw/r1.fits"])
    assert rucio_server.rule_states([stuck_id, replicating_id]) == {
        stuck_id: "STUCK", replicating_id: "REPLICATING"}
    lag_topic = lagging_group(broker, plan, "usdf", sent=10, committed=3)

    env = {**os.environ, "HOME": str(tmp_path / "home"),
           "RUCIO_CONFIG": str(rucio_server.config_path), "RUCIO_ACCOUNT": "root"}
    env.pop("BPS_WMS_SERVICE_CLASS", None)
    got = run_status(campaign, env, "--format", "json")
    assert got.returncode == 5, got.stderr
    data = json.loads(got.stdout)
    jsonschema.validate(data, SCHEMA)
    report = StatusReport.model_validate(data)

    g, s, b, r = (transfer(report, m) for m in (gather, scatter, back, raw))
    assert (g.rule.state, g.rule.rule_id, g.rule.files_sent, g.arrival.ingested) == (
        "OK", ok_ids[0], 3, 3)
    assert g.rule.locks is not None and g.rule.locks.ok == 3
    assert (s.rule.state, s.rule.files_sent, s.arrival.ingested) == ("OK", 2, 1)
    assert {t.arrival.counted_by for t in (g, s, b)} == {"files"}
    assert (b.rule.state, b.rule.rule_id) == ("STUCK", stuck_id)
    assert (r.rule.state, r.rule.rule_id, r.rule.files_sent) == ("REPLICATING", replicating_id, 1)
    assert r.rule.locks is not None and r.rule.locks.replicating == 1
    lag = {(x.site, x.topic): x for x in report.lag}[("usdf", lag_topic)]
    assert (lag.lag, lag.lag_before, lag.falling) == (7, 7, False)
    assert report.attention == [
        f"transfer {s.id}: 2 sent, 1 arrived at frdf ({scatter.into})",
        f"transfer {b.id}: rule {stuck_id} STUCK, locks OK/REPLICATING/STUCK 0/2/0",
        f"ctrl_ingestd of usdf ({default_group_id(plan, 'usdf')}) on {lag_topic}: 7 message(s) "
        "behind and not falling (was 7)"]
    assert {(x.source, x.site): x.up for x in report.sources} == {
        ("bps", "usdf"): True, ("bps", "frdf"): True, ("rucio", None): True,
        ("butler", "usdf"): True, ("butler", "frdf"): True, ("kafka", "usdf"): True,
        ("kafka", "frdf"): True}
    steps = {st.key: st for site in report.sites for st in site.steps}
    assert steps[f"verify:{gather.id}"].state == "done"
    assert steps[f"wait:{raw.id}"].state == "running"
    assert steps[f"wait:{back.id}"].state == "failed"
    assert steps["setup-repo:usdf"].observed and steps["setup-repo:usdf"].state == "done"

    table = run_status(campaign, env).stdout
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines() if line}
    assert rows[gather.id] == ["OK", "3/0/0", "3", "3"]
    assert rows[scatter.id] == ["OK", "2/0/0", "2", "1"]
    assert rows[back.id][:2] == ["STUCK", "0/2/0"]
    assert rows[raw.id] == ["REPLICATING", "0/1/0", "1", "0"]
    assert f"usdf  {lag_topic}" in table and "7 (not falling, was 7)" in table

    prom = run_status(campaign, env, "--format", "prometheus").stdout
    c = plan.campaign
    for line in (
            f'drpc_rule_ok{{campaign="{c}",transfer="{gather.id}",source="frdf",destination="usdf"}} 1',
            f'drpc_rule_stuck{{campaign="{c}",transfer="{back.id}",source="frdf",destination="usdf"}} 1',
            f'drpc_rule_ok{{campaign="{c}",transfer="{raw.id}",source="usdf",destination="frdf"}} 0',
            f'drpc_rule_locks{{campaign="{c}",transfer="{raw.id}",state="replicating"}} 1',
            f'drpc_transfer_files_sent{{campaign="{c}",transfer="{scatter.id}",destination="frdf"}} 2',
            f'drpc_transfer_files_ingested{{campaign="{c}",transfer="{scatter.id}",destination="frdf"}} 1',
            f'drpc_ingestd_consumer_lag{{campaign="{c}",site="usdf",topic="{lag_topic}"}} 7'):
        assert line in prom.splitlines(), line
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install -y prometheus"
    lint = subprocess.run([promtool, "check", "metrics"], input=prom, capture_output=True,
                          text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    page = run_status(campaign, env, "--format", "html").stdout
    assert f'<tr data-transfer="{back.id}">' in page
    assert '<td class="failed">STUCK 0/2/0' in page and '<td class="ok">OK 3/0/0' in page

    # each site alone sees its own Butler only; the merge of both sees every count
    views = []
    for site in ("usdf", "frdf"):
        out = tmp_path / f"{site}.json"
        alone = run_status(campaign, env, "--site", site, "--format", "json", "-o", str(out))
        assert alone.returncode == 5, alone.stderr
        view = StatusReport.model_validate_json(out.read_text())
        assert view.site == site
        views.append(out)
    usdf_view = StatusReport.model_validate_json(views[0].read_text())
    far = transfer(usdf_view, scatter)  # arrives at frdf: not usdf's Butler
    assert not far.arrival.known and "frdf's Butler" in (far.arrival.reason or "")
    merged = run_status(campaign, env, "--merge", *map(str, views), "--format", "json")
    assert merged.returncode == 5, merged.stderr
    whole = StatusReport.model_validate_json(merged.stdout)
    assert whole.merged_from == ["usdf.json", "frdf.json"]
    assert [transfer(whole, m).arrival.ingested for m in (gather, scatter, back)] == [3, 1, 1]
    assert whole.attention == report.attention
