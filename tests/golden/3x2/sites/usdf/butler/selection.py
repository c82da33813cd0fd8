# Visit and transfer selections at usdf of campaign 'drp-3x2'
# generated - do not edit: drpc 0.1.0 from 3x2.yaml
#
# Whole visits, never tract-cut ones (CONTRACT section 2, Visits). A Butler query with a tract
# constraint returns only the detectors that overlap the tract, so this script finds the
# visits first (the `visit` data IDs overlapping a site's tracts) and then takes every dataset
# of those visits. What it selects it keeps as a TAGGED collection, so that BPS jobs, Rucio
# registration and checks all read the same selection:
#
#   selection.py raws SITE    every raw of the visits SITE holds -> TAGGED <instrument>/raw/<campaign>/SITE
#   selection.py check SITE   this repository holds exactly those visits, whole, and no other raw is
#                          visible through the campaign's input collections
#   selection.py move ID      the datasets outgoing transfer ID sends -> its TAGGED selection
#                          (visit-level: the visits whose home is the source, or that the
#                          destination holds; tract-level: the transfer's tracts)
#
# With --split LIMIT --rucio-base BASE (raws, move; used by the register scripts, in the same
# Python, so that the stack starts once per transfer), the selection is then cut into TAGGED
# chunk collections `<selection>/<NNNN>` of at most LIMIT datasets, one per Rucio dataset
# `<BASE>.<NNNN>`. A chunk, once made, never changes (its Rucio dataset may be closed already):
# datasets of the selection in no chunk yet go into new chunks, numbered after the last, so a
# second run over the same selection makes none. stdout then holds one line per chunk
# (collection, Rucio dataset name, datasets; tab-separated) and the report goes to stderr.
# --summary FILE writes what the selection holds (dataset count, RUN collections, dataset ids)
# as JSON, for the manifest the register script writes once Rucio holds the files.
#
# A visit's home is the site owning the tract that contains the visit's centre (the tract of
# the ring skymap whose inner region holds it, as lsst.skymap's RingsSkyMap.findTract), or, for
# a visit centred outside the campaign's tracts, the first site (in the campaign's order) that
# holds it. Each selection is made equal to what it should hold: datasets are added and
# removed, and a second run reports "0 changes".
#
# Runs with a Python that has lsst.daf.butler (BUTLER_PYTHON: the stack's). Environment:
#   BUTLER_REPO   the repository (default /sdf/group/rubin/repo/drp)
#   DRY_RUN=1     compute and print the selection; change nothing
"""Select whole visits and the datasets of outgoing transfers (see the header)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

PLAN: dict[str, Any] = json.loads("{\"campaign\": \"drp-3x2\", \"input_collections\": [\"HSC/defaults\"], \"instrument\": \"HSC\", \"moves\": {\"inputs.bfKernel.usdf-to-frdf\": {\"dataset_type\": \"bfKernel\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.bfKernel.usdf-to-frdf\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.bfKernel.usdf-to-ukdf-lancs\": {\"dataset_type\": \"bfKernel\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.bfKernel.usdf-to-ukdf-lancs\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.bias.usdf-to-frdf\": {\"dataset_type\": \"bias\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.bias.usdf-to-frdf\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.bias.usdf-to-ukdf-lancs\": {\"dataset_type\": \"bias\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.bias.usdf-to-ukdf-lancs\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.camera.usdf-to-frdf\": {\"dataset_type\": \"camera\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.camera.usdf-to-frdf\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.camera.usdf-to-ukdf-lancs\": {\"dataset_type\": \"camera\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.camera.usdf-to-ukdf-lancs\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.dark.usdf-to-frdf\": {\"dataset_type\": \"dark\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.dark.usdf-to-frdf\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.dark.usdf-to-ukdf-lancs\": {\"dataset_type\": \"dark\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.dark.usdf-to-ukdf-lancs\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.defects.usdf-to-frdf\": {\"dataset_type\": \"defects\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.defects.usdf-to-frdf\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.defects.usdf-to-ukdf-lancs\": {\"dataset_type\": \"defects\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.defects.usdf-to-ukdf-lancs\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.drpc_inputs_manifest.usdf-to-frdf\": {\"dataset_type\": \"drpc_inputs_manifest\", \"find_first\": true, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.drpc_inputs_manifest.usdf-to-frdf\", \"source_collection\": \"HSC/runs/drp-3x2/DM-48353/inputs/manifest\", \"tracts\": []}, \"inputs.drpc_inputs_manifest.usdf-to-ukdf-lancs\": {\"dataset_type\": \"drpc_inputs_manifest\", \"find_first\": true, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.drpc_inputs_manifest.usdf-to-ukdf-lancs\", \"source_collection\": \"HSC/runs/drp-3x2/DM-48353/inputs/manifest\", \"tracts\": []}, \"inputs.fgcmLookUpTable.usdf-to-frdf\": {\"dataset_type\": \"fgcmLookUpTable\", \"find_first\": true, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.fgcmLookUpTable.usdf-to-frdf\", \"source_collection\": \"HSC/fgcmcal/lut/RC2/DM-48353\", \"tracts\": []}, \"inputs.fgcmLookUpTable.usdf-to-ukdf-lancs\": {\"dataset_type\": \"fgcmLookUpTable\", \"find_first\": true, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.fgcmLookUpTable.usdf-to-ukdf-lancs\", \"source_collection\": \"HSC/fgcmcal/lut/RC2/DM-48353\", \"tracts\": []}, \"inputs.flat.usdf-to-frdf\": {\"dataset_type\": \"flat\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.flat.usdf-to-frdf\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.flat.usdf-to-ukdf-lancs\": {\"dataset_type\": \"flat\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.flat.usdf-to-ukdf-lancs\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.fringe.usdf-to-frdf\": {\"dataset_type\": \"fringe\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.fringe.usdf-to-frdf\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.fringe.usdf-to-ukdf-lancs\": {\"dataset_type\": \"fringe\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.fringe.usdf-to-ukdf-lancs\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.gaia_dr3_20230707.usdf-to-frdf\": {\"dataset_type\": \"gaia_dr3_20230707\", \"find_first\": true, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.gaia_dr3_20230707.usdf-to-frdf\", \"source_collection\": \"refcats\", \"tracts\": []}, \"inputs.gaia_dr3_20230707.usdf-to-ukdf-lancs\": {\"dataset_type\": \"gaia_dr3_20230707\", \"find_first\": true, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.gaia_dr3_20230707.usdf-to-ukdf-lancs\", \"source_collection\": \"refcats\", \"tracts\": []}, \"inputs.ps1_pv3_3pi_20170110.usdf-to-frdf\": {\"dataset_type\": \"ps1_pv3_3pi_20170110\", \"find_first\": true, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.ps1_pv3_3pi_20170110.usdf-to-frdf\", \"source_collection\": \"refcats\", \"tracts\": []}, \"inputs.ps1_pv3_3pi_20170110.usdf-to-ukdf-lancs\": {\"dataset_type\": \"ps1_pv3_3pi_20170110\", \"find_first\": true, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.ps1_pv3_3pi_20170110.usdf-to-ukdf-lancs\", \"source_collection\": \"refcats\", \"tracts\": []}, \"inputs.sky.usdf-to-frdf\": {\"dataset_type\": \"sky\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.sky.usdf-to-frdf\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.sky.usdf-to-ukdf-lancs\": {\"dataset_type\": \"sky\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.sky.usdf-to-ukdf-lancs\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.transmission_atmosphere.usdf-to-frdf\": {\"dataset_type\": \"transmission_atmosphere\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.transmission_atmosphere.usdf-to-frdf\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.transmission_atmosphere.usdf-to-ukdf-lancs\": {\"dataset_type\": \"transmission_atmosphere\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.transmission_atmosphere.usdf-to-ukdf-lancs\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.transmission_filter.usdf-to-frdf\": {\"dataset_type\": \"transmission_filter\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.transmission_filter.usdf-to-frdf\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.transmission_filter.usdf-to-ukdf-lancs\": {\"dataset_type\": \"transmission_filter\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.transmission_filter.usdf-to-ukdf-lancs\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.transmission_optics.usdf-to-frdf\": {\"dataset_type\": \"transmission_optics\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.transmission_optics.usdf-to-frdf\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.transmission_optics.usdf-to-ukdf-lancs\": {\"dataset_type\": \"transmission_optics\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.transmission_optics.usdf-to-ukdf-lancs\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.transmission_sensor.usdf-to-frdf\": {\"dataset_type\": \"transmission_sensor\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.transmission_sensor.usdf-to-frdf\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.transmission_sensor.usdf-to-ukdf-lancs\": {\"dataset_type\": \"transmission_sensor\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.transmission_sensor.usdf-to-ukdf-lancs\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.yBackground.usdf-to-frdf\": {\"dataset_type\": \"yBackground\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.yBackground.usdf-to-frdf\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"inputs.yBackground.usdf-to-ukdf-lancs\": {\"dataset_type\": \"yBackground\", \"find_first\": false, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/inputs.yBackground.usdf-to-ukdf-lancs\", \"source_collection\": \"HSC/calib/RC2/DM-48353\", \"tracts\": []}, \"step2c.fgcmPhotoCalibCatalog.usdf-to-frdf\": {\"dataset_type\": \"fgcmPhotoCalibCatalog\", \"find_first\": true, \"select_by\": \"visits-held\", \"select_site\": \"frdf\", \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/step2c.fgcmPhotoCalibCatalog.usdf-to-frdf\", \"source_collection\": \"HSC/runs/drp-3x2/DM-48353/step2c\", \"tracts\": [[9948, 9949]]}, \"step2c.fgcmPhotoCalibCatalog.usdf-to-ukdf-lancs\": {\"dataset_type\": \"fgcmPhotoCalibCatalog\", \"find_first\": true, \"select_by\": \"visits-held\", \"select_site\": \"ukdf-lancs\", \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/step2c.fgcmPhotoCalibCatalog.usdf-to-ukdf-lancs\", \"source_collection\": \"HSC/runs/drp-3x2/DM-48353/step2c\", \"tracts\": [[9941, 9942]]}, \"step2e.visitTable.usdf-to-frdf\": {\"dataset_type\": \"visitTable\", \"find_first\": true, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/step2e.visitTable.usdf-to-frdf\", \"source_collection\": \"HSC/runs/drp-3x2/DM-48353/step2e\", \"tracts\": [[9948, 9949]]}, \"step2e.visitTable.usdf-to-ukdf-lancs\": {\"dataset_type\": \"visitTable\", \"find_first\": true, \"select_by\": \"everything\", \"select_site\": null, \"selection_collection\": \"HSC/runs/drp-3x2/DM-48353/outgoing/step2e.visitTable.usdf-to-ukdf-lancs\", \"source_collection\": \"HSC/runs/drp-3x2/DM-48353/step2e\", \"tracts\": [[9941, 9942]]}}, \"raw_collection\": \"HSC/raw/all\", \"repo\": \"/sdf/group/rubin/repo/drp\", \"rings\": {\"counts\": [10, 16, 22, 29, 35, 41, 47, 53, 60, 66, 72, 78, 84, 89, 95, 101, 107, 112, 118, 123, 129, 134, 139, 144, 149, 154, 159, 164, 168, 173, 177, 181, 185, 189, 193, 197, 201, 204, 207, 211, 214, 217, 219, 222, 224, 227, 229, 231, 233, 234, 236, 237, 239, 240, 240, 241, 242, 242, 242, 243, 243, 242, 242, 242, 241, 240, 240, 239, 237, 236, 234, 233, 231, 229, 227, 224, 222, 219, 217, 214, 211, 207, 204, 201, 197, 193, 189, 185, 181, 177, 173, 168, 164, 159, 154, 149, 144, 139, 134, 129, 123, 118, 112, 107, 101, 95, 89, 84, 78, 72, 66, 60, 53, 47, 41, 35, 29, 22, 16, 10], \"first_ids\": [1, 11, 27, 49, 78, 113, 154, 201, 254, 314, 380, 452, 530, 614, 703, 798, 899, 1006, 1118, 1236, 1359, 1488, 1622, 1761, 1905, 2054, 2208, 2367, 2531, 2699, 2872, 3049, 3230, 3415, 3604, 3797, 3994, 4195, 4399, 4606, 4817, 5031, 5248, 5467, 5689, 5913, 6140, 6369, 6600, 6833, 7067, 7303, 7540, 7779, 8019, 8259, 8500, 8742, 8984, 9226, 9469, 9712, 9954, 10196, 10438, 10679, 10919, 11159, 11398, 11635, 11871, 12105, 12338, 12569, 12798, 13025, 13249, 13471, 13690, 13907, 14121, 14332, 14539, 14743, 14944, 15141, 15334, 15523, 15708, 15889, 16066, 16239, 16407, 16571, 16730, 16884, 17033, 17177, 17316, 17450, 17579, 17702, 17820, 17932, 18039, 18140, 18235, 18324, 18408, 18486, 18558, 18624, 18684, 18737, 18784, 18825, 18860, 18889, 18911, 18927], \"num_rings\": 120, \"ra_start_deg\": 0.0, \"total\": 18938}, \"site_order\": [\"usdf\", \"frdf\", \"ukdf-lancs\"], \"sites\": {\"frdf\": {\"owned_tracts\": [[9948, 9949]], \"processing_tracts\": [[9948, 9949]], \"raw_selection\": \"HSC/raw/drp-3x2/frdf\"}, \"ukdf-lancs\": {\"owned_tracts\": [[9941, 9942]], \"processing_tracts\": [[9941, 9942]], \"raw_selection\": \"HSC/raw/drp-3x2/ukdf-lancs\"}, \"usdf\": {\"owned_tracts\": [[9469, 9470]], \"processing_tracts\": [[9469, 9470]], \"raw_selection\": \"HSC/raw/drp-3x2/usdf\"}}, \"skymap\": \"hsc_rings_v1\", \"visit_stages\": [\"step1\", \"step2a-visits\", \"step2d\", \"step4\", \"step6\"]}")
CHUNK = 500  # visits per query: keeps every `visit IN (...)` expression small


def tract_predicate(ranges: Sequence[Sequence[int]]) -> str:
    parts = [f"tract = {a}" if a == b else f"(tract >= {a} AND tract <= {b})" for a, b in ranges]
    return "(" + " OR ".join(parts) + ")"


def in_ranges(tract: int, ranges: Sequence[Sequence[int]]) -> bool:
    return any(a <= tract <= b for a, b in ranges)


def tract_at(ra: float, dec: float) -> int:
    """The ring skymap's tract whose inner region contains (ra, dec), degrees."""
    import math

    rings = PLAN["rings"]
    size = math.pi / (rings["num_rings"] + 1)
    first_start = size * 0.5 - math.pi / 2
    dec_rad = math.radians(dec)
    if dec_rad < first_start:
        return 0
    if dec_rad > -first_start:
        return int(rings["total"]) - 1
    ring = int((dec_rad - first_start) / size)
    if ring >= rings["num_rings"]:
        return int(rings["total"]) - 1
    n = rings["counts"][ring]
    offset = math.radians(ra) - math.radians(rings["ra_start_deg"])
    offset = offset % (2 * math.pi)
    index = int(offset / (2 * math.pi / n) + 0.5)
    return int(rings["first_ids"][ring]) + (0 if index == n else index)


