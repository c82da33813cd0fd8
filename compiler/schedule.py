"""The schedule: every step of the campaign, in order, per site, with its dependencies.

The first multisite test lost months to operators not knowing what to run, in what order and
when to wait for another site. So the order is part of the plan: one list of typed steps (a
`kind` each: set a repository up, start ctrl_ingestd, submit a job, register, wait, verify, ...)
with the steps each one needs, numbered per site, and explicit "wait for <site>" steps where a
site needs another site's step. The runbooks render it and the rehearsal executes it,
dispatching on `kind`; neither re-derives the order.

Order of the campaign (the phases): every site's setup; the inputs (calibrations, refcats,
ancillary) and every site's defaults chain; raw distribution; then each stage with,
after it, the moves of what it produced (gather, scatter, return, cross-check); archival last.
A verify of a return or a cross-check feeds only the archival: at the central site it comes after
the last stage, so it never holds up a stage there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

from .plan_model import Job, Move, SitePlan, StagePlan

StepKind = Literal["setup-repo", "visits", "rucio-setup", "ingestd", "datastore", "apply-rules",
                   "monitoring", "inputs", "register", "crosscheck",
                   "wait", "verify", "submit", "job", "archive", "wait-for"]
PhaseKind = Literal["setup", "inputs", "raws", "stage", "gather", "scatter", "return", "crosscheck",
                    "archive"]
MOVE_PHASES: tuple[PhaseKind, ...] = ("gather", "scatter", "return", "crosscheck")


@dataclass(frozen=True)
class Step:
    key: str  # unique: "<kind>:<what>"
    kind: StepKind
    site: str  # where it runs
    phase: int
    deps: tuple[str, ...] = ()  # keys of steps (any site) that must pass first
    blocking: bool = True  # False: nothing later at this site needs it (a wait script)
    group: tuple[object, ...] = ()  # consecutive steps of one group share their "wait for" steps
    move: Move | None = None
    job: Job | None = None
    number: int = 0  # in its site's list
    waits: tuple[tuple[str, tuple[str, ...]], ...] = ()  # wait-for: (other site, step keys)


@dataclass(frozen=True)
class Phase:
    number: int
    kind: PhaseKind
    stage: StagePlan | None = None
    moves: tuple[Move, ...] = ()
    steps: tuple[str, ...] = ()  # keys, in campaign order within the phase


@dataclass(frozen=True)
class Schedule:
    phases: tuple[Phase, ...]
    steps: tuple[Step, ...]  # every step, campaign order (no wait-for steps)
    sites: Mapping[str, tuple[Step, ...]]  # per site: numbered, with the wait-for steps
    ancestors: Mapping[str, frozenset[str]] = field(repr=False)

    def step(self, key: str) -> Step:
        """A step by key (numbered as in its site's list)."""
        return next(s for s in self.steps if s.key == key)

    def phase(self, number: int) -> Phase:
        return self.phases[number - 1]

    def waited_by(self, key: str) -> list[tuple[str, int]]:
        """(site, step number) of every wait-for step that waits for `key`."""
        return list(self._waiters.get(key, ()))

    @cached_property
    def _waiters(self) -> dict[str, list[tuple[str, int]]]:
        """Step key -> the wait-for steps that wait for it, in site and step order: built once
        (the runbooks ask for every step, and a scan per step is quadratic)."""
        waiters: dict[str, list[tuple[str, int]]] = {}
        for site, steps in self.sites.items():
            for s in steps:
                for key in dict.fromkeys(k for _, keys in s.waits for k in keys):
                    waiters.setdefault(key, []).append((site, s.number))
        return waiters


def job_key(job: Job) -> str:
    return f"job:{job.stage}:{job.site}"


def _move_steps(moves: Sequence[Move], phase: int, site_order: Mapping[str, int],
                producer: Mapping[str, str]) -> list[Step]:
    """All registers, then all waits, then all verifies, each by source: a site's steps stay
    together."""
    registers, waits, verifies = [], [], []
    for m in moves:
        deps = [f"setup-done:{m.destination}", *([producer[m.id]] if m.id in producer else [])]
        registers.append(Step(f"register:{m.id}", "register", m.source, phase, tuple(deps),
                              group=(phase, "register", m.destination), move=m))
        waits.append(Step(f"wait:{m.id}", "wait", m.source, phase, (f"register:{m.id}",),
                          blocking=False, group=(phase, "wait"), move=m))
        verifies.append(Step(f"verify:{m.id}", "verify", m.destination, phase, (f"wait:{m.id}",),
                             group=(phase, "verify", m.source), move=m))

    def by_source(step: Step) -> tuple[int, int]:
        assert step.move is not None
        return site_order[step.move.source], site_order[step.move.destination]

    return [*sorted(registers, key=by_source), *sorted(waits, key=by_source),
            *sorted(verifies, key=by_source)]


RUCIO_SETUP = "rucio-setup"


def inputs_key(site: str) -> str:
    return f"inputs:{site}"


def visits_key(site: str) -> str:
    return f"visits:{site}"


def setup_steps(site: SitePlan, moves: Sequence[Move]) -> list[Step]:
    """A site's setup (phase 1): its repository; at the central site, which holds every raw,
    its visits and whole-visit selection; ctrl_ingestd where files arrive; the datastore root
    check where files arrive or leave; the outgoing Rucio datasets and rules; the monitoring."""
    arrives = any(m.destination == site.id for m in moves)
    sends = any(m.source == site.id for m in moves)
    steps = [Step(f"setup-repo:{site.id}", "setup-repo", site.id, 1)]
    if site.is_central:
        steps.append(Step(visits_key(site.id), "visits", site.id, 1))
        if moves:  # the Rucio admin: scopes and account limits, before any rule is made
            steps.append(Step(RUCIO_SETUP, "rucio-setup", site.id, 1))
    if arrives and site.ingestd is not None:
        steps.append(Step(f"ingestd:{site.id}", "ingestd", site.id, 1))
    if arrives or sends:
        steps.append(Step(f"datastore:{site.id}", "datastore", site.id, 1))
    if sends:
        steps.append(Step(f"apply-rules:{site.id}", "apply-rules", site.id, 1, (RUCIO_SETUP,)))
    # the alert rules and the status exporter: nothing later at the site needs them
    steps.append(Step(f"monitoring:{site.id}", "monitoring", site.id, 1, blocking=False))
    return steps


def build_schedule(sites: Sequence[SitePlan], stages: Sequence[StagePlan], jobs: Sequence[Job],
                   moves: Sequence[Move], central: str) -> Schedule:
    """Order every step of the campaign and number each site's."""
    site_order = {s.id: i for i, s in enumerate(sites)}
    phases: list[Phase] = []
    steps_of: dict[int, list[Step]] = {}

    setup = {s.id: setup_steps(s, moves) for s in sites}
    # the central site's first: its Rucio setup comes before every site's rules
    setup_steps_all = [st for s in sorted(sites, key=lambda s: not s.is_central)
                       for st in setup[s.id]]
    phases.append(Phase(1, "setup", steps=tuple(st.key for st in setup_steps_all)))
    steps_of[1] = setup_steps_all
    setup_done = {s.id: [st for st in setup[s.id] if st.blocking][-1].key for s in sites}

    producer = {m.id: f"job:{m.stage}:{m.source}" for m in moves if m.stage is not None}
    producer |= {m.id: inputs_key(m.source) for m in moves if m.is_input}
    arrivals: dict[tuple[str, str], list[str]] = {}  # (consuming stage, site) -> verify keys
    for m in moves:
        if m.sink.kind == "stage" and m.sink.stage is not None:
            arrivals.setdefault((m.sink.stage, m.destination), []).append(f"verify:{m.id}")

    def add_moves(kind: PhaseKind, group: Sequence[Move], stage: StagePlan | None = None) -> None:
        number = len(phases) + 1
        steps = _move_steps(group, number, site_order, producer)
        steps_of[number] = steps
        phases.append(Phase(number, kind, stage, tuple(group), tuple(s.key for s in steps)))

    # Inputs: the central site checks what it sends and writes the calibrations' validity
    # ranges; the moves; each other site installs what arrived (certified calibrations, refcat
    # and ancillary collections); every site's defaults chain comes last, over all of it.
    inputs = [m for m in moves if m.is_input]
    number = len(phases) + 1
    install = [Step(inputs_key(s.id), "inputs", s.id, number,
                    tuple(f"verify:{m.id}" for m in inputs if m.destination == s.id))
               for s in sites if not s.is_central]
    steps_of[number] = [Step(inputs_key(central), "inputs", central, number),
                        *_move_steps(inputs, number, site_order, producer), *install]
    phases.append(Phase(number, "inputs", None, tuple(inputs),
                        tuple(s.key for s in steps_of[number])))

    raws = [m for m in moves if m.is_raw]
    if raws:
        add_moves("raws", raws)
        # Once its raws arrived: define the visits and select them, whole (issue: whole visits).
        number = len(phases)
        steps_of[number] += [Step(visits_key(m.destination), "visits", m.destination, number,
                                  (f"verify:{m.id}",)) for m in raws]
        phases[-1] = replace(phases[-1], steps=tuple(s.key for s in steps_of[number]))
    archived = [m for m in moves if m.archived_into is not None]
    # a return's or cross-check's verify waits until the end; an archived gather's feeds a stage
    deferred_keys = {f"verify:{m.id}" for m in archived if m.sink.kind != "stage"}

    def last_blocking_at(site: str) -> list[str]:
        """The step a job at `site` follows there (what a remote submission must wait for)."""
        earlier = [s for n in sorted(steps_of) for s in steps_of[n]
                   if s.site == site and s.blocking and s.key not in deferred_keys]
        return [earlier[-1].key] if earlier else []

    for st in stages:
        number = len(phases) + 1
        job_steps = []
        for j in (j for j in jobs if j.stage == st.name):
            needs = tuple(arrivals.get((st.name, j.site), []))
            if j.is_remote:  # the central site's operator submits; the job runs at j.site
                submit = f"submit:{j.stage}:{j.site}"
                job_steps.append(Step(submit, "submit", j.submitted_from, number,
                                      tuple(dict.fromkeys([*last_blocking_at(j.site), *needs])),
                                      blocking=False, group=(number, "submit"), job=j))
                needs = (submit,)
            job_steps.append(Step(job_key(j), "job", j.site, number, needs, job=j))
        steps_of[number] = job_steps
        phases.append(Phase(number, "stage", st, (), tuple(s.key for s in job_steps)))
        produced = [m for m in moves if m.stage == st.name]
        for kind in MOVE_PHASES:
            of_kind = [m for m in produced if m.kind == kind]
            if of_kind:
                add_moves(kind, of_kind, st)

    number = len(phases) + 1
    crosschecks = [m for m in moves if m.kind == "crosscheck"]
    # the comparison of the cross-check tracts' two results, once every cross-check arrived
    compare = ([Step(f"crosscheck:{central}", "crosscheck", central, number,
                     tuple(f"verify:{m.id}" for m in crosschecks))] if crosschecks else [])
    archive = Step(f"archive:{central}", "archive", central, number,
                   tuple(f"verify:{m.id}" for m in archived))
    phases.append(Phase(number, "archive", None, tuple(archived),
                        (*(c.key for c in compare), archive.key)))

    ordered: list[Step] = []
    deferred: list[Step] = []
    for ph in phases[:-1]:
        for s in steps_of[ph.number]:
            if s.key in deferred_keys:
                assert s.move is not None
                deferred.append(replace(s, group=("archive", "verify", s.move.source)))
            else:
                ordered.append(s)
    ordered += sorted(deferred, key=lambda s: site_order[s.move.source] if s.move else 0)
    ordered += [*compare, archive]
    ordered = [replace(s, deps=tuple(setup_done[d.split(":", 1)[1]] if d.startswith("setup-done:")
                                     else d for d in s.deps)) for s in ordered]
    ancestors = _ancestors(ordered)
    lists = _site_lists(sites, ordered, ancestors)
    numbers = {s.key: s.number for steps in lists.values() for s in steps}
    ordered = [replace(s, number=numbers[s.key]) for s in ordered]
    return Schedule(tuple(phases), tuple(ordered), lists, ancestors)


def _ancestors(steps: Sequence[Step]) -> dict[str, frozenset[str]]:
    """Every step that must have passed before a step can pass (explicit deps and site order)."""
    keys = {s.key for s in steps}
    last_blocking: dict[str, str] = {}
    memo: dict[str, frozenset[str]] = {}
    for s in steps:  # campaign order: every dependency is earlier, so one pass suffices
        direct = [*s.deps, *([last_blocking[s.site]] if s.site in last_blocking else [])]
        found: set[str] = set()
        for d in direct:
            if d in keys:
                if d not in memo:
                    raise ValueError(f"schedule step {s.key} depends on the later step {d}")
                found |= {d} | memo[d]
        memo[s.key] = frozenset(found)
        if s.blocking:
            last_blocking[s.site] = s.key
    return memo


def _site_lists(sites: Sequence[SitePlan], steps: Sequence[Step],
                ancestors: Mapping[str, frozenset[str]]) -> dict[str, tuple[Step, ...]]:
    """Each site's own steps, with a wait-for step before a run of steps that needs another site."""
    by_key = {s.key: s for s in steps}
    lists: dict[str, tuple[Step, ...]] = {}
    for site in sites:
        own = [s for s in steps if s.site == site.id]
        known: set[str] = set()
        out: list[Step] = []
        i = 0
        while i < len(own):
            run = [own[i]]
            while (own[i].group and i + len(run) < len(own)
                   and own[i + len(run)].group == own[i].group):
                run.append(own[i + len(run)])
            missing = [d for s in run for d in s.deps
                       if d in by_key and by_key[d].site != site.id and d not in known]
            waits: dict[str, list[str]] = {}
            for d in dict.fromkeys(missing):
                if d not in known:
                    waits.setdefault(by_key[d].site, []).append(d)
                    known |= {d} | ancestors[d]
            for other, targets in waits.items():
                out.append(Step(f"wait-for:{site.id}:{run[0].key}:{other}", "wait-for", site.id,
                                run[0].phase, waits=((other, tuple(targets)),)))
            for s in run:
                out.append(s)
                known |= {s.key} | ancestors[s.key]
            i += len(run)
        lists[site.id] = tuple(replace(s, number=n) for n, s in enumerate(out, 1))
    return lists
