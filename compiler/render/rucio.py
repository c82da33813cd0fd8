"""Rucio side of every transfer, at its source site (CONTRACT section 3).

For each transfer and raw distribution leaving a site, `sites/<src>/rucio/` gets:

- `rucio-register.yaml`: rucio-register's config for the site's butler RSE, in the real package's
  format (exactly `rucio_rse`, `scope`, `rse_root`, `dtn_url`), and `rucio-register-raw.yaml`
  for the raw RSE at a site that sends raws;
- `<id>.register.sh`: creates the transfer's Rucio dataset, registers exactly its datasets into
  it with `rucio-register`, then writes `<id>.manifest.json` (see `butler-manifest.py`);
- `<id>.rules.json`: the replication rule, in Rucio's `rule` schema (`rule_for`);
- `apply-rules.sh`: creates the site's outgoing rules, skipping those that exist;
- `wait-<id>.sh`: polls the rule until OK, STUCK/SUSPENDED or a timeout.

Design choices (see also the script headers):
- Activity "Data Consolidation" for every rule: drpc's transfers copy campaign data between
  facilities so that one site holds a complete set for the next stage (gather, scatter split by
  ownership, return for archival, raws to the sites that process them). "Production Output" is
  the stage-out of a job's own outputs at its site, which BPS/PanDA does, not drpc. One activity
  also means one FTS share to configure.
- `rucio-register --rucio-dataset` takes the dataset *name*: the scope comes from the config
  (`RucioInterface` attaches to `<config scope>:<name>`), so the config's scope is the
  transfer's `rucio_scope`.
- `rse_root` and `dtn_url` lose their trailing `/`: rucio-register strips `rse_root` from the
  file path and then `/<scope>/` from the rest to make the DID name, and its PFN is
  `dtn_url + path`; with a trailing `/` the scope would stay in every DID name.
- Data products are registered with `--find-first` over the producer's CHAINED output (what the
  consumer would resolve: a rerun's superseded datasets stay home) and `--limit 0`
  (butler's default `-20000` would silently cap a large transfer).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from .. import paths
from ..plan import Plan, RawDistribution, SitePlan, Transfer
from .common import EnvVar, comment_header, render_template, sh_quote, shell_prelude

ACTIVITY = "Data Consolidation"
GROUPING = "DATASET"
RAW_DATASET_TYPE = "raw"
COMMENT_MAX = 250  # Rucio's rule schema
CLI_NOTE = ("Needs the rucio 41.5 noun-verb CLI (`rucio did|rule ...`; not the legacy "
            "`add-rule`/`rule-info` verbs), found on PATH, configured by RUCIO_CONFIG as usual.")

Movement = Transfer | RawDistribution


def manifest_name(move: Movement) -> str:
    """Written at run time by the register script, beside it (or in MANIFEST_DIR)."""
    return f"{move.id}.manifest.json"


@dataclass(frozen=True)
class Move:
    """What the scripts need of a Transfer or a RawDistribution, in one shape."""

    id: str
    kind: str  # gather, scatter, return, crosscheck or raw
    source: str
    destination: str
    source_rse: str
    destination_rse: str
    scope: str
    name: str
    dataset_type: str
    collection: str  # where the datasets are at the source
    where: str | None
    find_first: bool
    incoming: str | None  # CHAINED collection at the destination (None for raws)
    arrived: str  # collection expression (glob) holding the arrived RUNs at the destination
    selection: str
    origin: Movement  # the plan's object (file paths are defined on it, in compiler.paths)

    @property
    def did(self) -> str:
        return f"{self.scope}:{self.name}"

    @property
    def is_raw(self) -> bool:
        return self.kind == "raw"


def move_of(move: Movement) -> Move:
    if isinstance(move, RawDistribution):
        return Move(
            id=move.id, kind="raw", source=move.source, destination=move.destination,
            source_rse=move.source_rse, destination_rse=move.destination_rse,
            scope=move.rucio_scope, name=move.rucio_name, dataset_type=RAW_DATASET_TYPE,
            collection=move.collection, where=move.where, find_first=False, incoming=None,
            arrived=move.collection,
            selection=f"raws of the visits overlapping {move.destination}'s {len(move.tracts)} tract(s)",
            origin=move,
        )
    return Move(
        id=move.id, kind=move.kind, source=move.source, destination=move.destination,
        source_rse=move.source_rse, destination_rse=move.destination_rse,
        scope=move.rucio_scope, name=move.rucio_name, dataset_type=move.dataset_type,
        collection=move.source_collection, where=move.where, find_first=True,
        incoming=move.incoming_collection,
        # BPS writes RUN collections `<output>/<timestamp>` (outputRun), and ctrl_ingestd keeps
        # each dataset's RUN: the arrived RUNs are the ones under the producer's output.
        arrived=f"{move.source_collection}/*", selection=move.selection, origin=move,
    )


def movements(plan: Plan) -> list[Move]:
    """Every transfer and raw distribution, in plan order (raws first: they come first)."""
    return [move_of(r) for r in plan.raws] + [move_of(t) for t in plan.transfers]


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{text[: limit - len(digest) - 1]}~{digest}"


def rule_comment(plan: Plan, move: Move) -> str:
    return _shorten(f"drpc campaign {plan.campaign}: {move.kind} {move.id}", COMMENT_MAX)


def rule_for(plan: Plan, transfer: Movement | Move) -> dict[str, Any]:
    """The replication rule of a transfer, as an object of Rucio's `rule` schema."""
    move = transfer if isinstance(transfer, Move) else move_of(transfer)
    rule: dict[str, Any] = {
        "dids": [{"scope": move.scope, "name": move.name}],
        "copies": 1,
        "rse_expression": move.destination_rse,
        "source_replica_expression": move.source_rse,
        "grouping": GROUPING,
        "activity": ACTIVITY,
        "lifetime": None,
        "comment": rule_comment(plan, move),
    }
    account = plan.site(move.source).rucio_account
    if account:
        rule["account"] = account
    return rule


