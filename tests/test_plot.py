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
