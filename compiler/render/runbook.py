"""RUNBOOK.md of the campaign and `sites/<site>/RUNBOOK.md` of each site (CONTRACT section 3).

The first multisite test lost months to operators not knowing what to run, in what order, when
to wait for another site and how to tell that a step worked. So both runbooks are built from one
ordered list of steps (`build`): every step names the exact generated file it runs (through
`paths`, the one definition of every path), what a good result looks like and what to do when
it fails; a step's dependencies on other sites become explicit "wait for <site> step N" steps in
the site runbook and written-out sync points in the campaign runbook.

Order of the campaign (the phases): every site's setup; raw distribution; then each stage with,
after it, the moves of what it produced (gather, scatter, return, cross-check); archival last.
Every generated script is cited exactly once per runbook, in an order its dependencies allow
(tests/test_runbook.py checks both).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .. import paths
from ..plan import Job, Plan, RawDistribution, SitePlan, StagePlan, Transfer
from .common import header_lines, render_template
from .runbook_facts import (
    fmt_days, arrives_at, has_ingestd, outgoing_moves, is_source, move_what,
    move_into, move_selection, consumer_text, pods_command, logs_command,
)

Move = Transfer | RawDistribution
KIND_ORDER = ("gather", "scatter", "return", "crosscheck")


# -- the model ------------------------------------------------------------------------------------

@dataclass
class Step:
    key: str
    site: str
    phase: int
    title: str
    command: str  # the exact command; it contains the generated file's path
    how: str = ""  # where/when to run it, before the command
    expect: list[str] = field(default_factory=list)
    if_fails: list[str] = field(default_factory=list)
    deps: list[str] = field(default_factory=list)  # keys of steps (any site) that must pass first
    blocking: bool = True  # False: nothing later at this site needs it (a wait script)
    group: tuple[object, ...] = ()  # consecutive steps of one group share their "wait for" steps
    move: Move | None = None
    job: Job | None = None
    number: int = 0  # in the site runbook
    waited_by: list[tuple[str, int]] = field(default_factory=list)  # (site, step number)
    waits: list[tuple[str, list[Step]]] = field(default_factory=list)  # a "wait for" step only


@dataclass
class Sync:
    what: str  # e.g. "`fgcm` at usdf"
    pairs: list[tuple[Step, Step]]  # (wait at the source, verify at the destination)


@dataclass
class Phase:
    number: int
    kind: str  # setup | raws | stage | gather | scatter | return | crosscheck | archive
    title: str
    where: str
    starts: str
    duration: str
    stage: StagePlan | None = None
    moves: list[Move] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    syncs: list[Sync] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)  # stage: one per job


@dataclass
class Runbooks:
    phases: list[Phase]
    steps: list[Step]  # every step, campaign order
    sites: dict[str, list[Step]]  # per site, numbered, with the "wait for" steps


# -- building the steps, in campaign order ----------------------------------------------------------

def _setup_steps(plan: Plan, site: SitePlan, phase: int) -> list[Step]:
    repo = site.butler_repo
    incoming = list(dict.fromkeys(move_into(t) for t in plan.incoming(site.id)))
    colls = [f"{plan.instrument}/raw/all", plan.calib_collection, plan.defaults_collection, *incoming]
    steps = [Step(
        f"setup-repo:{site.id}", site.id, phase, "Create and populate the Butler repository",
        paths.setup_repo(site.id), how="Prefix it with `DRY_RUN=1` to print every command first.",
        expect=[("exits 0 and ends with its summary; run again, it changes nothing (every step "
                 "'already exists, skipping')"),
                f"`butler query-collections {repo}` lists "
                + ", ".join(f"`{c}`" for c in dict.fromkeys(colls))
                + (" (the `incoming` chains empty for now)" if incoming else "")],
        if_fails=[("it names the failing step (`FAILED at step \"...\"`): fix the cause and run it "
                   "again; it skips what already exists")])]
    if has_ingestd(plan, site.id):
        assert site.ingestd is not None
        steps.append(Step(
            f"ingestd:{site.id}", site.id, phase, "Start ctrl_ingestd, which ingests what arrives here",
            f"kubectl apply -k {paths.ingestd_dir(site.id)}",
            how=f"Needs the namespace `{site.ingestd.namespace}` and the Secret "
                f"`{site.ingestd.butler_secret}` (Butler credentials) to exist.",
            expect=[f"`{pods_command(plan, site)}` shows the pod `Running`, READY `1/1`"],
            if_fails=[(f"`CrashLoopBackOff`: read `{logs_command(plan, site)} --previous` (Butler "
                       "credentials, registry or Kafka brokers unreachable), fix, apply again"),
                      ("`CreateContainerConfigError`: the Secret "
                       f"`{site.ingestd.butler_secret}` is missing")]))
    if arrives_at(plan, site.id) or is_source(plan, site.id):
        relation = f"`{site.rse_root.rstrip('/')}/{site.scope}`"
        expect = [(f"it prints `{site.datastore_root}`: the Rucio set-up assumes the datastore root "
                   f"is `<rse_root>/<scope>` = {relation}, so that a file's Rucio DID name is its "
                   "path inside the datastore")]
        if site.datastore_root != f"{site.rse_root.rstrip('/')}/{site.scope}":
            expect.append(f"**warning**: the campaign sets the datastore root to "
                          f"`{site.datastore_root}`, not {relation}: registered DID names will not "
                          "match Rucio's paths")
        if is_source(plan, site.id):
            expect.append(f"the register scripts read `{paths.rucio_register_config(site.id)}`: "
                          f"its `rucio_rse` is `{site.rse}`, `scope` `{site.scope}`, "
                          f"`rse_root` `{site.rse_root}`")
        steps.append(Step(
            f"datastore:{site.id}", site.id, phase,
            "Check once: the datastore root the Rucio set-up assumes",
            f"butler config-dump {site.butler_repo} --subset .datastore.root", expect=expect,
            if_fails=[("stop before any transfer: fix the repository, or set `butler.datastore_root` / "
                       "`rucio.rse_root` of this site in the campaign, recompile and start again")]))
    if is_source(plan, site.id):
        moves = outgoing_moves(plan, site.id)
        steps.append(Step(
            f"apply-rules:{site.id}", site.id, phase,
            "Create this site's outgoing Rucio datasets and replication rules",
            paths.apply_rules(site.id),
            how=(f"It reads the rules beside it (`{paths.site_dir(site.id)}/rucio/*.rules.json`). "
                 "A rule on an open, still-empty dataset replicates each file as a register script "
                 "attaches it."),
            expect=[(f"it names, for each of the {len(moves)} outgoing move(s), its open Rucio "
                     "dataset and the id of its rule (`rucio rule list --did <Rucio dataset>` "
                     "shows it); run again, it creates nothing")],
            if_fails=[("`rucio whoami` must show the campaign's Rucio account; fix and run again "
                       "(existing datasets and rules are skipped)")]))
    return steps


def _move_steps(plan: Plan, moves: list[Move], phase: int,
                producer_key: dict[str, str]) -> list[Step]:
    """All registers, then all waits, then all verifies, each by source: a site's steps stay together."""
    registers: list[Step] = []
    waits: list[Step] = []
    verifies: list[Step] = []
    for m in moves:
        src, dst = plan.site(m.source), plan.site(m.destination)
        raw = isinstance(m, RawDistribution)
        what = "the raws" if raw else f"`{move_what(m)}`"
        when = "once the raws are in this site's Butler" if raw else f"once `{m.stage}` finished here"
        reg_deps = [f"setup-done:{dst.id}", *([producer_key[m.id]] if m.id in producer_key else [])]
        registers.append(Step(
            f"register:{m.id}", src.id, phase, f"Register {what} for {dst.id}",
            paths.register_script(m), how=f"Run it {when}.", deps=reg_deps,
            group=(phase, "register", dst.id), move=m,
            expect=[(f"exits 0: a file of every dataset selected ({move_selection(m)}) is "
                     f"attached to `{m.rucio_did}` (`rucio did content list {m.rucio_did}`), and "
                     "the rule made in the setup replicates them")],
            if_fails=[("check `rucio whoami` (authentication) and the datastore root check of the "
                       "setup; fix and run it again (files already registered are skipped)")]))
        waits.append(Step(
            f"wait:{m.id}", src.id, phase,
            f"Wait until {what} reached {dst.id} ({m.destination_rse})",
            paths.wait_script(m), deps=[f"register:{m.id}"], blocking=False, group=(phase, "wait"),
            move=m, how="Nothing later at this site needs it: run it in a second terminal and go on.",
            expect=["exits 0 when the rule is `OK` (every file replicated)"],
            if_fails=[
                (f"exit 1, rule `STUCK` or `SUSPENDED`: `rucio rule list --did {m.rucio_did}` gives "
                 "the rule id; `rucio rule show <rule id> --examine` shows each failed file and why; "
                 f"contact the data manager of {src.id} (the source storage) and, if the errors name "
                 f"the destination, of {dst.id}; once fixed, `rucio rule update <rule id> "
                 "--boost-rule` and run it again"),
                ("exit 1 on timeout: if `rucio rule show <rule id>` still shows locks moving to OK, "
                 "run it again; otherwise treat it as STUCK")]))
        landed = (f"the raws are in `{move_into(m)}`" if raw
                  else f"the arrived RUN collections are chained into `{move_into(m)}`")
        not_ingested = (f"arrived but not ingested: `{logs_command(plan, dst)}`"
                        if dst.ingestd is not None
                        else "arrived but not ingested: this site runs no ctrl_ingestd")
        verifies.append(Step(
            f"verify:{m.id}", dst.id, phase,
            f"Verify that {what if raw else f'the {what} datasets'} from {src.id} arrived and were "
            "ingested",
            paths.verify_script(m), deps=[f"wait:{m.id}"], group=(phase, "verify", src.id), move=m,
            expect=[(f"exits 0 and prints `{m.id}: verified`: every file of `{m.rucio_did}` "
                     "arrived and was ingested here (exit 1 lists each one missing)"),
                    (f"{landed}: `butler query-collections {dst.butler_repo} {move_into(m)} "
                     "--chains tree`")],
            if_fails=[(f"datasets missing: ask {src.id} to run its register and wait steps of this "
                       "move again, then run this again"), not_ingested]))
    order = {s.id: i for i, s in enumerate(plan.sites)}

    def by_source(step: Step) -> tuple[int, int]:  # stable: plan order within one source
        assert step.move is not None
        return order[step.move.source], order[step.move.destination]

    return [*sorted(registers, key=by_source), *sorted(waits, key=by_source),
            *sorted(verifies, key=by_source)]