def rule_add_args(rule: dict[str, Any]) -> list[str]:
    """`rucio rule add` options (after the DID) that create exactly `rule`."""
    args = ["--copies", str(rule["copies"]), "--rses", rule["rse_expression"],
            "--grouping", rule["grouping"], "--activity", rule["activity"]]
    if rule.get("source_replica_expression"):
        args += ["--source-rses", rule["source_replica_expression"]]
    if rule.get("lifetime") is not None:
        args += ["--lifetime", str(rule["lifetime"])]
    args += ["--comment", rule["comment"]]
    return args


# -- rucio-register configs -------------------------------------------------------------------------

def register_config(site: SitePlan, *, raw: bool = False) -> dict[str, str]:
    """The four keys RucioRegisterConfig reads, from the same spec values as ingestd's topics."""
    rse_root = site.raw_rse_root if raw else site.rse_root
    dtn_url = site.raw_rucio_prefix if raw else site.rucio_prefix
    return {
        "rucio_rse": site.raw_rse if raw else site.rse,
        "scope": site.scope,
        "rse_root": rse_root.rstrip("/") or "/",
        "dtn_url": dtn_url.rstrip("/"),
    }


def render_register_config(plan: Plan, site: SitePlan, *, raw: bool = False) -> bytes:
    config = register_config(site, raw=raw)
    expected_root = f"{config['rse_root'].rstrip('/')}/{site.scope}"
    what = (f"rucio-register config for the raw RSE {site.raw_rse} at {site.id}" if raw
            else f"rucio-register config for {site.rse} at {site.id}")
    return render_template(
        "rucio/rucio-register.yaml.j2",
        header=comment_header(plan, what),
        site=site, config=config, raw=raw, expected_root=expected_root,
        datastore_matches=site.datastore_root.rstrip("/") == expected_root,
    )


# -- scripts --------------------------------------------------------------------------------------

def _account_var(site: SitePlan) -> EnvVar:
    return EnvVar("RUCIO_ACCOUNT", site.rucio_account or "",
                  "Rucio account that owns the rules (empty: the account of your Rucio config)")


