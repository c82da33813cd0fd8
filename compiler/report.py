"""Human and machine views of the plan: `drpc plan` (table, json, markdown = plan.md) and `explain`.

`capacity(plan)` is the one place that turns the plan's estimates into the capacity plan
(per-site days against the deadline, storage against `storage_tb`, the bottleneck, the finish
day, warnings); every format prints that object, so they always agree. Numbers are formatted
by fixed rules (`num`), so output is byte-identical for the same plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .defaults import DEFAULT_FOV_RADIUS_DEG, FOV_RADIUS_DEG, SHARE_WARNING
from .plan import Plan, SiteEstimate, tract_predicate
from .skymap import compress_ranges

# The palette: matplotlib's tab10 without its grey (antialiased text also makes it), plus a dark
# blue. plot.py and graph.mmd use `site_colours`, so a site looks alike everywhere.
SITE_COLOURS: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79",
)

# The data facilities' ids keep these in every campaign: USDF blue, FRDF orange, the UK green
# (Lancaster) and teal (RAL).
KNOWN_SITE_COLOURS: dict[str, str] = {
    "usdf": "#1f77b4", "frdf": "#ff7f0e", "ukdf": "#2ca02c", "ukdf-lancs": "#2ca02c",
    "ukdf-ral": "#17becf",
}


def preferred_colour(site_id: str) -> str:
    """A site id's own colour: fixed for the known facilities, else picked by a hash of the id
    (sha256, not Python's salted hash), so it is the same in every campaign and every run."""
    import hashlib

    if site_id in KNOWN_SITE_COLOURS:
        return KNOWN_SITE_COLOURS[site_id]
    digest = hashlib.sha256(site_id.encode()).digest()
    return SITE_COLOURS[int.from_bytes(digest[:4], "big") % len(SITE_COLOURS)]


def site_colours(plan: Plan) -> dict[str, str]:
    """Site id -> colour (hex): each site its preferred colour; where two sites of one campaign
    prefer the same, the known facilities first and then the ids in sorted order keep theirs and
    the other takes the next free colour of the palette. Beyond ten sites colours repeat."""
    ids = [s.id for s in plan.sites]
    order = sorted(ids, key=lambda i: (i not in KNOWN_SITE_COLOURS, i))
    taken: dict[str, str] = {}
    for site_id in order:
        want = preferred_colour(site_id)
        free = [c for c in SITE_COLOURS if c not in taken.values()]
        if want in free or not free:
            taken[site_id] = want
        else:
            start = SITE_COLOURS.index(want)
            taken[site_id] = next(SITE_COLOURS[(start + k) % len(SITE_COLOURS)]
                                  for k in range(len(SITE_COLOURS))
                                  if SITE_COLOURS[(start + k) % len(SITE_COLOURS)] in free)
    return {site_id: taken[site_id] for site_id in ids}


def ranges_text(tracts: tuple[int, ...] | list[int]) -> str:
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in compress_ranges(tracts)]
    return ", ".join(parts) if parts else "-"


