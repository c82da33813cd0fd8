"""Each move's replication rule and Rucio dataset, read with Rucio's own client.

A move's rule is found by its dataset (scope, name) and the comment drpc gave it
(`render.rucio.rule_comment`): `list_replication_rules` filters on `comments` (plural, the
column's name). Rucio answers rule states as names or as their one-letter database codes,
depending on the path; both are read. What was sent is the number of files under the move's
DID (`list_files` counts every file of a container's datasets too; a register script attaches
one file per Butler dataset).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..plan import Plan
from ..plan_model import Move
from ..render.rucio import rule_comment
from .errors import SourceUnavailable, missing_client, reason_of
from .model import LockCounts, RuleState, RuleStatus, SourceStatus

STATE_CODES: dict[str, RuleState] = {"O": "OK", "R": "REPLICATING", "S": "STUCK",
                                     "U": "SUSPENDED", "W": "WAITING_APPROVAL", "I": "INJECT"}


def rule_state(value: Any) -> RuleState | None:
    """A rule state from Rucio: a name (`OK`), a one-letter code (`O`) or an enum."""
    text = str(getattr(value, "name", value) or "")
    if text in STATE_CODES:
        return STATE_CODES[text]
    names: dict[str, RuleState] = {v: v for v in STATE_CODES.values()}
    return names.get(text.rsplit(".", 1)[-1])


def _client(timeout: float) -> Any:
    try:
        from rucio.client import Client
    except ImportError as exc:
        raise missing_client("rucio-clients", "rucio.client", exc) from None
    except Exception as exc:  # noqa: BLE001 - rucio reads its configuration at import
        raise SourceUnavailable(f"Rucio client: {reason_of(exc)}") from None
    try:
        return Client(timeout=max(1, round(timeout)))
    except Exception as exc:  # noqa: BLE001 - no config, no server, refused credentials
        raise SourceUnavailable(f"Rucio client: {reason_of(exc)}") from None


def choose_rule(rules: Iterable[dict[str, Any]], move: Move) -> dict[str, Any] | None:
    """The rule of the move: the one to its destination RSE, the newest if there are several."""
    mine = [r for r in rules if r.get("rse_expression") == move.destination_rse] or list(rules)
    return max(mine, key=lambda r: str(r.get("created_at") or "")) if mine else None


def _files_sent(client: Any, move: Move) -> tuple[list[str], str | None]:
    """The names of the files under the move's DID (what verify compares with the Butler)."""
    try:
        return sorted(str(f["name"]) for f in client.list_files(move.rucio_scope,
                                                                move.rucio_name)), None
    except Exception as exc:  # noqa: BLE001
        if type(exc).__name__ == "DataIdentifierNotFound":
            return [], f"the Rucio DID {move.rucio_did} does not exist yet"
        raise


def _one(client: Any, plan: Plan, move: Move) -> tuple[RuleStatus, list[str]]:
    rules = list(client.list_replication_rules(filters={
        "scope": move.rucio_scope, "name": move.rucio_name,
        "comments": rule_comment(plan, move)}))
    names, why = _files_sent(client, move)
    rule = choose_rule(rules, move)
    if rule is None:
        return RuleStatus(known=True, files_sent=len(names), reason=why or (
            f"no rule on {move.rucio_did} yet (apply-rules not run)")), names
    locks = LockCounts(ok=int(rule.get("locks_ok_cnt") or 0),
                       replicating=int(rule.get("locks_replicating_cnt") or 0),
                       stuck=int(rule.get("locks_stuck_cnt") or 0))
    return RuleStatus(known=True, rule_id=str(rule["id"]), state=rule_state(rule.get("state")),
                      locks=locks, files_sent=len(names), error=rule.get("error") or None,
                      reason=why), names


@dataclass(frozen=True)
class RucioView:
    rules: dict[str, RuleStatus]  # move id -> its rule
    sent: dict[str, list[str]]  # move id -> names of the files sent (where Rucio answered)
    sources: list[SourceStatus]


def collect_rules(plan: Plan, moves: Sequence[Move], site: str | None, *, timeout: float
                  ) -> RucioView:
    """Every move's rule and files; one source entry (the view of `site`'s credentials)."""
    if not moves:
        return RucioView({}, {}, [])
    try:
        client = _client(timeout)
    except SourceUnavailable as exc:
        reason = str(exc)
        return RucioView({m.id: RuleStatus(known=False, reason=reason) for m in moves}, {},
                         [SourceStatus(source="rucio", site=site, up=False, reason=reason)])
    rules: dict[str, RuleStatus] = {}
    sent: dict[str, list[str]] = {}
    failure: str | None = None
    for move in moves:
        if failure is not None:  # the server stopped answering: do not wait on each move
            rules[move.id] = RuleStatus(known=False, reason=failure)
            continue
        try:
            rules[move.id], sent[move.id] = _one(client, plan, move)
        except Exception as exc:  # noqa: BLE001 - any failure of Rucio is an unknown cell
            failure = f"Rucio: {reason_of(exc)}"
            rules[move.id] = RuleStatus(known=False, reason=failure)
    return RucioView(rules, sent, [SourceStatus(source="rucio", site=site,
                                                up=failure is None, reason=failure)])


__all__ = ["STATE_CODES", "RucioView", "choose_rule", "collect_rules", "rule_state"]
