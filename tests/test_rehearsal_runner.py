"""The rehearsal's step runner: side by side where the dependencies allow, told in campaign order.

Fast (no services): the steps here are small functions that sleep, so that the threads' timing
would reorder anything that is not ordered on purpose.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from drpc_rehearsal.runner import run_steps


@dataclass(frozen=True)
class S:
    key: str
    sleep: float = 0.0
    fails: bool = False


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: list[str] = []
        self.ended: list[str] = []
        self.running = 0
        self.most = 0

    def run(self, step: S) -> None:
        with self.lock:
            self.started.append(step.key)
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(step.sleep)
        with self.lock:
            self.running -= 1
            self.ended.append(step.key)
        if step.fails:
            raise RuntimeError(f"{step.key} failed")


def test_independent_steps_overlap_and_are_emitted_in_order() -> None:
    steps = [S("a", 0.4), S("b", 0.1), S("c", 0.1), S("d", 0.0)]
    rec, emitted = Recorder(), []
    ran, error = run_steps(steps, {"d": ["a", "b", "c"]}, rec.run, workers=3,
                           emit=lambda s: emitted.append(s.key), abort=lambda: None)
    assert error is None and [s.key for s in ran] == ["a", "b", "c", "d"]
    assert emitted == ["a", "b", "c", "d"]  # though b and c ended before a
    assert rec.ended.index("b") < rec.ended.index("a") and rec.ended[-1] == "d"
    assert rec.most == 3


def test_a_step_starts_only_after_what_it_needs() -> None:
    steps = [S("a", 0.1), S("b", 0.0), S("c", 0.0)]
    rec = Recorder()
    run_steps(steps, {"b": ["a"], "c": ["b"]}, rec.run, workers=4, emit=lambda s: None,
              abort=lambda: None)
    assert rec.started == ["a", "b", "c"] and rec.most == 1


def test_at_most_workers_at_once() -> None:
    rec = Recorder()
    run_steps([S(str(i), 0.05) for i in range(6)], {}, rec.run, workers=2, emit=lambda s: None,
              abort=lambda: None)
    assert rec.most == 2 and len(rec.ended) == 6


def test_failure_stops_later_steps_and_the_outcome_is_as_if_in_order() -> None:
    # b fails at once; a (earlier, slow) still runs to its end; c (later, ready, fast) may have
    # run meanwhile but does not count; d (needs c) never starts.
    steps = [S("a", 0.3), S("b", 0.0, fails=True), S("c", 0.0), S("d", 0.0)]
    rec, emitted = Recorder(), []

    def run(step: S) -> None:
        # c ends after b, whatever the machine's load: b's failure is known before c passes
        while step.key == "c" and "b" not in rec.ended:
            time.sleep(0.01)
        rec.run(S(step.key, 0.05, step.fails) if step.key == "c" else step)

    ran, error = run_steps(steps, {"d": ["c"]}, run, workers=3,
                           emit=lambda s: emitted.append(s.key), abort=lambda: None)
    assert [s.key for s in ran] == ["a", "b"] and emitted == ["a", "b"]
    assert isinstance(error, RuntimeError) and str(error) == "b failed"
    assert "a" in rec.ended and "d" not in rec.started


def test_the_first_failure_in_campaign_order_wins() -> None:
    steps = [S("a", 0.2, fails=True), S("b", 0.0, fails=True)]
    ran, error = run_steps(steps, {}, Recorder().run, workers=2, emit=lambda s: None,
                           abort=lambda: None)
    assert [s.key for s in ran] == ["a"] and str(error) == "a failed"


def test_a_step_needing_a_failed_one_never_starts() -> None:
    rec = Recorder()
    ran, error = run_steps([S("a", fails=True), S("b")], {"b": ["a"]}, rec.run, workers=2,
                           emit=lambda s: None, abort=lambda: None)
    assert rec.started == ["a"] and [s.key for s in ran] == ["a"] and error is not None


def test_an_interrupt_aborts_and_goes_on() -> None:
    aborted = []

    def emit(step: S) -> None:
        raise KeyboardInterrupt

    rec = Recorder()
    with pytest.raises(KeyboardInterrupt):
        run_steps([S("a"), S("b", 0.1), S("c")], {"c": ["b"]}, rec.run, workers=2, emit=emit,
                  abort=lambda: aborted.append(True))
    assert aborted == [True] and "c" not in rec.started


def test_needs_outside_the_steps_are_ignored() -> None:
    ran, error = run_steps([S("a")], {"a": ["wait-for:elsewhere"]}, Recorder().run, workers=1,
                           emit=lambda s: None, abort=lambda: None)
    assert error is None and [s.key for s in ran] == ["a"]


def test_step_needs_of_the_3x2_schedule() -> None:
    """The rehearsal's order keeps every dependency of the schedule and its sites' order, but
    lets the moves between different sites of one phase go side by side."""
    from compiler.pipeline import compile_campaign
    from drpc_rehearsal.orchestrate import step_needs
    from tests.helpers import CAMPAIGNS

    schedule = compile_campaign(CAMPAIGNS / "3x2.yaml", render=False).plan.schedule
    steps = schedule.steps
    needs = step_needs(steps)
    keys = [s.key for s in steps]
    closure: dict[str, set[str]] = {}
    for st in steps:  # what must have passed before st, through needs
        assert all(keys.index(n) < keys.index(st.key) for n in needs[st.key]), st.key
        closure[st.key] = set(needs[st.key]).union(*(closure[n] for n in needs[st.key]))
        assert set(st.deps) & set(keys) <= closure[st.key], st.key
    # the site's order: each step follows its site's earlier blocking steps, but for those that
    # are moves of the same kind and phase (between other sites), which go side by side
    for i, st in enumerate(steps):
        for earlier in steps[:i]:
            same_run = (st.kind == earlier.kind and st.kind in ("register", "verify")
                        and st.phase == earlier.phase and st.blocking)
            if earlier.site == st.site and earlier.blocking and not same_run:
                assert earlier.key in closure[st.key], (earlier.key, st.key)
    # e.g. the two gathers of visitSummary are verified at usdf side by side, then step2a-tracts
    gathers = [s.key for s in steps if s.kind == "verify" and "visitSummary" in s.key
               and s.site == "usdf"]
    assert len(gathers) == 2 and gathers[0] not in closure[gathers[1]]
    assert set(gathers) <= closure["job:step2a-tracts:usdf"]
    # a wait waits for every register of its phase (one batch of Rucio's daemons per phase)
    for st in steps:
        if st.kind == "wait":
            assert {r.key for r in steps if r.kind == "register" and r.phase == st.phase} \
                <= needs[st.key]
