"""Rucio client calls, in the Rucio venv, against the server RUCIO_CONFIG names.

Each function makes one ``rucio.client.Client`` and answers plain JSON values (datetimes become
strings). Standard library and rucio only (see the package's docstring).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["add_dataset", "add_rule", "dataset_files", "rule", "rule_ids", "rule_states",
           "run_code", "setup", "update_rule"]

#: Every RSE is deterministic with one ``file`` protocol, read/write/delete on lan and wan, and
#: third-party copy, so that the conveyor finds a path between any two of them.
FILE_DOMAINS = {
    "lan": {"read": 1, "write": 1, "delete": 1},
    "wan": {"read": 1, "write": 1, "delete": 1,
            "third_party_copy_read": 1, "third_party_copy_write": 1},
}


def _client() -> Any:
    from rucio.client import Client

    return Client()


def setup(new_rses: Sequence[str], all_rses: Sequence[str], roots: Mapping[str, str],
          scopes: Sequence[str]) -> None:
    """Create `new_rses` (file protocol on the local folder ``roots[rse]``, identity lfn2pfn,
    unlimited quota for root), a distance of 1 between each of them and every RSE of
    `all_rses`, and `scopes` (owned by root)."""
    c = _client()
    for rse in new_rses:
        c.add_rse(rse, deterministic=True)
        c.add_protocol(rse, {
            "scheme": "file", "hostname": "localhost", "port": 0, "prefix": roots[rse],
            "impl": "rucio.rse.protocols.posix.Default", "domains": FILE_DOMAINS,
        })
        c.add_rse_attribute(rse, "lfn2pfn_algorithm", "identity")
        c.set_local_account_limit("root", rse, -1)
    new = set(new_rses)
    for src in all_rses:
        for dst in all_rses:
            if src != dst and (src in new or dst in new):
                c.add_distance(src, dst, {"distance": 1})
    for scope in scopes:
        c.add_scope("root", scope)


def rule(rule_id: str) -> dict[str, Any]:
    """The rule as ``get_replication_rule`` returns it."""
    return dict(_client().get_replication_rule(rule_id))


def rule_states(rule_ids: Sequence[str]) -> dict[str, str]:
    """Rule id -> state (``OK``, ``REPLICATING``, ``STUCK``, ...)."""
    c = _client()
    return {r: str(c.get_replication_rule(r)["state"]) for r in rule_ids}


def rule_ids(scope: str, name: str, rse_expression: str | None = None) -> list[str]:
    """Ids of the rules on ``scope:name`` (those whose RSE expression is `rse_expression`)."""
    rules = _client().list_replication_rules({"scope": scope, "name": name})
    return [str(r["id"]) for r in rules
            if rse_expression is None or r["rse_expression"] == rse_expression]


def dataset_files(scope: str, name: str) -> list[str]:
    """Names of the DIDs attached to dataset ``scope:name`` (its files), sorted."""
    return sorted(str(f["name"]) for f in _client().list_content(scope, name))


def add_dataset(scope: str, name: str, files: Sequence[Mapping[str, Any]] = (),
                rse: str | None = None) -> None:
    """Dataset ``scope:name`` with `files` attached, each with a replica on `rse`.

    A file is ``{"name", "bytes", "adler32"}`` (``scope`` defaults to the dataset's), plus
    ``meta``: DID metadata to set on it (e.g. ``rubin_butler``, ``rubin_sidecar``)."""
    c = _client()
    c.add_dataset(scope, name)
    if not files:
        return
    if rse is None:
        raise ValueError("files need an RSE for their replicas")
    dids = [{"scope": str(f.get("scope", scope)), "name": str(f["name"])} for f in files]
    c.add_replicas(rse, [{**did, "bytes": int(f["bytes"]), "adler32": str(f["adler32"])}
                         for did, f in zip(dids, files, strict=True)])
    c.attach_dids(scope, name, dids)
    for did, f in zip(dids, files, strict=True):
        if f.get("meta"):
            c.set_metadata_bulk(did["scope"], did["name"], dict(f["meta"]))


def add_rule(scope: str, name: str, rse_expression: str, copies: int = 1,
             grouping: str = "DATASET", activity: str | None = None,
             lifetime: int | None = None, comment: str | None = None) -> str:
    """A replication rule on ``scope:name``; its id."""
    options: dict[str, Any] = {"grouping": grouping}
    for key, value in (("activity", activity), ("lifetime", lifetime), ("comment", comment)):
        if value is not None:
            options[key] = value
    ids = _client().add_replication_rule([{"scope": scope, "name": name}], copies,
                                         rse_expression, **options)
    return str(ids[0])


def update_rule(rule_id: str, options: Mapping[str, Any]) -> None:
    """``update_replication_rule(rule_id, options)``, e.g. ``{"state": "STUCK"}``."""
    _client().update_replication_rule(rule_id, dict(options))


def run_code(code: str, expr: str | None = None) -> dict[str, Any] | None:
    """Execute `code` (a ``client_call`` snippet) with ``c`` a Client; with `expr`, then
    evaluate it there too and answer ``{"value": <its value>}``."""
    namespace: dict[str, Any] = {"__name__": "__main__", "c": _client()}
    exec(compile(code, "<client_call>", "exec"), namespace)
    if expr is None:
        return None
    return {"value": eval(compile(expr, "<client_json>", "eval"), namespace)}
