"""Per-site Butler stand-ins of the local rehearsal: what the LSST stack would have put there.

Every site's repository is made by the compiled tree's own ``butler/setup-repo.sh`` (real
``butler`` CLI, SQLite registry, datastore root where the script puts it). Three of its steps
need packages that are not on PyPI (obs_* for ``register-instrument`` and
``write-curated-calibrations``, skymap/pipe_tasks for ``register-skymap``): the rehearsal runs
the script with ``SKIP_STEPS`` = :func:`replaced_setup_steps`, then :func:`insert_stack_records`
writes what those steps would have produced with the daf_butler API, then the script runs
again and finishes the defaults chain. Past the setup, this module stands in for the rest of
the stack:

* :func:`synthesize_visits` makes a deterministic set of visits (pure, no I/O): some centred on
  every campaign tract, and some centred on the common edge of two neighbouring tracts owned by
  different sites (boundary visits, held by both). :func:`visits_held_by` says which visits a
  site holds (those overlapping its processing tracts; the central site holds all), computed
  with the same sphgeom regions and the same overlap test as the Butler's spatial joins, so it
  equals ``butler.query_data_ids(["visit"], where="skymap=... AND tract IN (...)")``.
* :func:`define_visits` is ``butler define-visits``: exposure, visit and region records.
* :func:`simulate_job` is one BPS workflow: one small file per data ID of every dataset type
  the stage produces, ingested into a new RUN ``<output>/<timestamp>`` chained into the CHAINED
  ``<output>`` as pipetask does; it first checks that the job's inputs are there.
* :func:`simulate_raws` puts raw files into ``<instrument>/raw/all`` (``butler ingest-raws``).

Files are written at the datastore's own templated path (the path ``butler.put`` would use) and
ingested in place. A storage class whose default formatter daf_butler cannot import here
(``ExposureCatalog`` -> obs_base's ``FitsGenericFormatter``, ``Exposure*``, ...) gets a small
valid FITS file recorded with :data:`STAND_IN_FORMATTER` instead; Parquet types get real
Parquet files (pyarrow). Nothing is ever read back, so the formatter only has to exist.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import lsst.sphgeom as sphgeom

from ..defaults import DEFAULT_FOV_RADIUS_DEG, FOV_RADIUS_DEG
from ..plan import Job, Plan, tract_query
from ..skymap import RingSkyMap

if TYPE_CHECKING:
    from lsst.daf.butler import Butler, DatasetRef, DatasetType

__all__ = [
    "STACK_STEPS", "STAND_IN_FORMATTER", "JobInputError", "JobResult", "SiteVisitCounts", "Visit",
    "define_visits", "filters_of", "insert_stack_records", "replaced_setup_steps", "run_name",
    "simulate_job", "simulate_raws", "synthesize_visits", "tract_neighbours", "tract_region", "visit_counts",
    "visits_held_by", "visits_overlapping",
]

#: setup-repo.sh steps that need the LSST stack (obs_*, skymap, pipe_tasks; not on PyPI).
STACK_STEPS: tuple[str, ...] = ("instrument", "calibrations", "skymap")

#: The formatter recorded for files whose storage class's default formatter is not importable
#: without the stack (e.g. ExposureCatalog's obs_base FitsGenericFormatter). It exists in
#: daf_butler; the rehearsal never reads these files back.
STAND_IN_FORMATTER = "lsst.daf.butler.formatters.file.FileFormatter"

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
_EXPOSURE_TIME = 30.0
_RUN_DATE = "20260101"  # of the deterministic RUN timestamps, <output>/<date>T<HHMMSS>Z


def replaced_setup_steps(plan: Plan) -> list[str]:
    """setup-repo.sh steps the rehearsal skips (``SKIP_STEPS``) and :func:`insert_stack_records`
    replaces: ``instrument``, ``calibrations``, ``skymap``."""
    del plan  # the same three for every campaign: they are the script's stack-only steps
    return list(STACK_STEPS)


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


def _square(ra: float, dec: float, x0: float, x1: float, y0: float, y1: float) -> sphgeom.ConvexPolygon:
    corners = [_tangent_point(ra, dec, x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
    return sphgeom.ConvexPolygon.convexHull(corners)


def _tract_box(skymap: RingSkyMap, tract: int) -> tuple[float, float, float, float] | None:
    """Inner (ra_centre, ra_half_width, dec_lo, dec_hi) of a ring tract, degrees; None for caps."""
    ring = skymap.ring_of_tract(tract)
    if ring < 0 or ring >= skymap.num_rings:
        return None
    ra, _ = skymap.tract_center(tract)
    dec_lo, dec_hi = skymap.ring_dec_bounds(ring)
    return ra, 180.0 / skymap.ring_tract_counts()[ring], dec_lo, dec_hi


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
        for pr, pd in ((r, dec_lo - eps), (r, dec_hi + eps), (ra - half - eps, d), (ra + half + eps, d)):
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


def synthesize_visits(plan: Plan, per_tract: int = 3, *, per_boundary: int | None = None) -> list[Visit]:
    """Deterministic visits: ``per_tract`` dithered around every campaign tract's centre, and
    ``per_boundary`` (default ``per_tract``) along the common edge of every pair of neighbouring
    tracts that different sites own (boundary visits). Ids, filters and nights follow the
    order: tracts ascending, then the pairs ascending. Pure: no I/O."""
    if per_tract < 0 or (per_boundary is not None and per_boundary < 0):
        raise ValueError("visit counts must be >= 0")
    per_boundary = per_tract if per_boundary is None else per_boundary
    skymap = plan.skymap
    half = _visit_half_size(plan)
    filters = filters_of(plan.instrument)
    owner = plan.ownership.owner
    tracts = plan.all_tracts
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
        if any(v.region.overlaps(tract_region(plan.skymap, t)) is not False for t in sorted(candidates)):
            out.append(v)
    return out


def visits_held_by(plan: Plan, site_id: str, visits: Sequence[Visit]) -> list[Visit]:
    """What a site holds: every visit overlapping one of its processing tracts; the central site
    (which receives every raw) holds all."""
    site = plan.site(site_id)
    if site.is_central:
        return list(visits)
    return visits_overlapping(plan, site.processing_tracts, visits)


@dataclass(frozen=True)
class SiteVisitCounts:
    site: str
    held: int  # visits the site holds (define_visits defines these; raws it receives)
    own: int  # visits overlapping the site's processing tracts (its jobs' per-visit data IDs)
    boundary: int  # of `own`, those also overlapping another site's processing tracts
    shared_with: dict[str, int] = field(default_factory=dict)  # site -> boundary visits in common


def visit_counts(plan: Plan, visits: Sequence[Visit]) -> dict[str, SiteVisitCounts]:
    """Expected per-site counts, for comparison with the plan and what the Butlers report."""
    own = {s.id: {v.id for v in visits_overlapping(plan, s.processing_tracts, visits)} for s in plan.sites}
    out = {}
    for s in plan.sites:
        shared = {o: len(own[s.id] & own[o]) for o in own if o != s.id and own[s.id] & own[o]}
        boundary = {vid for o in own if o != s.id for vid in own[s.id] & own[o]}
        held = len(visits) if s.is_central else len(own[s.id])
        out[s.id] = SiteVisitCounts(s.id, held, len(own[s.id]), len(boundary), shared)
    return out


# -- repository records -------------------------------------------------------------------------

def _butler(repo: str | Path, writeable: bool = True) -> Butler:
    from lsst.daf.butler import Butler

    return Butler.from_config(str(repo), writeable=writeable)


def _patch_grid(plan: Plan) -> int:
    """Patches per tract side: hsc/lsst ring tracts with 4000-pixel patches (as setup-repo's
    skymap config)."""
    skymap = plan.skymap
    width_deg = skymap.ring_size_deg + 2 * skymap.tract_overlap_arcmin / 60.0
    return max(1, math.ceil(width_deg * 3600.0 / skymap.pixel_scale_arcsec / 4000.0))


def _needs_patches(plan: Plan) -> bool:
    return any("patch" in d.dimensions for d in plan.datasets)


def insert_stack_records(repo: str | Path, plan: Plan, site_id: str, *,
                         n_detectors: int = N_DETECTORS) -> dict[str, int]:
    """What setup-repo.sh's stack steps would have produced, written with the daf_butler API:

    * instrument: the instrument record (class name from the plan), its physical_filter/band
      records and ``n_detectors`` detector records;
    * calibrations: the calibration collection (``plan.calib_collection``), an empty
      CALIBRATION collection;
    * skymap: the ``skymaps`` RUN collection, the skymap record and a tract record with its
      region for every campaign tract (and patch records when a campaign dataset has a patch
      dimension), plus the ``skyMap`` dataset register-skymap puts there (a stand-in file).

    Idempotent. Returns counts of what it inserted or found, by kind."""
    from lsst.daf.butler import CollectionType, DatasetRef, DatasetType

    del site_id  # every site gets every campaign tract: the central site needs all of them
    skymap = plan.skymap
    filters = filters_of(plan.instrument)
    grid = _patch_grid(plan)
    with _butler(repo) as butler:
        reg = butler.registry
        reg.syncDimensionData("instrument", {
            "name": plan.instrument, "visit_max": 2**30, "visit_system": 0,
            "exposure_max": 2**30, "detector_max": 1000,
            "class_name": plan.instrument_class or f"drpc.standin.{plan.instrument}"})
        reg.insertDimensionData("physical_filter", *[
            {"instrument": plan.instrument, "name": pf, "band": band} for pf, band in filters],
            skip_existing=True)
        reg.insertDimensionData("detector", *[
            {"instrument": plan.instrument, "id": d, "full_name": f"R0{d // 2}_S{d % 2}",
             "name_in_raft": f"S{d % 2}", "raft": f"R0{d // 2}", "purpose": "SCIENCE"}
            for d in range(n_detectors)], skip_existing=True)
        butler.collections.register(plan.calib_collection, CollectionType.CALIBRATION)
        butler.collections.register("skymaps", CollectionType.RUN)
        digest = hashlib.sha1(
            f"rings numRings={skymap.num_rings} raStart={skymap.ra_start_deg} "
            f"tractOverlap={skymap.tract_overlap_arcmin} pixelScale={skymap.pixel_scale_arcsec}".encode()
        ).digest()
        reg.syncDimensionData("skymap", {
            "name": skymap.name, "hash": digest, "tract_max": skymap.tract_count(),
            "patch_nx_max": grid, "patch_ny_max": grid})
        tracts = plan.all_tracts
        reg.insertDimensionData("tract", *[
            {"skymap": skymap.name, "id": t, "region": tract_region(skymap, t)} for t in tracts],
            skip_existing=True)
        n_patches = 0
        if _needs_patches(plan):
            rows = []
            for t in tracts:
                rows += _patch_rows(skymap, t, grid)
            reg.insertDimensionData("patch", *rows, skip_existing=True)
            n_patches = len(rows)
        # register-skymap also puts the skyMap dataset into the skymaps RUN.
        sky_type = DatasetType("skyMap", ["skymap"], "SkyMap", universe=butler.dimensions)
        reg.registerDatasetType(sky_type)
        if not butler.query_datasets(sky_type, collections="skymaps", explain=False, limit=None):
            data_id = butler.registry.expandDataId(skymap=skymap.name)
            ref = DatasetRef(sky_type, data_id, run="skymaps")
            _ingest_stand_in_files(butler, [ref], {"skymap": skymap.name, "numRings": skymap.num_rings})
    return {"filters": len(filters), "detectors": n_detectors, "tracts": len(tracts),
            "patches": n_patches}


def _patch_rows(skymap: RingSkyMap, tract: int, grid: int) -> list[dict[str, Any]]:
    """A grid x grid division of the tract's box (caps: the tract region for every patch)."""
    box = _tract_box(skymap, tract)
    rows = []
    for y in range(grid):
        for x in range(grid):
            if box is None:
                region = tract_region(skymap, tract)
            else:
                ra, half, lo, hi = box
                r0 = ra - half + 2 * half * x / grid
                r1 = ra - half + 2 * half * (x + 1) / grid
                d0 = lo + (hi - lo) * y / grid
                d1 = lo + (hi - lo) * (y + 1) / grid
                region = sphgeom.ConvexPolygon.convexHull(
                    [_unit(r0, d0), _unit(r1, d0), _unit(r1, d1), _unit(r0, d1)])
            rows.append({"skymap": skymap.name, "tract": tract, "id": y * grid + x,
                         "cell_x": x, "cell_y": y, "region": region})
    return rows


