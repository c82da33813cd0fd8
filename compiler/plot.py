"""`drpc plot`: the sky with every tract coloured by its site, and the ring boundaries (as RTN-100).

matplotlib is an optional extra (`pip install 'drpc[plot]'`), imported only here and only when a
plot is drawn; without it `plot_sky` raises `MissingPlotExtra` and the command exits 2.

Each tract is drawn as its inner region (a box in RA and Dec: its ring's declination span and
360 deg / the ring's tract count in RA), filled with its site's colour (report.site_colours: a
site id keeps its colour in every campaign); cross-check tracts get a black outline.
RA grows to the left, as on the sky.
`projection="auto"` draws the whole sky (Mollweide) only when the tracts span much of it, and a
plain RA/Dec window around them otherwise, so a six-tract test is not a speck. Up to
MAX_LABELS tracts are labelled with their ids; a label that would overlap one already placed
(or a ring boundary's) is left out, so no two labels collide.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError
from .plan import Plan
from .report import site_colours

INSTALL_HINT = "pip install 'drpc[plot]'"

#: Tract ids are written on the plot when the campaign has at most this many tracts.
MAX_LABELS = 60

#: `auto` zooms to RA/Dec when the tracts' window is at most this wide and tall (degrees).
ZOOM_LIMIT_DEG = 90.0


class MissingPlotExtra(UsageError):
    """matplotlib is not installed: a user error with the install hint (exit 2)."""


@dataclass(frozen=True)
class TractBox:
    tract: int
    site: str
    ra_min: float  # degrees; ra_min may be negative and ra_max above 360 (the box is not wrapped)
    ra_max: float
    dec_min: float
    dec_max: float


def tract_boxes(plan: Plan) -> list[TractBox]:
    """The inner region of every campaign tract, with its owner, in tract order."""
    sm = plan.skymap
    counts = sm.ring_tract_counts()
    boxes: list[TractBox] = []
    for tract in sorted(plan.ownership.owner):
        ring = sm.ring_of_tract(tract)
        dec_lo, dec_hi = sm.ring_dec_bounds(ring)
        ra, _ = sm.tract_center(tract)
        if ring in (-1, sm.num_rings):  # a polar cap: all RAs
            lo, hi = 0.0, 360.0
        else:
            half = 180.0 / counts[ring]
            lo, hi = ra - half, ra + half
        boxes.append(TractBox(tract, plan.ownership.owner[tract], lo, hi, dec_lo, dec_hi))
    return boxes


def ring_boundaries(plan: Plan) -> list[float]:
    """Declinations between consecutive rings of the assignment (none for explicit tract lists)."""
    if plan.assigned_by != "rings":
        return []
    return [b.dec_max for b in plan.bands[:-1]]


def _import_matplotlib() -> tuple[Any, Any, Any]:
    try:
        import matplotlib  # noqa: F401 - the extra's presence
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch  # noqa: F401 - used by plot_sky
    except ImportError:
        raise MissingPlotExtra(f"drpc plot needs matplotlib, which is not installed: "
                               f"{INSTALL_HINT}") from None
    from matplotlib import collections
    return Figure, FigureCanvasAgg, collections


def _pieces(lo: float, hi: float, centre_lon: float) -> list[tuple[float, float]]:
    """A box's RA span as longitudes in [-180, 180] around centre_lon, split at the seam."""
    lon_lo, lon_hi = -(hi - centre_lon), -(lo - centre_lon)  # RA grows to the left
    shift = -360.0 * round(((lon_lo + lon_hi) / 2.0) / 360.0)
    lon_lo, lon_hi = lon_lo + shift, lon_hi + shift
    out: list[tuple[float, float]] = []
    if hi - lo >= 360.0:
        return [(-180.0, 180.0)]
    if lon_lo < -180.0:
        out.append((lon_lo + 360.0, 180.0))
        lon_lo = -180.0
    if lon_hi > 180.0:
        out.append((-180.0, lon_hi - 360.0))
        lon_hi = 180.0
    out.append((lon_lo, lon_hi))
    return out


