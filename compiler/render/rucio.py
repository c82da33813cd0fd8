"""Rucio side of every transfer, at its source site (CONTRACT section 3).

For each transfer and raw distribution leaving a site, `sites/<src>/rucio/` gets:

- `rucio-register.yaml`: rucio-register's config for the site's butler RSE, in the real package's
  format (exactly `rucio_rse`, `scope`, `rse_root`, `dtn_url`), and `rucio-register-raw.yaml`
  for the raw RSE at a site that sends raws;
- `<id>.register.sh`: creates the transfer's Rucio container, selects what goes and splits it
  into datasets of at most the source site's `dataset_file_limit` files (`compiler.rucio_names`)
  in one Python (`selection.py ... --split`: the stack starts once, not once per step),
  registers each with `rucio-register` and closes it, then writes `<id>.manifest.json`
  (`butler-manifest.py`, standard library only, from the selection's summary); the Rucio
  bookkeeping (container, datasets, attach, close, file list) is `rucio-datasets.py`, one
  Python with the Rucio client per command instead of a `rucio` CLI start-up per call;
- `<id>.rules.json`: the replication rule, in Rucio's `rule` schema (`rule_for`);
- `apply-rules.sh`: creates the site's outgoing rules, skipping those that exist, all in one
  Python with the Rucio client (`rucio-rules.py`);
- `wait-<id>.sh`: polls the rule until OK, STUCK/SUSPENDED or a timeout (`rucio-rules.py
  wait`); the file count it compares the rule's locks with is the sum of the closed datasets'
  lengths (Rucio's metadata), never a listing of every file.

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
import re
from typing import Any

from .. import paths
from ..naming import datastore_root, manifest_name, selection_summary_name
from ..plan import Move, Plan, SitePlan
from ..rucio_names import chunk_base, chunk_name
from .common import EnvVar, comment_header, render_template, sh_quote, shell_prelude

ACTIVITY = "Data Consolidation"
GROUPING = "DATASET"
COMMENT_MAX = 250  # Rucio's rule schema
#: The line apply-rules.sh (rucio-rules.py's `apply`) prints per rule, for whoever reads its
#: output (the rehearsal takes each move's rule id from it):
#: `<transfer id>: <DID> rule <rule id> (created|exists)`; groups: transfer, DID, rule, status.
APPLIED_RULE_LINE = re.compile(r"^(\S+): (\S+) rule ([0-9a-f]{32}) \((created|exists)\)$",
                               re.MULTILINE)

def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{text[: limit - len(digest) - 1]}~{digest}"


def rule_comment(plan: Plan, move: Move) -> str:
    return _shorten(f"drpc campaign {plan.campaign}: {move.kind} {move.id}", COMMENT_MAX)


def rule_for(plan: Plan, move: Move) -> dict[str, Any]:
    """The replication rule of a move, as an object of Rucio's `rule` schema."""
    rule: dict[str, Any] = {
        "dids": [{"scope": move.rucio_scope, "name": move.rucio_name}],
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


# -- rucio-register configs ------------------------------------------------------------------------

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
    expected_root = datastore_root(config["rse_root"], site.scope)
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
    config_file = paths.beside(paths.rucio_register_raw_config(site.id) if move.is_raw
                               else paths.rucio_register_config(site.id))
    return [
        EnvVar("BUTLER_REPO", site.butler_repo, f"the Butler repository at {site.id}"),
        EnvVar(config_var, "", f"rucio-register config (empty: {config_file} beside this script)"),
        EnvVar("RUCIO_REGISTER", "rucio-register",
               "the rucio-register command (lsst-rucio-register)"),
        _account_var(site),
        EnvVar("BUTLER_PYTHON", "python3",
               "a Python with lsst.daf.butler and the Rucio client (the stack's), for the "
               "selection, the Rucio datasets and the manifest"),
        EnvVar("MANIFEST_DIR", "",
               f"where {manifest_name(move.id)} and {selection_summary_name(move.id)} are "
               "written (empty: beside this script)"),
        EnvVar("DATASET_FILE_LIMIT", str(site.dataset_file_limit),
               "most files per Rucio dataset of the container (new chunks only)"),
        *([] if move.is_raw else [EnvVar(
            "RUCIO_REGISTER_LIMIT", "",
            "yes or no: whether rucio-register data-products takes --limit (then given 0, no "
            "limit); empty: ask its --help once, which costs a stack start-up per move")]),
    ]


def render_register(plan: Plan, move: Move) -> bytes:
    site = plan.site(move.source)
    what = f"Rucio registration of transfer {move.id} at {site.id}"
    return render_template(
        "rucio/register.sh.j2",
        prelude=shell_prelude(plan, what, register_env(site, move)),
        plan=plan, site=site, move=move,
        limit=site.dataset_file_limit, chunk_base=chunk_base(move.rucio_name),
        first_chunk=chunk_name(move.rucio_name, 1),
        manifest=manifest_name(move.id), summary=selection_summary_name(move.id),
        rule_path=paths.beside(paths.rules_file(move)),
        config_var="RUCIO_REGISTER_RAW_CONFIG" if move.is_raw else "RUCIO_REGISTER_CONFIG",
        config_file=paths.beside(paths.rucio_register_raw_config(site.id) if move.is_raw
                                 else paths.rucio_register_config(site.id)),
        helper=paths.beside(paths.manifest_helper(site.id)),
        rucio_helper=paths.beside(paths.rucio_datasets_helper(site.id)),
        select=paths.relative(paths.register_script(move), paths.select_script(site.id)),
        select_args=(f"raws {sh_quote(move.destination)}" if move.is_raw
                     else f"move {sh_quote(move.id)}"),
        raw_helper=paths.beside(paths.raw_register_helper(site.id)),
    )


def render_raw_register_helper(plan: Plan, site: SitePlan) -> bytes:
    return render_template(
        "rucio/register-raws.py.j2",
        header=comment_header(plan, f"Raw registration helper of the register scripts at "
                                    f"{site.id}"),
    )


def render_rules(plan: Plan, move: Move) -> bytes:
    text = json.dumps([rule_for(plan, move)], indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode()


def apply_rules_env() -> list[EnvVar]:
    """apply-rules.sh reads every rule value from the rules' JSON: its account too, by default."""
    return [
        EnvVar("RUCIO_ACCOUNT", "", "Rucio account that owns the rules (empty: the rule's "
               "`account` in its rules.json, else the account of your Rucio config)"),
        EnvVar("BUTLER_PYTHON", "python3",
               "a Python with the Rucio client (the stack's), to read the rules' JSON and "
               "apply them"),
        EnvVar("RULES_DIR", "", "where the <transfer>.rules.json files are (empty: beside "
               "this script)"),
    ]


def render_apply_rules(plan: Plan, site: SitePlan, moves: tuple[Move, ...]) -> bytes:
    what = f"Rucio replication rules of the transfers leaving {site.id}"
    return render_template(
        "rucio/apply-rules.sh.j2",
        prelude=shell_prelude(plan, what, apply_rules_env()),
        plan=plan, site=site, moves=moves,
        rules_helper=paths.beside(paths.rucio_rules_helper(site.id)),
    )


def render_wait(plan: Plan, move: Move) -> bytes:
    site = plan.site(move.source)
    what = f"wait for the Rucio rule of transfer {move.id}"
    env = [
        _account_var(site),
        EnvVar("RULE_ID", "", "the rule to wait for (empty: the rule apply-rules.sh made)"),
        EnvVar("WAIT_INTERVAL", "60", "seconds between two polls"),
        EnvVar("WAIT_TIMEOUT", "172800", "seconds until giving up (exit 1)"),
        EnvVar("BUTLER_PYTHON", "python3", "a Python with the Rucio client (the stack's), "
               "to poll the rule"),
    ]
    return render_template(
        "rucio/wait.sh.j2",
        prelude=shell_prelude(plan, what, env), plan=plan, site=site, move=move,
        rule=rule_for(plan, move),
        rules_helper=paths.beside(paths.rucio_rules_helper(site.id)),
    )


def render_rucio_datasets_helper(plan: Plan, site: SitePlan) -> bytes:
    return render_template(
        "rucio/rucio-datasets.py.j2",
        header=comment_header(plan, f"Rucio dataset helper of the register scripts at "
                                    f"{site.id}"),
    )


def render_rucio_rules_helper(plan: Plan, site: SitePlan) -> bytes:
    return render_template(
        "rucio/rucio-rules.py.j2",
        header=comment_header(plan, f"Rucio rules helper of apply-rules.sh at {site.id}"),
    )


def render_manifest_helper(plan: Plan, site: SitePlan) -> bytes:
    return render_template(
        "rucio/butler-manifest.py.j2",
        header=comment_header(plan, f"Source manifest helper of the register scripts at "
                                    f"{site.id}"),
    )


def render(plan: Plan, site: str | None = None) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for s in plan.sites_to_render(site):
        files[paths.rucio_register_config(s.id)] = render_register_config(plan, s)
        outgoing = plan.outgoing(s.id)
        if not outgoing:
            continue
        if any(m.is_raw for m in outgoing):
            files[paths.rucio_register_raw_config(s.id)] = render_register_config(plan, s, raw=True)
            files[paths.raw_register_helper(s.id)] = render_raw_register_helper(plan, s)
        files[paths.manifest_helper(s.id)] = render_manifest_helper(plan, s)
        files[paths.rucio_datasets_helper(s.id)] = render_rucio_datasets_helper(plan, s)
        files[paths.rucio_rules_helper(s.id)] = render_rucio_rules_helper(plan, s)
        files[paths.apply_rules(s.id)] = render_apply_rules(plan, s, outgoing)
        for m in outgoing:
            files[paths.register_script(m)] = render_register(plan, m)
            files[paths.rules_file(m)] = render_rules(plan, m)
            files[paths.wait_script(m)] = render_wait(plan, m)
    return files


__all__ = ["ACTIVITY", "register_config", "render", "rule_for"]
