"""Synthesised visits and sky regions for the rehearsal: where each visit lies, who holds it.

Visits are squares of the instrument's field of view centred on each campaign tract and, where
tracts of two sites touch, on their common edge (boundary visits, held by both sites). Tract
regions come from the ring skymap's geometry, so a Butler's spatial query joins them as at a site.
"""

from __future__ import annotations

import datetime
import functools
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import lsst.sphgeom as sphgeom

from compiler.defaults import DEFAULT_FOV_RADIUS_DEG, FOV_RADIUS_DEG
from compiler.plan import Plan
from compiler.skymap import RingSkyMap

__all__ = [
    "N_DETECTORS", "SiteVisitCounts", "Visit", "filters_of", "synthesize_visits",
    "tract_neighbours", "tract_region", "visit_counts", "visits_held_by", "visits_overlapping",
]

#: Detectors inserted per instrument: a handful, tiling each visit's field 2 x 2.
N_DETECTORS = 4

#: (physical_filter, band) of the instruments drpc knows; others get "<instrument>-<band>".
_FILTERS: dict[str, tuple[tuple[str, str], ...]] = {
    "HSC": (("HSC-G", "g"), ("HSC-R", "r"), ("HSC-I", "i"), ("HSC-Z", "z"), ("HSC-Y", "y")),
    "LSSTCam": (("u_24", "u"), ("g_6", "g"), ("r_57", "r"), ("i_39", "i"), ("z_20", "z"),
                ("y_10", "y")),
    "LSSTComCam": (("u_02", "u"), ("g_01", "g"), ("r_03", "r"), ("i_06", "i"), ("z_03", "z"),
                   ("y_04", "y")),
}
_BANDS = ("g", "r", "i", "z", "y")

_VISIT_ID_BASE = 1000
_FIRST_NIGHT = datetime.date(2025, 3, 1)
_VISITS_PER_NIGHT = 20
_RUN_DATE = "20260101"  # of the deterministic RUN timestamps, <output>/<date>T<HHMMSS>Z


def filters_of(instrument: str) -> tuple[tuple[str, str], ...]:
    """(physical_filter, band) pairs the stand-in instrument has."""
    return _FILTERS.get(instrument, tuple((f"{instrument}-{b}", b) for b in _BANDS))


# -- geometry -----------------------------------------------------------------------------------

def _unit(ra: float, dec: float) -> sphgeom.UnitVector3d:
    return sphgeom.UnitVector3d(sphgeom.LonLat.fromDegrees(ra % 360.0, max(-90.0, min(90.0, dec))))


def _wrap180(angle: float) -> float:
    """An angle difference in degrees, in (-180, 180]."""
    a = math.fmod(angle, 360.0)
    if a <= -180.0:
        a += 360.0
    elif a > 180.0:
        a -= 360.0
    return a


def _tangent_point(ra: float, dec: float, x: float, y: float) -> sphgeom.UnitVector3d:
    """The sky point at gnomonic offsets (x east, y north; degrees) from (ra, dec)."""
    a, d = math.radians(ra), math.radians(dec)
    c = (math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d))
    e = (-math.sin(a), math.cos(a), 0.0)
    n = (-math.sin(d) * math.cos(a), -math.sin(d) * math.sin(a), math.cos(d))
    tx, ty = math.tan(math.radians(x)), math.tan(math.radians(y))
    return sphgeom.UnitVector3d(*(c[i] + tx * e[i] + ty * n[i] for i in range(3)))