def _timespan(day_obs: int, seq: int, seconds: float) -> Any:
    import astropy.time
    from lsst.daf.butler import Timespan

    night = datetime.datetime.strptime(str(day_obs), "%Y%m%d").replace(tzinfo=datetime.UTC)
    begin = night + datetime.timedelta(hours=12, seconds=60 * seq)
    end = begin + datetime.timedelta(seconds=seconds)
    return Timespan(astropy.time.Time(begin, scale="tai"), astropy.time.Time(end, scale="tai"))


def define_visits(repo: str | Path, plan: Plan, site_id: str, visits: Sequence[Visit], *,
                  n_detectors: int = N_DETECTORS) -> list[Visit]:
    """``butler define-visits`` for the visits the site holds (:func:`visits_held_by`; the
    others are left out, as the site never receives their raws): day_obs, group, exposure,
    visit (with region), visit_definition, visit_system (one-to-one) and its membership, and
    visit_detector_region records. Idempotent; returns the visits defined."""
    held = visits_held_by(plan, site_id, visits)
    inst = plan.instrument
    with _butler(repo) as butler:
        reg = butler.registry
        reg.insertDimensionData("visit_system", {"instrument": inst, "id": 0, "name": "one-to-one"},
                                skip_existing=True)
        nights = sorted({v.day_obs for v in held})
        reg.insertDimensionData("day_obs", *[
            {"instrument": inst, "id": d, "timespan": _timespan(d, 0, 86400.0)} for d in nights],
            skip_existing=True)
        reg.insertDimensionData("group", *[
            {"instrument": inst, "name": v.obs_id(inst)} for v in held], skip_existing=True)
        exposures, visit_rows, definitions, members, detector_rows = [], [], [], [], []
        for v in held:
            span = _timespan(v.day_obs, v.seq_num, _EXPOSURE_TIME)
            exposures.append({
                "instrument": inst, "id": v.id, "obs_id": v.obs_id(inst),
                "physical_filter": v.physical_filter, "group": v.obs_id(inst), "day_obs": v.day_obs,
                "exposure_time": _EXPOSURE_TIME, "dark_time": _EXPOSURE_TIME,
                "observation_type": "science", "observation_reason": "science",
                "seq_num": v.seq_num, "seq_start": v.seq_num, "seq_end": v.seq_num,
                "target_name": f"tract{v.centred_on[0]}", "science_program": plan.campaign,
                "tracking_ra": v.ra, "tracking_dec": v.dec, "sky_angle": 0.0, "azimuth": 0.0,
                "zenith_angle": 30.0, "has_simulated": True, "can_see_sky": True, "timespan": span})
            visit_rows.append({
                "instrument": inst, "id": v.id, "name": v.name, "physical_filter": v.physical_filter,
                "day_obs": v.day_obs, "seq_num": v.seq_num, "exposure_time": _EXPOSURE_TIME,
                "target_name": f"tract{v.centred_on[0]}", "observation_reason": "science",
                "science_program": plan.campaign, "azimuth": 0.0, "zenith_angle": 30.0,
                "region": v.region, "timespan": span})
            definitions.append({"instrument": inst, "exposure": v.id, "visit": v.id})
            members.append({"instrument": inst, "visit": v.id, "visit_system": 0})
            detector_rows += [{"instrument": inst, "visit": v.id, "detector": d, "region": r}
                              for d, r in v.detector_regions(n_detectors).items()]
        reg.insertDimensionData("exposure", *exposures, skip_existing=True)
        reg.insertDimensionData("visit", *visit_rows, skip_existing=True)
        reg.insertDimensionData("visit_definition", *definitions, skip_existing=True)
        reg.insertDimensionData("visit_system_membership", *members, skip_existing=True)
        reg.insertDimensionData("visit_detector_region", *detector_rows, skip_existing=True)
    return held


