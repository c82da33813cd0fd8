"""One pass of Rucio's own daemons (judge-evaluator, then the conveyor: submitter, poller,
finisher) with bytes that really move.

Rucio's ``mock`` transfer tool answers "submitted" and then "done" for every transfer and copies
nothing. :func:`conveyor_cycle` runs the three daemons once each, in .venv-rucio against the
server's database, with the mock tool's ``submit`` doing what FTS would: copy each file from the
source PFN to the destination PFN (``file://`` URLs of the RSE folders). A transfer whose source
file is missing is reported FAILED by the mock tool's poll (as FTS would), so Rucio retries it
and finally marks its lock STUCK.

The daemons' ``run()`` entry points wait ``partition_wait_time`` = 10 s each before working (for
partition rebalancing among daemon instances); the module-level ``submitter``/``poller``/
``finisher`` functions take it as an argument, so the cycle calls those with 0 (what ``run``
would otherwise set up: a topology cache and logging). The poller also gets ``older_than=0``
(its default skips requests younger than 60 s).

Faults, for the rehearsal's negative paths:

* ``lose=["scope:name", ...]``: the file is "lost in transit": not copied (removed if present)
  while Rucio, told "done", marks its replica AVAILABLE and the rule OK.
* :func:`make_stuck`: the rule's replicating locks fail for good, as the finisher records a
  transfer that exhausted its retries (request archived, replica UNAVAILABLE, lock STUCK, rule
  STUCK with the error).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .rucio import RucioService, json_result

_CYCLE = r"""
import json, logging, os, shutil, sys, time
from urllib.parse import urlparse, unquote

spec = json.loads(sys.argv[1])
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
lose = set(spec["lose"])
state_path = spec["state"]
try:
    with open(state_path) as fh:
        failed = set(json.load(fh))
except FileNotFoundError:
    failed = set()

from rucio.core.topology import ExpiringObjectCache, Topology
from rucio.db.sqla.constants import RequestState
from rucio.transfertool.mock import MockTransfertool, MockTransferStatusReport
from rucio.daemons.conveyor import finisher, poller, submitter

transfers = []


def local_path(url):
    parsed = urlparse(url)
    if parsed.scheme != "file":
        raise RuntimeError(f"not a file:// URL: {url}")
    return unquote(parsed.path)


class FailedReport(MockTransferStatusReport):
    supported_db_fields = ["state", "external_id", "err_msg"]

    def __init__(self, request_id, external_id):
        super().__init__(request_id, external_id)
        self.state = RequestState.FAILED
        self.err_msg = "rehearsal mock transfer: source file missing"


_submit = MockTransfertool.submit
_bulk_query = MockTransfertool.bulk_query


def submit(self, transfers_, job_params, timeout=None):
    transfers_ = list(transfers_)
    for t in transfers_:
        rws = t.rws
        did = f"{rws.scope.external}:{rws.name}"
        src, dst = local_path(t.source_url(t.src)), local_path(t.dest_url)
        item = {"did": did, "scope": rws.scope.external, "name": rws.name,
                "request_id": rws.request_id, "rule_id": rws.rule_id,
                "src_rse": t.src.rse.name, "dst_rse": t.dst.rse.name,
                "src": src, "dst": dst, "bytes": rws.byte_count}
        if did in lose:
            if os.path.lexists(dst):
                os.remove(dst)
            item["result"] = "lost"
        elif not os.path.isfile(src):
            failed.add(rws.request_id)
            item["result"] = "failed"
        else:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            tmp = dst + ".part"
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
            item["result"] = "copied"
        transfers.append(item)
    with open(state_path, "w") as fh:
        json.dump(sorted(failed), fh)
    return _submit(self, transfers_, job_params, timeout)


def bulk_query(self, requests_by_eid, timeout=None):
    response = _bulk_query(self, requests_by_eid, timeout)
    for eid, reports in response.items():
        for request_id in list(reports):
            if request_id in failed:
                reports[request_id] = FailedReport(request_id, eid)
    return response


MockTransfertool.submit = submit
MockTransfertool.bulk_query = bulk_query

timings = {}
t0 = time.monotonic()
# The judge-evaluator: files attached to a dataset after its rule was made get their locks (and
# transfer requests) only when Rucio re-evaluates the rule, as this daemon does at a site.
from rucio.daemons.judge import evaluator
evaluator.re_evaluator(once=True, did_limit=1000)
timings["judge-evaluator"] = time.monotonic() - t0
t0 = time.monotonic()
submitter.submitter(once=True, partition_wait_time=0,
                    cached_topology=ExpiringObjectCache(ttl=300, new_obj_fnc=lambda: Topology()))
timings["submitter"] = time.monotonic() - t0
t0 = time.monotonic()
poller.poller(once=True, older_than=0, partition_wait_time=0,
              cached_topology=ExpiringObjectCache(ttl=300, new_obj_fnc=lambda: Topology()))
timings["poller"] = time.monotonic() - t0
t0 = time.monotonic()
finisher.finisher(once=True, partition_wait_time=0,
                  cached_topology=ExpiringObjectCache(ttl=300, new_obj_fnc=lambda: Topology()))