def chunks(items: Sequence[int], size: int = CHUNK) -> Iterator[Sequence[int]]:
    for i in range(0, len(items), size):
        yield items[i: i + size]


class Selector:
    def __init__(self, repo: str, dry_run: bool) -> None:
        from lsst.daf.butler import Butler

        self.dry_run = dry_run
        self.butler = Butler.from_config(repo, writeable=not dry_run)
        self.instrument = PLAN["instrument"]
        self.skymap = PLAN["skymap"]
        self._held: dict[str, set[int]] = {}

    # -- visits -------------------------------------------------------------------------------
    def held_visits(self, site: str) -> list[int]:
        """Visits overlapping the site's processing tracts (the Butler's spatial join)."""
        where = (f"instrument = '{self.instrument}' AND skymap = '{self.skymap}' AND "
                 + tract_predicate(PLAN["sites"][site]["processing_tracts"]))
        ids = self.butler.query_data_ids(["visit"], where=where, limit=None, explain=False)
        return sorted({int(d["visit"]) for d in ids})

    def home_of(self, visits: Sequence[int]) -> dict[int, str]:
        """Each visit's home site (see the header)."""
        from lsst.sphgeom import LonLat

        homes: dict[int, str] = {}
        for part in chunks(list(visits)):
            where = (f"instrument = '{self.instrument}' AND visit IN "
                     f"({', '.join(str(v) for v in part)})")
            for rec in self.butler.query_dimension_records("visit", where=where, limit=None,
                                                           explain=False):
                centre = LonLat(rec.region.getBoundingCircle().getCenter())
                tract = tract_at(centre.getLon().asDegrees(), centre.getLat().asDegrees())
                homes[int(rec.id)] = next(
                    (s for s in PLAN["site_order"]
                     if in_ranges(tract, PLAN["sites"][s]["owned_tracts"])), "")
        for v in visits:  # centred outside the campaign: the first site holding it
            if not homes.get(v):
                homes[v] = next(s for s in PLAN["site_order"] if v in self._held_cache(s))
        return homes

    def _held_cache(self, site: str) -> set[int]:
        if site not in self._held:
            self._held[site] = set(self.held_visits(site))
        return self._held[site]

    def visit_of_exposures(self, visits: Sequence[int]) -> dict[int, int]:
        """Exposure -> visit (the visit definitions made by define-visits)."""
        out: dict[int, int] = {}
        for part in chunks(list(visits)):
            where = (f"instrument = '{self.instrument}' AND visit IN "
                     f"({', '.join(str(v) for v in part)})")
            for d in self.butler.query_data_ids(["exposure", "visit"], where=where, limit=None,
                                                explain=False):
                out[int(d["exposure"])] = int(d["visit"])
        return out

    # -- datasets -----------------------------------------------------------------------------
    def datasets_of_visits(self, dataset_type: str, collections: str, visits: Sequence[int],
                           find_first: bool) -> list[Any]:
        refs: list[Any] = []
        for part in chunks(list(visits)):
            where = (f"instrument = '{self.instrument}' AND visit IN "
                     f"({', '.join(str(v) for v in part)})")
            refs += self._query(dataset_type, collections, where, find_first)
        return refs

    def _query(self, dataset_type: str, collections: str, where: str,
               find_first: bool) -> list[Any]:
        from lsst.daf.butler import MissingCollectionError, MissingDatasetTypeError

        try:
            return list(self.butler.query_datasets(dataset_type, collections=collections,
                                                   where=where, find_first=find_first,
                                                   limit=None, explain=False))
        except (MissingDatasetTypeError, MissingCollectionError):
            return []

    def keep(self, tagged: str, dataset_type: str, refs: Iterable[Any]) -> tuple[int, int, int]:
        """Make TAGGED `tagged` hold exactly `refs` of `dataset_type`: (count, added, removed)."""
        from lsst.daf.butler import CollectionType, MissingCollectionError

        wanted = {ref.id: ref for ref in refs}
        registry = self.butler.registry
        try:
            kind = registry.getCollectionType(tagged)
        except MissingCollectionError:
            kind = None
        if kind is not None and kind != CollectionType.TAGGED:
            raise SystemExit(f"error: {tagged} exists as a {kind.name} collection, not TAGGED; "
                             "rename or remove it, then run again")
        present: dict[Any, Any] = {}
        if kind is not None:
            present = {ref.id: ref for ref in self._query(dataset_type, tagged, "", False)}
        add = [ref for key, ref in wanted.items() if key not in present]
        drop = [ref for key, ref in present.items() if key not in wanted]
        if not self.dry_run:
            if kind is None:
                registry.registerCollection(tagged, CollectionType.TAGGED)
            if drop:
                registry.disassociate(tagged, drop)
            if add:
                registry.associate(tagged, add)
        return len(wanted), len(add), len(drop)