def num(value: float) -> str:
    """Fixed formatting: thousands separators, no decimals from 100 up, one below."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


# -- the capacity plan -----------------------------------------------------------------------------

@dataclass(frozen=True)
class SiteCapacity:
    id: str
    facility: str
    panda_site: str
    cores: int
    storage_cap_tb: float
    share: float
    tracts: int
    tract_ranges: tuple[tuple[int, int], ...]
    cross_check_tracts: tuple[int, ...]
    fraction: float
    estimate: SiteEstimate | None
    hours_at_cores: float | None  # core-hours / cores: wall-clock hours if every core works
    over_deadline: bool
    over_storage: bool
    off_share: bool


@dataclass(frozen=True)
class Capacity:
    sites: tuple[SiteCapacity, ...]
    has_estimates: bool
    deadline_days: float | None
    bottleneck: str | None  # the site that finishes last
    finish_days: float | None  # the campaign's finish: max over sites
    visits: int | None  # the workload's
    core_hours: float | None
    storage_tb: float | None
    visits_held: int  # sum over sites, boundary visits counted at both
    boundary_visits: int
    boundary_storage_tb: float
    total_cores: int
    total_storage_cap_tb: float
    fov_radius_deg: float
    warnings: tuple[str, ...]
    infeasible: str | None = None  # `feasibility`: one line when shares, cores and deadline clash

    @property
    def days_late(self) -> float | None:
        if self.finish_days is None or self.deadline_days is None:
            return None
        return self.finish_days - self.deadline_days

    def site(self, site_id: str) -> SiteCapacity:
        return next(s for s in self.sites if s.id == site_id)


def capacity(plan: Plan) -> Capacity:
    """The capacity plan: plan.capacity (the one model) against each site's limits."""
    est = {e.site: e for e in plan.estimates}
    deadline = plan.deadline_days
    rows: list[SiteCapacity] = []
    warnings: list[str] = []
    for s in plan.sites:
        e = est.get(s.id)
        over_deadline = bool(e and deadline is not None and e.finish_day > deadline)
        over_storage = bool(e and e.storage_tb > s.storage_tb)
        off_share = abs(s.fraction - s.share) > SHARE_WARNING
        rows.append(SiteCapacity(
            id=s.id, facility=s.facility, panda_site=s.panda_site, cores=s.cores,
            storage_cap_tb=s.storage_tb, share=s.share, tracts=len(s.owned_tracts),
            tract_ranges=tuple(compress_ranges(s.owned_tracts)),
            cross_check_tracts=tuple(sorted(set(s.processing_tracts) - set(s.owned_tracts))),
            fraction=s.fraction, estimate=e, hours_at_cores=e.core_hours / s.cores if e else None,
            over_deadline=over_deadline, over_storage=over_storage, off_share=off_share,
        ))
        if off_share:
            warnings.append(f"{s.id} owns {s.fraction:.3f} of the footprint's tracts, but its "
                            f"share is {s.share:g}")
        if e and over_deadline:
            warnings.append(f"{s.id} finishes on day {num(e.finish_day)} ({num(e.core_hours)} "
                            f"core-hours at its {s.cores:,} cores), after deadline_days "
                            f"{deadline:g}")
        if e and over_storage:
            warnings.append(f"{s.id} needs about {num(e.storage_tb)} TB, over its storage_tb "
                            f"{num(s.storage_tb)}")
    wl = plan.workload
    total_cap = sum(s.storage_tb for s in plan.sites)
    if wl is not None and wl.storage_tb > total_cap:
        warnings.append(f"the workload needs {num(wl.storage_tb)} TB but the sites have "
                        f"{num(total_cap)} TB together: no sky assignment fits it")
    bottleneck = finish = None
    if plan.capacity is not None:
        bottleneck, finish = plan.capacity.bottleneck, plan.capacity.finish_day
    return Capacity(
        sites=tuple(rows), has_estimates=bool(est), deadline_days=deadline,
        bottleneck=bottleneck, finish_days=finish,
        visits=wl.visits if wl else None, core_hours=wl.core_hours if wl else None,
        storage_tb=wl.storage_tb if wl else None,
        visits_held=sum(e.visits for e in plan.estimates),
        boundary_visits=sum(e.boundary_visits for e in plan.estimates),
        boundary_storage_tb=sum(e.boundary_storage_tb for e in plan.estimates),
        total_cores=sum(s.cores for s in plan.sites), total_storage_cap_tb=total_cap,
        fov_radius_deg=FOV_RADIUS_DEG.get(plan.instrument, DEFAULT_FOV_RADIUS_DEG),
        warnings=tuple(warnings), infeasible=feasibility(plan),
    )


def finish_sentence(plan: Plan, cap: Capacity) -> str:
    """One line: when the campaign finishes, where, and against the deadline."""
    if cap.finish_days is None or cap.bottleneck is None:
        return "no estimate: the campaign has no `workload:` section"
    b = cap.site(cap.bottleneck)
    assert b.estimate is not None and b.hours_at_cores is not None
    text = (f"the campaign finishes on day {num(cap.finish_days)}, when its bottleneck site "
            f"{b.id} does ({num(b.hours_at_cores)} hours of its {b.cores:,} cores)")
    late = cap.days_late
    if late is not None:
        if late > 0:
            text += f": {num(late)} days after the {cap.deadline_days:g}-day deadline"
        else:
            text += f": within the {cap.deadline_days:g}-day deadline ({num(-late)} days to spare)"
    return text


