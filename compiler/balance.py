"""`drpc plan --balance`: ring boundaries that make every site finish on about the same day.

Pure: reads the plan, returns a `Balance`; nothing here does I/O.

The campaign's rings keep their number and their sites' order (south to north); only the
declinations between them move. A boundary always lies strictly between two skymap ring centres,
so every ring of tracts goes whole to one band and the proposal means exactly what it says.

A site's finishing day is `workload.core_hours * fraction / cores / 24` (the planner's estimate),
with `fraction` its share of the footprint's tracts. The search minimises, in this order:
1. the storage the sites need beyond their `storage_tb` (only when the sites' storage together
   can hold the workload's: otherwise storage cannot be met by any split and is ignored, and the
   result says so);
2. the latest finishing day, then the next latest, and so on (so the days come out as even as
   whole rings allow).
It starts from the ideal fractions (proportional to cores, capped by storage, water-filled) and
from the campaign's own boundaries, and improves each by moving boundaries ring by ring until no
move helps; the better result wins. Everything is deterministic.

`by="share"` balances on the sites' agreed `share` instead: it minimises the largest difference
between a site's fraction of the tracts and its share, then the next largest, and so on
(storage first as above). `keep` names boundaries (declinations of the campaign's rings) that
must not move: when a DF goes offline mid-survey, the tracts whose data already sits at another
site stay there and only the other boundaries are balanced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from .errors import UsageError
from .estimates import days as wall_days
from .plan import Plan
from .report import feasibility
from .sky import RingBand

__all__ = [
    "Balance",
    "BalanceError",
    "BalancedRing",
    "SiteBalance",
    "SkyRing",
    "balance_json",
    "balance_rings",
    "balance_yaml",
    "boundary_between",
    "sky_rings",
]


class BalanceError(UsageError):
    """The campaign cannot be balanced as asked (explicit tract lists, no workload, too few
    rings)."""


@dataclass(frozen=True)
class SkyRing:
    """One ring of the skymap (or a polar cap) whose tracts' centres lie in the footprint."""

    ring: int  # -1 south cap, 0..num_rings-1, num_rings north cap
    dec: float  # centre declination of its tracts
    tracts: int


@dataclass(frozen=True)
class BalancedRing:
    """One proposed `sky.assignment.rings` entry."""

    site: str
    dec_min: float | None  # only for the first ring, and only if the campaign gave one
    dec_max: float
    first_ring: int  # skymap rings it takes (inclusive)
    last_ring: int
    tracts: int


@dataclass(frozen=True)
class SiteBalance:
    site: str
    cores: int
    storage_cap_tb: float
    tracts: int
    fraction: float
    core_hours: float
    days: float
    storage_tb: float
    current_tracts: int
    current_days: float

    @property
    def over_storage(self) -> bool:
        return self.storage_tb > self.storage_cap_tb


@dataclass(frozen=True)
class Balance:
    campaign: str
    footprint_tracts: int
    rings: tuple[BalancedRing, ...]
    sites: tuple[SiteBalance, ...]
    finish_days: float
    bottleneck: str
    current_finish_days: float
    current_bottleneck: str
    ideal_days: float  # every site finishing together, if tracts were infinitely divisible
    deadline_days: float | None
    storage_needed_tb: float
    storage_available_tb: float
    storage_feasible: bool  # the sites' storage together can hold the workload's
    by: str = "days"  # what was balanced: finishing days or the sites' shares
    kept: tuple[float, ...] = ()  # boundaries kept where they are
    shares_infeasible: str | None = None  # report.feasibility of the campaign as it stands

    @property
    def notes(self) -> tuple[str, ...]:
        out: list[str] = []
        if self.by == "share" and self.shares_infeasible:
            out.append(self.shares_infeasible)
        if not self.storage_feasible:
            out.append(
                f"storage cannot be met: the workload needs {self.storage_needed_tb:,.0f} TB and "
                f"the sites have {self.storage_available_tb:,.0f} TB together, so no split fits; "
                + ("balanced on the shares only" if self.by == "share"
                   else "balanced on finishing days only"))
        else:
            for s in self.sites:
                if s.over_storage:
                    out.append(
                        f"storage cannot be met at {s.site} with whole rings: it needs "
                        f"{s.storage_tb:,.0f} TB of its {s.storage_cap_tb:,.0f} TB")
        shares_said = self.by == "share" and self.shares_infeasible
        if self.deadline_days is not None and self.finish_days > self.deadline_days \
                and not shares_said:
            out.append(f"even balanced, the campaign finishes on day {self.finish_days:,.0f}, "
                       f"after deadline_days {self.deadline_days:g}: more cores are needed")
        return tuple(out)


