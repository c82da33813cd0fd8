#!/usr/bin/env python3
"""Find DR1 declination rings that split the footprint's tracts between sites by share.

The DR1 campaign assigns whole declination bands to sites, because a band of whole skymap rings
is one contiguous tract-id range (one ``tract >= a AND tract <= b`` clause).  This script
searches band boundaries (ring-boundary declinations, so no tract is ambiguous) that bring
each site's fraction of the footprint's tracts as close as possible to its share, and prints
the bands as the YAML the campaign spec uses.

Run from the repository root: ``python3 tools/dr1_rings.py``.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compiler.skymap import BUILTIN_SKYMAPS, RingSkyMap, compress_ranges  # noqa: E402

SKYMAP = "lsst_cells_v1"
DEC_MIN = -90.0
DEC_MAX = 30.0
SHARES: dict[str, float] = {"usdf": 0.35, "frdf": 0.40, "ukdf-ral": 0.15, "ukdf-lancs": 0.10}
# South to north.  Each site holds one southern and one northern band, and the sites repeat
# the same sequence in both halves, so every site gets both sparse southern rings and dense
# equatorial ones.  This sequence is the best of the 24 such alternations (``--try-orders``):
# putting the small UK sites first in each half lets their bands take the finer-grained
# southern rings.
ORDER: tuple[str, ...] = (
    "ukdf-lancs", "ukdf-ral", "frdf", "usdf",
    "ukdf-lancs", "ukdf-ral", "frdf", "usdf",
)
TOLERANCES = (0.01, 0.05)  # try the goal first, then the hard limit
# Each of a site's bands must hold at least this fraction of the site's tracts, so both of
# its bands are real work (unconstrained, the optimum can be a band of 11 tracts at the pole).
MIN_BAND_FRACTION = 1.0 / 3.0


def footprint_rings(sm: RingSkyMap) -> tuple[int, int]:
    """(first, last) ring whose centre lies in the footprint; the south cap comes with ring 0."""
    rings = [r for r in range(sm.num_rings) if DEC_MIN <= sm.ring_center_dec(r) <= DEC_MAX]
    if rings != list(range(rings[0], rings[-1] + 1)) or rings[0] != 0:
        raise SystemExit("footprint is expected to be the south cap plus rings 0..k")
    return rings[0], rings[-1]


def boundary_dec(sm: RingSkyMap, ring: int) -> float:
    """Rounded declination of the edge below ``ring``, checked to separate the two centres."""
    dec = round(sm.ring_dec_bounds(ring)[0], 2)
    if not (sm.ring_center_dec(ring - 1) < dec < sm.ring_center_dec(ring)):
        raise SystemExit(f"rounded boundary {dec} below ring {ring} does not separate centres")
    return dec


def search(
    prefix: Sequence[int], order: Sequence[str], shares: dict[str, float], tol: float
) -> tuple[tuple[float, float, float], tuple[int, ...]] | None:
    """Best boundary indices (into ``prefix``) with every site within ``tol`` of its share.

    Ranked by (max deviation, sum of squared deviations, worst imbalance between a site's
    bands); splits with a band under MIN_BAND_FRACTION of its site's tracts are rejected.

    ``prefix[b]`` is the number of footprint tracts below boundary ``b``; bands are
    ``[b_j, b_{j+1})`` with ``b_0 = 0`` and ``b_8 = len(prefix) - 1``.  Depth-first search,
    pruning a site as soon as its tracts exceed share + tol, and pinning the boundary that
    closes a site's last band to the window that lands it within tol.
    """
    end = len(prefix) - 1
    total = prefix[end]
    bands = len(order)
    last_band = {site: max(j for j, s in enumerate(order) if s == site) for site in shares}
    high = {site: (shares[site] + tol) * total for site in shares}
    low = {site: (shares[site] - tol) * total for site in shares}
    best: list[tuple[tuple[float, float, float], tuple[int, ...]]] = []
    got = dict.fromkeys(shares, 0)
    bounds = [0]

    def score() -> tuple[float, float, float] | None:
        sizes: dict[str, list[int]] = {s: [] for s in shares}
        for j, site in enumerate(order):
            sizes[site].append(prefix[bounds[j + 1]] - prefix[bounds[j]])
        if any(min(v) < MIN_BAND_FRACTION * sum(v) for v in sizes.values()):
            return None
        devs = [abs(got[s] / total - shares[s]) for s in shares]
        imbalance = max((max(v) - min(v)) / sum(v) for v in sizes.values())
        return max(devs), sum(d * d for d in devs), imbalance

    def visit(j: int) -> None:
        site = order[j]
        start = bounds[-1]
        before = prefix[start] - got[site]  # prefix value that would make the site's total 0
        if j == bands - 1:
            candidates: Sequence[int] = [end]
        else:
            # Leave at least one ring for every later band.
            stop = end - (bands - 1 - j)
            lo_b = start + 1
            hi_b = bisect.bisect_right(prefix, before + high[site], lo_b, stop + 1) - 1
            if j == last_band[site]:
                lo_b = max(lo_b, bisect.bisect_left(prefix, before + low[site], lo_b, stop + 1))
            candidates = range(lo_b, hi_b + 1)
        for b in candidates:
            added = prefix[b] - prefix[start]
            got[site] += added
            bounds.append(b)
            ok = got[site] <= high[site] and (j != last_band[site] or got[site] >= low[site])
            if ok:
                if j == bands - 1:
                    key = score()
                    if key is not None and (not best or key < best[0][0]):
                        best[:] = [(key, tuple(bounds))]
                else:
                    visit(j + 1)
            bounds.pop()
            got[site] -= added

    visit(0)
    return best[0] if best else None


def main(argv: Sequence[str] | None = None) -> int:
    """Search, then print the rings YAML and each site's tract count and fraction."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--order", default=",".join(ORDER), help="sites, south to north")
    parser.add_argument(
        "--try-orders",
        action="store_true",
        help="search every sequence of the sites repeated in both halves (about 30 s)",
    )
    args = parser.parse_args(argv)
    order = tuple(args.order.split(","))
    if set(order) != set(SHARES):
        raise SystemExit(f"--order must use exactly the sites {sorted(SHARES)}")
    orders = [order]
    if args.try_orders:
        orders = [half + half for half in itertools.permutations(SHARES)]

    sm = BUILTIN_SKYMAPS[SKYMAP]
    first_ring, last_ring = footprint_rings(sm)
    counts = sm.ring_tract_counts()
    # prefix[b]: footprint tracts below boundary b, i.e. in the south cap and rings
    # first_ring..first_ring+b-1 (the cap always rides with ring 0 in the first band).
    prefix = [0]
    for ring in range(first_ring, last_ring + 1):
        prefix.append(prefix[-1] + counts[ring] + (1 if ring == first_ring else 0))

    footprint = sm.tracts_with_center_dec_in(DEC_MIN, DEC_MAX, include_max=True)
    if len(footprint) != prefix[-1]:
        raise SystemExit("footprint tract count disagrees with the ring sums")

    result = None
    for tol in TOLERANCES:
        for candidate in orders:
            found = search(prefix, candidate, SHARES, tol)
            if found is not None and (result is None or found[0] < result[0][0]):
                result = (found, candidate)
        if result is not None:
            break
    if result is None:
        raise SystemExit("no split within 0.05 of every share")
    ((worst, _, imbalance), bounds), order = result

    decs = [boundary_dec(sm, first_ring + b) for b in bounds[1:-1]] + [DEC_MAX]
    per_site: dict[str, list[int]] = {site: [] for site in SHARES}
    print(f"# skymap {SKYMAP}, footprint dec {DEC_MIN:g}..{DEC_MAX:g}: {len(footprint)} tracts")
    print("rings:")
    dec_lo = DEC_MIN
    for j, (site, dec_hi) in enumerate(zip(order, decs, strict=True)):
        last = j == len(order) - 1
        ids = sm.tracts_with_center_dec_in(dec_lo, dec_hi, include_max=last)
        per_site[site].extend(ids)
        (a, b), = compress_ranges(ids)  # a band of whole rings is one id range
        print(f"  - {{dec_max: {dec_hi}, site: {site}}}  # tracts {a}..{b} ({len(ids)})")
        dec_lo = dec_hi
    assigned = sorted(t for ids in per_site.values() for t in ids)
    if assigned != footprint:
        raise SystemExit("bands do not cover the footprint exactly once")
    print("# site: tracts fraction (share)")
    for site, share in SHARES.items():
        n = len(per_site[site])
        print(f"#   {site}: {n} {n / len(footprint):.4f} ({share:.2f})")
    print(f"# max |fraction - share| = {worst:.4f}; max band imbalance within a site = "
          f"{imbalance:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