# -- files --------------------------------------------------------------------------------------

def _fits_bytes(cards: dict[str, Any]) -> bytes:
    """A minimal valid FITS file: a primary HDU without data, with the given header cards."""
    lines = ["SIMPLE  =                    T", "BITPIX  =                    8",
             "NAXIS   =                    0", "EXTEND  =                    T"]
    for key, value in cards.items():
        text = str(value).replace("'", "''")[:60]
        lines.append(f"{key.upper()[:8]:<8}= '{text}'")
    lines.append("END")
    header = "".join(f"{line:<80}"[:80] for line in lines)
    header += " " * (-len(header) % 2880)
    return header.encode("ascii", errors="replace")


def _formatter_for(butler: Butler, ref: DatasetRef) -> tuple[str | type, str]:
    """(formatter, file extension) to record: the datastore's default formatter if it can be
    imported here, else STAND_IN_FORMATTER with a FITS file."""
    try:
        cls = butler._datastore.formatterFactory.getFormatterClass(ref)  # noqa: SLF001
    except Exception:  # noqa: BLE001 - ImportError of a stack-only formatter, or none configured
        return STAND_IN_FORMATTER, ".fits"
    ext = getattr(cls, "default_extension", None) or getattr(cls, "extension", None)
    if not isinstance(ext, str) or not ext:
        supported = sorted(getattr(cls, "supported_extensions", ())
                           or getattr(cls, "supportedExtensions", ()))
        ext = supported[0] if supported else ".dat"
    return cls, ext