def sky_rings(plan: Plan) -> list[SkyRing]:
    """The skymap's rings (and caps) in the footprint, south to north, with their tract counts."""
    sm = plan.skymap
    fp = plan.footprint
    out: list[SkyRing] = []
    for ring in range(-1, sm.num_rings + 1):
        dec = sm.ring_center_dec(ring)
        if fp.dec_min <= dec <= fp.dec_max:
            first, last = sm.ring_tract_range(ring)
            out.append(SkyRing(ring, dec, last - first + 1))
    return out


def boundary_between(south: float, north: float) -> float:
    """A round declination strictly between two ring centres (2 decimals unless they are closer)."""
    mid = (south + north) / 2.0
    for digits in range(2, 10):
        value = round(mid, digits)
        if south < value < north:
            return value + 0.0  # no -0.0
    return mid


def _water_fill(weights: dict[str, float], caps: dict[str, float]) -> dict[str, float]:
    """Fractions proportional to weights, none above its cap, summing to 1 (caps must allow it)."""
    fixed: dict[str, float] = {}
    free = dict(weights)
    while True:
        left = 1.0 - sum(fixed.values())
        total = sum(free.values())
        if not free or total <= 0:
            return {**{s: 0.0 for s in free}, **fixed}
        share = {s: left * w / total for s, w in free.items()}
        over = sorted(s for s, f in share.items() if f > caps[s])
        if not over:
            return {**share, **fixed}
        for s in over:
            fixed[s] = caps[s]
            del free[s]


class _Problem:
    def __init__(self, counts: Sequence[int], band_sites: Sequence[str], core_hours: float,
                 cores: dict[str, int], caps_tracts: dict[str, float] | None, *,
                 shares: dict[str, float] | None = None,
                 fixed: dict[int, int] | None = None) -> None:
        self.counts = list(counts)
        self.prefix = [0]
        for c in self.counts:
            self.prefix.append(self.prefix[-1] + c)
        self.total = self.prefix[-1]
        self.band_sites = list(band_sites)
        self.k = len(band_sites)
        self.core_hours = core_hours
        self.cores = cores
        self.caps = caps_tracts
        self.sites = list(dict.fromkeys(band_sites))
        self.shares = shares  # balance on |fraction - share| instead of finishing days
        self.fixed = fixed or {}  # cut index -> the position it must keep

    def tracts(self, cuts: tuple[int, ...]) -> dict[str, int]:
        edges = (0, *cuts, len(self.counts))
        got = {s: 0 for s in self.sites}
        for j, site in enumerate(self.band_sites):
            got[site] += self.prefix[edges[j + 1]] - self.prefix[edges[j]]
        return got

    def days(self, tracts: dict[str, int]) -> dict[str, float]:
        return {s: wall_days(self.core_hours * t / self.total, self.cores[s])
                for s, t in tracts.items()}

    def key(self, cuts: tuple[int, ...]) -> tuple[float, tuple[float, ...]]:
        tracts = self.tracts(cuts)
        excess = 0.0
        if self.caps is not None:
            excess = sum(max(0.0, t - self.caps[s]) for s, t in tracts.items())
        if self.shares is not None:
            spread = sorted((abs(t / self.total - self.shares[s]) for s, t in tracts.items()),
                            reverse=True)
        else:
            spread = sorted(self.days(tracts).values(), reverse=True)
        return (round(excess, 9), tuple(round(d, 9) for d in spread))

    def valid(self, cuts: tuple[int, ...]) -> bool:
        edges = (0, *cuts, len(self.counts))
        return (all(a < b for a, b in pairwise(edges))
                and all(cuts[j] == p for j, p in self.fixed.items()))

    def from_targets(self, band_targets: Sequence[float]) -> tuple[int, ...]:
        """Cuts whose cumulative tract counts come nearest the cumulative targets."""
        n = len(self.counts)
        cuts: list[int] = []
        acc = 0.0
        for j in range(self.k - 1):
            acc += band_targets[j]
            if j in self.fixed:
                cuts.append(self.fixed[j])
                continue
            lo = (cuts[-1] + 1) if cuts else 1
            nxt = min((i for i in self.fixed if i > j), default=None)
            hi = (self.fixed[nxt] - (nxt - j)) if nxt is not None else n - (self.k - 1 - j)
            best = min(range(lo, max(lo, hi) + 1), key=lambda p: (abs(self.prefix[p] - acc), p))
            cuts.append(best)
        return tuple(cuts)

    def improve(self, cuts: tuple[int, ...]) -> tuple[int, ...]:
        """Steepest descent over single-boundary moves and shifts of runs of boundaries."""
        n = len(self.counts)
        best, best_key = cuts, self.key(cuts)
        for _ in range(10_000):
            candidates: list[tuple[int, ...]] = []
            for j in range(len(best)):
                if j in self.fixed:
                    continue
                lo = best[j - 1] + 1 if j > 0 else 1
                hi = best[j + 1] - 1 if j + 1 < len(best) else n - 1
                for p in range(lo, hi + 1):
                    if p != best[j]:
                        candidates.append((*best[:j], p, *best[j + 1:]))
            for i in range(len(best)):
                for j in range(i + 1, len(best)):
                    for step in (-1, 1):
                        moved = (*best[:i], *(c + step for c in best[i:j + 1]), *best[j + 1:])
                        if moved[0] >= 1 and moved[-1] <= n - 1 and self.valid(moved):
                            candidates.append(moved)
            step_best, step_key = best, best_key
            for cand in candidates:
                k = self.key(cand)
                if k < step_key:
                    step_best, step_key = cand, k
            if step_best == best:
                return best
            best, best_key = step_best, step_key
        return best


