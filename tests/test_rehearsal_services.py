"""The rehearsal's services layer (drpc_rehearsal): PostgreSQL, a real Rucio 41.5.1 server
on it, Rucio's own conveyor daemons with a byte-copying mock transfer tool, a Kafka mock broker
and the Rubin Hermes step, all on 127.0.0.1; and that nothing is left running afterwards.
Also, without services: importing the package has no side effects, the Rucio-side code imports
only the standard library and rucio, and a missing dependency is a user error (exit 2)."""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import confluent_kafka  # the rehearsal extra; installed by tools/bootstrap
import pytest
from click.testing import CliRunner

import drpc_rehearsal
from compiler.errors import DrpcError, ExitCode
from compiler.guard import guarded
from compiler.naming import ingestd_topic
from drpc_rehearsal import (
    KafkaBroker,
    MissingDependencyError,
    PostgresCluster,
    RucioServiceError,
    ServiceError,
    Services,
    conveyor_cycle,
    make_stuck,
    start_rucio_server,
)
from drpc_rehearsal.rucio import RucioVenvError, default_rucio_venv, rucio_python

services = pytest.mark.services

SRC, DST = "SLAC_BUTLER_DISK", "IN2P3_BUTLER_DISK"
SCOPE = "dr1"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
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
    svc.rucio.add_dataset(SCOPE, ds, [{k: v for k, v in f.items() if k != "data"}
                                      for f in files], rse=SRC)
    return ds, files


def add_rule(svc: Services, ds: str, rse: str = DST) -> str:
    return svc.rucio.add_rule(SCOPE, ds, rse, activity="Data Consolidation")


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
            value = msg.value()
            assert value is not None
            got.append(json.loads(value))
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
@services
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


@services
def test_rule_goes_ok_bytes_arrive_and_hermes_publishes(svc: Services) -> None:
    ds, files = add_dataset(svc, 3, meta=2)  # the third file has no rubin_butler
    rule_id = add_rule(svc, ds)
    assert svc.rucio.rule(rule_id)["state"] == "REPLICATING"
    assert svc.rucio.rule_states([rule_id]) == {rule_id: "REPLICATING"}
    assert svc.rucio.rule_ids(SCOPE, ds, DST) == [rule_id]
    assert svc.rucio.rule_ids(SCOPE, ds) == [rule_id]
    assert svc.rucio.rule_ids(SCOPE, ds, SRC) == []
    assert svc.rucio.dataset_files(SCOPE, ds) == sorted(f["name"] for f in files)

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


@services
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


@services
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


@services
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
@services
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


@services
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


@services
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


# -- without services ------------------------------------------------------------------------------
def package_modules() -> list[str]:
    """drpc_rehearsal and every module in it, its Rucio-side code included."""
    return ["drpc_rehearsal", *(m.name for m in pkgutil.walk_packages(
        drpc_rehearsal.__path__, "drpc_rehearsal."))]


#: The Butler side draws the sky with the LSST stack's lsst.sphgeom, imported with the module.
IMPORTS_LSST = {"drpc_rehearsal.butlers", "drpc_rehearsal.visits"}

_IMPORT_PROBE = """
import importlib, json, os, signal, sys
def state():
    return {"sys.path": list(sys.path), "os.environ": dict(os.environ),
            "signals": {s: repr(signal.getsignal(getattr(signal, s)))
                        for s in ("SIGTERM", "SIGINT", "SIGHUP")}}
before = state()
importlib.import_module(sys.argv[1])
after = state()
tops = {m.split(".")[0] for m in sys.modules}
print(json.dumps({"changed": [k for k in before if before[k] != after[k]],
                  "imported": sorted(tops & {"rucio", "confluent_kafka", "lsst"})}))
"""


def test_importing_the_package_has_no_side_effects() -> None:
    """Each module, imported alone in a fresh interpreter, leaves sys.path, os.environ and the
    SIGTERM/SIGINT/SIGHUP handlers as they were, and imports neither rucio, confluent_kafka nor
    (but for the Butler side) the LSST stack."""
    modules = package_modules()
    assert {"drpc_rehearsal.rucio", "drpc_rehearsal.rucio_side.daemons",
            "drpc_rehearsal.kafka_broker"} <= set(modules)
    problems = {}
    for name in modules:
        proc = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, name], cwd=REPO,
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, f"import {name}:\n{proc.stderr}"
        got = json.loads(proc.stdout.splitlines()[-1])
        allowed = {"lsst"} if name in IMPORTS_LSST else set()
        if got["changed"] or set(got["imported"]) - allowed:
            problems[name] = got
    assert problems == {}


def test_rucio_side_imports_only_the_standard_library_and_rucio() -> None:
    """The code run by the Rucio venv's python (which has no drpc) imports only the standard
    library, rucio and its own siblings; the Kafka broker's process only confluent-kafka."""
    here = Path(drpc_rehearsal.__file__).parent
    allowed = {**{p: {"rucio"} for p in (here / "rucio_side").glob("*.py")},
               here / "kafka_broker.py": {"confluent_kafka"}}
    bad = []
    for path, extra in sorted(allowed.items()):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            bad += [f"{path.name}: {n}" for n in names
                    if n.split(".")[0] not in sys.stdlib_module_names | extra]
    assert bad == []


needs_rucio_venv = pytest.mark.skipif(not (default_rucio_venv() / "bin" / "python").exists(),
                                      reason="no Rucio venv (tools/bootstrap makes it)")