def _file_bytes(ext: str, content: dict[str, Any]) -> bytes:
    if ext in (".parq", ".parquet"):
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({key: [str(value)] for key, value in content.items()})
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue()
    if ext == ".fits":
        return _fits_bytes(content)
    if ext in (".pickle", ".pkl"):
        import pickle

        return pickle.dumps(content)
    if ext == ".yaml":
        return "".join(f"{k}: {json.dumps(str(v))}\n" for k, v in content.items()).encode()
    return (json.dumps(content, sort_keys=True, default=str) + "\n").encode()


def _ingest_stand_in_files(butler: Butler, refs: Sequence[DatasetRef],
                           extra: dict[str, Any] | None = None) -> list[Path]:
    """Write one small file per ref at the datastore's templated path and ingest it in place
    (what ``butler.put`` leaves behind). The refs need expanded data IDs."""
    from lsst.daf.butler import FileDataset

    if not refs:
        return []
    datastore = butler._datastore  # noqa: SLF001 - the file template and formatter lookup
    root = Path(datastore.root.ospath)
    datasets, paths = [], []
    formatters: dict[str, tuple[str | type, str]] = {}
    for ref in refs:
        key = ref.datasetType.storageClass_name
        if key not in formatters:
            formatters[key] = _formatter_for(butler, ref)
        formatter, ext = formatters[key]
        rel = datastore.templates.getTemplate(ref).format(ref) + ext
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        content = {"dataset_type": ref.datasetType.name, "dataset_id": str(ref.id),
                   "run": ref.run, "data_id": json.dumps(dict(ref.dataId.required), default=str),
                   **(extra or {})}
        path.write_bytes(_file_bytes(ext, content))
        datasets.append(FileDataset(path=str(path), refs=[ref], formatter=formatter))
        paths.append(path)
    butler.ingest(*datasets, transfer="auto")
    return paths


