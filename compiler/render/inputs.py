"""`sites/<site>/butler/inputs.py`: the inputs every site needs before stage 1, and the
defaults chain over them.

Calibrations, reference catalogs and ancillary inputs go from the central site to every other
one like any move (rucio-register, a rule, ctrl_ingestd, verify: CONTRACT section 2). What a
move cannot carry is the calibrations' validity ranges (ctrl_ingestd ingests each file into its
RUN collection and certifies nothing) and the RUN collections an input collection is made of.
So the central site writes them into one more dataset, the inputs' manifest, which travels the
same way; at each destination this script certifies the arrived calibrations with the ranges
the manifest gives and rebuilds each input collection under its own name. The plan decides
what is sent; the script only compares the repository with it.
"""

from __future__ import annotations

import json

from .. import paths
from ..defaults import INPUTS_MANIFEST_STORAGE_CLASS, INPUTS_MANIFEST_TYPE
from ..plan import Plan, SitePlan
from ..text import json_text
from .common import comment_header, render_template


def inputs_data(plan: Plan, site: SitePlan) -> dict[str, object]:
    """What the script knows: the inputs, their manifest and the defaults chain."""
    manifest_move = next((m.id for m in plan.input_moves
                          if m.destination == site.id and m.dataset_type == INPUTS_MANIFEST_TYPE),
                         None)
    return {
        "campaign": plan.campaign,
        "site": site.id,
        "central": site.is_central,
        "repo": site.butler_repo,
        "instrument": plan.instrument,
        "inputs": [{"kind": s.kind, "collection": s.collection, "position": s.position,
                    "types": [{"type": t.type, "storage_class": t.storage_class,
                               "listed": t.listed} for t in s.types]}
                   for s in plan.input_sets],
        "manifest": None if plan.inputs_manifest_run is None else {
            "type": INPUTS_MANIFEST_TYPE, "storage_class": INPUTS_MANIFEST_STORAGE_CLASS,
            "dimensions": ["instrument"], "run": plan.inputs_manifest_run,
            "move": manifest_move},
        "defaults": {"name": plan.defaults_collection,
                     "children": list(plan.defaults_children)},
    }


def render_inputs(plan: Plan, site: SitePlan) -> bytes:
    data = inputs_data(plan, site)
    return render_template(
        "butler/inputs.py.j2",
        header=comment_header(plan, f"Inputs and defaults chain at {site.id}"),
        site=site, defaults=data["defaults"], manifest_type=INPUTS_MANIFEST_TYPE,
        manifest_run=plan.inputs_manifest_run,
        # a JSON text as a Python string literal (ASCII, every special character escaped)
        data=json.dumps(json_text(data), ensure_ascii=True),
    )


def render(plan: Plan, site: str | None = None) -> dict[str, bytes]:
    return {paths.inputs_script(s.id): render_inputs(plan, s) for s in plan.sites_to_render(site)}