def register_env(site: SitePlan, move: Move) -> list[EnvVar]:
    config_var = "RUCIO_REGISTER_RAW_CONFIG" if move.is_raw else "RUCIO_REGISTER_CONFIG"
    config_file = paths.rucio_register_config(site.id).rsplit("/", 1)[-1] if not move.is_raw \
        else paths.rucio_register_raw_config(site.id).rsplit("/", 1)[-1]
    return [
        EnvVar("BUTLER_REPO", site.butler_repo, f"the Butler repository at {site.id}"),
        EnvVar(config_var, "", f"rucio-register config (empty: {config_file} beside this script)"),
        EnvVar("RUCIO_REGISTER", "rucio-register", "the rucio-register command (lsst-rucio-register)"),
        _account_var(site),
        EnvVar("BUTLER_PYTHON", "python3", "a Python with lsst.daf.butler (the stack's), for the manifest"),
        EnvVar("MANIFEST_DIR", "", f"where {manifest_name(move)} is written (empty: beside this script)"),
    ]


def render_register(plan: Plan, move: Move) -> bytes:
    site = plan.site(move.source)
    what = f"Rucio registration of transfer {move.id} at {site.id}"
    return render_template(
        "rucio/register.sh.j2",
        prelude=shell_prelude(plan, what, register_env(site, move)),
        plan=plan, site=site, move=move, cli_note=CLI_NOTE,
        manifest=manifest_name(move), rule_path=paths.rules_file(move.origin).rsplit("/", 1)[-1],
        config_var="RUCIO_REGISTER_RAW_CONFIG" if move.is_raw else "RUCIO_REGISTER_CONFIG",
        config_file=(paths.rucio_register_raw_config(site.id) if move.is_raw
                     else paths.rucio_register_config(site.id)).rsplit("/", 1)[-1],
        helper=paths.manifest_helper(site.id).rsplit("/", 1)[-1],
    )


def render_rules(plan: Plan, move: Move) -> bytes:
    text = json.dumps([rule_for(plan, move)], indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode()


def apply_options(rule: dict[str, Any]) -> str:
    """The `rule add` options after `--rses`, as shell words, for apply-rules.sh's `apply`."""
    args = rule_add_args(rule)
    i = args.index("--rses")
    return " ".join(a if a.startswith("--") else sh_quote(a) for a in args[:i] + args[i + 2:])


def render_apply_rules(plan: Plan, site: SitePlan, moves: list[Move]) -> bytes:
    what = f"Rucio replication rules of the transfers leaving {site.id}"
    rules = [(m, rule_for(plan, m)) for m in moves]
    return render_template(
        "rucio/apply-rules.sh.j2",
        prelude=shell_prelude(plan, what, [_account_var(site)]),
        plan=plan, site=site, rules=rules, apply_options=apply_options, cli_note=CLI_NOTE,
    )


def render_wait(plan: Plan, move: Move) -> bytes:
    site = plan.site(move.source)
    what = f"wait for the Rucio rule of transfer {move.id}"
    env = [
        _account_var(site),
        EnvVar("RULE_ID", "", "the rule to wait for (empty: the rule apply-rules.sh made)"),
        EnvVar("WAIT_INTERVAL", "60", "seconds between two polls"),
        EnvVar("WAIT_TIMEOUT", "172800", "seconds until giving up (exit 1)"),
    ]
    return render_template(
        "rucio/wait.sh.j2",
        prelude=shell_prelude(plan, what, env), plan=plan, site=site, move=move,
        rule=rule_for(plan, move), cli_note=CLI_NOTE,
    )


def render_manifest_helper(plan: Plan, site: SitePlan) -> bytes:
    return render_template(
        "rucio/butler-manifest.py.j2",
        header=comment_header(plan, f"Butler manifest helper of the register scripts at {site.id}"),
    )


def render(plan: Plan, site: str | None = None) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    moves = movements(plan)
    for s in plan.sites_to_render(site):
        files[paths.rucio_register_config(s.id)] = render_register_config(plan, s)
        outgoing = [m for m in moves if m.source == s.id]
        if not outgoing:
            continue
        if any(m.is_raw for m in outgoing):
            files[paths.rucio_register_raw_config(s.id)] = render_register_config(plan, s, raw=True)
        files[paths.manifest_helper(s.id)] = render_manifest_helper(plan, s)
        files[paths.apply_rules(s.id)] = render_apply_rules(plan, s, outgoing)
        for m in outgoing:
            files[paths.register_script(m.origin)] = render_register(plan, m)
            files[paths.rules_file(m.origin)] = render_rules(plan, m)
            files[paths.wait_script(m.origin)] = render_wait(plan, m)
    return files


__all__ = ["ACTIVITY", "Move", "move_of", "movements", "register_config", "render", "rule_for"]