# -- jobs ---------------------------------------------------------------------------------------

class JobInputError(RuntimeError):
    """A simulated job's inputs are not all there (what the real job would have failed on)."""

    def __init__(self, job: Job, problems: list[str]) -> None:
        self.job, self.problems = job, problems
        super().__init__(f"{job.stage} at {job.site}: " + "; ".join(problems))


@dataclass
class JobResult:
    job: Job
    run: str  # the new RUN collection
    produced: dict[str, int]  # dataset type -> datasets ingested
    inputs: dict[str, tuple[int, int]]  # consumed dataset type -> (found, expected)
    problems: list[str]  # missing inputs or visits (empty when all is well)
    files: list[Path] = field(default_factory=list, repr=False)


def run_name(plan: Plan, job: Job, attempt: int = 0) -> str:
    """The RUN collection of a job's ``attempt``-th run: ``<output>/<date>T<HHMMSS>Z`` with
    HH = the stage's index, MM = the site's index in the plan, SS = the attempt. Timestamp-like
    (BPS's ``{timestamp}``) and deterministic, and different at every site: outputs gathered
    from two sites must not land in one RUN (ctrl_ingestd keeps the source's RUN)."""
    site_index = [s.id for s in plan.sites].index(job.site)
    return f"{job.output}/{_RUN_DATE}T{job.stage_index:02d}{site_index:02d}{attempt:02d}Z"


