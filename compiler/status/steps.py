"""What to do next: each site's runbook steps as done, running, failed, ready or blocked.

The steps and their dependencies are the plan's schedule (`plan.schedule`); their numbers and
titles are those of the runbooks (`render.runbook.build`), so "step 7" here is step 7 of
`sites/<site>/RUNBOOK.md`. A step is *observed* when a source shows it (a job's WMS state, a
rule, a count, a repository); a step that cannot be observed (a check, a deployment) is taken
as done once any step that needs it was observed started, and otherwise as ready or blocked by
its dependencies. A step can start (ready) when every step it depends on is done: its explicit
dependencies, at any site, and the site's previous step that later steps wait for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..plan import Plan
from ..schedule import Step
from .model import (
    CrosscheckStatus,
    JobStatus,
    RepoStatus,
    SiteSteps,
    StepState,
    StepStatus,
    TransferStatus,
)

FAILED_JOB_STATES = frozenset({"FAILED", "PRUNED", "HELD", "DELETED"})
RUNNING_JOB_STATES = frozenset({"MISFIT", "UNREADY", "READY", "PENDING", "RUNNING"})
FAILED_RULE_STATES = frozenset({"STUCK", "SUSPENDED"})
# Steps that only check what their dependencies did: done once those are (a wait-for waits for
# other sites' steps; the archival step checks that every archived move arrived, which the
# verify steps it depends on have shown).
SETTLED_BY_DEPS = frozenset({"wait-for", "archive"})


def plain(title: str) -> str:
    """A runbook title without its Markdown code marks."""
    return title.replace("`", "")


def observe(plan: Plan, jobs: Sequence[JobStatus], transfers: Sequence[TransferStatus],
            repos: Sequence[RepoStatus], crosscheck: CrosscheckStatus | None = None
            ) -> dict[str, StepState]:
    """Step key -> what the sources show of it (only steps a source shows)."""
    seen: dict[str, StepState] = {}
    for j in jobs:
        key = f"job:{j.stage}:{j.site}"
        if j.known and j.submitted:
            seen[f"submit:{j.stage}:{j.site}"] = "done"
        if j.state == "SUCCEEDED":
            seen[key] = "done"
        elif j.state in FAILED_JOB_STATES:
            seen[key] = "failed"
        elif j.state in RUNNING_JOB_STATES:
            seen[key] = "running"
    for t in transfers:
        rule, arrival = t.rule, t.arrival
        sent = rule.files_sent if rule.known else None
        if sent:
            seen[f"register:{t.id}"] = "done"
        if rule.state in FAILED_RULE_STATES:
            seen[f"wait:{t.id}"] = "failed"
        elif sent and rule.state == "OK" and rule.locks is not None and rule.locks.ok >= sent:
            seen[f"wait:{t.id}"] = "done"
        elif sent and rule.state is not None:
            seen[f"wait:{t.id}"] = "running"
        if sent and arrival.known and arrival.ingested:
            seen[f"verify:{t.id}"] = "done" if arrival.ingested == sent else "running"
    rules = {t.id: t.rule for t in transfers}
    for site in plan.sites:
        outgoing = [rules.get(m.id) for m in plan.outgoing(site.id)]
        if outgoing and all(r is not None and r.known and r.rule_id for r in outgoing):
            seen[f"apply-rules:{site.id}"] = "done"
    for r in repos:
        if r.known and r.ready:
            seen[f"setup-repo:{r.site}"] = "done"
    if crosscheck is not None and crosscheck.known:
        seen[f"crosscheck:{crosscheck.central}"] = "done" if crosscheck.ok else "failed"
    return seen


def direct_deps(steps: Sequence[Step]) -> dict[str, tuple[str, ...]]:
    """Each step's own dependencies plus its site's previous blocking step (schedule order)."""
    keys = {s.key for s in steps}
    last: dict[str, str] = {}
    out: dict[str, tuple[str, ...]] = {}
    for s in steps:
        before = [last[s.site]] if s.site in last else []
        out[s.key] = tuple(dict.fromkeys(d for d in (*before, *s.deps) if d in keys))
        if s.blocking:
            last[s.site] = s.key
    return out


def site_steps(plan: Plan, seen: Mapping[str, StepState]) -> list[SiteSteps]:
    """Each site's runbook steps (numbers and titles of `render.runbook.build`) with their
    state."""
    from ..render.runbook import build

    sched = plan.schedule
    runbooks = build(plan)
    done = {k for k, v in seen.items() if v == "done"}
    for key, seen_state in seen.items():  # a started step proves what it needed was done
        if seen_state in ("done", "running", "failed"):
            done |= sched.ancestors.get(key, frozenset())
    done -= {k for k, v in seen.items() if v != "done"}  # seen failing or running: not done
    deps = direct_deps(sched.steps)
    numbered = {t.step.key: f"{site} step {t.number}"
                for site, texts in runbooks.sites.items() for t in texts}

    out = []
    for site_id, texts in runbooks.sites.items():
        rows: list[StepStatus] = []
        for text in texts:
            s = text.step
            needs = (tuple(k for _, keys in s.waits for k in keys) if s.kind == "wait-for"
                     else deps.get(s.key, ()))
            unmet = [numbered[d] for d in needs if d not in done]
            observed = s.key in seen
            state: StepState
            if observed:
                state = seen[s.key]
            elif s.key in done or (s.kind in SETTLED_BY_DEPS and not unmet):
                state = "done"
            else:
                state = "blocked" if unmet else "ready"
            rows.append(StepStatus(number=text.number, key=s.key, kind=s.kind,
                                   title=plain(text.title), state=state, observed=observed,
                                   blocked_by=unmet if state == "blocked" else []))
        out.append(SiteSteps(site=site_id, next=[r.number for r in rows if r.state == "ready"],
                             blocked=[r.number for r in rows if r.state == "blocked"],
                             steps=rows))
    return out


__all__ = ["FAILED_JOB_STATES", "FAILED_RULE_STATES", "RUNNING_JOB_STATES", "direct_deps",
           "observe", "plain", "site_steps"]