def finish_short(cap: Capacity) -> str:
    """The finish for a summary cell: `day 222 at `frdf` (**72 days late**)`."""
    if cap.finish_days is None or cap.bottleneck is None:
        return "no estimate (no `workload:`)"
    text = f"day {num(cap.finish_days)} at `{cap.bottleneck}`"
    late = cap.days_late
    if late is not None:
        text += f" (**{num(late)} days late**)" if late > 0 else f" ({num(-late)} days to spare)"
    return text


def feasibility(plan: Plan) -> str | None:
    """One line when the campaign's shares and cores cannot meet its deadline together (None
    when they can, or there is no deadline or workload). Each site's own share of the work, at
    its cores, must fit the deadline; if even all the cores together cannot, no split can."""
    wl, deadline = plan.workload, plan.deadline_days
    if wl is None or deadline is None or not plan.sites:
        return None
    from .estimates import days

    total_cores = sum(s.cores for s in plan.sites)
    best = days(wl.core_hours, total_cores)
    if best > deadline:
        need = math.ceil(wl.core_hours / (deadline * 24.0))
        return (f"infeasible: no split meets deadline_days {deadline:g}: all {total_cores:,} "
                f"cores together need {num(best)} days ({need:,} cores would do it)")
    late = [(days(wl.core_hours * s.share, s.cores), s) for s in plan.sites]
    worst_days, worst = max(late, key=lambda x: (x[0], x[1].id))
    if worst_days <= deadline:
        return None
    fits = deadline * worst.cores * 24.0 / wl.core_hours
    return (f"infeasible: the shares and cores cannot meet deadline_days {deadline:g} together: "
            f"{worst.id}'s share {worst.share:g} takes {num(worst_days)} days at its "
            f"{worst.cores:,} cores (a share of at most {fits:.3f} fits there, or "
            f"{math.ceil(worst.cores * worst_days / deadline):,} cores); all the cores together "
            f"would finish on day {num(best)}")


def balance_hint(plan: Plan) -> str | None:
    """What `drpc plan --balance` would achieve, for ring campaigns with a workload."""
    if plan.assigned_by != "rings" or plan.workload is None:
        return None
    from .balance import BalanceError, balance_rings
    try:
        b = balance_rings(plan)
    except BalanceError:
        return None
    return (f"balanced rings (`drpc plan --balance`) would finish on day {num(b.finish_days)} "
            f"(bottleneck {b.bottleneck})")


# -- drpc plan (table) -----------------------------------------------------------------------------