def _next_run(butler: Butler, plan: Plan, job: Job) -> str:
    existing = {info.name for info in butler.collections.query_info(f"{job.output}/*")}
    attempt = 0
    while run_name(plan, job, attempt) in existing:
        attempt += 1
    return run_name(plan, job, attempt)


def _dataset_type(butler: Butler, plan: Plan, name: str) -> DatasetType:
    """The registered dataset type, registered first (as ``--register-dataset-types``) if new."""
    from lsst.daf.butler import DatasetType, MissingDatasetTypeError

    try:
        return butler.get_dataset_type(name)
    except MissingDatasetTypeError:
        pass
    ds = next(d for d in plan.datasets if d.type == name)
    if ds.storage_class is None:
        raise ValueError(f"dataset type {name} is not registered in {butler} and the campaign "
                         "gives no storage class (datasets[].storage_class)")
    dtype = DatasetType(name, ds.dimensions, ds.storage_class, universe=butler.dimensions)
    butler.registry.registerDatasetType(dtype)
    return dtype


def _data_ids(butler: Butler, dtype: DatasetType, where: str) -> list[Any]:
    return list(butler.query_data_ids(dtype.dimensions, where=where, with_dimension_records=True,
                                      limit=None, explain=False))


def simulate_job(repo: str | Path, plan: Plan, job: Job, visits: Sequence[Visit] | None = None, *,
                 require_inputs: bool = True) -> JobResult:
    """Run one stage at one site, as far as the Butler can tell: for every dataset type the spec
    says ``job.stage`` produces, one small file per data ID of the type's dimensions matching
    ``job.data_query`` (the Butler's own query, as quantum-graph generation does: per visit
    overlapping the job's tracts, per tract, per instrument, ...), ingested into a new RUN
    (:func:`run_name`) that is chained into the CHAINED ``job.output`` ahead of
    the job's input collections (pipetask ``--output``/``--output-run``).

    First the inputs: every input collection must exist, and every dataset type the stage
    consumes (``consumed_by``) must be found (find-first in ``job.in_collections``) for every
    data ID of the job; with ``visits``, the visits the site defines must include every visit
    overlapping the job's tracts. A problem raises :class:`JobInputError` (``require_inputs``)
    or is listed in the result."""
    from lsst.daf.butler import CollectionType, DatasetRef, MissingCollectionError

    problems: list[str] = []
    inputs: dict[str, tuple[int, int]] = {}
    produced: dict[str, int] = {}
    files: list[Path] = []
    with _butler(repo) as butler:
        missing_collections = []
        for name in job.in_collections:
            try:
                butler.collections.get_info(name)
            except MissingCollectionError:
                missing_collections.append(name)
        if missing_collections:
            problems.append(f"input collection(s) missing: {', '.join(missing_collections)}")
        if visits is not None:
            expected = {v.id for v in visits_overlapping(plan, job.tracts, visits)}
            where = tract_query(plan.instrument, plan.skymap.name, job.tracts)  # no extra_query
            found = {d["visit"] for d in butler.query_data_ids(
                ["instrument", "visit"], where=where, limit=None, explain=False)}
            if expected - found:
                problems.append(f"{len(expected - found)} visit(s) overlapping the job's tracts are "
                                f"not defined here (e.g. {sorted(expected - found)[:5]})")
        if not missing_collections:
            for ds in plan.datasets:
                if job.stage not in ds.consumed_by:
                    continue
                dtype = _dataset_type(butler, plan, ds.type)
                want = {d.required_values for d in _data_ids(butler, dtype, job.data_query)}
                refs = butler.query_datasets(dtype, collections=job.in_collections,
                                             where=job.data_query, find_first=True,
                                             limit=None, explain=False)
                have = {r.dataId.required_values for r in refs}
                inputs[ds.type] = (len(want & have), len(want))
                if want - have:
                    problems.append(f"{len(want - have)} of {len(want)} {ds.type} input(s) missing "
                                    "from the job's input collections")
        if problems and require_inputs:
            raise JobInputError(job, problems)

        run = _next_run(butler, plan, job)
        butler.collections.register(run, CollectionType.RUN)
        for ds in plan.datasets:
            if ds.produced_by != job.stage:
                continue
            dtype = _dataset_type(butler, plan, ds.type)
            refs = [DatasetRef(dtype, d, run=run) for d in _data_ids(butler, dtype, job.data_query)]
            files += _ingest_stand_in_files(butler, refs, {"stage": job.stage, "site": job.site})
            produced[ds.type] = len(refs)
        if butler.collections.register(job.output, CollectionType.CHAINED):
            present = [c for c in job.in_collections if c not in missing_collections]
            butler.collections.redefine_chain(job.output, [run, *present])
        else:
            butler.collections.prepend_chain(job.output, run)
    return JobResult(job, run, produced, inputs, problems, files)


