"""What happens between a move's register script and its wait script, for every move at once.

Rucio's judge-evaluator and conveyor do not work rule by rule: one pass moves the files of every
rule that has them, and Hermes then sends every message waiting in Rucio's table. So the
rehearsal does it as the real daemons would, for all the moves registered so far: a wait step
whose move is not yet through runs one *batch* (conveyor cycles until none of those rules is
REPLICATING, one Hermes step, each destination's ingest consumer drains its events, the
destinations side by side), and a wait step whose move an earlier batch took has nothing left
to do but its script. Batches run one at a time.

What a wait step reports about its move is counted per move (its datasets' events and
ingests, whatever batch carried them), so the report does not depend on which step's batch
took it. The faults of ``--inject`` go into one move chosen before the run (the campaign's first
move of a stage's outputs), in whichever batch carries it: ``loss`` loses its first file (sorted) in
transit, ``stuck`` fails its rule's locks for good before any conveyor cycle sees them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from compiler.plan import Move

from .conveyor import evaluate_rules
from .hermes import HermesResult
from .ingest import IngestConsumer, IngestStats
from .services import Services

__all__ = ["DRAIN_TIMEOUT", "Transfers"]

#: Seconds a destination's consumer may take to read a batch's events.
DRAIN_TIMEOUT = 60.0


class Transfers:
    """The transfer machinery of one rehearsal (thread-safe: a batch at a time)."""

    def __init__(self, svc: Services, consumers: Mapping[str, IngestConsumer],
                 topics: Mapping[str, set[str]], dataset_ids: Callable[[Move], list[str]], *,
                 inject: str | None = None, target: Move | None = None) -> None:
        #: ``consumers``: site -> its ingest consumer (filled by the ingestd steps);
        #: ``topics``: site -> the topics of what arrives there; ``dataset_ids``: the Butler
        #: dataset ids a registered move sends (its manifest's).
        self.svc = svc
        self.consumers = consumers
        self.topics = topics
        self.dataset_ids = dataset_ids
        self.inject = inject
        self.target = target
        self.injected: str | None = None  # the move the fault went into
        self.rule_ids: dict[str, str] = {}  # move id -> its rule
        self._lock = threading.Lock()  # held by a batch, from its first cycle to its last ingest
        self._data = threading.Lock()  # held while the counts below change or are read
        self._registered: list[Move] = []
        self._settled: set[str] = set()
        self._states: dict[str, str] = {}  # move id -> its rule's state after its batch
        self._injected_note = ""
        self._lose: list[str] = []
        self._events: list[tuple[str, str | None, str]] = []  # (RSE, dataset id, DID) of each
        self._ingested: dict[str, set[str]] = {}  # site -> dataset ids ingested there
        self._outside: set[str] = set()  # dataset ids whose file was outside the root
        self._errors: dict[tuple[str, str], str] = {}  # (site, DID) -> why it was not ingested

    def registered(self, move: Move, rule_id: str) -> None:
        """`move`'s register step passed: its files are attached, its rule is `rule_id`."""
        with self._data:
            self.rule_ids[move.id] = rule_id
            self._registered.append(move)

    def settle(self, move: Move) -> None:
        """Make sure `move`'s files went through (a batch, unless an earlier one took them)."""
        with self._lock:
            if move.id in self._settled:
                return
            if move.id not in self.rule_ids:
                raise RuntimeError(f"the wait of {move.id} before its register passed")
            with self._data:
                pending = [m for m in self._registered if m.id not in self._settled]
            target = self.target
            if target is not None and any(m.id == target.id for m in pending):
                self._inject(target)
                pending = [m for m in pending if m.id not in self._settled]
            if not pending:
                return
            rules = [self.rule_ids[m.id] for m in pending]
            states, _ = self.svc.run_until_settled(rules, lose=self._lose)
            self._ingest(self.svc.hermes_step())
            with self._data:
                for m, rule in zip(pending, rules, strict=True):
                    self._states[m.id] = states.get(rule, "unknown")
                    self._settled.add(m.id)

    def _inject(self, target: Move) -> None:
        """The fault of ``--inject``, once, when the target's files are first pending."""
        if self.injected is not None:
            return
        rucio = self.svc.rucio
        rule = self.rule_ids[target.id]
        if self.inject == "stuck":
            evaluate_rules(rucio)  # the files' locks exist, REPLICATING
            self.svc.make_stuck(rule)
            with self._data:
                self.injected = target.id
                self._injected_note = f"injected: rule {rule} made STUCK"
                self._states[target.id] = "STUCK"
                self._settled.add(target.id)
        elif self.inject == "loss":
            names = rucio.dataset_files(target.rucio_scope, target.rucio_name)
            if names:
                self._lose = [f"{target.rucio_scope}:{names[0]}"]
                with self._data:
                    self.injected = target.id
                    self._injected_note = f"injected: {names[0]} lost in transit"

    def _ingest(self, events: HermesResult) -> None:
        """Each destination's consumer reads the events Hermes produced on its topics."""
        with self._data:
            for event in events.events:
                payload = event["payload"]
                self._events.append((str(payload["dst-rse"]), _dataset_id(payload),
                                     f"{payload['scope']}:{payload['name']}"))
        expect = {site: sum(n for topic, n in events.items() if topic in self.topics.get(site, ()))
                  for site in sorted(self.consumers)}
        busy = [site for site, n in expect.items() if n]
        if not busy:
            return

        def drain(site: str) -> IngestStats:
            return self.consumers[site].drain(expect=expect[site], timeout=DRAIN_TIMEOUT)

        with ThreadPoolExecutor(max_workers=len(busy), thread_name_prefix="drain") as pool:
            drained = dict(zip(busy, pool.map(drain, busy), strict=True))
        # ctrl_ingestd logs a failed ingest and goes on; the verify script is what must catch it
        with self._data:
            for site, stats in drained.items():
                self._ingested.setdefault(site, set()).update(stats.dataset_ids)
                self._outside.update(stats.outside_ids)
                for error in stats.errors:
                    self._errors.setdefault((site, error.split(": ", 1)[0]), error)

    def note(self, move: Move) -> str:
        """What the transfer of `move` did, counted per move (for its wait step's row)."""
        ids = set() if move.is_raw else set(self.dataset_ids(move))
        with self._data:
            injected = self._injected_note if self.injected == move.id else ""
            state = self._states.get(move.id, "unknown")
            if state == "STUCK" and injected:
                return injected
            sent = [did for rse, sid, did in self._events
                    if rse == move.destination_rse and sid in ids]
            text = f"rule {state}, {len(sent)} event(s) to Kafka"
            if sent:
                got = len(ids & self._ingested.get(move.destination, set()))
                text += f", {got} ingested at {move.destination}"
                problems = []
                if got < len(sent):
                    errors = [self._errors[(move.destination, did)] for did in sent
                              if (move.destination, did) in self._errors]
                    problems.append(f"{len(sent) - got} not ingested"
                                    + (f", e.g. {_short(errors[0])}" if errors else ""))
                if ids & self._outside:
                    problems.append(f"{len(ids & self._outside)} file(s) outside the datastore "
                                    "root")
                if problems:
                    text += f" ({'; '.join(problems)})"
            return f"{injected}; {text}" if injected else text


def _dataset_id(payload: Mapping[str, Any]) -> str | None:
    """The Butler dataset id in an event's ``rubin_sidecar`` (``DatasetRef.to_json()``)."""
    sidecar = payload.get("rubin_sidecar")
    try:
        data = json.loads(sidecar) if isinstance(sidecar, str | bytes) else sidecar
        return str(data["id"]) if isinstance(data, dict) else None
    except (ValueError, KeyError, TypeError):
        return None


def _short(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."