def _job_step(plan: Plan, job: Job, phase: int, consumed: list[str]) -> Step:
    site = plan.site(job.site)
    days = plan.stage_days(job.stage, job.site)
    st = plan.stage(job.stage)
    return Step(
        f"job:{job.stage}:{job.site}", job.site, phase,
        f"Run stage {st.index} `{st.name}` ({st.subset})",
        f"bps submit {paths.bps_submit(job)}", deps=consumed, job=job,
        how=(f"Submit from USDF with the stack `{plan.stack}`; PanDA runs it at computeSite "
             f"`{site.panda_site}` on {len(job.tracts):,} tract(s)."
             + (f" Estimated duration: {fmt_days(days)}." if days is not None else "")),
        expect=["`bps report` shows the run; wait until every job succeeded",
                (f"`butler query-collections {site.butler_repo} {job.output} --chains tree` "
                 "shows the chain with its RUN collection")],
        if_fails=[("`bps report --id <run id>` names the failed jobs and their logs; fix the "
                   "cause (memory: raise `request_memory_mb` of the stage and recompile) and "
                   "`bps restart --id <run id>`")])


def build(plan: Plan) -> Runbooks:
    phases: list[Phase] = []
    steps: list[Step] = []
    central = plan.central_site

    setup = Phase(1, "setup", "Site setup", "every site", "now",
                  "not estimated by the plan (hours per site)")
    for s in plan.sites:
        setup.steps += _setup_steps(plan, s, 1)
    phases.append(setup)
    setup_done = {s.id: [st for st in setup.steps if st.site == s.id][-1].key for s in plan.sites}

    bounded = "bounded by the wait scripts' timeout"
    producer_key: dict[str, str] = {}
    arrivals: dict[tuple[str, str], list[str]] = {}  # (consumer stage, site) -> verify keys
    for m in plan.raws:
        arrivals.setdefault((plan.stages[0].name, m.destination), []).append(f"verify:{m.id}")
    for t in plan.transfers:
        producer_key[t.id] = f"job:{t.stage}:{t.source}"
        arrivals.setdefault((t.consumer, t.destination), []).append(f"verify:{t.id}")

    def add_moves(kind: str, moves: list[Move], title: str, where: str, starts: str) -> None:
        ph = Phase(len(phases) + 1, kind, title, where, starts, bounded, moves=moves)
        ph.steps = _move_steps(plan, moves, ph.number, producer_key)
        waits = {s.key.split(":", 1)[1]: s for s in ph.steps if s.key.startswith("wait:")}
        verify = {s.key.split(":", 1)[1]: s for s in ph.steps if s.key.startswith("verify:")}
        for m in moves:
            what = f"{consumer_text(plan, m)} at {m.destination}"
            sync = next((x for x in ph.syncs if x.what == what), None)
            if sync is None:
                ph.syncs.append(sync := Sync(what, []))
            sync.pairs.append((waits[m.id], verify[m.id]))
        for sync in ph.syncs:
            order = {s.id: i for i, s in enumerate(plan.sites)}
            sync.pairs.sort(key=lambda p: order[p[0].site])
        phases.append(ph)

    if plan.raws:
        add_moves("raws", list(plan.raws), f"Raw distribution from {central}",
                  f"{central} -> every other site", "its destinations finished the setup")

    for st in plan.stages:
        jobs = [j for j in plan.jobs if j.stage == st.name]
        days = [(j.site, plan.stage_days(st.name, j.site)) for j in jobs]
        known = [d for _, d in days if d is not None]
        slowest = max(days, key=lambda x: x[1] or 0.0)
        duration = (f"{fmt_days(max(known))}" + (f" (slowest: {slowest[0]})" if len(jobs) > 1 else "")
                    if known else fmt_days(None))
        where = "every site" if st.runs_at == "every-site" else f"{central} (central)"
        ph = Phase(len(phases) + 1, "stage", f"Stage {st.index}: `{st.name}`", where, "", duration,
                   stage=st)
        for j in jobs:
            consumed = arrivals.get((st.name, j.site), [])
            job_step = _job_step(plan, j, ph.number, consumed)
            ph.steps.append(job_step)
            before = [e.name for e in plan.stages[: st.index - 1] if j.site in e.sites]
            after = ([f"`{before[-1]}` finished there"] if before else [])
            move_phases = sorted({p.number for p in phases for s in p.steps if s.key in consumed})
            after += [f"the sync point of phase {n}" for n in move_phases]
            if not after:
                after = ["the setup (phase 1)"]
            ph.rows.append({"site": j.site, "tracts": f"{len(j.tracts):,}", "after": ", ".join(after),
                            "command": job_step.command,
                            "days": fmt_days(plan.stage_days(st.name, j.site))})
        same: dict[str, list[str]] = {}
        for row in ph.rows:
            same.setdefault(row["after"], []).append(row["site"])
        ph.starts = ("; ".join(f"{', '.join(sites)}: {after}" for after, sites in same.items())
                     if len(same) > 1 else next(iter(same)))
        phases.append(ph)
        produced = [t for t in plan.transfers if t.stage == st.name]
        for kind in KIND_ORDER:
            moves: list[Move] = [t for t in produced if t.kind == kind]
            if not moves:
                continue
            srcs = ", ".join(dict.fromkeys(m.source for m in moves))
            dsts = ", ".join(dict.fromkeys(m.destination for m in moves))
            consumers = ", ".join(dict.fromkeys(consumer_text(plan, m) for m in moves))
            title = {"gather": f"Gather `{st.name}` outputs at {dsts} for {consumers}",
                     "scatter": f"Scatter `{st.name}` outputs from {srcs} for {consumers}",
                     "return": f"Return `{st.name}` outputs to {dsts} for archival",
                     "crosscheck": f"Cross-check outputs of `{st.name}` to {dsts}"}[kind]
            add_moves(kind, moves, title, f"{srcs} -> {dsts}", f"`{st.name}` finished at each source")

    archived = [t for t in plan.transfers if t.consumer in ("archive", "crosscheck")]
    arch = Phase(len(phases) + 1, "archive", f"Archival at {central}", central,
                 ("every return and cross-check sync point" if archived else "the last stage"),
                 "not estimated by the plan", moves=list(archived))
    arch.steps.append(Step(
        f"archive:{central}", central, arch.number, "Archival: check what came back", "",
        deps=[f"verify:{t.id}" for t in archived],
        expect=[f"`butler query-collections {plan.site(central).butler_repo} {c} --chains tree` "
                "lists the RUN collections that arrived from every other site"
                for c in dict.fromkeys(t.incoming_collection for t in archived)]
        or [(f"the outputs of every stage at {central} are in `{plan.output_collection}/<stage>`; "
             "nothing is returned from other sites in this campaign")]))
    phases.append(arch)

    # A verify of a return or cross-check feeds only the archival: at the central site it comes
    # after the last stage, so that it never holds up a stage there.
    deferred = [s for ph in phases for s in ph.steps
                if s.key.startswith("verify:") and isinstance(s.move, Transfer)
                and s.move.consumer in ("archive", "crosscheck")]
    order = {s.id: i for i, s in enumerate(plan.sites)}
    deferred_keys = {s.key for s in deferred}
    for s in deferred:
        s.group = ("archive", "verify", s.move.source)  # type: ignore[union-attr]
    for ph in phases:
        steps += [s for s in ph.steps if s.key not in deferred_keys and ph.kind != "archive"]
    steps += sorted(deferred, key=lambda s: order[s.move.source])  # type: ignore[union-attr]
    steps += arch.steps
    for s in steps:
        s.deps = [setup_done[d.split(":", 1)[1]] if d.startswith("setup-done:") else d for d in s.deps]
    return Runbooks(phases, steps, _site_lists(plan, steps))