def plan_table(plan: Plan) -> str:
    cap = capacity(plan)
    fp = plan.footprint
    where = (f"footprint dec {fp.dec_min:g} to {fp.dec_max:g}" if plan.assigned_by == "rings"
             else "listed under sky.assignment.tracts")
    lines = [(f"campaign {plan.campaign}: {plan.footprint_tract_count:,} tracts of "
              f"{plan.skymap.name} ({where}), central site {plan.central_site}")]
    if cap.core_hours is not None:
        lines.append(f"workload: {cap.visits:,} visits, {num(cap.core_hours)} core-hours, "
                     f"{num(cap.storage_tb or 0)} TB"
                     + (f"; deadline {cap.deadline_days:g} days"
                        if cap.deadline_days is not None else ""))
    lines.append("")
    head = f"{'site':<12} {'panda':<10} {'tracts':>6} {'fraction':>8} {'share':>6}"
    if cap.has_estimates:
        head += (f" {'visits':>9} {'boundary':>8} {'core-hours':>12} {'cores':>6} {'hours':>7}"
                 f" {'days':>5}  {'storage TB':>10}  {'of TB':>7}")
    lines += [head, "-" * len(head)]
    for s in cap.sites:
        row = f"{s.id:<12} {s.panda_site:<10} {s.tracts:>6} {s.fraction:>8.3f} {s.share:>6.2f}"
        e = s.estimate
        if e is not None and s.hours_at_cores is not None:
            f1 = "!" if s.over_deadline else " "
            f2 = "!" if s.over_storage else " "
            row += (f" {e.visits:>9,} {e.boundary_visits:>8,} {num(e.core_hours):>12} {s.cores:>6,}"
                    f" {num(s.hours_at_cores):>7} {num(e.days):>5}{f1} {num(e.storage_tb):>10}{f2}"
                    f" {num(s.storage_cap_tb):>7}")
        lines.append(row.rstrip())
    if cap.has_estimates:
        lines.append("-" * len(head))
        lines.append(f"{'total':<12} {'':<10} {plan.footprint_tract_count:>6} {1:>8.3f} {'':>6}"
                     f" {cap.visits_held:>9,} {cap.boundary_visits:>8,}"
                     f" {num(cap.core_hours or 0):>12}"
                     f" {cap.total_cores:>6,} {'':>7} {'':>5}  {num(cap.storage_tb or 0):>10}"
                     f"  {num(cap.total_storage_cap_tb):>7}")
        lines.append("(hours: core-hours / cores; days: hours / 24; ! over deadline_days or "
                     "storage_tb; boundary: visits also held by a neighbour, within "
                     f"{cap.fov_radius_deg:g} deg of a ring boundary)")
    lines += ["", finish_sentence(plan, cap)]
    if cap.infeasible:
        lines.append(cap.infeasible)
    hint = balance_hint(plan)
    if hint:
        lines.append(hint)
    if cap.warnings:
        lines += ["", "warnings:"] + [f"  - {w}" for w in cap.warnings]
    lines += ["", "tracts per site:"]
    for s in cap.sites:
        lines.append(f"  {s.id}: {ranges_text(plan.site(s.id).owned_tracts)}"
                     + (f" (+ cross-check {ranges_text(s.cross_check_tracts)})"
                        if s.cross_check_tracts else ""))
    lines += ["", "jobs (stage x site):"]
    for j in plan.jobs:
        lines.append(f"  {j.path}  [{len(j.tracts)} tracts]")
    lines += ["", "transfers:"]
    for t in plan.transfers:
        lines.append(f"  {t.kind:<10} {t.id}  -> {t.incoming_collection}")
    if not plan.transfers:
        lines.append("  (none)")
    return "\n".join(lines) + "\n"


# -- drpc plan --format json -----------------------------------------------------------------------

def plan_json(plan: Plan) -> dict[str, Any]:
    cap = capacity(plan)
    wl = plan.workload
    return {
        "campaign": plan.campaign,
        "skymap": plan.skymap.name,
        "central_site": plan.central_site,
        "footprint_tracts": plan.footprint_tract_count,
        "deadline_days": plan.deadline_days,
        "workload": ({"visits": wl.visits, "core_hours": wl.core_hours, "storage_tb": wl.storage_tb}
                     if wl else None),
        "finish_days": round(cap.finish_days, 2) if cap.finish_days is not None else None,
        "bottleneck": cap.bottleneck,
        "days_late": round(cap.days_late, 2) if cap.days_late is not None else None,
        "infeasible": cap.infeasible,
        "warnings": list(cap.warnings),
        "sites": [
            {
                "id": s.id, "facility": s.facility, "panda_site": s.panda_site, "tracts": s.tracts,
                "tract_ranges": [list(r) for r in s.tract_ranges],
                "cross_check_tracts": list(s.cross_check_tracts),
                "processing_tracts": len(plan.site(s.id).processing_tracts),
                "fraction": round(s.fraction, 6), "share": s.share, "cores": s.cores,
                "storage_tb": s.storage_cap_tb,
                **({"estimate": {
                    "visits": s.estimate.visits, "boundary_visits": s.estimate.boundary_visits,
                    "core_hours": round(s.estimate.core_hours, 1),
                    "hours_at_cores": round(s.hours_at_cores or 0.0, 1),
                    "days": round(s.estimate.days, 2),
                    "storage_tb": round(s.estimate.storage_tb, 1),
                    "boundary_storage_tb": round(s.estimate.boundary_storage_tb, 1),
                    "over_deadline": s.over_deadline, "over_storage": s.over_storage,
                }} if s.estimate is not None else {}),
            }
            for s in cap.sites
        ],
        "jobs": [
            {"stage": j.stage, "site": j.site, "path": j.path, "tracts": len(j.tracts),
             "data_query": j.data_query, "in_collections": list(j.in_collections),
             "output": j.output, "select": j.select, "submit": j.submit,
             "submitted_from": j.submitted_from}
            for j in plan.jobs
        ],
        "transfers": [
            {"id": t.id, "kind": t.kind, "stage": t.stage, "consumer": t.sink.label,
             "dataset_type": t.dataset_type, "source": t.source, "destination": t.destination,
             "select_by": t.select_by, "selection_collection": t.selection_collection,
             "rucio_did": t.rucio_did, "destination_rse": t.destination_rse,
             "incoming_collection": t.incoming_collection}
            for t in plan.transfers
        ],
    }


