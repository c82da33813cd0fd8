"""Tests for compiler.skymap: pinned ring-skymap ids and centres, lookups, ranges."""

from __future__ import annotations

import math

import pytest

from compiler.skymap import BUILTIN_SKYMAPS, RingSkyMap, compress_ranges

HSC = BUILTIN_SKYMAPS["hsc_rings_v1"]
LSST = BUILTIN_SKYMAPS["lsst_cells_v1"]

# (skymap, tract, ring, ra, dec) from the reference table (lsst/skymap version-1 numbering).
PINNED: list[tuple[str, int, int, float, float]] = [
    ("hsc_rings_v1", 9813, 61, 150.2479, 2.2314),  # COSMOS
    ("hsc_rings_v1", 9615, 60, 216.2963, 0.7438),  # GAMA15H
    ("hsc_rings_v1", 9697, 60, 337.7778, 0.7438),  # VVDS
    ("hsc_rings_v1", 9469, 60, 0.0, 0.7438),
    ("hsc_rings_v1", 9470, 60, 1.4815, 0.7438),
    ("hsc_rings_v1", 9941, 61, 340.6612, 2.2314),
    ("hsc_rings_v1", 9942, 61, 342.1488, 2.2314),
    ("hsc_rings_v1", 9948, 61, 351.0744, 2.2314),
    ("hsc_rings_v1", 9949, 61, 352.5620, 2.2314),
    ("lsst_cells_v1", 5063, 41, 53.0876, -27.5207),  # ECDFS
    ("lsst_cells_v1", 2393, 27, 57.0732, -48.3471),  # EDF-S
    ("lsst_cells_v1", 453, 11, 4.6154, -72.1488),  # 47 Tuc
]


@pytest.mark.parametrize(("skymap", "tract", "ring", "ra", "dec"), PINNED)
def test_pinned_tract_centres(skymap: str, tract: int, ring: int, ra: float, dec: float) -> None:
    sm = BUILTIN_SKYMAPS[skymap]
    got_ra, got_dec = sm.tract_center(tract)
    assert got_ra == pytest.approx(ra, abs=1e-4)
    assert got_dec == pytest.approx(dec, abs=1e-4)
    assert sm.ring_of_tract(tract) == ring


@pytest.mark.parametrize(("skymap", "tract", "ring", "ra", "dec"), PINNED)
def test_pinned_tracts_same_in_both_skymaps(
    skymap: str, tract: int, ring: int, ra: float, dec: float
) -> None:
    other = LSST if skymap == "hsc_rings_v1" else HSC
    assert other.tract_center(tract) == pytest.approx((ra, dec), abs=1e-4)
    assert other.ring_of_tract(tract) == ring


@pytest.mark.parametrize(("skymap", "tract", "ring", "ra", "dec"), PINNED)
def test_pinned_tract_found_at_its_centre(
    skymap: str, tract: int, ring: int, ra: float, dec: float
) -> None:
    assert BUILTIN_SKYMAPS[skymap].tract_at(ra, dec) == tract


def test_builtin_skymaps() -> None:
    assert set(BUILTIN_SKYMAPS) == {"hsc_rings_v1", "lsst_cells_v1"}
    for name, sm in BUILTIN_SKYMAPS.items():
        assert sm.name == name
        assert sm.num_rings == 120
        assert sm.ra_start_deg == 0.0
        assert sm.tract_overlap_arcmin == 1.0
    assert HSC.pixel_scale_arcsec == pytest.approx(0.168)
    assert LSST.pixel_scale_arcsec == pytest.approx(0.2)


def test_total_tract_count() -> None:
    for sm in BUILTIN_SKYMAPS.values():
        assert sm.tract_count() == 18938
        counts = sm.ring_tract_counts()
        assert len(counts) == 120
        assert sum(counts) + 2 == 18938


def test_ring_counts_and_size() -> None:
    counts = HSC.ring_tract_counts()
    # Symmetric about the equator, largest next to it, 243 tracts in the rings touching dec 0.
    assert counts == tuple(reversed(counts))
    assert counts[59] == counts[60] == 243 == max(counts)
    assert counts[61] == 242
    assert min(counts) == counts[0] == counts[-1]
    assert HSC.ring_size_deg == pytest.approx(1.4876, abs=1e-4)
    assert HSC.ring_tract_range(60) == (9469, 9711)
    assert HSC.ring_tract_range(61) == (9712, 9953)


def test_ring_membership_edges() -> None:
    last = HSC.tract_count() - 1
    assert HSC.ring_of_tract(0) == -1
    assert HSC.ring_of_tract(1) == 0
    assert HSC.ring_of_tract(HSC.ring_tract_counts()[0]) == 0
    assert HSC.ring_of_tract(HSC.ring_tract_counts()[0] + 1) == 1
    assert HSC.ring_of_tract(last - 1) == 119
    assert HSC.ring_of_tract(last) == 120
    assert HSC.ring_of_tract(9468) == 59
    assert HSC.ring_of_tract(9469) == 60
    assert HSC.ring_of_tract(9711) == 60
    assert HSC.ring_of_tract(9712) == 61


