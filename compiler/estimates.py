"""The capacity model: what each site must process and store, and when the campaign finishes.

One model, computed once inside `build_plan`, read by `drpc plan`, plan.md, the runbooks and
the warnings alike:

- a site's core-hours and storage are its fraction of the footprint's tracts times the
  workload; visits on a ring boundary are held (and stored) by both sites and reported apart;
- a stage's share of the core-hours is its `weight` over the sum of the weights (1 each by
  default); a job of an `every-site` stage does that share of its site's core-hours, a job of a
  `central` stage that share of the whole workload, on the central site's cores;
- wall-clock days are always `days(core_hours, cores)`;
- a job starts when the previous job at its site and every job whose outputs move to it have
  ended (the runbooks' sync points), so the campaign's finish day is the end of its last job.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .defaults import DEFAULT_FOV_RADIUS_DEG, FOV_RADIUS_DEG
from .model import Footprint, Workload
from .sky import RingBand

HOURS_PER_DAY = 24.0


def days(core_hours: float, cores: int) -> float:
    """Wall-clock days of `core_hours` of work on `cores` cores that all work."""
    return core_hours / cores / HOURS_PER_DAY


@dataclass(frozen=True)
class SiteEstimate:
    site: str
    tracts: int
    fraction: float
    visits: int  # the site's fraction of the workload plus the boundary visits it also holds
    boundary_visits: int
    boundary_storage_tb: float  # what holding the boundary visits twice costs
    core_hours: float  # the site's fraction of the workload
    storage_tb: float
    days: float  # its core-hours at its cores: the balancing target
    finish_day: float  # the day its last job ends, waiting for the other sites where it must


@dataclass(frozen=True)
class JobEstimate:
    stage: str
    site: str
    core_hours: float
    days: float
    start_day: float
    end_day: float


@dataclass(frozen=True)
class Estimates:
    sites: tuple[SiteEstimate, ...]
    jobs: tuple[JobEstimate, ...]
    finish_day: float
    bottleneck: str  # the site whose last job ends last (first of equals, in site order)

    def site(self, site_id: str) -> SiteEstimate:
        return next(e for e in self.sites if e.site == site_id)

    def job(self, stage: str, site_id: str) -> JobEstimate:
        return next(j for j in self.jobs if j.stage == stage and j.site == site_id)


@dataclass(frozen=True)
class SiteCapacityInput:
    """What the model needs of a site."""

    id: str
    cores: int
    owned_tracts: int
    fraction: float


@dataclass(frozen=True)
class JobInput:
    """What the model needs of a job: its stage's weight and what it waits for."""

    stage: str
    site: str
    central: bool
    weight: float
    waits_for: tuple[tuple[str, str], ...]  # (stage, site) of jobs whose outputs move to it


def boundary_visit_fraction(site_ids: Sequence[str], bands: Sequence[RingBand],
                            footprint: Footprint, instrument: str) -> dict[str, float]:
    """Per site, the fraction of all visits it holds only because they overlap a ring boundary.

    Visits are spread evenly over the footprint; a visit whose centre lies within the field-of-view
    radius of a boundary between two sites is held by both. The band of half-width r around
    declination d has area ~ 2*pi*cos(d)*2r (small r), the footprint 2*pi*(sin(dmax) - sin(dmin)).
    """
    extra = {s: 0.0 for s in site_ids}
    if not bands:
        return extra
    r = math.radians(FOV_RADIUS_DEG.get(instrument, DEFAULT_FOV_RADIUS_DEG))
    total = math.sin(math.radians(footprint.dec_max)) - math.sin(math.radians(footprint.dec_min))
    for south, north in zip(bands, bands[1:], strict=False):
        if south.site == north.site or total <= 0:
            continue
        d = math.radians(south.dec_max)
        extra[north.site] += (math.sin(min(d + r, math.pi / 2)) - math.sin(d)) / total
        extra[south.site] += (math.sin(d) - math.sin(max(d - r, -math.pi / 2))) / total
    return extra


def estimate(workload: Workload | None, sites: Sequence[SiteCapacityInput],
             jobs: Iterable[JobInput], boundary: Mapping[str, float]) -> Estimates | None:
    """The capacity model of a campaign; None without a `workload`."""
    if workload is None:
        return None
    job_list = list(jobs)
    cores = {s.id: s.cores for s in sites}
    fraction = {s.id: s.fraction for s in sites}
    total_weight = sum({j.stage: j.weight for j in job_list}.values())
    ends: dict[tuple[str, str], float] = {}
    last_at: dict[str, float] = {s.id: 0.0 for s in sites}
    job_estimates: list[JobEstimate] = []
    for j in job_list:  # stage order: every job it waits for is already placed
        share = j.weight / total_weight
        core_hours = workload.core_hours * share * (1.0 if j.central else fraction[j.site])
        length = days(core_hours, cores[j.site])
        start = max([last_at[j.site], *(ends[w] for w in j.waits_for if w in ends)])
        ends[(j.stage, j.site)] = last_at[j.site] = start + length
        job_estimates.append(JobEstimate(j.stage, j.site, core_hours, length, start,
                                         start + length))
    site_estimates = []
    for s in sites:
        extra = boundary.get(s.id, 0.0)
        boundary_visits = round(workload.visits * extra)
        core_hours = workload.core_hours * s.fraction
        site_estimates.append(SiteEstimate(
            site=s.id, tracts=s.owned_tracts, fraction=s.fraction,
            visits=round(workload.visits * s.fraction) + boundary_visits,
            boundary_visits=boundary_visits,
            boundary_storage_tb=workload.storage_tb * boundary_visits / workload.visits,
            core_hours=core_hours, storage_tb=workload.storage_tb * s.fraction,
            days=days(core_hours, s.cores), finish_day=last_at[s.id],
        ))
    finish = max(last_at.values())
    bottleneck = next(s.id for s in sites if last_at[s.id] == finish)
    return Estimates(tuple(site_estimates), tuple(job_estimates), finish, bottleneck)
