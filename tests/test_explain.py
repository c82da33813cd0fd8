"""`drpc explain`: who owns a tract, which sites hold its boundary visits, why a tract is outside."""

from __future__ import annotations

import functools
import math

import pytest

from compiler.defaults import FOV_RADIUS_DEG
from compiler.pipeline import compile_campaign
from compiler.plan import Plan
from compiler.report import explain_tract
from compiler.skymap import BUILTIN_SKYMAPS, RingSkyMap
from tests.helpers import CAMPAIGNS, compile_data, example_data


@functools.lru_cache(maxsize=None)
def plan_of(name: str) -> Plan:
    return compile_campaign(CAMPAIGNS / name, render=False).plan


def reach_excess(sm: RingSkyMap, tract: int, other: int, margin: float) -> float:
    """Brute force over two ring tracts' boxes: how far (degrees) `other` lies beyond the
    margin around `tract` (negative: inside), RA gaps measured on the sky at the widest
    declination of the reach, as tracts_near promises."""
    ra_a, half_a, lo_a, hi_a = sm.tract_box(tract)  # type: ignore[misc]
    ra_b, half_b, lo_b, hi_b = sm.tract_box(other)  # type: ignore[misc]
    widest = min(89.0, max(abs(lo_a - margin), abs(hi_a + margin)))
    dec_gap = max(0.0, lo_b - hi_a, lo_a - hi_b)
    rel = abs((ra_b - ra_a + 180.0) % 360.0 - 180.0)
    ra_gap = max(0.0, rel - half_a - half_b) * math.cos(math.radians(widest))
    return max(dec_gap, ra_gap) - margin


@pytest.mark.parametrize("tract", [5063, 9000, 9813, 12000])
def test_tracts_near_finds_every_tract_within_the_margin(tract: int) -> None:
    sm = BUILTIN_SKYMAPS["lsst_cells_v1"]
    margin = 3.5
    near = sm.tracts_near(tract, margin)
    assert tract not in near
    for other in range(1, sm.tract_count() - 1):  # the caps are far from these tracts
        if other == tract:
            continue
        excess = reach_excess(sm, tract, other, margin)
        if excess < -0.05:
            assert other in near, other
        elif excess > 0.05:
            assert other not in near, other


def test_a_tract_on_a_ring_boundary_names_the_other_site_and_its_near_tracts() -> None:
    plan = plan_of("dr1.yaml")
    text = explain_tract(plan, 9000)
    line = next(x for x in text.splitlines() if x.startswith("boundary visits:"))
    assert "also held by ukdf-ral" in line and "selected by frdf and ukdf-ral alike" in line
    reach = 2 * FOV_RADIUS_DEG["LSSTCam"] + plan.skymap.tract_overlap_arcmin / 60.0
    assert f"within {reach:.2f} deg, two LSSTCam field-of-view radii" in line
    # every tract it names is ukdf-ral's and no more than the reach away in declination
    named = line.split("ukdf-ral's tracts ")[1].split(" lie within")[0]
    tracts = [t for part in named.split(", ")
              for t in (range(int(part.split("-")[0]), int(part.split("-")[-1]) + 1))]
    assert tracts
    _, dec = plan.skymap.tract_center(9000)
    for t in tracts:
        assert plan.ownership.owner[t] == "ukdf-ral"
        assert abs(plan.skymap.tract_center(t)[1] - dec) <= reach + plan.skymap.ring_size_deg


def test_a_tract_deep_in_its_band_has_no_boundary_visits() -> None:
    text = explain_tract(plan_of("dr1.yaml"), 9813)
    assert "boundary visits: none; no other site owns a tract within 3.52 deg" in text
    assert "held at frdf alone" in text


def test_a_cross_check_tract_names_where_else_it_is_processed() -> None:
    plan = plan_of("dr1.yaml")
    pair = plan.crosschecks[0]
    text = explain_tract(plan, pair.tract)
    assert any(f"also processed at {side.site} as a cross-check tract" in text
               for side in pair.sides if side.site != plan.ownership.owner[pair.tract])


def test_why_a_tract_is_outside_the_campaign() -> None:
    outside_footprint = explain_tract(plan_of("dr1.yaml"), 18900)
    assert ("not part of the campaign: its centre Dec 85.5372 is outside sky.footprint [-90, 30]"
            in outside_footprint)
    not_listed = explain_tract(plan_of("3x2.yaml"), 9813)
    assert ("not part of the campaign: not listed under sky.assignment.tracts (the campaign lists "
            "6 tracts by id)") in not_listed


def test_explicit_lists_of_neighbouring_tracts_at_two_sites(tmp_path) -> None:
    data = example_data("3x2.yaml")
    data["sky"]["assignment"]["tracts"] = {"usdf": [9469, 9470], "frdf": [9471, 9472],
                                           "ukdf-lancs": [9941, 9942]}
    plan = compile_data(tmp_path, data).plan
    text = explain_tract(plan, 9470)
    assert "boundary visits: also held by frdf (frdf's tracts 9471-9472 lie within" in text
    assert "selected by usdf and frdf alike" in text