def simulate_raws(repo: str | Path, plan: Plan, visits: Sequence[Visit], *,
                  n_detectors: int = N_DETECTORS, dataset_type: str = "raw") -> int:
    """``butler ingest-raws`` at the central site: one raw file per (exposure, detector) of the
    given visits (defined first with :func:`define_visits`) into ``<instrument>/raw/all``.
    Returns the number of raws ingested (those already there are skipped)."""
    from lsst.daf.butler import CollectionType, DatasetRef, DatasetType

    collection = f"{plan.instrument}/raw/all"
    with _butler(repo) as butler:
        dtype = DatasetType(dataset_type, ["instrument", "exposure", "detector"], "Exposure",
                            universe=butler.dimensions)
        butler.registry.registerDatasetType(dtype)
        butler.collections.register(collection, CollectionType.RUN)
        ids = sorted(v.id for v in visits)
        if not ids:
            return 0
        where = f"instrument='{plan.instrument}' AND exposure IN ({', '.join(map(str, ids))}) " \
                f"AND detector < {n_detectors}"
        have = {r.dataId.required_values for r in butler.query_datasets(
            dtype, collections=collection, where=where, limit=None, explain=False)}
        data_ids = [d for d in butler.query_data_ids(dtype.dimensions, where=where,
                                                     with_dimension_records=True, limit=None,
                                                     explain=False)
                    if d.required_values not in have]
        refs = [DatasetRef(dtype, d, run=collection) for d in data_ids]
        _ingest_stand_in_files(butler, refs, {"kind": "raw"})
    return len(refs)