def balance_rings(plan: Plan, *, by: str = "days", keep: Sequence[float] = ()) -> Balance:
    """Propose ring boundaries that equalise the sites' finishing days (`by="days"`) or bring
    each site's fraction nearest its share (`by="share"`), keeping the boundaries at the
    declinations in `keep` where they are (see the module doc)."""
    if by not in ("days", "share"):
        raise BalanceError(f"--by takes days or share, got {by!r}")
    spec = plan.spec
    rings = spec.sky.assignment.rings
    if not rings:
        raise BalanceError(
            f"--balance moves ring boundaries, but {plan.spec_file} assigns tracts explicitly "
            "(sky.assignment.tracts); use sky.assignment.rings to let drpc balance the sites")
    wl = spec.workload
    if wl is None:
        raise BalanceError(
            f"--balance needs the campaign's workload (core_hours, storage_tb); {plan.spec_file} "
            "has no `workload:` section")
    sky = sky_rings(plan)
    bands = list(plan.bands)
    if len(bands) > len(sky):
        raise BalanceError(
            f"--balance cannot place {len(bands)} rings on the {len(sky)} skymap ring(s) of the "
            "footprint")

    sites = {s.id: s for s in plan.sites}
    band_sites = [b.site for b in bands]
    ring_sites = list(dict.fromkeys(band_sites))
    n = sum(r.tracts for r in sky)
    cores = {s: sites[s].cores for s in ring_sites}
    storage_needed = wl.storage_tb
    storage_available = sum(sites[s].storage_tb for s in ring_sites)
    feasible = storage_available >= storage_needed
    caps_fraction = {s: min(1.0, sites[s].storage_tb / wl.storage_tb) for s in ring_sites}
    caps_tracts = {s: caps_fraction[s] * n for s in ring_sites} if feasible else None

    current_cuts = tuple(sum(1 for r in sky if r.dec < b.dec_max) for b in bands[:-1])
    fixed = _kept_cuts(plan, bands, current_cuts, keep)
    shares = {s: sites[s].share for s in ring_sites} if by == "share" else None
    problem = _Problem([r.tracts for r in sky], band_sites, wl.core_hours, cores, caps_tracts,
                       shares=shares, fixed=fixed)
    if len(set(fixed.values())) != len(fixed):
        raise BalanceError("--keep-boundary: two kept boundaries fall between the same two "
                           "skymap rings")

    # Start 1: ideal fractions (by cores, or the shares), split between a site's rings as the
    # campaign splits them now.
    weights = ({s: float(cores[s]) for s in ring_sites} if shares is None
               else {s: max(shares[s], 1e-9) for s in ring_sites})
    fractions = _water_fill(weights, caps_fraction if feasible else {s: 1.0 for s in ring_sites})
    now = _current_band_tracts(bands, sky)
    now_site = {s: sum(t for b, t in zip(band_sites, now, strict=True) if b == s)
                for s in ring_sites}
    per_site_bands = {s: band_sites.count(s) for s in ring_sites}
    targets = [
        fractions[s] * n * (now[j] / now_site[s] if now_site[s] else 1.0 / per_site_bands[s])
        for j, s in enumerate(band_sites)
    ]
    starts = [problem.from_targets(targets)]
    # Start 2: the campaign's own boundaries, when every band holds at least one ring.
    if problem.valid(current_cuts):
        starts.append(current_cuts)
    results = sorted({problem.improve(c) for c in starts if problem.valid(c)},
                     key=lambda c: (problem.key(c), c))
    if not results:
        raise BalanceError("--keep-boundary leaves a ring with no skymap ring of tracts: keep "
                           "fewer boundaries, or ones further apart")
    cuts = results[0]

    edges = (0, *cuts, len(sky))
    proposed: list[BalancedRing] = []
    for j, band in enumerate(bands):
        first, last = sky[edges[j]], sky[edges[j + 1] - 1]
        dec_max = (boundary_between(last.dec, sky[edges[j + 1]].dec) if j + 1 < len(bands)
                   else rings[-1].dec_max)
        proposed.append(BalancedRing(
            site=band.site, dec_min=rings[0].dec_min if j == 0 else None, dec_max=dec_max,
            first_ring=first.ring, last_ring=last.ring,
            tracts=problem.prefix[edges[j + 1]] - problem.prefix[edges[j]]))

    tracts = problem.tracts(cuts)
    days = problem.days(tracts)
    est = {e.site: e for e in plan.estimates}
    order = [s.id for s in plan.sites if s.id in cores]  # the campaign's site order
    site_rows = tuple(
        SiteBalance(
            site=s, cores=cores[s], storage_cap_tb=sites[s].storage_tb, tracts=tracts[s],
            fraction=tracts[s] / n, core_hours=wl.core_hours * tracts[s] / n, days=days[s],
            storage_tb=wl.storage_tb * tracts[s] / n, current_tracts=len(sites[s].owned_tracts),
            current_days=est[s].days if s in est else 0.0)
        for s in order
    )
    finish = max(site_rows, key=lambda r: (r.days, -order.index(r.site)))
    current = max(site_rows, key=lambda r: (r.current_days, -order.index(r.site)))
    return Balance(
        campaign=plan.campaign, footprint_tracts=n, rings=tuple(proposed), sites=site_rows,
        finish_days=finish.days, bottleneck=finish.site, current_finish_days=current.current_days,
        current_bottleneck=current.site,
        ideal_days=wall_days(wl.core_hours, sum(cores.values())),
        deadline_days=plan.deadline_days, storage_needed_tb=storage_needed,
        storage_available_tb=storage_available, storage_feasible=feasible,
        by=by, kept=tuple(sorted(bands[j].dec_max for j in fixed)),
        shares_infeasible=feasibility(plan),
    )