# -- per site: order, numbering and the explicit waits for other sites -------------------------------

def _ancestors(steps: list[Step]) -> dict[str, set[str]]:
    """Every step that must have passed before a step can pass (explicit deps and site order)."""
    by_key = {s.key: s for s in steps}
    direct: dict[str, list[str]] = {}
    last_blocking: dict[str, str] = {}
    for s in steps:
        direct[s.key] = list(s.deps) + ([last_blocking[s.site]] if s.site in last_blocking else [])
        if s.blocking:
            last_blocking[s.site] = s.key
    memo: dict[str, set[str]] = {}
    for s in steps:  # campaign order: every dependency is earlier, so one pass suffices
        memo[s.key] = set()
        for d in direct[s.key]:
            if d in by_key:
                assert d in memo, f"runbook step {s.key} depends on the later step {d}"
                memo[s.key] |= {d} | memo[d]
    return memo


def _site_lists(plan: Plan, steps: list[Step]) -> dict[str, list[Step]]:
    ancestors = _ancestors(steps)
    by_key = {s.key: s for s in steps}
    lists: dict[str, list[Step]] = {}
    for site in plan.sites:
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
            waits: dict[str, list[Step]] = {}
            for d in dict.fromkeys(missing):
                if d not in known:
                    waits.setdefault(by_key[d].site, []).append(by_key[d])
                    known |= {d} | ancestors[d]
            for other, targets in waits.items():
                out.append(Step(f"waitfor:{site.id}:{run[0].key}:{other}", site.id, run[0].phase,
                                f"Wait for {other}", "", waits=[(other, targets)]))
            for s in run:
                out.append(s)
                known |= {s.key} | ancestors[s.key]
            i += len(run)
        for n, s in enumerate(out, 1):
            s.number = n
        lists[site.id] = out
    for s in steps:  # name the source's steps to run again when a verify finds datasets missing
        if s.key.startswith("verify:") and s.move is not None:
            reg, wait = by_key[f"register:{s.move.id}"], by_key[f"wait:{s.move.id}"]
            s.if_fails[0] = (f"datasets missing: ask {reg.site} to run its steps {reg.number} and "
                             f"{wait.number} again (register, then wait), then run this again")
    for site_id, out in lists.items():
        for s in out:
            for other, targets in s.waits:
                for t in targets:
                    t.waited_by.append((site_id, s.number))
    return lists


