"""Rucio's own daemons, once each, in the Rucio venv on the server's database: the
judge-evaluator, the conveyor (submitter, poller, finisher) with a mock transfer tool that copies
the bytes, and the STUCK fault. See :mod:`drpc_rehearsal.conveyor` for what they do.

Standard library and rucio only (see the package's docstring).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlparse

__all__ = ["conveyor_cycle", "evaluate_rules", "make_stuck"]

SOURCE_MISSING = "rehearsal mock transfer: source file missing"


def _logging() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def local_path(url: str) -> str:
    """The local path of a ``file://`` URL."""
    parsed = urlparse(url)
    if parsed.scheme != "file":
        raise RuntimeError(f"not a file:// URL: {url}")
    return unquote(parsed.path)


def _copy(src: str, dst: str) -> None:
    """Copy `src` to `dst` (through a ``.part`` file, so `dst` is whole or absent)."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = dst + ".part"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def evaluate_rules() -> None:
    """The judge-evaluator once: rules of datasets that got files since its last pass get their
    locks (REPLICATING) and transfer requests."""
    _logging()
    from rucio.daemons.judge import evaluator

    evaluator.re_evaluator(once=True, did_limit=1000)


def conveyor_cycle(state: str, lose: Sequence[str] = (), copy_files: bool = True
                   ) -> dict[str, Any]:
    """The judge-evaluator, then the submitter, poller and finisher, once each.

    The mock transfer tool's ``submit`` copies each file from its source PFN to its destination
    PFN (unless `copy_files` is false), except the DIDs (``scope:name``) of `lose` (removed at the
    destination, reported done: "lost in transit"). A transfer whose source file is missing is
    reported FAILED by the tool's poll, as FTS would; `state` (a JSON file) keeps those request
    ids from one cycle to the next. Answers ``{"transfers": [...], "timings": {daemon: s}}``."""
    _logging()
    from rucio.core.topology import ExpiringObjectCache, Topology
    from rucio.daemons.conveyor import finisher, poller, submitter
    from rucio.daemons.judge import evaluator
    from rucio.db.sqla.constants import RequestState
    from rucio.transfertool.mock import MockTransferStatusReport, MockTransfertool

    lost = set(lose)
    state_path = Path(state)
    try:
        failed: set[str] = set(json.loads(state_path.read_text()))
    except FileNotFoundError:
        failed = set()
    transfers: list[dict[str, Any]] = []

    # rucio is not typed where drpc's type checks run (not installed there)
    class FailedReport(MockTransferStatusReport):  # type: ignore[misc]
        supported_db_fields: ClassVar[list[str]] = ["state", "external_id", "err_msg"]

        def __init__(self, request_id: str, external_id: str) -> None:
            super().__init__(request_id, external_id)
            self.state = RequestState.FAILED
            self.err_msg = SOURCE_MISSING

    plain_submit = MockTransfertool.submit
    plain_bulk_query = MockTransfertool.bulk_query

    def submit(self: Any, transfers_: Iterable[Any], job_params: Any,
               timeout: int | None = None) -> Any:
        transfers_ = list(transfers_)
        for t in transfers_:
            rws = t.rws
            did = f"{rws.scope.external}:{rws.name}"
            src, dst = local_path(t.source_url(t.src)), local_path(t.dest_url)
            item = {"did": did, "scope": rws.scope.external, "name": rws.name,
                    "request_id": rws.request_id, "rule_id": rws.rule_id,
                    "src_rse": t.src.rse.name, "dst_rse": t.dst.rse.name,
                    "src": src, "dst": dst, "bytes": rws.byte_count}
            if did in lost:
                if os.path.lexists(dst):
                    os.remove(dst)
                item["result"] = "lost"
            elif not os.path.isfile(src):
                failed.add(rws.request_id)
                item["result"] = "failed"
            else:
                _copy(src, dst)
                item["result"] = "copied"
            transfers.append(item)
        state_path.write_text(json.dumps(sorted(failed)))
        return plain_submit(self, transfers_, job_params, timeout)

    def bulk_query(self: Any, requests_by_eid: Mapping[str, Any],
                   timeout: int | None = None) -> Any:
        response = plain_bulk_query(self, requests_by_eid, timeout)
        for eid, reports in response.items():
            for request_id in list(reports):
                if request_id in failed:
                    reports[request_id] = FailedReport(request_id, eid)
        return response

    if copy_files:
        MockTransfertool.submit = submit
    MockTransfertool.bulk_query = bulk_query

    def topology() -> Any:
        return ExpiringObjectCache(ttl=300, new_obj_fnc=lambda: Topology())

    # The daemons' run() waits partition_wait_time (10 s) first; the module-level functions
    # take it as an argument. The poller's default older_than (60 s) would skip fresh requests.
    steps: dict[str, Callable[[], object]] = {
        # files attached to a dataset after its rule was made get their locks (and transfer
        # requests) only when Rucio re-evaluates the rule, as this daemon does at a site
        "judge-evaluator": lambda: evaluator.re_evaluator(once=True, did_limit=1000),
        "submitter": lambda: submitter.submitter(once=True, partition_wait_time=0,
                                                 cached_topology=topology()),
        "poller": lambda: poller.poller(once=True, older_than=0, partition_wait_time=0,
                                        cached_topology=topology()),
        "finisher": lambda: finisher.finisher(once=True, partition_wait_time=0,
                                              cached_topology=topology()),
    }
    timings: dict[str, float] = {}
    for name, step in steps.items():
        t0 = time.monotonic()
        step()
        timings[name] = time.monotonic() - t0
    return {"transfers": transfers, "timings": timings}


def make_stuck(rule_id: str, error: str, names: Sequence[str] | None = None) -> dict[str, Any]:
    """Fail the rule's replicating locks (all, or those of files `names`) for good, as the
    finisher records a transfer that exhausted its retries: request archived, replica
    UNAVAILABLE with `error`, lock STUCK, rule STUCK. Answers ``{"stuck": [DIDs], "state"}``."""
    from rucio.common.exception import RequestNotFound
    from rucio.core import request as request_core
    from rucio.core.lock import get_replica_locks_for_rule_id
    from rucio.core.replica import update_replicas_states
    from rucio.core.rule import get_rule
    from rucio.db.sqla.constants import LockState, ReplicaState
    from rucio.db.sqla.session import transactional_session

    only = set(names) if names is not None else None

    def fail_locks(*, session: Any = None) -> list[str]:
        stuck = []
        for lock in get_replica_locks_for_rule_id(rule_id, session=session):
            if lock["state"] != LockState.REPLICATING:
                continue
            if only is not None and lock["name"] not in only:
                continue
            try:
                req = request_core.get_request_by_did(lock["scope"], lock["name"],
                                                      lock["rse_id"], session=session)
                request_core.archive_request(req["id"], session=session)
            except RequestNotFound:
                pass
            update_replicas_states([{"scope": lock["scope"], "name": lock["name"],
                                     "rse_id": lock["rse_id"],
                                     "state": ReplicaState.UNAVAILABLE,
                                     "error_message": error}], session=session)
            stuck.append(f"{lock['scope'].external}:{lock['name']}")
        return stuck

    in_one_transaction: Callable[[], list[str]] = transactional_session(fail_locks)
    stuck = in_one_transaction()
    return {"stuck": stuck, "state": get_rule(rule_id)["state"].name}
