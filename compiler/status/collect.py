"""Build the status model: ask every source (each optional), then derive steps and attention.

`--site ID` is the view of one site's credentials: its submit host's runs, the Rucio rules of
its moves, its own Butler and its own ctrl_ingestd group. `merge` combines such views (nobody
holds every site's Butler credentials) by taking, for every cell, the view that could read it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from .. import __version__
from ..plan import Plan
from ..plan_model import Job, Move, SitePlan
from .bps import DEFAULT_WMS_SERVICE, collect_jobs, expand_link_path
from .butler_counts import collect_site
from .crosscheck_result import attention_lines, not_read
from .kafka_lag import collect_lag
from .model import (
    ArrivalStatus,
    CrosscheckStatus,
    JobStatus,
    LagStatus,
    RepoStatus,
    RuleStatus,
    SourceStatus,
    StatusReport,
    TransferStatus,
)
from .rucio_rules import collect_rules
from .steps import FAILED_JOB_STATES, FAILED_RULE_STATES, observe, site_steps


@dataclass(frozen=True)
class Options:
    site: str | None = None
    wms_service: str = DEFAULT_WMS_SERVICE
    lag_interval: float = 10.0
    timeout: float = 20.0
    crosscheck: CrosscheckStatus | None = None  # read from --crosscheck FILE


def reached_as(plan: Plan, site_id: str, *, butler_repo: str | None = None,
               kafka_brokers: Sequence[str] = ()) -> Plan:
    """The plan with one site's Butler repository and ctrl_ingestd brokers as this host reaches
    them (`--butler-repo`, `--kafka-brokers`: a port-forward, a local alias of the repository),
    in place of the campaign's."""
    def reached(site: SitePlan) -> SitePlan:
        if site.id != site_id:
            return site
        ingestd = site.ingestd
        if kafka_brokers and ingestd is not None:
            ingestd = ingestd.model_copy(update={"kafka_brokers": list(kafka_brokers)})
        return replace(site, butler_repo=butler_repo or site.butler_repo, ingestd=ingestd)
    return replace(plan, sites=tuple(reached(s) for s in plan.sites))


def _transfer(move: Move, rule: RuleStatus, arrival: ArrivalStatus) -> TransferStatus:
    return TransferStatus(id=move.id, kind=move.kind, stage=move.stage,
                          dataset_type=move.dataset_type, source=move.source,
                          destination=move.destination, rucio_did=move.rucio_did,
                          may_be_empty=move.may_be_empty, rule=rule, arrival=arrival)


def _elsewhere(job: Job, env: Mapping[str, str]) -> JobStatus:
    """A job this view cannot read: its runs are recorded on another site's submit host."""
    return JobStatus(stage=job.stage, stage_index=job.stage_index, site=job.site,
                     submitted_from=job.submitted_from, id_link_path=expand_link_path(job, env),
                     known=False, reason=f"submitted from {job.submitted_from}: its runs are "
                     f"recorded there (drpc status --site {job.submitted_from})")


def attention(jobs: Sequence[JobStatus], transfers: Sequence[TransferStatus],
              lag: Sequence[LagStatus], crosscheck: CrosscheckStatus | None = None
              ) -> list[str]:
    """Everything that makes `drpc status` exit 5, one line each."""
    out = []
    for j in jobs:
        if j.state in FAILED_JOB_STATES:
            run = j.run_ids[-1] if j.run_ids else "?"
            out.append(f"job {j.stage} at {j.site}: {j.state} (run {run})")
    for t in transfers:
        r = t.rule
        if r.state in FAILED_RULE_STATES:
            locks = (f", locks OK/REPLICATING/STUCK {r.locks.ok}/{r.locks.replicating}/"
                     f"{r.locks.stuck}" if r.locks else "")
            out.append(f"transfer {t.id}: rule {r.rule_id} {r.state}{locks}"
                       + (f": {r.error}" if r.error else ""))
        sent, got = r.files_sent, t.arrival.ingested
        if (r.state == "OK" and sent is not None and got is not None and got > 0
                and got != sent):
            out.append(f"transfer {t.id}: {sent} sent, {got} arrived at {t.destination} "
                       f"({t.arrival.collection})")
    for x in lag:
        if x.known and x.lag and x.lag_before is not None and not x.falling:
            out.append(f"ctrl_ingestd of {x.site} ({x.group_id}) on {x.topic}: {x.lag} "
                       f"message(s) behind and not falling (was {x.lag_before})")
    return out + attention_lines(crosscheck)


def assemble(plan: Plan, *, site: str | None, generated_at: float, sources: list[SourceStatus],
             jobs: list[JobStatus], transfers: list[TransferStatus], lag: list[LagStatus],
             repos: list[RepoStatus], crosscheck: CrosscheckStatus | None = None,
             merged_from: Sequence[str] = ()) -> StatusReport:
    seen = observe(plan, jobs, transfers, repos, crosscheck)
    steps = [s for s in site_steps(plan, seen) if site is None or s.site == site]
    return StatusReport(
        campaign=plan.campaign, spec_sha256=plan.spec_sha256, drpc_version=__version__,
        generated_at=generated_at, site=site, merged_from=list(merged_from),
        sources=sorted(sources, key=lambda s: (s.source, s.site or "")), jobs=jobs,
        transfers=transfers, lag=lag, repos=repos, crosscheck=crosscheck, sites=steps,
        attention=attention(jobs, transfers, lag, crosscheck))