def _kept_cuts(plan: Plan, bands: list[RingBand], current: tuple[int, ...],
               keep: Sequence[float]) -> dict[int, int]:
    """Cut index -> its current position, for each kept declination (a campaign boundary)."""
    boundaries = [b.dec_max for b in bands[:-1]]
    fixed: dict[int, int] = {}
    for dec in keep:
        j = next((i for i, b in enumerate(boundaries) if abs(b - dec) <= 1e-6), None)
        if j is None:
            listed = ", ".join(f"{b:g}" for b in boundaries) or "none"
            raise BalanceError(f"--keep-boundary {dec:g} is not a boundary between two rings of "
                               f"{plan.spec_file} (its boundaries: {listed})")
        fixed[j] = current[j]
    return fixed


def _current_band_tracts(bands: list[RingBand], sky: list[SkyRing]) -> list[int]:
    return [sum(r.tracts for r in sky if b.contains(r.dec)) for b in bands]


def _fmt_dec(value: float) -> str:
    text = f"{value:.2f}"
    if round(value, 2) != value:  # closer ring centres than 0.01 deg: keep what separates them
        text = repr(value)
    return text


def balance_yaml(b: Balance) -> str:
    """The proposal as YAML (comments included) to paste under `sky.assignment:`."""
    lines = [
        (f"# drpc plan --balance: rings for campaign '{b.campaign}' "
         f"({b.footprint_tracts:,} tracts),"),
        "# same ring count and site order; paste under `sky.assignment:` in place of its rings.",
        ("# balanced on the sites' shares (|fraction - share|)" if b.by == "share"
         else "# balanced on finishing days")
        + (f"; kept boundaries: {', '.join(_fmt_dec(d) for d in b.kept)}" if b.kept else ""),
        (f"# finish: day {b.finish_days:,.1f} at {b.bottleneck} "
         f"(now day {b.current_finish_days:,.1f} "
         f"at {b.current_bottleneck}; all sites together: day {b.ideal_days:,.1f})"),
    ]
    lines += [f"# note: {note}" for note in b.notes]
    lines.append("    rings:")
    width = max(len(_ring_flow(r)) for r in b.rings)
    for r in b.rings:
        flow = _ring_flow(r)
        span = f"skymap ring {r.first_ring}" if r.first_ring == r.last_ring else \
            f"skymap rings {r.first_ring}..{r.last_ring}"
        lines.append(f"      - {flow:<{width}}  # {span}, {r.tracts:,} tracts")
    lines.append("# per site (proposed, was):")
    sw = max(len(s.site) for s in b.sites)
    for s in b.sites:
        storage = (f"{s.storage_tb:,.0f} TB of {s.storage_cap_tb:,.0f} TB"
                   + (" (over)" if s.over_storage else ""))
        lines.append(
            f"#   {s.site:<{sw}}  {s.tracts:>7,} tracts (was {s.current_tracts:,})  "
            f"fraction {s.fraction:.3f}  {s.days:>7,.1f} days (was {s.current_days:,.1f}) "
            f"at {s.cores:,} cores  storage {storage}")
    return "\n".join(lines) + "\n"