def report(what: str, tagged: str, counts: tuple[int, int, int], dry_run: bool) -> None:
    total, added, removed = counts
    changes = added + removed
    verb = "would change" if dry_run else "changed"
    print(f"{what}: {total} dataset(s) in {tagged}; {verb}: {changes} "
          f"(+{added} -{removed}){'' if changes else ' - 0 changes'}")


def select_raws(sel: Selector, site: str) -> int:
    visits = sel.held_visits(site)
    refs = sel.datasets_of_visits("raw", PLAN["raw_collection"], visits, find_first=False)
    tagged = PLAN["sites"][site]["raw_selection"]
    report(f"raws of {len(visits)} visit(s) held by {site}", tagged,
           sel.keep(tagged, "raw", refs), sel.dry_run)
    if visits and not refs:
        print(f"error: no raw of {site}'s {len(visits)} visit(s) in {PLAN['raw_collection']}",
              file=sys.stderr)
        return 1
    return 0


def check(sel: Selector, site: str) -> int:
    """Whole visits, exactly the site's, and no stray raw behind the input collections."""
    problems: list[str] = []
    visits = sel.held_visits(site)
    tagged = PLAN["sites"][site]["raw_selection"]
    selected = sel._query("raw", tagged, "", False)
    visit_of = sel.visit_of_exposures(visits)
    per_visit: dict[int, int] = {}
    for ref in sel.datasets_of_visits("raw", tagged, visits, find_first=False):
        v = visit_of[int(ref.dataId["exposure"])]
        per_visit[v] = per_visit.get(v, 0) + 1
    missing = [v for v in visits if v not in per_visit]
    if missing:
        problems.append(f"{len(missing)} visit(s) overlapping {site}'s tracts have no raw in "
                        f"{tagged}, e.g. {missing[:5]}")
    in_repo: dict[int, int] = {}
    for ref in sel.datasets_of_visits("raw", PLAN["raw_collection"], visits, find_first=False):
        v = visit_of[int(ref.dataId["exposure"])]
        in_repo[v] = in_repo.get(v, 0) + 1
    partial = [v for v in visits if per_visit.get(v, 0) != in_repo.get(v, 0)]
    if partial:
        problems.append(f"{len(partial)} visit(s) are not whole in {tagged} (fewer raws than "
                        f"{PLAN['raw_collection']} has of them), e.g. {partial[:5]}: run "
                        f"`selection.py raws {site}` again")
    extra = len(selected) - sum(per_visit.values())
    if extra:
        problems.append(f"{tagged} holds {extra} raw(s) of visits {site} does not hold")
    if PLAN["visit_stages"]:
        wanted = {ref.id for ref in selected}
        stray = [ref for ref in sel._query("raw", ",".join(PLAN["input_collections"]), "", False)
                 if ref.id not in wanted]
        if stray:
            problems.append(
                f"{len(stray)} raw(s) outside {tagged} are visible through campaign."
                f"input_collections ({', '.join(PLAN['input_collections'])}): the `select: "
                f"visits` stage(s) {', '.join(PLAN['visit_stages'])} would process them too; "
                "take the raw collection out of those collections")
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if not problems:
        print(f"{site}: {len(visits)} whole visit(s), {len(selected)} raw(s) in {tagged}")
    return 1 if problems else 0


