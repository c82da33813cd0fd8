"""The rehearsal's services layer (drpc_rehearsal): PostgreSQL, a real Rucio 41.5.1 server
on it, Rucio's own conveyor daemons with a byte-copying mock transfer tool, a Kafka mock broker
and the Rubin Hermes step, all on 127.0.0.1; and that nothing is left running afterwards."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest

from drpc_rehearsal import PostgresCluster, Services, conveyor_cycle, make_stuck
from compiler.naming import ingestd_topic

import confluent_kafka  # noqa: E402  (the rehearsal extra; installed by tools/bootstrap)

pytestmark = pytest.mark.services

SRC, DST = "SLAC_BUTLER_DISK", "IN2P3_BUTLER_DISK"
SCOPE = "dr1"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with Services(tmp_path_factory.mktemp("rehearsal-services"), rses=[SRC, DST],
                  scopes=[SCOPE]) as services:
        yield services


# -- helpers ---------------------------------------------------------------------------------------
def sidecar(i: int) -> str:
    return json.dumps({"id": str(uuid.UUID(int=i)), "run": "u/drp/run1",
                       "datasetType": {"name": "deepCoadd", "storageClass": "ExposureF",
                                       "dimensions": ["skymap", "tract", "patch", "band"]},
                       "dataId": {"dataId": {"skymap": "lsst_cells_v1", "tract": 10 + i}}})


def add_dataset(svc: Services, nfiles: int, *, meta: int | None = None,
                write: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """A dataset of `nfiles` files with real bytes at the source RSE path, replicas there
    (adler32 + bytes) and, on the first `meta` files (all by default), rubin_* metadata."""
    ds = f"ds-{uuid.uuid4().hex[:10]}"
    files = []
    for i in range(nfiles):
        name = f"u/drp/run1/deepCoadd/{ds}/f{i}.fits"
        data = os.urandom(1000 + i)
        if write:
            path = svc.rucio.file_path(SRC, SCOPE, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        entry: dict[str, Any] = {"scope": SCOPE, "name": name, "bytes": len(data),
                                 "adler32": f"{zlib.adler32(data):08x}", "data": data.hex()}
        if meta is None or i < meta:
            entry["meta"] = {"rubin_butler": "data_product", "rubin_sidecar": sidecar(i)}
        files.append(entry)
    spec = json.dumps([{k: v for k, v in f.items() if k != "data"} for f in files])
    svc.rucio.client_call(f"""
        import json
        files = json.loads({spec!r})
        c.add_dataset({SCOPE!r}, {ds!r})
        c.add_replicas({SRC!r}, [{{k: f[k] for k in ("scope", "name", "bytes", "adler32")}}
                                 for f in files])
        c.attach_dids({SCOPE!r}, {ds!r}, [{{"scope": f["scope"], "name": f["name"]}}
                                          for f in files])
        for f in files:
            if "meta" in f:
                c.set_metadata_bulk(f["scope"], f["name"], f["meta"])
    """)
    return ds, files


def add_rule(svc: Services, ds: str, rse: str = DST) -> str:
    [rule_id] = svc.rucio.client_json(
        f"c.add_replication_rule([{{'scope': {SCOPE!r}, 'name': {ds!r}}}], 1, {rse!r},"
        " grouping='DATASET', activity='Data Consolidation')")
    return str(rule_id)


def rule_show(svc: Services, rule_id: str) -> dict[str, str]:
    env = svc.rucio.env()
    exe = shutil.which("rucio", path=env["PATH"])
    assert exe
    out = subprocess.run([exe, "rule", "show", rule_id], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    return {k.strip(): v.strip() for k, _, v in
            (line.partition(":") for line in out.splitlines() if ":" in line)}


def consume(svc: Services, topic: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    consumer = confluent_kafka.Consumer(
        svc.broker.consumer_config(f"test-{uuid.uuid4().hex}"))  # fresh group: mock quirk
    consumer.subscribe([topic])
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            got.append(json.loads(msg.value()))
    finally:
        consumer.close()
    return got


def live_group_members(pgid: int) -> list[int]:
    """PIDs of processes of group `pgid` that are not zombies."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def port_closed(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def wait_all_gone(pids: dict[str, int], ports: dict[str, int], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(live_group_members(p) for p in pids.values()) and all(
                port_closed(p) for p in ports.values()):
            return
        time.sleep(0.2)
    alive = {k: live_group_members(p) for k, p in pids.items()}
    open_ports = {k: p for k, p in ports.items() if not port_closed(p)}
    raise AssertionError(f"left running: {alive}, open ports: {open_ports}")


