"""Ring skymap geometry (lsst/skymap ``RingsSkyMap``, version-1 numbering) in pure Python.

drpc splits a data release between sites by declination rings and turns each site's share
into ``tract >= a AND tract <= b`` Butler query ranges.  That needs tract ids, centres and ring
membership at compile time, on machines without the LSST stack, so the geometry is restated
here with the standard library only.  Angles are degrees at the API; internally the maths is
done in radians in the same order as lsst/skymap so that ring sizes and ids agree bit for bit.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["BUILTIN_SKYMAPS", "RingSkyMap", "compress_ranges"]

_TWO_PI = 2.0 * math.pi
_HALF_PI = 0.5 * math.pi


def _wrap_radians(angle: float) -> float:
    """Wrap an angle to [0, 2pi); guards the float case where ``x % 2pi`` rounds up to 2pi."""
    wrapped = math.fmod(angle, _TWO_PI)
    if wrapped < 0.0:
        wrapped += _TWO_PI
    return 0.0 if wrapped >= _TWO_PI else wrapped


def _wrap_degrees(angle: float) -> float:
    """Wrap an angle to [0, 360) with the same round-up guard as ``_wrap_radians``."""
    wrapped = math.fmod(angle, 360.0)
    if wrapped < 0.0:
        wrapped += 360.0
    return 0.0 if wrapped >= 360.0 else wrapped


@dataclass(frozen=True)
class _RingLayout:
    """Per-ring tract counts and first ids; depends on ``num_rings`` only, so it is shared."""

    ring_size: float  # radians
    counts: tuple[int, ...]
    first_ids: tuple[int, ...]  # id of tract k=0 in each ring
    total: int  # tracts including both caps


@functools.lru_cache(maxsize=16)
def _ring_layout(num_rings: int) -> _RingLayout:
    """Compute the ring division once per ring count (the same formula as lsst/skymap)."""
    ring_size = math.pi / (num_rings + 1)  # the two caps together count as one more ring
    counts: list[int] = []
    for i in range(num_rings):
        start = ring_size * (i + 0.5) - _HALF_PI
        stop = start + ring_size
        # Divide in RA at the ring edge nearer the equator so neighbouring tracts overlap.
        dec = min(math.fabs(start), math.fabs(stop))
        counts.append(int(_TWO_PI * math.cos(dec) / ring_size) + 1)
    first_ids: list[int] = []
    next_id = 1  # id 0 is the south polar cap
    for n in counts:
        first_ids.append(next_id)
        next_id += n
    return _RingLayout(ring_size, tuple(counts), tuple(first_ids), next_id + 1)


@dataclass(frozen=True)
class RingSkyMap:
    """Version-1 ring skymap geometry (tract ids, centres, ring membership) without the LSST stack.

    Ring ``-1`` is the south polar cap (tract 0) and ring ``num_rings`` the north polar cap
    (the last id).  ``tract_overlap_arcmin`` and ``pixel_scale_arcsec`` are carried for the
    skymap registration config; they do not change ids or centres.
    """

    name: str
    num_rings: int
    ra_start_deg: float = 0.0
    tract_overlap_arcmin: float = 1.0
    pixel_scale_arcsec: float = 0.2

    def __post_init__(self) -> None:
        """Reject configs lsst/skymap itself would reject, so ids never silently differ."""
        if isinstance(self.num_rings, bool) or not isinstance(self.num_rings, int):
            raise TypeError(f"num_rings must be an int, got {self.num_rings!r}")
        if self.num_rings <= 0:
            raise ValueError(f"num_rings must be positive, got {self.num_rings}")
        if not (0.0 <= self.ra_start_deg < 360.0):
            raise ValueError(f"ra_start_deg must be in [0, 360), got {self.ra_start_deg}")

    # -- layout -----------------------------------------------------------------------------

    @property
    def _layout(self) -> _RingLayout:
        return _ring_layout(self.num_rings)

    @property
    def ring_size_deg(self) -> float:
        """Declination height of one ring (and of the two caps together)."""
        return math.degrees(self._layout.ring_size)

    def tract_count(self) -> int:
        """Number of tract ids: every ring's tracts plus the two polar caps."""
        return self._layout.total

    def ring_tract_counts(self) -> tuple[int, ...]:
        """Tracts per ring, south to north (caps excluded)."""
        return self._layout.counts

    def is_valid_tract(self, tract: int) -> bool:
        """True for an integer id in [0, tract_count())."""
        return (
            isinstance(tract, int)
            and not isinstance(tract, bool)
            and 0 <= tract < self._layout.total
        )

    def _check_tract(self, tract: int) -> None:
        if not self.is_valid_tract(tract):
            raise ValueError(
                f"tract {tract!r} is not a tract id of skymap {self.name!r} "
                f"(valid: 0..{self._layout.total - 1})"
            )

    def _check_ring(self, ring: int, *, caps: bool = True) -> None:
        low = -1 if caps else 0
        high = self.num_rings if caps else self.num_rings - 1
        if isinstance(ring, bool) or not isinstance(ring, int) or not (low <= ring <= high):
            raise ValueError(f"ring {ring!r} is out of range [{low}, {high}] for {self.name!r}")

    def _ring_and_index(self, tract: int) -> tuple[int, int]:
        """(ring, index within ring) of a tract; caps have index 0."""
        self._check_tract(tract)
        layout = self._layout
        if tract == 0:
            return -1, 0
        if tract == layout.total - 1:
            return self.num_rings, 0
        ring = bisect.bisect_right(layout.first_ids, tract) - 1
        return ring, tract - layout.first_ids[ring]

    def ring_of_tract(self, tract: int) -> int:
        """Ring of a tract: -1 south cap, 0..num_rings-1 rings, num_rings north cap."""
        return self._ring_and_index(tract)[0]

    def ring_tract_range(self, ring: int) -> tuple[int, int]:
        """Inclusive (first, last) ids of a ring (or cap): whole rings are contiguous ids."""
        self._check_ring(ring)
        layout = self._layout
        if ring == -1:
            return 0, 0
        if ring == self.num_rings:
            return layout.total - 1, layout.total - 1
        first = layout.first_ids[ring]
        return first, first + layout.counts[ring] - 1

    # -- declinations -----------------------------------------------------------------------

    def _ring_start_rad(self, ring: int) -> float:
        return self._layout.ring_size * (ring + 0.5) - _HALF_PI

    def ring_dec_bounds(self, ring: int) -> tuple[float, float]:
        """Declination span (degrees) of a ring's inner region; caps run to the poles."""
        self._check_ring(ring)
        size = self._layout.ring_size
        if ring == -1:
            return -90.0, math.degrees(self._ring_start_rad(0))
        if ring == self.num_rings:
            return math.degrees(self._ring_start_rad(self.num_rings - 1) + size), 90.0
        start = self._ring_start_rad(ring)
        return math.degrees(start), math.degrees(start + size)

    def ring_center_dec(self, ring: int) -> float:
        """Declination (degrees) of the centres of a ring's tracts; caps are the poles."""
        self._check_ring(ring)
        if ring == -1:
            return -90.0
        if ring == self.num_rings:
            return 90.0
        return math.degrees(self._layout.ring_size * (ring + 1) - _HALF_PI)

    # -- tracts -----------------------------------------------------------------------------

    def tract_center(self, tract: int) -> tuple[float, float]:
        """(ra, dec) of a tract centre in degrees, ra in [0, 360); caps are (0, -90), (0, 90)."""
        ring, index = self._ring_and_index(tract)
        if ring == -1:
            return 0.0, -90.0
        if ring == self.num_rings:
            return 0.0, 90.0
        ra = _wrap_radians(
            _TWO_PI * index / self._layout.counts[ring] + math.radians(self.ra_start_deg)
        )
        return _wrap_degrees(math.degrees(ra)), self.ring_center_dec(ring)

    def tract_at(self, ra: float, dec: float) -> int:
        """Id of the tract whose inner (non-overlap) region contains (ra, dec) in degrees."""
        if not (math.isfinite(ra) and math.isfinite(dec)):
            raise ValueError(f"coordinates must be finite, got ({ra!r}, {dec!r})")
        if not (-90.0 <= dec <= 90.0):
            raise ValueError(f"dec must be in [-90, 90], got {dec!r}")
        layout = self._layout
        dec_rad = math.radians(dec)
        first_start = self._ring_start_rad(0)
        if dec_rad < first_start:
            return 0
        if dec_rad > -first_start:
            return layout.total - 1
        ring = int((dec_rad - first_start) / layout.ring_size)
        if ring >= self.num_rings:  # exactly on the last ring's top edge
            return layout.total - 1
        n = layout.counts[ring]
        offset = _wrap_radians(math.radians(ra) - math.radians(self.ra_start_deg))
        index = int(offset / (_TWO_PI / n) + 0.5)
        if index == n:  # the half tract below raStart belongs to tract k=0
            index = 0
        return layout.first_ids[ring] + index

    def tract_box(self, tract: int) -> tuple[float, float, float, float] | None:
        """Inner (ra_centre, ra_half_width, dec_lo, dec_hi) of a ring tract, degrees; None for
        the polar caps (they have no RA extent)."""
        ring = self.ring_of_tract(tract)
        if ring < 0 or ring >= self.num_rings:
            return None
        ra, _ = self.tract_center(tract)
        dec_lo, dec_hi = self.ring_dec_bounds(ring)
        return ra, 180.0 / self._layout.counts[ring], dec_lo, dec_hi

    def tracts_near(self, tract: int, margin_deg: float) -> set[int]:
        """Other tracts whose inner region comes within ``margin_deg`` of this tract's box (in
        RA/Dec, the RA margin widened by 1/cos(dec)): a visit that reaches both may be held by
        both owners. A polar cap's neighbours are the whole adjacent ring and what lies within
        the margin of it."""
        box = self.tract_box(tract)
        if box is None:
            ring = self.ring_of_tract(tract)
            lo, hi = self.ring_dec_bounds(ring)
            dec_lo, dec_hi = (lo, hi + margin_deg) if ring < 0 else (lo - margin_deg, hi)
            ra_lo, ra_hi = 0.0, 360.0
        else:
            ra, half, dec_lo, dec_hi = box
            dec_lo, dec_hi = dec_lo - margin_deg, dec_hi + margin_deg
            widest = min(89.0, max(abs(dec_lo), abs(dec_hi)))
            reach = half + margin_deg / math.cos(math.radians(widest))
            ra_lo, ra_hi = (0.0, 360.0) if reach >= 180.0 else (ra - reach, ra + reach)
        dec_lo, dec_hi = max(-90.0, dec_lo), min(90.0, dec_hi)
        rows = max(2, math.ceil((dec_hi - dec_lo) / (self.ring_size_deg / 3.0)) + 1)
        found: set[int] = set()
        for i in range(rows):
            dec = dec_lo + (dec_hi - dec_lo) * i / (rows - 1)
            ring = self.ring_of_tract(self.tract_at(0.0, dec))
            count = self._layout.counts[ring] if 0 <= ring < self.num_rings else 1
            step = 360.0 / count / 2.0
            columns = max(2, math.ceil((ra_hi - ra_lo) / step) + 1)
            for k in range(columns):
                ra = ra_lo + (ra_hi - ra_lo) * k / (columns - 1)
                found.add(self.tract_at(ra % 360.0, dec))
        found.discard(tract)
        return found

    def tracts_with_center_dec_in(
        self, dec_min: float, dec_max: float, *, include_max: bool = False
    ) -> list[int]:
        """Sorted ids whose centre dec is in [dec_min, dec_max) (closed with include_max).

        Iterates rings, not tracts: every ring contributes a whole contiguous id range.
        """
        ids: list[int] = []
        for ring in range(-1, self.num_rings + 1):
            centre = self.ring_center_dec(ring)
            above_min = centre >= dec_min
            below_max = centre <= dec_max if include_max else centre < dec_max
            if above_min and below_max:
                first, last = self.ring_tract_range(ring)
                ids.extend(range(first, last + 1))
        return ids


BUILTIN_SKYMAPS: Mapping[str, RingSkyMap] = MappingProxyType(
    {
        "hsc_rings_v1": RingSkyMap(
            name="hsc_rings_v1",
            num_rings=120,
            ra_start_deg=0.0,
            tract_overlap_arcmin=1.0,
            pixel_scale_arcsec=0.168,
        ),
        "lsst_cells_v1": RingSkyMap(
            name="lsst_cells_v1",
            num_rings=120,
            ra_start_deg=0.0,
            tract_overlap_arcmin=1.0,
            pixel_scale_arcsec=0.2,
        ),
    }
)
"""Skymaps drpc knows by name; both share tract ids and centres (same rings, same raStart)."""


def compress_ranges(ids: Iterable[int]) -> list[tuple[int, int]]:
    """Merge ids into sorted inclusive (first, last) runs, for short Butler ``where`` clauses."""
    ranges: list[tuple[int, int]] = []
    for value in sorted(set(ids)):
        if ranges and value == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], value)
        else:
            ranges.append((value, value))
    return ranges