def select_move(sel: Selector, move_id: str) -> int:
    move = PLAN["moves"][move_id]
    dataset_type, source, ff = move["dataset_type"], move["source_collection"], move["find_first"]
    by = move["select_by"]
    if by == "everything":
        refs = sel._query(dataset_type, source, "", ff)
        what = f"every {dataset_type}"
    elif by == "tracts":
        where = f"skymap = '{sel.skymap}' AND " + tract_predicate(move["tracts"])
        refs = sel._query(dataset_type, source, where, ff)
        what = f"{dataset_type} of {len(move['tracts'])} tract range(s)"
    else:
        visits = sel.held_visits(move["select_site"])
        if by == "home-visits":
            homes = sel.home_of(visits)
            visits = [v for v in visits if homes[v] == move["select_site"]]
        refs = sel.datasets_of_visits(dataset_type, source, visits, ff)
        what = f"{dataset_type} of {len(visits)} visit(s) ({by} of {move['select_site']})"
    report(f"{move_id}: {what}", move["selection_collection"],
           sel.keep(move["selection_collection"], dataset_type, refs), sel.dry_run)
    return 0


def split(sel: Selector, tagged: str, dataset_type: str, refs: Sequence[Any], limit: int,
          rucio_base: str) -> list[tuple[str, str, int]]:
    """Cut TAGGED `tagged`, which holds `refs`, into chunks of at most `limit` (see the
    header): (collection, Rucio dataset name, datasets) of every chunk, old and new."""
    import re

    from lsst.daf.butler import CollectionType

    selected = {ref.id: ref for ref in refs}
    chunk_re = re.compile(re.escape(tagged) + r"/([0-9]{4,})$")
    found: dict[int, str] = {}
    for name in sel.butler.collections.query(tagged + "/*",
                                             collection_types=CollectionType.TAGGED):
        match = chunk_re.match(name)
        if match:
            found[int(match.group(1))] = name
    counts: dict[int, int] = {}
    assigned: set[Any] = set()
    for number, name in sorted(found.items()):
        ids = {ref.id for ref in sel._query(dataset_type, name, "", False)}
        counts[number] = len(ids)
        assigned |= ids
    new = sorted((ref for key, ref in selected.items() if key not in assigned),
                 key=lambda ref: (ref.run, str(ref.dataId), str(ref.id)))
    number = max(found, default=0)
    made = 0
    for start in range(0, len(new), limit):
        number += 1
        name = f"{tagged}/{number:04d}"
        part = new[start: start + limit]
        if not sel.dry_run:
            sel.butler.collections.register(name, CollectionType.TAGGED)
            sel.butler.registry.associate(name, part)
        found[number] = name
        counts[number] = len(part)
        made += 1
    print(f"{tagged}: {len(selected)} dataset(s) of {dataset_type} in {len(found)} chunk(s) of "
          f"at most {limit} ({made} new, {len(new)} dataset(s) added)", file=sys.stderr)
    return [(found[n], f"{rucio_base}.{n:04d}", counts[n]) for n in sorted(found)]


