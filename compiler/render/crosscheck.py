"""`sites/<central>/butler/crosscheck.py`: the two sites' results of every cross-check tract,
compared at the central site once both returned them.

A cross-check tract is processed by its owner and by a second site (`sky.cross_check`); what
each made comes back to the central site into a chain of its own (CONTRACT section 2,
Cross-checks). Whether the results agree does not depend on either site: the same data IDs,
the same counts and, for catalogs, the same objects with the same photometry, within the
spec's tolerances (`sky.cross_check_tolerance`). The plan decides which pairs of collections
are compared for which type and tract; the script only reads the Butler and measures.
"""

from __future__ import annotations

import json

from .. import paths
from ..plan import Plan, SitePlan
from ..text import json_text
from .common import comment_header, render_template


def crosscheck_data(plan: Plan, central: SitePlan) -> dict[str, object]:
    """What the script knows: every (tract, dataset type) pair, its two collections and the
    tolerances."""
    tol = plan.crosscheck_tolerance
    return {
        "campaign": plan.campaign,
        "central": central.id,
        "repo": central.butler_repo,
        "skymap": plan.skymap.name,
        "tolerance": {"count_fraction": tol.count_fraction, "match_arcsec": tol.match_arcsec,
                      "mag_mad": tol.mag_mad, "matched_fraction": tol.matched_fraction},
        "pairs": [{"tract": c.tract, "dataset_type": c.dataset_type,
                   "storage_class": c.storage_class, "stage": c.stage,
                   "sides": [{"site": s.site, "collection": s.collection} for s in c.sides]}
                  for c in plan.crosschecks],
    }


def render_crosscheck(plan: Plan, central: SitePlan) -> bytes:
    tol = plan.crosscheck_tolerance
    return render_template(
        "butler/crosscheck.py.j2",
        header=comment_header(plan, f"Cross-check comparison at {central.id}"),
        site=central,
        tracts=", ".join(str(t) for t in sorted({c.tract for c in plan.crosschecks})),
        tolerance=(f"count_fraction {tol.count_fraction:g}, match_arcsec {tol.match_arcsec:g}, "
                   f"mag_mad {tol.mag_mad:g}, matched_fraction {tol.matched_fraction:g}."),
        # a JSON text as a Python string literal (ASCII, every special character escaped)
        data=json.dumps(json_text(crosscheck_data(plan, central)), ensure_ascii=True),
    )


def render(plan: Plan, site: str | None = None) -> dict[str, bytes]:
    """Only where cross-checks exist, and only at the central site, which compares them."""
    if not plan.crosschecks:
        return {}
    return {paths.crosscheck_script(s.id): render_crosscheck(plan, s)
            for s in plan.sites_to_render(site) if s.is_central}