# -- rendering --------------------------------------------------------------------------------------

def _header(plan: Plan, what: str) -> str:
    return "<!--\n" + "".join(f"  {line}\n" for line in header_lines(plan, what)) + "-->\n"


def _glance(runbooks: Runbooks) -> list[dict[str, str]]:
    return [{"number": str(p.number), "title": p.title, "where": p.where, "starts": p.starts,
             "duration": p.duration} for p in runbooks.phases]


def _critical_days(plan: Plan) -> float | None:
    if not plan.estimates:
        return None
    total = 0.0
    for st in plan.stages:
        total += max((plan.stage_days(st.name, s) or 0.0) for s in st.sites)
    return total


def _tidy(text: bytes) -> bytes:
    """At most one blank line in a row, one newline at the end."""
    return re.sub(rb"\n{3,}", b"\n\n", text).rstrip(b"\n") + b"\n"


def render_campaign(plan: Plan, runbooks: Runbooks) -> bytes:
    return _tidy(render_template(
        "runbook/campaign.md.j2", header=_header(plan, "Campaign runbook (RUNBOOK.md)"), plan=plan,
        rb=runbooks, glance=_glance(runbooks), critical=fmt_days(_critical_days(plan)),
        has_estimates=bool(plan.estimates), site_runbook=paths.site_runbook,
        has_ingestd=lambda s: has_ingestd(plan, s), arrives_at=lambda s: arrives_at(plan, s),
        move_what=move_what, move_into=move_into, move_selection=move_selection))