def test_ring_decs() -> None:
    h = 180.0 / 121
    assert HSC.ring_dec_bounds(-1) == pytest.approx((-90.0, -90.0 + 0.5 * h))
    assert HSC.ring_dec_bounds(0) == pytest.approx((-90.0 + 0.5 * h, -90.0 + 1.5 * h))
    assert HSC.ring_dec_bounds(60) == pytest.approx((0.0, h), abs=1e-9)
    assert HSC.ring_dec_bounds(119) == pytest.approx((90.0 - 1.5 * h, 90.0 - 0.5 * h))
    assert HSC.ring_dec_bounds(120) == pytest.approx((90.0 - 0.5 * h, 90.0))
    assert HSC.ring_center_dec(-1) == -90.0
    assert HSC.ring_center_dec(120) == 90.0
    assert HSC.ring_center_dec(60) == pytest.approx(0.7438, abs=1e-4)
    for ring in range(120):
        low, high = HSC.ring_dec_bounds(ring)
        assert HSC.ring_center_dec(ring) == pytest.approx(0.5 * (low + high))
        # Rings tile the sky without gaps.
        assert HSC.ring_dec_bounds(ring - 1)[1] == pytest.approx(low)


def _spread_of_tracts(sm: RingSkyMap) -> list[int]:
    """Caps, the first and last tract of every ring, and the ring middles."""
    tracts = {0, sm.tract_count() - 1}
    for ring in range(sm.num_rings):
        first, last = sm.ring_tract_range(ring)
        tracts.update({first, first + 1, (first + last) // 2, last - 1, last})
    return sorted(tracts)


@pytest.mark.parametrize("skymap", sorted(BUILTIN_SKYMAPS))
def test_round_trip_centres(skymap: str) -> None:
    sm = BUILTIN_SKYMAPS[skymap]
    tracts = _spread_of_tracts(sm)
    assert len(tracts) > 500
    for tract in tracts:
        assert sm.tract_at(*sm.tract_center(tract)) == tract


def test_round_trip_every_tract() -> None:
    mismatched = [t for t in range(HSC.tract_count()) if HSC.tract_at(*HSC.tract_center(t)) != t]
    assert mismatched == []


def test_centres_in_range_and_distinct() -> None:
    centres = [HSC.tract_center(t) for t in range(HSC.tract_count())]
    assert all(0.0 <= ra < 360.0 and -90.0 <= dec <= 90.0 for ra, dec in centres)
    rounded = {(round(ra, 6), round(dec, 6)) for ra, dec in centres}
    assert len(rounded) == HSC.tract_count()


def test_caps() -> None:
    last = HSC.tract_count() - 1
    assert HSC.tract_center(0) == (0.0, -90.0)
    assert HSC.tract_center(last) == (0.0, 90.0)
    assert HSC.tract_at(123.0, -90.0) == 0
    assert HSC.tract_at(0.0, -89.3) == 0
    assert HSC.tract_at(0.0, -89.2) == 1
    assert HSC.tract_at(200.0, 90.0) == last
    assert HSC.tract_at(0.0, 89.3) == last
    assert HSC.ring_of_tract(HSC.tract_at(0.0, 89.2)) == 119


def test_ra_wrap() -> None:
    first, last = HSC.ring_tract_range(60)
    n = HSC.ring_tract_counts()[60]
    half = 180.0 / n
    dec = HSC.ring_center_dec(60)
    # RA just below 360 is within half a tract of raStart: tract k=0, not k=n.
    assert HSC.tract_at(359.9999, dec) == first
    assert HSC.tract_at(360.0 - 0.9 * half, dec) == first
    assert HSC.tract_at(360.0 - 1.1 * half, dec) == last
    assert HSC.tract_at(360.0, dec) == first
    assert HSC.tract_at(-0.5 * half, dec) == first
    assert HSC.tract_at(720.0 + 1.1 * half, dec) == first + 1
    ra_last, _ = HSC.tract_center(last)
    assert ra_last == pytest.approx(360.0 - 2 * half)


def test_ra_start_shifts_centres_not_ids() -> None:
    shifted = RingSkyMap(name="shifted", num_rings=120, ra_start_deg=10.0)
    assert shifted.tract_count() == HSC.tract_count()
    first, last = shifted.ring_tract_range(60)
    assert shifted.tract_center(first)[0] == pytest.approx(10.0)
    assert shifted.tract_at(10.0, 0.5) == first
    assert shifted.tract_at(9.5, 0.5) == first  # half a tract is 180/243 deg wide
    assert shifted.tract_at(9.0, 0.5) == last
    assert shifted.tract_at(8.0, 0.5) == last
    for tract in _spread_of_tracts(shifted):
        assert shifted.tract_at(*shifted.tract_center(tract)) == tract


def test_small_skymap() -> None:
    sm = RingSkyMap(name="tiny", num_rings=3)
    # h = 45 deg: rings centred at -45, 0, 45; each divided at |dec| = 22.5 (the edge nearer
    # the equator), so every ring has floor(8 cos 22.5) + 1 = 8 tracts.
    assert sm.ring_tract_counts() == (8, 8, 8)
    assert sm.tract_count() == 26
    assert sm.ring_tract_range(1) == (9, 16)
    assert sm.tract_center(9) == pytest.approx((0.0, 0.0))
    assert sm.tract_center(16) == pytest.approx((315.0, 0.0))
    assert sm.tract_center(1) == pytest.approx((0.0, -45.0))
    assert sm.tract_at(0.0, -67.4) == 1
    assert sm.tract_at(0.0, -67.6) == 0
    assert sm.tract_at(337.6, 10.0) == 9
    assert sm.tract_at(337.4, 10.0) == 16


def test_whole_sky_selection_returns_every_id_once() -> None:
    ids = HSC.tracts_with_center_dec_in(-90.0, 90.0, include_max=True)
    assert ids == list(range(HSC.tract_count()))
    # Half-open by default: the north cap (centre dec 90) is excluded.
    assert HSC.tracts_with_center_dec_in(-90.0, 90.0) == list(range(HSC.tract_count() - 1))


def test_band_of_whole_rings_is_one_range() -> None:
    low = HSC.ring_dec_bounds(40)[0]
    high = HSC.ring_dec_bounds(49)[1]
    ids = HSC.tracts_with_center_dec_in(low, high)
    first, _ = HSC.ring_tract_range(40)
    _, last = HSC.ring_tract_range(49)
    assert ids == list(range(first, last + 1))
    assert compress_ranges(ids) == [(first, last)]
    assert len(ids) == sum(HSC.ring_tract_counts()[40:50])


def test_selection_boundaries() -> None:
    centre = HSC.ring_center_dec(60)
    first, last = HSC.ring_tract_range(60)
    assert HSC.tracts_with_center_dec_in(centre, centre) == []
    assert HSC.tracts_with_center_dec_in(centre, centre, include_max=True) == list(
        range(first, last + 1)
    )
    assert HSC.tracts_with_center_dec_in(0.0, centre) == []
    assert HSC.tracts_with_center_dec_in(-90.0, -90.0, include_max=True) == [0]
    assert HSC.tracts_with_center_dec_in(10.0, -10.0, include_max=True) == []


def test_dr1_footprint_is_contiguous() -> None:
    ids = LSST.tracts_with_center_dec_in(-90.0, 30.0, include_max=True)
    assert ids[0] == 0
    assert compress_ranges(ids) == [(0, LSST.ring_tract_range(79)[1])]
    assert all(LSST.tract_center(t)[1] <= 30.0 for t in ids)
    assert LSST.tract_center(ids[-1] + 1)[1] > 30.0


def test_compress_ranges() -> None:
    assert compress_ranges([]) == []
    assert compress_ranges([5]) == [(5, 5)]
    assert compress_ranges([3, 1]) == [(1, 1), (3, 3)]
    assert compress_ranges([1, 2, 3]) == [(1, 3)]
    assert compress_ranges([7, 3, 2, 2, 9, 8, 1, 3, 12]) == [(1, 3), (7, 9), (12, 12)]
    assert compress_ranges(iter([0, 0, 0])) == [(0, 0)]
    assert compress_ranges(range(10, 0, -1)) == [(1, 10)]


@pytest.mark.parametrize("bad", [-1, 18938, 10**6, 1.0, "5", True, None])
def test_bad_tract_ids(bad: object) -> None:
    assert not HSC.is_valid_tract(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        HSC.ring_of_tract(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        HSC.tract_center(bad)  # type: ignore[arg-type]


def test_valid_tract_ids() -> None:
    assert HSC.is_valid_tract(0)
    assert HSC.is_valid_tract(18937)
    assert HSC.is_valid_tract(9813)


@pytest.mark.parametrize("ring", [-2, 121, 1000])
def test_bad_rings(ring: int) -> None:
    with pytest.raises(ValueError):
        HSC.ring_dec_bounds(ring)
    with pytest.raises(ValueError):
        HSC.ring_center_dec(ring)
    with pytest.raises(ValueError):
        HSC.ring_tract_range(ring)


@pytest.mark.parametrize(
    ("ra", "dec"), [(0.0, 90.5), (0.0, -91.0), (math.nan, 0.0), (0.0, math.inf)]
)
def test_bad_coordinates(ra: float, dec: float) -> None:
    with pytest.raises(ValueError):
        HSC.tract_at(ra, dec)


@pytest.mark.parametrize(
    "kwargs",
    [{"num_rings": 0}, {"num_rings": -3}, {"num_rings": 120, "ra_start_deg": 360.0}],
)
def test_bad_configs(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RingSkyMap(name="bad", **kwargs)  # type: ignore[arg-type]