def _ring_flow(r: BalancedRing) -> str:
    head = f"dec_min: {_fmt_dec(r.dec_min)}, " if r.dec_min is not None else ""
    return f"{{{head}dec_max: {_fmt_dec(r.dec_max)}, site: {r.site}}}"


def balance_json(b: Balance) -> dict[str, Any]:
    return {
        "campaign": b.campaign,
        "footprint_tracts": b.footprint_tracts,
        "rings": [
            {**({"dec_min": r.dec_min} if r.dec_min is not None else {}), "dec_max": r.dec_max,
             "site": r.site, "skymap_rings": [r.first_ring, r.last_ring], "tracts": r.tracts}
            for r in b.rings
        ],
        "sites": [
            {"site": s.site, "cores": s.cores, "tracts": s.tracts, "fraction": round(s.fraction, 6),
             "core_hours": round(s.core_hours, 1), "days": round(s.days, 2),
             "storage_tb": round(s.storage_tb, 1), "storage_cap_tb": s.storage_cap_tb,
             "over_storage": s.over_storage, "current_tracts": s.current_tracts,
             "current_days": round(s.current_days, 2)}
            for s in b.sites
        ],
        "finish_days": round(b.finish_days, 2),
        "bottleneck": b.bottleneck,
        "current_finish_days": round(b.current_finish_days, 2),
        "current_bottleneck": b.current_bottleneck,
        "ideal_days": round(b.ideal_days, 2),
        "deadline_days": b.deadline_days,
        "storage_feasible": b.storage_feasible,
        "by": b.by,
        "kept_boundaries": list(b.kept),
        "notes": list(b.notes),
    }