timings["finisher"] = time.monotonic() - t0
print("@@JSON@@" + json.dumps({"transfers": transfers, "timings": timings}))
"""

_MAKE_STUCK = r"""
import json, sys
from rucio.common.exception import RequestNotFound
from rucio.core import request as request_core
from rucio.core.lock import get_replica_locks_for_rule_id
from rucio.core.replica import update_replicas_states
from rucio.core.rule import get_rule
from rucio.db.sqla.constants import LockState, ReplicaState
from rucio.db.sqla.session import transactional_session

spec = json.loads(sys.argv[1])
only = set(spec["names"]) if spec["names"] is not None else None


@transactional_session
def make_stuck(rule_id, error, *, session=None):
    stuck = []
    for lock in get_replica_locks_for_rule_id(rule_id, session=session):
        if lock["state"] != LockState.REPLICATING:
            continue
        if only is not None and lock["name"] not in only:
            continue
        try:
            req = request_core.get_request_by_did(lock["scope"], lock["name"], lock["rse_id"],
                                                  session=session)
            request_core.archive_request(req["id"], session=session)
        except RequestNotFound:
            pass
        update_replicas_states([{"scope": lock["scope"], "name": lock["name"],
                                 "rse_id": lock["rse_id"], "state": ReplicaState.UNAVAILABLE,
                                 "error_message": error}], session=session)
        stuck.append(f"{lock['scope'].external}:{lock['name']}")
    return stuck


stuck = make_stuck(spec["rule_id"], spec["error"])
print("@@JSON@@" + json.dumps({"stuck": stuck, "state": get_rule(spec["rule_id"])["state"].name}))
"""


@dataclass
class CycleResult:
    """What one conveyor cycle did: every transfer the submitter handed to the (mock) tool,
    each with ``did``, ``src_rse``, ``dst_rse``, ``src``/``dst`` paths, ``bytes``,
    ``request_id``, ``rule_id`` and ``result`` (``copied``, ``lost`` or ``failed``)."""

    transfers: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def by_result(self, result: str) -> list[str]:
        return [t["did"] for t in self.transfers if t["result"] == result]

    @property
    def copied(self) -> list[str]:
        return self.by_result("copied")

    @property
    def lost(self) -> list[str]:
        return self.by_result("lost")

    @property
    def failed(self) -> list[str]:
        return self.by_result("failed")


def conveyor_cycle(service: RucioService, copy_files: bool = True,
                   lose: str | Iterable[str] = (), timeout: float = 300.0) -> CycleResult:
    """Run submitter, poller and finisher once each (about 2-3 s, mostly .venv-rucio start-up).

    ``lose``: DIDs (``scope:name``) to drop in transit. ``copy_files=False`` copies nothing
    (Rucio's plain mock behaviour; replicas then exist only in the database)."""
    lost = [lose] if isinstance(lose, str) else list(lose)
    state = service.workdir / "conveyor-failed.json"
    spec = json.dumps({"lose": lost, "state": str(state)})
    code = _CYCLE
    if not copy_files:
        code = _CYCLE.replace("MockTransfertool.submit = submit\n", "")
    start = time.monotonic()
    out = service.server_call(code, timeout=timeout, args=[spec])
    result = json_result(out, "conveyor cycle")
    return CycleResult(transfers=result["transfers"], timings=result["timings"],
                       seconds=time.monotonic() - start)


def run_until_settled(service: RucioService, rule_ids: Iterable[str], *, max_cycles: int = 10,
                      lose: str | Iterable[str] = ()) -> tuple[dict[str, str], list[CycleResult]]:
    """Conveyor cycles until no rule of `rule_ids` is REPLICATING (or `max_cycles`); returns
    each rule's final state and the cycles' results. ``lose`` applies to every cycle."""
    ids = list(rule_ids)
    cycles: list[CycleResult] = []
    states: dict[str, str] = {}
    for _ in range(max_cycles):
        cycles.append(conveyor_cycle(service, lose=lose))
        states = rule_states(service, ids)
        if all(s != "REPLICATING" for s in states.values()):
            break
    return states, cycles


def rule_states(service: RucioService, rule_ids: Iterable[str]) -> dict[str, str]:
    ids = list(rule_ids)
    result: dict[str, str] = service.client_json(
        f"{{r: c.get_replication_rule(r)['state'] for r in {ids!r}}}")
    return result


_EVALUATE = r"""
import logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
from rucio.daemons.judge import evaluator
evaluator.re_evaluator(once=True, did_limit=1000)
"""


def evaluate_rules(service: RucioService) -> None:
    """Run Rucio's judge-evaluator once: rules of datasets that got files since the last pass
    get their locks (REPLICATING) and transfer requests, nothing is transferred yet."""
    service.server_call(_EVALUATE)


def make_stuck(service: RucioService, rule_id: str, names: Iterable[str] | None = None,
               error: str = "rehearsal: transfer failed permanently") -> list[str]:
    """Fail the rule's replicating locks (all, or those of file `names`) for good; the rule
    goes STUCK (``rucio rule show``: ``State: STUCK``, ``Locks OK/REPLICATING/STUCK: 0/0/N``,
    ``Error: <error>``). Returns the DIDs made stuck."""
    spec = json.dumps({"rule_id": rule_id, "error": error,
                       "names": None if names is None else list(names)})
    out = service.server_call(_MAKE_STUCK, args=[spec])
    stuck: list[str] = json_result(out, "make_stuck")["stuck"]
    return stuck
