"""Capacity estimates from the workload: what each site must process and store, and how long.

A site's core-hours and storage are its fraction of the footprint's tracts times the workload;
visits on a ring boundary are held (and stored) by both sites and are reported apart.
"""

from __future__ import annotations

import math
from dataclasses import replace

from .defaults import DEFAULT_FOV_RADIUS_DEG, FOV_RADIUS_DEG
from .plan import Plan, SiteEstimate
from .sky import footprint_of, ring_bands


def boundary_visit_fraction(plan: Plan) -> dict[str, float]:
    """Per site, the fraction of all visits it holds only because they overlap a ring boundary.

    Visits are spread evenly over the footprint; a visit whose centre lies within the field-of-view
    radius of a boundary between two sites is held by both. The band of half-width r around
    declination d has area ~ 2*pi*cos(d)*2r (small r), the footprint 2*pi*(sin(dmax) - sin(dmin)).
    """
    spec = plan.spec
    if not spec.sky.assignment.rings:
        return {s.id: 0.0 for s in plan.sites}
    fp = footprint_of(spec)
    r = math.radians(FOV_RADIUS_DEG.get(plan.instrument, DEFAULT_FOV_RADIUS_DEG))
    total = math.sin(math.radians(fp.dec_max)) - math.sin(math.radians(fp.dec_min))
    extra = {s.id: 0.0 for s in plan.sites}
    bands = ring_bands(spec)
    for south, north in zip(bands, bands[1:]):
        if south.site == north.site or total <= 0:
            continue
        d = math.radians(south.dec_max)
        half_band = (math.sin(min(d + r, math.pi / 2)) - math.sin(d)) / total
        extra[north.site] += half_band  # visits centred south of the boundary reaching north
        extra[south.site] += (math.sin(d) - math.sin(max(d - r, -math.pi / 2))) / total
    return extra


def with_estimates(plan: Plan) -> Plan:
    """The plan with one SiteEstimate per site (none without a `workload`)."""
    wl = plan.spec.workload
    if wl is None:
        return plan
    extra = boundary_visit_fraction(plan)
    estimates = []
    for s in plan.sites:
        boundary = round(wl.visits * extra[s.id])
        visits = round(wl.visits * s.fraction) + boundary
        core_hours = wl.core_hours * s.fraction
        storage = wl.storage_tb * s.fraction
        estimates.append(SiteEstimate(
            site=s.id, tracts=len(s.owned_tracts), fraction=s.fraction, visits=visits,
            boundary_visits=boundary, boundary_storage_tb=wl.storage_tb * boundary / wl.visits,
            core_hours=core_hours, storage_tb=storage,
            days=core_hours / s.cores / 24.0,
        ))
    return replace(plan, estimates=tuple(estimates))