def _radec_window(boxes: list[TractBox]) -> tuple[float, float, float, float, float]:
    """(centre RA, half width, dec min, dec max) for a plain RA/Dec view of the boxes."""
    centres = sorted({((b.ra_min + b.ra_max) / 2.0) % 360.0 for b in boxes})
    if any(b.ra_max - b.ra_min >= 360.0 for b in boxes) or len(centres) < 2:
        centre = centres[0] if centres else 180.0
    else:
        # Cut the circle at the widest gap between tract centres; centre the view opposite it.
        gaps = [((centres[(i + 1) % len(centres)] - c) % 360.0, c) for i, c in enumerate(centres)]
        width, start = max(gaps)
        centre = (start + width / 2.0 + 180.0) % 360.0
    lons = [lon for b in boxes for piece in _pieces(b.ra_min, b.ra_max, centre) for lon in piece]
    half = min(180.0, max(abs(x) for x in lons) * 1.05 + 0.5)
    dec_lo = max(-90.0, min(b.dec_min for b in boxes) - 0.05 * half - 0.5)
    dec_hi = min(90.0, max(b.dec_max for b in boxes) + 0.05 * half + 0.5)
    return centre, half, dec_lo, dec_hi, 0.0


def choose_projection(plan: Plan, projection: str,
                      boxes: list[TractBox] | None = None) -> str:
    """`auto`: Mollweide when the tracts span more than ZOOM_LIMIT_DEG in RA or Dec (or there
    are none), else the plain RA/Dec window. `boxes`: the plan's tract_boxes, if made already."""
    if projection != "auto":
        return projection
    boxes = tract_boxes(plan) if boxes is None else boxes
    if not boxes:
        return "mollweide"
    _, half, dec_lo, dec_hi, _ = _radec_window(boxes)
    return "radec" if 2 * half <= ZOOM_LIMIT_DEG and dec_hi - dec_lo <= ZOOM_LIMIT_DEG \
        else "mollweide"


def _place_without_collisions(texts: list[Any], renderer: Any, kept: list[Any],
                              inside: Any) -> list[Any]:
    """Keep each text whose drawn box lies within `inside` (the axes) and overlaps no box kept
    so far (in order); remove the rest. `kept` grows with every text kept."""
    placed = []
    for text in texts:
        box = text.get_window_extent(renderer).expanded(1.05, 1.1)
        within = (inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0
                  and box.y1 <= inside.y1)
        if not within or any(box.overlaps(other) for other in kept):
            text.remove()
            continue
        kept.append(box)
        placed.append(text)
    return placed


@dataclass(frozen=True)
class SkyPlot:
    """What `plot_sky` drew: the matplotlib figure and axes, and where a sky position lands."""

    figure: Any
    axes: Any
    centre_ra: float
    mollweide: bool
    labels: tuple[Any, ...] = ()  # the tract-id texts drawn (none collide)
    boundary_labels: tuple[Any, ...] = ()  # the ring boundaries' declination texts

    def data_xy(self, ra: float, dec: float) -> tuple[float, float]:
        """Data coordinates of (ra, dec) in degrees (radians on the Mollweide axes)."""
        import math
        lon = (self.centre_ra - ra + 180.0) % 360.0 - 180.0
        return (math.radians(lon), math.radians(dec)) if self.mollweide else (lon, dec)

    def pixel(self, ra: float, dec: float) -> tuple[int, int]:
        """(row, column) of (ra, dec) in the written raster image (row 0 at the top)."""
        x, y = self.axes.transData.transform(self.data_xy(ra, dec))
        height = self.figure.bbox.height
        return round(height - y - 0.5), round(x - 0.5)