def collect(plan: Plan, options: Options, env: Mapping[str, str]) -> StatusReport:
    """Read every source as `options.site` (None: every site) can."""
    only = options.site
    sites = [s.id for s in plan.sites if only is None or s.id == only]
    jobs = [j for j in plan.jobs if only is None or j.submitted_from == only]
    moves = [m for m in plan.moves if only is None or only in (m.source, m.destination)]
    started = time.time()
    read, sources = collect_jobs(jobs, options.wms_service, env)
    by_key = {(j.stage, j.site): j for j in read}
    job_status = [by_key.get((j.stage, j.site)) or _elsewhere(j, env) for j in plan.jobs]
    rucio = collect_rules(plan, moves, only, timeout=options.timeout)
    arrivals: dict[str, ArrivalStatus] = {}
    repos: list[RepoStatus] = []
    for site_id in sites:
        found, repo, source = collect_site(
            plan, site_id, [m for m in moves if m.destination == site_id], rucio.sent)
        arrivals |= found
        repos.append(repo)
        sources.append(source)
    lag, kafka_sources = collect_lag(plan, sites, interval=options.lag_interval,
                                     timeout=options.timeout)
    transfers = [_transfer(m, rucio.rules[m.id], arrivals.get(m.id) or ArrivalStatus(
        known=False, collection=m.into,
        reason=f"counted in {m.destination}'s Butler (this is the view of {only})"))
        for m in moves]
    return assemble(plan, site=only, generated_at=started,
                    sources=[*sources, *rucio.sources, *kafka_sources], jobs=job_status,
                    transfers=transfers, lag=lag, repos=repos,
                    crosscheck=options.crosscheck or not_read(plan, only))


# -- --merge --------------------------------------------------------------------------------------

Known = TypeVar("Known", JobStatus, RuleStatus, ArrivalStatus, LagStatus, RepoStatus,
                CrosscheckStatus)


def _pick(values: Sequence[tuple[float, Known]]) -> Known:
    """The newest known value, else the newest one."""
    known = [v for v in values if v[1].known]
    return max(known or values, key=lambda v: v[0])[1]


def merge(plan: Plan, reports: Sequence[StatusReport], names: Sequence[str]) -> StatusReport:
    """One report of several sites' views: every cell from a view that could read it."""
    jobs: dict[tuple[str, str], list[tuple[float, JobStatus]]] = {}
    rules: dict[str, list[tuple[float, RuleStatus]]] = {}
    arrivals: dict[str, list[tuple[float, ArrivalStatus]]] = {}
    lags: dict[tuple[str, str], list[tuple[float, LagStatus]]] = {}
    repos: dict[str, list[tuple[float, RepoStatus]]] = {}
    sources: dict[tuple[str, str | None], SourceStatus] = {}
    crosschecks: list[tuple[float, CrosscheckStatus]] = []
    for rep in reports:
        at = rep.generated_at
        if rep.crosscheck is not None:
            crosschecks.append((at, rep.crosscheck))
        for j in rep.jobs:
            jobs.setdefault((j.stage, j.site), []).append((at, j))
        for t in rep.transfers:
            rules.setdefault(t.id, []).append((at, t.rule))
            arrivals.setdefault(t.id, []).append((at, t.arrival))
        for x in rep.lag:
            lags.setdefault((x.site, x.topic), []).append((at, x))
        for r in rep.repos:
            repos.setdefault(r.site, []).append((at, r))
        for s in rep.sources:
            old = sources.get((s.source, s.site))
            if old is None or (s.up and not old.up):
                sources[(s.source, s.site)] = s
    job_order = {(j.stage, j.site): i for i, j in enumerate(plan.jobs)}
    site_order = {s.id: i for i, s in enumerate(plan.sites)}
    transfers = [_transfer(m, _pick(rules[m.id]), _pick(arrivals[m.id]))
                 for m in plan.moves if m.id in rules]
    return assemble(
        plan, site=None, generated_at=max(r.generated_at for r in reports),
        sources=list(sources.values()),
        jobs=[_pick(v) for _, v in sorted(jobs.items(), key=lambda kv: job_order.get(kv[0], 0))],
        transfers=transfers,
        lag=[_pick(v) for _, v in sorted(lags.items(),
                                         key=lambda kv: (site_order.get(kv[0][0], 0), kv[0][1]))],
        repos=[_pick(v) for _, v in sorted(repos.items(),
                                           key=lambda kv: site_order.get(kv[0], 0))],
        crosscheck=_pick(crosschecks) if crosschecks else not_read(plan, None),
        merged_from=names)


__all__ = ["Options", "assemble", "attention", "collect", "merge", "reached_as"]
