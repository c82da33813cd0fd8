"""One pass of Rucio's own daemons (judge-evaluator, then the conveyor: submitter, poller,
finisher) with bytes that really move.

Rucio's ``mock`` transfer tool answers "submitted" and then "done" for every transfer and copies
nothing. :func:`conveyor_cycle` runs the three daemons once each (:mod:`.rucio_side.daemons`,
in .venv-rucio against the server's database), with the mock tool's ``submit`` doing what FTS
would: copy each file from the source PFN to the destination PFN (``file://`` URLs of the RSE
folders). A transfer whose source
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

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .rucio import RucioService

__all__ = ["CycleResult", "conveyor_cycle", "evaluate_rules", "make_stuck", "rule_states",
           "run_until_settled"]


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
    spec = {"lose": lost, "state": str(service.workdir / "conveyor-failed.json"),
            "copy_files": copy_files}
    start = time.monotonic()
    result = service.call("daemons:conveyor_cycle", spec, server=True, timeout=timeout)
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
    """Rule id -> state; :meth:`RucioService.rule_states`."""
    return service.rule_states(rule_ids)


def evaluate_rules(service: RucioService) -> None:
    """Run Rucio's judge-evaluator once: rules of datasets that got files since the last pass
    get their locks (REPLICATING) and transfer requests, nothing is transferred yet."""
    service.call("daemons:evaluate_rules", server=True)


def make_stuck(service: RucioService, rule_id: str, names: Iterable[str] | None = None,
               error: str = "rehearsal: transfer failed permanently") -> list[str]:
    """Fail the rule's replicating locks (all, or those of file `names`) for good; the rule
    goes STUCK (``rucio rule show``: ``State: STUCK``, ``Locks OK/REPLICATING/STUCK: 0/0/N``,
    ``Error: <error>``). Returns the DIDs made stuck."""
    result = service.call("daemons:make_stuck", {
        "rule_id": rule_id, "error": error, "names": None if names is None else list(names)},
        server=True)
    stuck: list[str] = result["stuck"]
    return stuck