def plot_sky(plan: Plan, out: str | Path, *, projection: str = "auto",
             dpi: int = 150) -> SkyPlot:
    """Draw the campaign's tracts by site and write `out` (png, svg or pdf)."""
    Figure, FigureCanvasAgg, collections = _import_matplotlib()
    import math

    from matplotlib.patches import Patch

    colours = site_colours(plan)
    boxes = tract_boxes(plan)
    cross = {t for s in plan.sites for t in s.processing_tracts
             if plan.ownership.owner.get(t) != s.id}
    fp = plan.footprint
    mollweide = choose_projection(plan, projection, boxes) == "mollweide"

    fig = Figure(figsize=(11, 6.2) if mollweide else (10, 6.5), dpi=dpi)
    FigureCanvasAgg(fig)
    if mollweide:
        ax = fig.add_subplot(1, 1, 1, projection="mollweide")
        centre, half, dec_lo, dec_hi = 0.0, 180.0, -90.0, 90.0

        def xy(lon: float, dec: float) -> tuple[float, float]:
            return math.radians(lon), math.radians(dec)
    else:
        ax = fig.add_subplot(1, 1, 1)
        centre, half, dec_lo, dec_hi, _ = _radec_window(boxes)

        def xy(lon: float, dec: float) -> tuple[float, float]:
            return lon, dec

    polys: dict[str, list[list[tuple[float, float]]]] = {s.id: [] for s in plan.sites}
    outlines: list[list[tuple[float, float]]] = []
    for b in boxes:
        for lon_lo, lon_hi in _pieces(b.ra_min, b.ra_max, centre):
            steps = max(2, int((lon_hi - lon_lo) / 2.0) + 1) if mollweide else 2
            top = [xy(lon_lo + (lon_hi - lon_lo) * i / (steps - 1), b.dec_max)
                   for i in range(steps)]
            bottom = [xy(lon_hi - (lon_hi - lon_lo) * i / (steps - 1), b.dec_min)
                      for i in range(steps)]
            poly = top + bottom
            polys[b.site].append(poly)
            if b.tract in cross:
                outlines.append(poly)
    if mollweide:
        # Project every vertex in one call (per-path projection of ~10^4 tracts is slow).
        import numpy as np
        transform = ax.transAffine + ax.transAxes

        def project(group: list[list[tuple[float, float]]]) -> list[Any]:
            if not group:
                return []
            flat = ax.transProjection.transform(
                np.array([v for poly in group for v in poly], dtype=float))
            out_polys, i = [], 0
            for poly in group:
                out_polys.append(flat[i:i + len(poly)])
                i += len(poly)
            return out_polys
    else:
        transform = ax.transData

        def project(group: list[list[tuple[float, float]]]) -> list[Any]:
            return group
    for site in plan.sites:
        if polys[site.id]:
            ax.add_collection(collections.PolyCollection(
                project(polys[site.id]), facecolors=colours[site.id], edgecolors=colours[site.id],
                linewidths=0.3, antialiaseds=True, zorder=1.0, transform=transform), autolim=False)
    if outlines:
        ax.add_collection(collections.PolyCollection(
            project(outlines), facecolors="none", edgecolors="black", linewidths=1.2, zorder=1.1,
            transform=transform), autolim=False)

    # Ring boundaries (dashed) and the footprint's edges (dotted), as lines of constant Dec.
    lons = [-half + 2.0 * half * i / 180 for i in range(181)]
    bounds = ring_boundaries(plan)
    boundary_texts = []
    for dec in bounds:
        x, y = zip(*(xy(lon, dec) for lon in lons), strict=True)
        ax.plot(x, y, color="black", linestyle="--", linewidth=1.0, zorder=4)
        boundary_texts.append(ax.annotate(
            f"{dec:g}°", xy(half, dec) if not mollweide else xy(-180.0, dec),
            xytext=(3, 2), textcoords="offset points", fontsize=7, zorder=5))
    for dec in (fp.dec_min, fp.dec_max):
        if -90.0 < dec < 90.0:
            x, y = zip(*(xy(lon, dec) for lon in lons), strict=True)
            ax.plot(x, y, color="0.35", linestyle=":", linewidth=1.0, zorder=4)

    # RA grows to the left: label the longitude ticks with RA.
    if mollweide:
        ticks = [-150, -120, -90, -60, -30, 0, 30, 60, 90, 120, 150]
        ax.set_xticks([math.radians(t) for t in ticks])
        ax.set_xticklabels([f"{(centre - t) % 360:g}°" for t in ticks], fontsize=8)
        ax.grid(True, color="white", linewidth=0.4, alpha=0.7)
    else:
        ax.set_xlim(-half, half)
        ax.set_ylim(dec_lo, dec_hi)
        step = next((s for s in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 45, 60, 90)
                     if 2 * half / s <= 10), 90)
        first = math.ceil((centre - half) / step)
        ras = [k * step for k in range(first, math.floor((centre + half) / step) + 1)]
        ax.set_xticks([centre - ra for ra in ras])
        ax.set_xticklabels([f"{ra % 360:g}°" for ra in ras], fontsize=8)
        ax.set_xlim(-half, half)
        ax.set_xlabel("RA")
        ax.set_ylabel("Dec")
        ax.grid(True, color="0.85", linewidth=0.5, zorder=0)
        ax.set_aspect("auto")

    label_texts = []
    if len(boxes) <= MAX_LABELS:
        from matplotlib import patheffects

        halo = [patheffects.withStroke(linewidth=1.6, foreground="black")]  # legible off its tract
        for b in boxes:
            ra, dec = plan.skymap.tract_center(b.tract)
            lon = (centre - ra + 180.0) % 360.0 - 180.0
            label_texts.append(ax.text(*xy(lon, dec), str(b.tract), fontsize=7, ha="center",
                                       va="center", color="white", zorder=6, clip_on=True,
                                       path_effects=halo))

    counts = {s.id: len(s.owned_tracts) for s in plan.sites}
    handles = [Patch(facecolor=colours[s.id], edgecolor=colours[s.id],
                     label=f"{s.id} ({counts[s.id]:,} tracts, {s.fraction:.1%})")
               for s in plan.sites]
    if outlines:
        handles.append(Patch(facecolor="none", edgecolor="black", label="cross-check tract"))
    ax.legend(handles=handles, loc="lower center",
              bbox_to_anchor=(0.5, -0.22 if mollweide else -0.2),
              ncol=min(4, len(handles)), fontsize=8, frameon=False)
    ax.set_title(f"{plan.campaign}: tracts of {plan.skymap.name} by site"
                 + (", ring boundaries dashed" if bounds else ""), fontsize=10)
    fig.subplots_adjust(bottom=0.2)
    renderer = fig.canvas.get_renderer()
    kept: list[Any] = []
    frame = ax.get_window_extent(renderer)
    if mollweide:  # boundary labels sit at the ellipse's edge, outside the axes' ellipse
        frame = fig.bbox
    boundary_kept = _place_without_collisions(boundary_texts, renderer, kept, frame)
    labels = _place_without_collisions(label_texts, renderer, kept, ax.get_window_extent(renderer))
    out = Path(out)
    fmt = out.suffix.lower().lstrip(".") or "png"
    metadata = {"Software": None} if fmt == "png" else ({"Creator": None} if fmt == "svg" else {})
    fig.savefig(str(out), format=fmt, dpi=dpi, metadata=metadata)
    return SkyPlot(fig, ax, centre, mollweide, tuple(labels), tuple(boundary_kept))


__all__ = ["INSTALL_HINT", "MAX_LABELS", "MissingPlotExtra", "SkyPlot", "TractBox",
           "choose_projection", "plot_sky", "ring_boundaries", "tract_boxes"]
