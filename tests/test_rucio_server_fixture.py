"""The `rucio_server` fixture runs a real Rucio 41.5.1 server that the `rucio` CLI and the
Python client (both from .venv-rucio) can use: rules are created, shown, listed, and their
state read back and driven (REPLICATING -> STUCK, REPLICATING -> OK), through the typed
methods of RucioService and through its client/server snippets."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.services.rucio_server import RucioServer, RucioServiceError, start_rucio_server

pytestmark = pytest.mark.services

RULE_ID = re.compile(r"^[0-9a-f]{32}$")
BUTLER_RSES = ["SLAC_BUTLER_DISK", "IN2P3_BUTLER_DISK", "LANCS_BUTLER_DISK", "RAL_BUTLER_DISK"]
RAW_RSES = [r.replace("BUTLER", "RAW") for r in BUTLER_RSES]


def rucio_cli(server: RucioServer, *args: str,
              check: bool = True) -> subprocess.CompletedProcess[str]:
    env = server.env()
    exe = shutil.which("rucio", path=env["PATH"])
    assert exe is not None, "no rucio CLI on server.env()['PATH']"
    proc = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, (
            f"rucio {' '.join(args)} -> {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def make_dataset(server: RucioServer, nfiles: int, rse: str = "SLAC_BUTLER_DISK") -> str:
    """A new dataset test:<unique> with `nfiles` files that have replicas on `rse`."""
    name = f"ds-{uuid.uuid4().hex[:12]}"
    files = [{"name": f"{name}/file{i}.fits", "bytes": 10, "adler32": "0a0b0c0d"}
             for i in range(nfiles)]
    server.add_dataset("test", name, files, rse=rse)
    return name


def rule_state(server: RucioServer, rule_id: str) -> dict[str, Any]:
    return server.rule(rule_id)


def show_field(output: str, field: str) -> str:
    for line in output.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {field!r} line in `rucio rule show` output:\n{output}")


def test_cli_comes_from_server_venv_and_authenticates(rucio_server: RucioServer) -> None:
    env = rucio_server.env()
    assert env["RUCIO_CONFIG"] == str(rucio_server.config_path)
    assert shutil.which("rucio", path=env["PATH"]) == str(rucio_server.venv / "bin" / "rucio")
    out = rucio_cli(rucio_server, "whoami").stdout
    assert re.search(r"^account\s*:\s*root$", out, re.M), out
    assert rucio_server.is_running()


def test_rses_scopes_quota_and_distances(rucio_server: RucioServer) -> None:
    got = rucio_server.client_json(
        "{'rses': sorted(r['rse'] for r in c.list_rses()),"
        " 'scopes': sorted(c.list_scopes()),"
        " 'limits': c.get_local_account_limits('root'),"
        " 'distance': c.get_distance('SLAC_BUTLER_DISK', 'RAL_RAW_DISK'),"
        " 'pfn': c.lfns2pfns('IN2P3_BUTLER_DISK', ['test:a/b.fits']),"
        " 'protocols': c.get_protocols('LANCS_BUTLER_DISK')}"
    )
    assert got["rses"] == sorted(BUTLER_RSES + RAW_RSES)
    assert "test" in got["scopes"]
    assert set(got["limits"]) == set(BUTLER_RSES + RAW_RSES)
    assert all(v == float("inf") for v in got["limits"].values()), got["limits"]  # -1 = unlimited
    assert got["distance"] and got["distance"][0]["distance"] == 1
    root = rucio_server.rse_roots["IN2P3_BUTLER_DISK"]
    assert got["pfn"] == {"test:a/b.fits": f"file://localhost{root}/test/a/b.fits"}
    assert got["protocols"][0]["scheme"] == "file"


def test_rule_add_show_list_then_stuck(rucio_server: RucioServer) -> None:
    ds = make_dataset(rucio_server, nfiles=2)
    add = rucio_cli(rucio_server, "rule", "add", f"test:{ds}", "--copies", "1",
                    "--rses", "IN2P3_BUTLER_DISK", "--grouping", "DATASET",
                    "--activity", "Data Consolidation", "--comment", "fixture test")
    rule_ids = add.stdout.split()
    assert len(rule_ids) == 1 and RULE_ID.match(rule_ids[0]), add.stdout
    rule_id = rule_ids[0]

    show = rucio_cli(rucio_server, "rule", "show", rule_id).stdout
    assert show_field(show, "Id") == rule_id
    assert show_field(show, "Name") == ds
    assert show_field(show, "RSE Expression") == "IN2P3_BUTLER_DISK"
    assert show_field(show, "State") == "REPLICATING"  # no conveyor/FTS: nothing moves
    assert show_field(show, "Locks OK/REPLICATING/STUCK") == "0/2/0"

    listed = rucio_cli(rucio_server, "rule", "list", "--did", f"test:{ds}", "--csv").stdout
    expected = f"{rule_id},root,test:{ds},REPLICATING[0/2/0],IN2P3_BUTLER_DISK,1,"
    assert listed.startswith(expected), listed

    rule = rule_state(rucio_server, rule_id)
    assert (rule["state"], rule["locks_replicating_cnt"], rule["activity"]) == (
        "REPLICATING", 2, "Data Consolidation")

    rucio_server.update_rule(rule_id, state="STUCK")
    assert rule_state(rucio_server, rule_id)["state"] == "STUCK"
    assert rucio_server.rule_states([rule_id]) == {rule_id: "STUCK"}
    # the server side (core API on the server's database) agrees
    db_state = rucio_server.server_call(f"""
        from rucio.core.rule import get_rule
        print(get_rule({rule_id!r})["state"].name)
    """).strip()
    assert db_state == "STUCK"
    assert show_field(rucio_cli(rucio_server, "rule", "show", rule_id).stdout, "State") == "STUCK"


def test_rule_on_empty_dataset_is_ok(rucio_server: RucioServer) -> None:
    ds = make_dataset(rucio_server, nfiles=0)
    rule_id = rucio_cli(rucio_server, "rule", "add", f"test:{ds}", "--copies", "1",
                        "--rses", "RAL_BUTLER_DISK").stdout.strip()
    assert RULE_ID.match(rule_id), rule_id
    assert rule_state(rucio_server, rule_id)["state"] == "OK"


def test_rule_driven_to_ok_by_replica_states(rucio_server: RucioServer) -> None:
    ds = make_dataset(rucio_server, nfiles=3, rse="SLAC_RAW_DISK")
    [rule_id] = rucio_server.client_json(
        f"c.add_replication_rule([{{'scope': 'test', 'name': {ds!r}}}], 1, 'LANCS_RAW_DISK')")
    assert rucio_server.rule_ids("test", ds, "LANCS_RAW_DISK") == [rule_id]
    assert rucio_server.dataset_files("test", ds) == [f"{ds}/file{i}.fits" for i in range(3)]
    assert rule_state(rucio_server, rule_id)["state"] == "REPLICATING"
    rucio_server.client_call(f"""
        files = [{{"scope": f["scope"], "name": f["name"], "state": "A"}}
                 for f in c.list_files("test", {ds!r})]
        assert len(files) == 3, files
        c.update_replicas_states("LANCS_RAW_DISK", files)
    """)
    rule = rule_state(rucio_server, rule_id)
    assert (rule["state"], rule["locks_ok_cnt"]) == ("OK", 3)


def test_cli_errors_are_reported(rucio_server: RucioServer) -> None:
    ds = make_dataset(rucio_server, nfiles=0)
    bad = rucio_cli(rucio_server, "rule", "add", f"test:{ds}", "--copies", "1",
                    "--rses", "NO_SUCH_RSE", check=False)
    assert bad.returncode != 0
    assert "NO_SUCH_RSE" in bad.stdout + bad.stderr or "RSE" in bad.stdout + bad.stderr
    with pytest.raises(RucioServiceError, match="DataIdentifierNotFound"):
        rucio_server.client_call("c.get_did('test', 'no-such-did')")
    with pytest.raises(RucioServiceError, match=r"InvalidRSEExpression|RSENotFound"):
        rucio_server.add_rule("test", ds, "NO_SUCH_RSE")
    assert rucio_server.client_json("None") is None
    assert rucio_server.client_call("print('a', end='')\nprint('b')") == "ab\n"


def test_start_and_stop(tmp_path: Path) -> None:
    server = start_rucio_server(tmp_path / "rucio", rses=["X_DISK"], scopes=["other"])
    try:
        assert server.is_running()
        assert server.client_json("[r['rse'] for r in c.list_rses()]") == ["X_DISK"]
        assert (server.rse_roots["X_DISK"]).is_dir()
    finally:
        server.stop()
    assert not server.is_running()
    with pytest.raises(ProcessLookupError):
        os.killpg(server.pid, 0)  # the whole process group is gone
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", server.port)) != 0
    server.stop()  # idempotent
