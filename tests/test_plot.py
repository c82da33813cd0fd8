"""`drpc plot`: the sky by site, read back pixel by pixel."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler.cli import cli
from compiler.cli_plan import plot_command
from compiler.pipeline import compile_campaign
from compiler.plan import Plan
from compiler.report import SITE_COLOURS, site_colours
from tests.helpers import CAMPAIGNS, compile_data, example_data

cli.add_command(plot_command, "plot")

DR1 = CAMPAIGNS / "dr1.yaml"
THREE = CAMPAIGNS / "3x2.yaml"


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def read_pixels(path: Path):
    import matplotlib.image as mpimg
    import numpy as np
    img = mpimg.imread(str(path))
    return np.rint(img[:, :, :3] * 255).astype(int)


def colour_counts(pixels, box=None) -> dict[str, int]:
    """Pixels of each palette colour (exact match), optionally inside a (row0, row1, col0, col1) box."""
    import numpy as np
    if box is not None:
        r0, r1, c0, c1 = box
        pixels = pixels[r0:r1, c0:c1]
    return {c: int(np.all(pixels == np.array(rgb(c)), axis=-1).sum()) for c in SITE_COLOURS}


def axes_box(sky) -> tuple[int, int, int, int]:
    bb = sky.axes.get_window_extent()
    height = sky.figure.bbox.height
    return int(height - bb.y1), int(height - bb.y0), int(bb.x0), int(bb.x1)


def test_missing_matplotlib_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    out = tmp_path / "sky.png"
    result = CliRunner().invoke(cli, ["plot", str(THREE), "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert "drpc plot needs matplotlib, which is not installed: pip install 'drpc[plot]'" in result.stderr
    assert "Traceback" not in result.output and not out.exists()


def test_three_sites_zoomed(tmp_path: Path) -> None:
    from compiler.plot import plot_sky
    plan = compile_campaign(THREE, render=False).plan
    out = tmp_path / "sky.png"
    sky = plot_sky(plan, out, projection="radec")
    assert out.stat().st_size > 10_000
    pixels = read_pixels(out)
    colours = site_colours(plan)
    inside = colour_counts(pixels, axes_box(sky))
    used = {c for c, n in inside.items() if n > 0}
    assert used == set(colours.values()) and len(used) == 3  # one colour per site, no other
    for site in plan.sites:  # two tracts each, of about 1.5 x 1.5 deg
        assert inside[colours[site.id]] > 2000
    for tract, owner in plan.ownership.owner.items():  # a point inside every tract has its site's colour
        ra, dec = plan.skymap.tract_center(tract)
        row, col = sky.pixel(ra + 0.3, dec + 0.3)
        assert tuple(pixels[row, col]) == rgb(colours[owner]), tract
    legend = [t.get_text() for t in sky.axes.get_legend().get_texts()]
    assert legend == ["usdf (2 tracts, 33.3%)", "frdf (2 tracts, 33.3%)", "ukdf-lancs (2 tracts, 33.3%)"]
    ticks = [t.get_text() for t in sky.axes.get_xticklabels()]
    assert ticks == ["340°", "345°", "350°", "355°", "0°"]  # RA grows to the left, across 0


def test_dr1_whole_sky(tmp_path: Path) -> None:
    from compiler.plot import plot_sky
    plan = compile_campaign(DR1, render=False).plan
    out = tmp_path / "sky.png"
    sky = plot_sky(plan, out)
    pixels = read_pixels(out)
    colours = site_colours(plan)
    inside = colour_counts(pixels, axes_box(sky))
    assert {c for c, n in inside.items() if n > 0} == set(colours.values())
    # frdf owns the most sky, ukdf-lancs the least (in pixels too)
    assert inside[colours["frdf"]] > inside[colours["usdf"]] > inside[colours["ukdf-ral"]] \
        > inside[colours["ukdf-lancs"]]
    # one tract per skymap ring: its site's colour is at (or right next to) its centre
    sm = plan.skymap
    for ring in range(sm.num_rings):
        first, _ = sm.ring_tract_range(ring)
        if first not in plan.ownership.owner:
            continue
        ra, dec = sm.tract_center(first + 1)
        row, col = sky.pixel(ra, dec)
        patch = {tuple(p) for p in pixels[row - 1:row + 2, col - 1:col + 2].reshape(-1, 3)}
        assert rgb(colours[plan.ownership.owner[first + 1]]) in patch, (ring, first + 1)
    dashed = [line for line in sky.axes.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 7  # 8 rings: 7 boundaries
    legend = [t.get_text() for t in sky.axes.get_legend().get_texts()]
    assert legend[:4] == ["usdf (4,950 tracts, 35.1%)", "frdf (5,640 tracts, 39.9%)",
                          "ukdf-lancs (1,410 tracts, 10.0%)", "ukdf-ral (2,121 tracts, 15.0%)"]
    assert legend[4] == "cross-check tract"


def test_five_sites_in_rings(tmp_path: Path) -> None:
    from compiler.plot import plot_sky
    data = example_data("dr1.yaml")
    extra = dict(data["sites"]["ukdf-ral"])
    extra.update(facility="Extra", share=0.05, rucio={**extra["rucio"], "rse": "EXTRA_DISK",
                                                     "raw_rse": "EXTRA_RAW"})
    data["sites"]["extra"] = extra
    data["sites"]["ukdf-ral"]["share"] = 0.10
    data["sky"]["assignment"]["rings"].insert(0, {"dec_max": -80.33, "site": "extra"})
    plan = compile_data(tmp_path, data).plan
    out = tmp_path / "sky.png"
    sky = plot_sky(plan, out)
    inside = colour_counts(read_pixels(out), axes_box(sky))
    assert {c for c, n in inside.items() if n > 0} == set(site_colours(plan).values())
    assert len(site_colours(plan)) == 5


def test_cli_plot(tmp_path: Path) -> None:
    out = tmp_path / "sky.png"
    result = CliRunner().invoke(cli, ["plot", str(THREE), "-o", str(out), "--projection", "radec"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "sky.svg"
    assert CliRunner().invoke(cli, ["plot", str(THREE), "-o", str(svg)]).exit_code == 0
    assert b"<svg" in svg.read_bytes()[:2000]
    bad = CliRunner().invoke(cli, ["plot", str(THREE), "-o", str(tmp_path / "sky.txt")])
    assert bad.exit_code == 2 and "must end in .png, .svg or .pdf" in bad.stderr


def test_tract_boxes_hold_their_centres() -> None:
    from compiler.plot import tract_boxes
    plan: Plan = compile_campaign(DR1, render=False).plan
    boxes = tract_boxes(plan)
    assert len(boxes) == 14121
    for b in boxes[::97]:
        ra, dec = plan.skymap.tract_center(b.tract)
        assert b.dec_min <= dec <= b.dec_max
        assert b.ra_min <= ra <= b.ra_max or b.ra_max - b.ra_min == 360.0
        assert b.site == plan.ownership.owner[b.tract]


def test_auto_projection_zooms_on_small_campaigns(tmp_path: Path) -> None:
    from compiler.plot import choose_projection, plot_sky
    three = compile_campaign(THREE, render=False).plan
    dr1 = compile_campaign(DR1, render=False).plan
    assert choose_projection(three, "auto") == "radec"
    assert choose_projection(dr1, "auto") == "mollweide"
    assert choose_projection(three, "mollweide") == "mollweide"
    assert not plot_sky(three, tmp_path / "three.png").mollweide
    assert plot_sky(dr1, tmp_path / "dr1.png").mollweide


def boxes_of(sky, texts):
    renderer = sky.figure.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in texts]


def test_few_tracts_are_labelled_inside_their_tract(tmp_path: Path) -> None:
    from compiler.plot import plot_sky
    plan = compile_campaign(THREE, render=False).plan
    sky = plot_sky(plan, tmp_path / "sky.png")
    assert sorted(int(t.get_text()) for t in sky.labels) == sorted(plan.ownership.owner)
    for text, box in zip(sky.labels, boxes_of(sky, sky.labels), strict=True):
        tract = int(text.get_text())
        ra, dec = plan.skymap.tract_center(tract)
        x, y = sky.axes.transData.transform(sky.data_xy(ra, dec))
        assert box.x0 < x < box.x1 and box.y0 < y < box.y1, tract  # written on its own tract


def test_crowded_labels_never_collide(tmp_path: Path) -> None:
    from compiler.plot import MAX_LABELS, plot_sky
    data = example_data("3x2.yaml")
    row = list(range(9469, 9469 + 48))  # 48 neighbours in one skymap ring: 72 deg of RA
    data["sky"]["assignment"]["tracts"] = {"usdf": row[:16], "frdf": row[16:32],
                                           "ukdf-lancs": row[32:]}
    plan = compile_data(tmp_path, data).plan
    assert len(plan.ownership.owner) <= MAX_LABELS
    sky = plot_sky(plan, tmp_path / "sky.png")
    boxes = boxes_of(sky, sky.labels) + boxes_of(sky, sky.boundary_labels)
    assert 0 < len(sky.labels) < len(row)  # some fit, the ones that would overlap are left out
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)


def test_many_tracts_are_not_labelled_and_boundary_labels_do_not_collide(tmp_path: Path) -> None:
    from compiler.plot import plot_sky
    data = example_data("dr1.yaml")
    rings = data["sky"]["assignment"]["rings"]
    rings.insert(1, {"dec_max": rings[0]["dec_max"] + 1.5, "site": rings[1]["site"]})  # close pair
    plan = compile_data(tmp_path, data).plan
    sky = plot_sky(plan, tmp_path / "sky.png")
    assert sky.labels == ()
    boxes = boxes_of(sky, sky.boundary_labels)
    assert len(boxes) >= 6
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)


def test_a_site_keeps_its_colour_across_campaigns(tmp_path: Path) -> None:
    from compiler.report import KNOWN_SITE_COLOURS, preferred_colour
    three = site_colours(compile_campaign(THREE, render=False).plan)
    dr1 = site_colours(compile_campaign(DR1, render=False).plan)
    assert {k: three[k] for k in ("usdf", "frdf", "ukdf-lancs")} == \
        {k: dr1[k] for k in ("usdf", "frdf", "ukdf-lancs")}
    assert dr1 == {k: KNOWN_SITE_COLOURS[k] for k in dr1}
    # the sites' order in the file does not change their colours
    data = example_data("dr1.yaml")
    data["sites"] = dict(reversed(list(data["sites"].items())))
    assert site_colours(compile_data(tmp_path, data).plan) == dr1
    # an unknown id has its own colour, by a hash of the id (not salted per process)
    assert preferred_colour("cern") == preferred_colour("cern") == "#17becf"


def test_two_sites_wanting_one_colour_get_two(tmp_path: Path) -> None:
    from compiler.report import preferred_colour
    data = example_data("dr1.yaml")
    extra = dict(data["sites"]["ukdf-ral"])
    extra.update(facility="CERN", rucio={**extra["rucio"], "rse": "CERN_DISK", "raw_rse": "CERN_RAW"})
    data["sites"]["cern"] = extra  # prefers ukdf-ral's teal
    data["sites"]["ukdf-ral"]["share"] = 0.10
    extra["share"] = 0.05
    data["sky"]["assignment"]["rings"].insert(0, {"dec_max": -80.33, "site": "cern"})
    colours = site_colours(compile_data(tmp_path, data).plan)
    assert preferred_colour("cern") == colours["ukdf-ral"]
    assert len(set(colours.values())) == 5 and colours["ukdf-ral"] == "#17becf"


def test_ra_grows_to_the_left_in_both_projections(tmp_path: Path) -> None:
    from compiler.plot import plot_sky
    plan = compile_campaign(THREE, render=False).plan
    for projection in ("radec", "mollweide"):
        sky = plot_sky(plan, tmp_path / f"{projection}.png", projection=projection)
        ra, dec = plan.skymap.tract_center(9948)
        assert sky.pixel(ra + 1.0, dec)[1] < sky.pixel(ra, dec)[1] < sky.pixel(ra - 1.0, dec)[1]
        ticks = sorted(sky.axes.get_xticklabels(), key=lambda t: t.get_position()[0])
        shown = [float(t.get_text().rstrip("°")) for t in ticks]
        left_to_right = [(x - shown[0]) % 360 for x in shown]
        assert left_to_right == sorted(left_to_right, reverse=True) or left_to_right[0] == 0 and \
            left_to_right[1:] == sorted(left_to_right[1:], reverse=True), (projection, shown)