# -- the stack -------------------------------------------------------------------------------------
def test_rucio_runs_on_postgres_with_file_rses(svc: Services) -> None:
    assert svc.rucio.db_url.startswith("postgresql+psycopg://")
    assert f"@127.0.0.1:{svc.postgres.port}/" in svc.rucio.db_url
    tables = svc.postgres.psql("SELECT count(*) FROM information_schema.tables "
                               "WHERE table_schema = 'public'", database="rucio")
    assert int(tables) > 60
    got = svc.rucio.client_json(
        "{'rses': sorted(r['rse'] for r in c.list_rses()),"
        f" 'pfn': c.lfns2pfns({DST!r}, ['{SCOPE}:a/b.fits']),"
        f" 'distance': c.get_distance({SRC!r}, {DST!r}),"
        " 'limits': c.get_local_account_limits('root'),"
        f" 'scheme': c.get_protocols({SRC!r})[0]['scheme']}}")
    assert got["rses"] == sorted([SRC, DST])
    assert got["pfn"] == {f"{SCOPE}:a/b.fits":
                          f"file://localhost{svc.rucio.rse_roots[DST]}/{SCOPE}/a/b.fits"}
    assert got["distance"][0]["distance"] == 1
    assert all(v == float("inf") for v in got["limits"].values())
    assert got["scheme"] == "file"
    env = svc.rucio.env()
    assert env["RUCIO_CONFIG"] == str(svc.rucio.config_path)
    assert env["RUCIO_CLIENT_MODE"] == "1"
    assert env["PATH"].split(os.pathsep)[0] == str(svc.rucio.venv / "bin")
    assert all(svc.rucio.rse_roots[r].is_dir() for r in (SRC, DST))
    for name, port in svc.ports().items():  # loopback only
        assert not port_closed(port), name


def test_rule_goes_ok_bytes_arrive_and_hermes_publishes(svc: Services) -> None:
    ds, files = add_dataset(svc, 3, meta=2)  # the third file has no rubin_butler
    rule_id = add_rule(svc, ds)
    assert svc.rucio.rule(rule_id)["state"] == "REPLICATING"

    states, cycles = svc.run_until_settled([rule_id], max_cycles=5)
    assert states == {rule_id: "OK"}
    assert sorted(cycles[0].copied) == sorted(f"{SCOPE}:{f['name']}" for f in files)
    assert cycles[0].seconds < 20, cycles[0].timings
    for f in files:
        dst = svc.rucio.file_path(DST, SCOPE, f["name"])
        assert dst.read_bytes() == bytes.fromhex(f["data"])
    assert all(t["src_rse"] == SRC and t["dst_rse"] == DST for t in cycles[0].transfers)

    result = svc.hermes_step()
    topic = ingestd_topic(DST, SCOPE)
    assert dict(result) == {topic: 2}
    assert result.dropped == [f"{SCOPE}:{files[2]['name']}"]
    assert result.other > 0  # transfer-queued/-submitted... consumed too

    events = consume(svc, topic, 2)
    assert len(events) == 2
    by_name = {e["payload"]["name"]: e for e in events}
    assert set(by_name) == {f["name"] for f in files[:2]}
    for i, f in enumerate(files[:2]):
        event = by_name[f["name"]]
        assert event["event_type"] == "transfer-done"
        p = event["payload"]
        assert (p["scope"], p["dataset"], p["datasetScope"]) == (SCOPE, ds, SCOPE)
        assert (p["src-rse"], p["dst-rse"]) == (SRC, DST)
        assert p["dst-url"] == f"file://localhost{svc.rucio.file_path(DST, SCOPE, f['name'])}"
        assert p["dst-url"] == svc.rucio.rse_url(DST) + f"{SCOPE}/{f['name']}"
        assert (p["file-size"], p["checksum-adler"]) == (f["bytes"], f["adler32"])
        assert p["rubin_butler"] == "data_product"
        assert p["rubin_sidecar"] == sidecar(i)

    again = svc.hermes_step()  # the messages were deleted once produced
    assert dict(again) == {} and again.other == 0


