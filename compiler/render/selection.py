"""`sites/<site>/butler/selection.py`: whole visits and the datasets each outgoing move sends.

A Butler query with a tract constraint returns only the detectors overlapping the tract, so
neither a job nor a move may select by tract where it means visits (CONTRACT section 2). The
script finds the visits first, then every dataset of those visits, and keeps the result as a
TAGGED collection that BPS, rucio-register and the checks all read. The plan's decisions (which
tracts a site holds, who owns which tract, what each move selects) are embedded as data; the
script only asks the Butler which visits overlap them and which datasets they have.
"""

from __future__ import annotations

import functools
import json

from .. import paths
from ..naming import raw_collection
from ..plan import Plan, SitePlan
from ..skymap import compress_ranges
from ..text import json_text
from .common import EnvVar, comment_header, render_template, shell_prelude

VISITS_STEPS: tuple[str, ...] = ("define-visits", "select", "check")
# the central site first makes sure it holds the raws (ingests them, or checks they are there)
CENTRAL_VISITS_STEPS: tuple[str, ...] = ("raws", *VISITS_STEPS)


@functools.lru_cache(maxsize=256)
def _range_pairs(tracts: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Cached: the selection scripts of every site and move ask for the same few tract lists
    (a DR2 campaign: 178 calls on lists of thousands of tracts)."""
    return tuple(compress_ranges(tracts))


def _ranges(tracts: tuple[int, ...]) -> list[list[int]]:
    return [[a, b] for a, b in _range_pairs(tuple(tracts))]


def selection_data(plan: Plan, site: SitePlan) -> dict[str, object]:
    """What the script knows: the plan's part that decides every selection at this site."""
    sky = plan.skymap
    rings = range(sky.num_rings)
    return {
        "campaign": plan.campaign,
        "repo": site.butler_repo,
        "instrument": plan.instrument,
        "skymap": sky.name,
        "raw_collection": raw_collection(plan.instrument),
        "input_collections": list(plan.input_collections),
        "visit_stages": [st.name for st in plan.stages if st.select == "visits"],
        "rings": {"num_rings": sky.num_rings, "ra_start_deg": sky.ra_start_deg,
                  "counts": list(sky.ring_tract_counts()),
                  "first_ids": [sky.ring_tract_range(r)[0] for r in rings],
                  "total": sky.tract_count()},
        "site_order": [s.id for s in plan.sites],
        "sites": {s.id: {"processing_tracts": _ranges(s.processing_tracts),
                         "owned_tracts": _ranges(s.owned_tracts),
                         "raw_selection": s.raw_selection} for s in plan.sites},
        "moves": {m.id: {"dataset_type": m.dataset_type, "source_collection": m.source_collection,
                         "selection_collection": m.selection_collection,
                         "select_by": m.select_by, "select_site": m.select_site,
                         "tracts": _ranges(m.tracts), "find_first": m.find_first}
                  for m in plan.transfers if m.source == site.id},
    }


def render_select(plan: Plan, site: SitePlan) -> bytes:
    data = json_text(selection_data(plan, site))
    return render_template(
        "butler/selection.py.j2",
        header=comment_header(plan, f"Visit and transfer selections at {site.id}"),
        site=site,
        # a JSON text as a Python string literal (ASCII, every special character escaped)
        data=json.dumps(data, ensure_ascii=True),
    )


def render_visits(plan: Plan, site: SitePlan) -> bytes:
    steps = CENTRAL_VISITS_STEPS if site.is_central else VISITS_STEPS
    raws = plan.butler_inputs.raws if site.is_central else None
    env = [
        EnvVar("BUTLER_REPO", site.butler_repo, f"the Butler repository at {site.id}"),
        EnvVar("BUTLER_PYTHON", "python3", "a Python with lsst.daf.butler (the stack's)"),
        *([EnvVar("RAWS_FROM", raws.ingest_from, "file, folder or URI `butler ingest-raws` "
                  "reads the raws from"),
           EnvVar("RAWS_TRANSFER", raws.transfer, "`butler ingest-raws --transfer` mode"),
           EnvVar("FORCE_INGEST", "0", "1: ingest from RAWS_FROM although raws are here "
                  "already (new files)")] if raws else []),
        EnvVar("SKIP_STEPS", "", "steps not to run, space- or comma-separated, out of: "
                                 + " ".join(steps)),
    ]
    return render_template(
        "butler/visits.sh.j2",
        prelude=shell_prelude(plan, f"Visits and whole-visit raw selection at {site.id}", env),
        plan=plan, site=site, steps=steps, raw_collection=raw_collection(plan.instrument),
        raws=raws,
        select=paths.beside(paths.select_script(site.id)),
    )


def render(plan: Plan, site: str | None = None) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for s in plan.sites_to_render(site):
        files[paths.select_script(s.id)] = render_select(plan, s)
        files[paths.visits_script(s.id)] = render_visits(plan, s)
    return files