# -- drpc explain ----------------------------------------------------------------------------------

def explain_tract(plan: Plan, tract: int) -> str:
    sm = plan.skymap
    if not sm.is_valid_tract(tract):
        raise ValueError(f"tract {tract} is not in skymap {sm.name} "
                         f"(valid: 0..{sm.tract_count() - 1})")
    ra, dec = sm.tract_center(tract)
    head = (f"tract {tract} of {sm.name}: centre RA {ra:.4f}, Dec {dec:.4f} "
            f"(skymap ring {sm.ring_of_tract(tract)})")
    owner = plan.ownership.owner.get(tract)
    if owner is None:
        return f"{head}\nnot part of the campaign: {_why_outside(plan, dec)}"
    lines = [head,
             f"owned by {owner} ({plan.site(owner).facility}): {plan.ownership.reason[tract]}"]
    for s in plan.sites:
        if s.id != owner and tract in s.processing_tracts:
            lines.append(f"also processed at {s.id} as a cross-check tract")
    lines.append(_boundary_visits(plan, tract, owner))
    lines.append(f"selection: each site selects the whole visits that overlap its tracts; "
                 f"this tract's: skymap='{sm.name}' AND {tract_predicate([tract])}")
    return "\n".join(lines)


def _why_outside(plan: Plan, dec: float) -> str:
    """Why no site owns a tract: not in the explicit lists, outside the footprint, or (a spec
    that validation would refuse) in no ring."""
    if plan.assigned_by == "tracts":
        return (f"not listed under sky.assignment.tracts (the campaign lists "
                f"{len(plan.ownership.owner)} tracts by id)")
    fp = plan.footprint
    if not fp.dec_min <= dec <= fp.dec_max:
        return (f"its centre Dec {dec:.4f} is outside sky.footprint "
                f"[{fp.dec_min:g}, {fp.dec_max:g}] (tracts take part by centre declination)")
    return f"no ring of sky.assignment.rings contains its centre Dec {dec:.4f}"


def _boundary_visits(plan: Plan, tract: int, owner: str) -> str:
    """Which other sites also hold visits of this tract: a visit (a disc of the instrument's
    field-of-view radius) that overlaps it can overlap any tract within two radii (and the
    tracts' overlap), and every site whose tract it overlaps selects it."""
    fov = FOV_RADIUS_DEG.get(plan.instrument, DEFAULT_FOV_RADIUS_DEG)
    reach = 2 * fov + plan.skymap.tract_overlap_arcmin / 60.0
    others: dict[str, list[int]] = {}
    for near in sorted(plan.skymap.tracts_near(tract, reach)):
        site = plan.ownership.owner.get(near)
        if site is not None and site != owner:
            others.setdefault(site, []).append(near)
    if not others:
        return (f"boundary visits: none; no other site owns a tract within {reach:.2f} deg "
                f"(two {plan.instrument} field-of-view radii), so its visits are held at "
                f"{owner} alone")
    order = [s.id for s in plan.sites if s.id in others]
    near_text = "; ".join(f"{site}'s tracts {_few(others[site])}" for site in order)
    return (f"boundary visits: also held by {', '.join(order)} ({near_text} lie within "
            f"{reach:.2f} deg, two {plan.instrument} field-of-view radii): a visit overlapping "
            f"this tract and one of those is selected by {_and([owner, *order])} alike")


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _few(tracts: list[int], most: int = 8) -> str:
    """The first `most` id ranges, and how many tracts there are when some are left out."""
    ranges = compress_ranges(tracts)
    text = ranges_text([t for a, b in ranges[:most] for t in range(a, b + 1)])
    return text if len(ranges) <= most else f"{text}, ... ({len(tracts)})"


def explain_radec(plan: Plan, ra: float, dec: float) -> str:
    tract = plan.skymap.tract_at(ra, dec)
    return f"RA {ra:g}, Dec {dec:g} lies in tract {tract}\n" + explain_tract(plan, tract)