def _square(ra: float, dec: float, x0: float, x1: float, y0: float,
            y1: float) -> sphgeom.ConvexPolygon:
    corners = [_tangent_point(ra, dec, x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
    return sphgeom.ConvexPolygon.convexHull(corners)


def _tract_box(skymap: RingSkyMap, tract: int) -> tuple[float, float, float, float] | None:
    """Inner (ra_centre, ra_half_width, dec_lo, dec_hi) of a ring tract; None for caps."""
    return skymap.tract_box(tract)


@functools.lru_cache(maxsize=65536)
def tract_region(skymap: RingSkyMap, tract: int) -> sphgeom.ConvexPolygon:
    """A tract's sky region: its inner RA/Dec box (ring span x centre +- pi/n) widened by the
    skymap's tractOverlap, as a sphgeom ConvexPolygon (what register-skymap records, to within
    the projection). Polar caps are polygons around the pole."""
    overlap = skymap.tract_overlap_arcmin / 60.0
    box = _tract_box(skymap, tract)
    if box is None:
        ring = skymap.ring_of_tract(tract)
        lo, hi = skymap.ring_dec_bounds(ring)
        edge = hi + overlap if ring < 0 else lo - overlap
        return sphgeom.ConvexPolygon.convexHull([_unit(ra, edge) for ra in range(0, 360, 10)])
    ra, half, dec_lo, dec_hi = box
    dec_lo, dec_hi = max(-89.99, dec_lo - overlap), min(89.99, dec_hi + overlap)
    widest = max(abs(dec_lo), abs(dec_hi))
    half += overlap / max(math.cos(math.radians(widest)), 1e-6)
    steps = 8
    points = []
    for k in range(steps + 1):
        f = k / steps
        r = ra - half + 2 * half * f
        d = dec_lo + (dec_hi - dec_lo) * f
        points += [_unit(r, dec_lo), _unit(r, dec_hi), _unit(ra - half, d), _unit(ra + half, d)]
    return sphgeom.ConvexPolygon.convexHull(points)


@functools.lru_cache(maxsize=65536)
def _neighbours(skymap: RingSkyMap, tract: int) -> frozenset[int]:
    return frozenset(_find_neighbours(skymap, tract))


def tract_neighbours(skymap: RingSkyMap, tract: int) -> set[int]:
    """Tracts whose inner region touches this one's (the same ring's two, and the adjacent
    rings' tracts along the edges)."""
    return set(_neighbours(skymap, tract))


def _find_neighbours(skymap: RingSkyMap, tract: int) -> set[int]:
    box = _tract_box(skymap, tract)
    if box is None:
        ring = skymap.ring_of_tract(tract)
        first, last = skymap.ring_tract_range(0 if ring < 0 else skymap.num_rings - 1)
        return set(range(first, last + 1))
    ra, half, dec_lo, dec_hi = box
    eps = 0.01
    found: set[int] = set()
    samples = 24
    for k in range(samples + 1):
        f = k / samples
        r = ra - half - eps + (2 * half + 2 * eps) * f
        d = dec_lo - eps + (dec_hi - dec_lo + 2 * eps) * f
        for pr, pd in ((r, dec_lo - eps), (r, dec_hi + eps), (ra - half - eps, d),
                       (ra + half + eps, d)):
            found.add(skymap.tract_at(pr % 360.0, max(-90.0, min(90.0, pd))))
    found.discard(tract)
    return found


def _common_edge(skymap: RingSkyMap, a: int, b: int) -> tuple[float, float, bool]:
    """(ra, dec, along_ra) of the middle of the edge two neighbouring tracts share;
    along_ra: the edge runs east-west (different rings), else north-south (same ring)."""
    box_a, box_b = _tract_box(skymap, a), _tract_box(skymap, b)
    if box_a is None or box_b is None:  # a polar cap: the midpoint of the two centres
        va, vb = (_unit(*skymap.tract_center(t)) for t in (a, b))
        mid = sphgeom.LonLat(sphgeom.UnitVector3d(va + vb))
        return mid.getLon().asDegrees(), mid.getLat().asDegrees(), True
    ra_a, half_a, lo_a, hi_a = box_a
    ra_b, half_b, lo_b, hi_b = box_b
    if skymap.ring_of_tract(a) == skymap.ring_of_tract(b):
        sign = 1.0 if _wrap180(ra_b - ra_a) > 0 else -1.0
        return (ra_a + sign * half_a) % 360.0, (lo_a + hi_a) / 2, False
    dec = hi_a if skymap.ring_of_tract(b) > skymap.ring_of_tract(a) else lo_a
    rel = _wrap180(ra_b - ra_a)
    lo, hi = max(-half_a, rel - half_b), min(half_a, rel + half_b)
    return (ra_a + (lo + hi) / 2) % 360.0, dec, True


# -- visits -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Visit:
    """One synthetic visit (one exposure, one snap), with its region on the sky."""

    id: int
    ra: float  # boresight, degrees
    dec: float
    physical_filter: str
    band: str
    day_obs: int  # YYYYMMDD
    seq_num: int
    half_size_deg: float  # the field is a square of this half side in the tangent plane
    kind: Literal["tract", "boundary"]
    centred_on: tuple[int, ...]  # the tract, or the two tracts whose common edge it is centred on

    @property
    def name(self) -> str:
        return f"{self.id}"

    def obs_id(self, instrument: str) -> str:
        return f"{instrument}_{self.day_obs}_{self.seq_num:06d}"

    @functools.cached_property
    def region(self) -> sphgeom.ConvexPolygon:  # noqa: D102 - the field: a square on the sky
        h = self.half_size_deg
        return _square(self.ra, self.dec, -h, h, -h, h)

    def detector_regions(self, n_detectors: int = N_DETECTORS) -> dict[int, sphgeom.ConvexPolygon]:
        """Detector id -> region: the field tiled by a grid of detectors (2 x 2 by default)."""
        side = max(1, round(math.sqrt(n_detectors)))
        h = self.half_size_deg
        step = 2 * h / side
        regions = {}
        for det in range(n_detectors):
            i, j = det % side, det // side
            x0, y0 = -h + i * step, -h + (j % side) * step
            regions[det] = _square(self.ra, self.dec, x0, x0 + step, y0, y0 + step)
        return regions


def _visit_half_size(plan: Plan) -> float:
    radius = FOV_RADIUS_DEG.get(plan.instrument, DEFAULT_FOV_RADIUS_DEG)
    return radius * math.sqrt(math.pi) / 2  # a square of the field's area


def synthesize_visits(plan: Plan, per_tract: int = 3, *,
                      per_boundary: int | None = None,
                      tracts: Sequence[int] | None = None) -> list[Visit]:
    """Deterministic visits: ``per_tract`` dithered around every campaign tract's centre (or
    those of ``tracts``, a sample), and ``per_boundary`` (default ``per_tract``) along the
    common edge of every pair of neighbouring tracts that different sites own (boundary
    visits). Ids, filters and nights follow the order: tracts ascending, then the pairs
    ascending. Pure: no I/O."""
    if per_tract < 0 or (per_boundary is not None and per_boundary < 0):
        raise ValueError("visit counts must be >= 0")
    per_boundary = per_tract if per_boundary is None else per_boundary
    skymap = plan.skymap
    half = _visit_half_size(plan)
    filters = filters_of(plan.instrument)
    owner = plan.ownership.owner
    tracts = sorted(tracts) if tracts is not None else plan.all_tracts
    out: list[Visit] = []

    def add(ra: float, dec: float, kind: Literal["tract", "boundary"], on: tuple[int, ...]) -> None:
        i = len(out)
        pf, band = filters[i % len(filters)]
        night = _FIRST_NIGHT + datetime.timedelta(days=i // _VISITS_PER_NIGHT)
        out.append(Visit(
            id=_VISIT_ID_BASE + i, ra=ra % 360.0, dec=max(-89.9, min(89.9, dec)),
            physical_filter=pf, band=band, day_obs=int(night.strftime("%Y%m%d")),
            seq_num=i % _VISITS_PER_NIGHT + 1, half_size_deg=half, kind=kind, centred_on=on))

    for t in tracts:
        ra, dec = skymap.tract_center(t)
        for k in range(per_tract):
            r = 0.0 if k == 0 else 0.08 * math.sqrt(k)
            angle = math.radians(137.5 * k)
            dx, dy = r * math.cos(angle), r * math.sin(angle)
            cosd = max(math.cos(math.radians(dec)), 1e-3)
            add(ra + dx / cosd, dec + dy, "tract", (t,))
    in_campaign = set(tracts)
    for a in tracts:
        for b in sorted(tract_neighbours(skymap, a)):
            if b <= a or b not in in_campaign or owner[a] == owner[b]:
                continue
            ra, dec, along_ra = _common_edge(skymap, a, b)
            cosd = max(math.cos(math.radians(dec)), 1e-3)
            for k in range(per_boundary):
                step = 0.15 * ((k + 1) // 2) * (1 if k % 2 else -1)
                if along_ra:
                    add(ra + step / cosd, dec, "boundary", (a, b))
                else:
                    add(ra, dec + step, "boundary", (a, b))
    return out


_COMMON_SKYPIX = sphgeom.HtmPixelization(7)  # daf_butler's common skypix (dimensions.yaml)


@functools.lru_cache(maxsize=64)
def _tract_index(skymap: RingSkyMap, tracts: tuple[int, ...]) -> dict[int, tuple[int, ...]]:
    """htm7 pixel -> the tracts whose region's envelope has it."""
    index: dict[int, list[int]] = {}
    for t in tracts:
        for begin, end in _COMMON_SKYPIX.envelope(tract_region(skymap, t)):
            for pixel in range(begin, end):
                index.setdefault(pixel, []).append(t)
    return {p: tuple(ts) for p, ts in index.items()}


def visits_overlapping(plan: Plan, tracts: Iterable[int], visits: Sequence[Visit]) -> list[Visit]:
    """The visits whose region overlaps one of the tracts' regions, found the Butler's way: pairs
    sharing an htm7 pixel of their envelopes (the common skypix), kept unless
    ``region.overlaps(other) is False``."""
    index = _tract_index(plan.skymap, tuple(sorted(set(tracts))))
    out = []
    for v in visits:
        candidates = {t for begin, end in _COMMON_SKYPIX.envelope(v.region)
                      for p in range(begin, end) for t in index.get(p, ())}
        if any(v.region.overlaps(tract_region(plan.skymap, t)) is not False
               for t in sorted(candidates)):
            out.append(v)
    return out


def home_sites(plan: Plan, visits: Sequence[Visit], *,
               sample: Collection[int] | None = None) -> dict[int, str]:
    """Each visit's home site, by the rule of the generated selection (a `home-visits` gather
    sends a visit from its home only): the owner of the tract that holds the centre of the
    visit's region; centred outside the campaign, the first site (in the plan's order) that
    holds it."""
    owner = plan.ownership.owner
    homes: dict[int, str] = {}
    for v in visits:
        centre = sphgeom.LonLat(v.region.getBoundingCircle().getCenter())
        tract = plan.skymap.tract_at(centre.getLon().asDegrees(), centre.getLat().asDegrees())
        if tract in owner:
            homes[v.id] = owner[tract]
    for site in plan.sites:
        if len(homes) == len(visits):
            break
        for v in visits_held_by(plan, site.id, visits, sample=sample):
            homes.setdefault(v.id, site.id)
    return homes


def visits_held_by(plan: Plan, site_id: str, visits: Sequence[Visit], *,
                   sample: Collection[int] | None = None) -> list[Visit]:
    """What a site holds: every visit overlapping one of its processing tracts (of the
    ``sample`` only, when the rehearsal samples tracts); the central site (which receives every
    raw) holds all."""
    site = plan.site(site_id)
    if site.is_central:
        return list(visits)
    return visits_overlapping(plan, [t for t in site.processing_tracts
                                     if sample is None or t in sample], visits)


@dataclass(frozen=True)
class SiteVisitCounts:
    site: str
    held: int  # visits the site holds (define_visits defines these; raws it receives)
    own: int  # visits overlapping the site's processing tracts (its jobs' per-visit data IDs)
    boundary: int  # of `own`, those also overlapping another site's processing tracts
    shared_with: dict[str, int] = field(default_factory=dict)  # site -> boundary visits in common


def visit_counts(plan: Plan, visits: Sequence[Visit]) -> dict[str, SiteVisitCounts]:
    """Expected per-site counts, for comparison with the plan and what the Butlers report."""
    own = {s.id: {v.id for v in visits_overlapping(plan, s.processing_tracts, visits)}
           for s in plan.sites}
    out = {}
    for s in plan.sites:
        shared = {o: len(own[s.id] & own[o]) for o in own if o != s.id and own[s.id] & own[o]}
        boundary = {vid for o in own if o != s.id for vid in own[s.id] & own[o]}
        held = len(visits) if s.is_central else len(own[s.id])
        out[s.id] = SiteVisitCounts(s.id, held, len(own[s.id]), len(boundary), shared)
    return out