def write_summary(tagged: str, dataset_type: str, refs: Sequence[Any], path: str) -> None:
    """What `tagged` holds (`refs`), for the register script's manifest (written atomically)."""
    runs: dict[str, int] = {}
    for ref in refs:
        runs[ref.run] = runs.get(ref.run, 0) + 1
    out = {"collections": tagged, "dataset_type": dataset_type, "butler_datasets": len(refs),
           "runs": dict(sorted(runs.items())), "dataset_ids": sorted(str(ref.id) for ref in refs)}
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    import contextlib

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["raws", "check", "move"])
    parser.add_argument("name", help="a site id (raws, check) or an outgoing transfer id (move)")
    parser.add_argument("--repo", default=os.environ.get("BUTLER_REPO") or PLAN["repo"])
    parser.add_argument("--split", type=int, metavar="LIMIT",
                        help="then cut the selection into chunks of at most LIMIT datasets")
    parser.add_argument("--rucio-base", help="with --split: the chunks' Rucio dataset base name")
    parser.add_argument("--summary", metavar="FILE", help="write what the selection holds here")
    args = parser.parse_args(argv)
    names = PLAN["moves"] if args.what == "move" else PLAN["sites"]
    if args.name not in names:
        print(f"error: {args.name!r} is not one of {', '.join(sorted(names))}", file=sys.stderr)
        return 2
    after = args.split is not None or args.summary
    if after and args.what == "check":
        print("error: --split and --summary go with raws or move, not check", file=sys.stderr)
        return 2
    if args.split is not None and (args.split < 1 or not args.rucio_base):
        print(f"error: --split takes a number of datasets of at least 1 (not {args.split}) "
              "and needs --rucio-base", file=sys.stderr)
        return 2
    sel = Selector(args.repo, os.environ.get("DRY_RUN") == "1")
    if args.what == "check":
        return check(sel, args.name)
    # with --split, stdout holds the chunk lines only
    quiet = contextlib.redirect_stdout(sys.stderr) if args.split is not None \
        else contextlib.nullcontext()
    with quiet:
        if args.what == "raws":
            rc = select_raws(sel, args.name)
            tagged, dataset_type = PLAN["sites"][args.name]["raw_selection"], "raw"
        else:
            rc = select_move(sel, args.name)
            move = PLAN["moves"][args.name]
            tagged, dataset_type = move["selection_collection"], move["dataset_type"]
    if rc or not after:
        return rc
    refs = sel._query(dataset_type, tagged, "", False)  # what the selection holds now
    if args.split is not None:
        for collection, rucio_name, count in split(sel, tagged, dataset_type, refs, args.split,
                                                   args.rucio_base):
            print(f"{collection}\t{rucio_name}\t{count}")
    if args.summary and sel.dry_run:
        print(f"DRY_RUN: {args.summary} not written", file=sys.stderr)
    elif args.summary:
        write_summary(tagged, dataset_type, refs, args.summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