@needs_rucio_venv
def test_rucio_side_runs_alone_in_the_rucio_venv(tmp_path: Path) -> None:
    """The Rucio venv's python sees the rucio_side package only: not drpc, not the checkout."""
    from drpc_rehearsal._proc import clean_env
    from drpc_rehearsal.rucio import run_side

    python = rucio_python()
    env = clean_env(python.parent.parent)
    layout, _ = run_side(python, "server:layout", {}, env=env, cwd=REPO)
    assert Path(layout["prefix"]) == python.parent.parent
    _, printed = run_side(python, "server:run_code", {"code": textwrap.dedent("""
        import importlib.util, sys
        print([importlib.util.find_spec(m) is None for m in ("compiler", "drpc_rehearsal")])
        print(sorted(m for m in sys.modules if "rucio_side" in m), sys.argv)
        """), "argv": ["a"]}, env=env, cwd=REPO)
    assert printed.splitlines() == [
        "[True, True]", "['drpc_rucio_side', 'drpc_rucio_side.server'] ['-c', 'a']"]
    with pytest.raises(RucioServiceError, match="server has no command serve_forever"):
        run_side(python, "server:serve_forever", {}, env=env, cwd=tmp_path)
    with pytest.raises(RucioServiceError, match="ZeroDivisionError: division by zero"):
        run_side(python, "server:run_code", {"code": "1 / 0"}, env=env, cwd=tmp_path)


def test_missing_dependencies_are_environment_errors(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in (ServiceError, RucioServiceError, MissingDependencyError, RucioVenvError):
        assert issubclass(cls, DrpcError) and cls.exit_code == ExitCode.USAGE
    with pytest.raises(RucioVenvError) as no_venv:
        start_rucio_server(tmp_path / "rucio", venv=tmp_path / "no-venv")
    message = str(no_venv.value)
    assert str(tmp_path / "no-venv") in message
    assert "tools/bootstrap" in message and "DRPC_RUCIO_VENV" in message
    assert 'pip install "rucio[postgresql]==41.5.1"' in message
    assert not (tmp_path / "rucio" / "rucio.cfg").exists()

    monkeypatch.setenv("DRPC_RUCIO_VENV", str(tmp_path / "elsewhere"))  # read when asked
    assert default_rucio_venv() == tmp_path / "elsewhere"
    with pytest.raises(RucioVenvError):  # before any service starts
        Services(tmp_path / "svc", rses=["X_DISK"], scopes=["s"]).start()

    monkeypatch.setenv("DRPC_PG_BINDIR", str(tmp_path / "no-pg"))
    with pytest.raises(MissingDependencyError,
                       match=r"DRPC_PG_BINDIR=.*no-pg: install PostgreSQL's server"):
        PostgresCluster()


def bare_python(where: Path) -> Path:
    """A venv with nothing installed (no confluent-kafka)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True,
                   timeout=120)
    return where / "bin" / "python"


@pytest.mark.parametrize("missing", ["rucio venv", "confluent_kafka"])
def test_a_missing_dependency_exits_2_with_what_to_install(tmp_path: Path, missing: str) -> None:
    """Raised inside a command run through compiler.guard.guarded: exit 2, the install hint,
    no traceback and no "bug in drpc"."""
    def start() -> None:
        if missing == "rucio venv":
            Services(tmp_path / "svc", rses=["X_DISK"], scopes=["s"],
                     rucio_venv=tmp_path / "no-venv").start()
        else:
            python = bare_python(tmp_path / "venv")
            KafkaBroker(python=python, log=tmp_path / "kafka.log").start()

    @click.command()
    @click.option("--debug", is_flag=True)
    def command(debug: bool) -> None:
        guarded(start)()

    result = CliRunner().invoke(command, [])
    hint = "tools/bootstrap" if missing == "rucio venv" else "pip install 'drpc[rehearsal]'"
    assert result.exit_code == 2, result.output
    assert result.output.startswith("drpc: error: ") and hint in result.output
    assert "Traceback" not in result.output and "bug in drpc" not in result.output


def test_ctrl_ingestd_is_loaded_from_its_path_when_asked(tmp_path: Path) -> None:
    """CTRL_INGESTD_DIR's lsst.ctrl.ingestd is imported by explicit path when asked for (its
    absolute imports of itself work), with sys.path left alone."""
    pkg = tmp_path / "python" / "lsst" / "ctrl" / "ingestd"
    (pkg / "entries").mkdir(parents=True)
    files = {"__init__.py": "", "mapper.py": "class Mapper: ...\n",
             "config.py": "from lsst.ctrl.ingestd.mapper import Mapper\nclass Config: ...\n",
             "message.py": "", "rseButler.py": "", "entries/__init__.py": "",
             "entries/entryFactory.py": "from ..config import Config\n"}
    for name, text in files.items():
        (pkg / name).write_text(text)
    probe = textwrap.dedent("""
        import json, sys
        before = list(sys.path)
        from drpc_rehearsal.ingest import real_ctrl_ingestd
        imported = "lsst.ctrl.ingestd" in sys.modules
        modules, note = real_ctrl_ingestd()
        print(json.dumps({"imported at import": imported, "note": note,
                          "config": modules and modules["config"].__file__,
                          "sys.path kept": sys.path == before}))
        """)
    env = {**os.environ, "CTRL_INGESTD_DIR": str(tmp_path / "python")}
    proc = subprocess.run([sys.executable, "-c", probe], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=True)
    assert json.loads(proc.stdout) == {
        "imported at import": False, "note": f"ctrl_ingestd from {pkg}",
        "config": str(pkg / "config.py"), "sys.path kept": True}