def test_lose_leaves_the_file_missing_while_rucio_says_ok(svc: Services) -> None:
    ds, files = add_dataset(svc, 2)
    rule_id = add_rule(svc, ds)
    lost = f"{SCOPE}:{files[0]['name']}"
    result = conveyor_cycle(svc.rucio, lose=lost)
    assert result.lost == [lost]
    assert result.copied == [f"{SCOPE}:{files[1]['name']}"]
    assert svc.rucio.rule(rule_id)["state"] == "OK"
    assert rule_show(svc, rule_id)["State"] == "OK"
    assert not svc.rucio.file_path(DST, SCOPE, files[0]["name"]).exists()
    assert svc.rucio.file_path(DST, SCOPE, files[1]["name"]).exists()
    svc.hermes_step()  # leave no messages to the next test


def test_make_stuck(svc: Services) -> None:
    ds, files = add_dataset(svc, 2)
    rule_id = add_rule(svc, ds)
    stuck = make_stuck(svc.rucio, rule_id)
    assert sorted(stuck) == sorted(f"{SCOPE}:{f['name']}" for f in files)
    show = rule_show(svc, rule_id)
    assert show["State"] == "STUCK"
    assert show["Locks OK/REPLICATING/STUCK"] == "0/0/2"
    assert "transfer failed permanently" in show["Error"]
    rule = svc.rucio.rule(rule_id)
    assert (rule["state"], rule["locks_stuck_cnt"]) == ("STUCK", 2)
    # its transfer requests are gone: the conveyor does not revive it
    assert conveyor_cycle(svc.rucio).transfers == []
    assert svc.rucio.rule(rule_id)["state"] == "STUCK"
    assert not svc.rucio.file_path(DST, SCOPE, files[0]["name"]).exists()


def test_missing_source_fails_and_the_rule_ends_stuck(svc: Services) -> None:
    ds, files = add_dataset(svc, 1, write=False)  # registered, but no bytes at the source
    rule_id = add_rule(svc, ds)
    states, cycles = svc.run_until_settled([rule_id], max_cycles=8)
    assert states == {rule_id: "STUCK"}
    assert all(c.failed == [f"{SCOPE}:{files[0]['name']}"] for c in cycles)
    assert len(cycles) == 4  # the first try and Rucio's 3 retries
    assert "source file missing" in rule_show(svc, rule_id)["Error"]
    svc.hermes_step()


# -- lifecycle -------------------------------------------------------------------------------------
def test_postgres_cluster_alone() -> None:
    with PostgresCluster(database="db1", user="u1", password="pw1") as pg:
        assert pg.url == f"postgresql://u1:pw1@127.0.0.1:{pg.port}/db1"
        assert pg.psql("SELECT current_setting('listen_addresses')").strip() == "127.0.0.1"
        owner = pg.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname='db1'")
        assert owner.strip() == "u1"
        pid, port, base = pg.pid, pg.port, pg.base
        assert pid is not None and base is not None and base.is_dir()
        if os.geteuid() == 0:
            assert base.stat().st_uid != 0  # run as `postgres`
    assert not live_group_members(pid)
    assert port_closed(port)
    assert not base.exists()


def test_services_stop_on_exception(tmp_path: Path) -> None:
    services = Services(tmp_path, rses=["X_DISK"], scopes=["s"])
    with pytest.raises(RuntimeError, match="boom"), services:
        pids, ports = services.pids(), services.ports()
        assert set(pids) == set(ports) == {"postgres", "rucio", "kafka"}
        pg_base = services.postgres.base
        raise RuntimeError("boom")
    wait_all_gone(pids, ports, timeout=1.0)
    assert pg_base is not None and not pg_base.exists()
    assert services.pids() == {}
    services.stop()  # idempotent


_HARNESS = """
import json, sys, time
from pathlib import Path
from drpc_rehearsal import Services
with Services(Path(sys.argv[1]), rses=["X_DISK"], scopes=["s"]) as s:
    print(json.dumps({"pids": s.pids(), "ports": s.ports(), "pg": str(s.postgres.base)}),
          flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_nothing_survives_the_harness(tmp_path: Path, sig: int) -> None:
    """SIGTERM: the harness unwinds and stops everything itself. SIGKILL: the services die
    with it (parent-death signal, watchdogs)."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_HARNESS), str(tmp_path)],
                            cwd=REPO, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert set(info["pids"]) == {"postgres", "rucio", "kafka"}
        proc.send_signal(sig)
        code = proc.wait(timeout=30)
        assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 1)
        wait_all_gone(info["pids"], info["ports"])
        if sig == signal.SIGTERM:
            assert not Path(info["pg"]).exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if "info" in locals():
            shutil.rmtree(info["pg"], ignore_errors=True)  # after a SIGKILL, nobody removed it