def render_site(plan: Plan, runbooks: Runbooks, site_id: str) -> bytes:
    site = plan.site(site_id)
    stages = [(plan.stage(j.stage), j, fmt_days(plan.stage_days(j.stage, site_id)))
              for j in plan.jobs_at(site_id)]
    incoming: list[Move] = [*(r for r in plan.raws if r.destination == site_id),
                            *plan.incoming(site_id)]
    return _tidy(render_template(
        "runbook/site.md.j2",
        header=_header(plan, f"Runbook of site {site_id} ({paths.site_runbook(site_id)})"),
        plan=plan, site=site, steps=runbooks.sites[site_id], stages=stages,
        outgoing=outgoing_moves(plan, site_id), incoming=incoming,
        has_ingestd=has_ingestd(plan, site_id), arrives=arrives_at(plan, site_id),
        site_runbook=paths.site_runbook, phases={p.number: p for p in runbooks.phases},
        move_what=move_what, move_into=move_into))


def render(plan: Plan, site: str | None = None) -> dict[str, bytes]:
    runbooks = build(plan)
    files: dict[str, bytes] = {}
    if site is None:
        files["RUNBOOK.md"] = render_campaign(plan, runbooks)
    for s in plan.sites:
        if site is None or s.id == site:
            files[paths.site_runbook(s.id)] = render_site(plan, runbooks, s.id)
    return files


__all__ = ["Runbooks", "Step", "arrives_at", "build", "fmt_days", "has_ingestd", "outgoing_moves",
           "render"]
