# Cross-check comparison at usdf of campaign 'dr1'
# generated - do not edit: drpc 0.1.0 from dr1.yaml
#
# The cross-check tracts (5063) are processed by their owner and by a second site; both
# results came back here (each site's own chain, or the central site's stage output). For every
# tract and tract-level dataset type this script reads what a consumer of each collection sees
# (find-first) and compares them:
#
#   every type   the data IDs of tract T at each site; the fraction that only one site has
#                (data IDs in one set only, over the larger set) must be <= count_fraction
#   catalogs     (ArrowAstropy, ArrowTable, ArrowNumpy, ArrowNumpyDict, AstropyTable, DataFrame)
#                for each data ID both sites have: the rows' relative difference <= count_fraction;
#                rows matched by sky position (coord_ra/coord_dec, else ra/dec, degrees; mutual
#                nearest neighbours within match_arcsec), matched / rows >= matched_fraction for
#                both catalogs; magnitude differences -2.5 log10(flux_a / flux_b) of the matched
#                rows for every flux column both have (names ending in psfFlux, else in Flux):
#                the median absolute difference (from 0: a zero-point offset between the sites
#                counts as much as scatter) <= mag_mad, for the worst column. A catalog without
#                positions or without a flux column is compared as far as it goes, with a note.
#
# Tolerances (sky.cross_check_tolerance):
#   count_fraction 0, match_arcsec 0.5, mag_mad 0.02, matched_fraction 0.95.
#
# Prints one line per (tract, dataset type): OK, DIFFERS (the numbers outside the tolerances
# follow), EMPTY (neither site has any: nothing compared, which proves nothing) or ERROR (a
# dataset could not be read: the error follows), then a summary. Exit 0: every comparison
# within the tolerances; 1: some are not (each named on stderr); 2: nothing or not everything
# could be compared (the repository or a collection missing, a dataset unreadable: named).
#
# --json FILE writes the result, with the keys:
#   campaign, central, repo, skymap, tolerance {count_fraction, match_arcsec, mag_mad,
#   matched_fraction}, ok (bool), counts {ok, differs, empty, error}, comparisons: a list of
#   {tract, dataset_type, storage_class, stage, status ("OK" | "DIFFERS" | "EMPTY" | "ERROR"),
#    sides [{site, collection, datasets}], only_at {site: [data ID, ...]},
#    id_fraction, catalog (null for other types, else {rows [a, b], row_fraction,
#    matched, matched_fraction, mag_column, mag_mad, mag_offset (median a - b), notes [...]}:
#    the worst data ID's value of each), problems [text, ...]}
#
# Only reads. Runs with a Python that has lsst.daf.butler (BUTLER_PYTHON: the stack's, which
# brings numpy and astropy). Environment:
#   BUTLER_REPO   the repository (default /sdf/group/rubin/repo/drp)
"""Compare the two sites' results of every cross-check tract (see the header)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from itertools import product
from typing import Any

PLAN: dict[str, Any] = json.loads("{\"campaign\": \"dr1\", \"central\": \"usdf\", \"pairs\": [{\"dataset_type\": \"single_visit_star_association_metrics\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step1c\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step1c\", \"storage_class\": \"MetricMeasurementBundle\", \"tract\": 5063}, {\"dataset_type\": \"recalibrated_star_association_metrics\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step2d\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step2d\", \"storage_class\": \"MetricMeasurementBundle\", \"tract\": 5063}, {\"dataset_type\": \"object_all\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step3a\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step3a\", \"storage_class\": \"ArrowAstropy\", \"tract\": 5063}, {\"dataset_type\": \"object_metrics\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step3a\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step3a\", \"storage_class\": \"MetricMeasurementBundle\", \"tract\": 5063}, {\"dataset_type\": \"object_ref_match_astrom_metrics\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step3a\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step3a\", \"storage_class\": \"MetricMeasurementBundle\", \"tract\": 5063}, {\"dataset_type\": \"deepCoadd_exposure_time_map_sum\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step3a\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step3a\", \"storage_class\": \"HealSparseMap\", \"tract\": 5063}, {\"dataset_type\": \"deepCoadd_psf_size_map_weighted_mean\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step3a\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step3a\", \"storage_class\": \"HealSparseMap\", \"tract\": 5063}, {\"dataset_type\": \"deepCoadd_psf_e1_map_weighted_mean\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step3a\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step3a\", \"storage_class\": \"HealSparseMap\", \"tract\": 5063}, {\"dataset_type\": \"deepCoadd_psf_e2_map_weighted_mean\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step3a\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step3a\", \"storage_class\": \"HealSparseMap\", \"tract\": 5063}, {\"dataset_type\": \"deepCoadd_psf_maglim_map_weighted_mean\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step3a\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step3a\", \"storage_class\": \"HealSparseMap\", \"tract\": 5063}, {\"dataset_type\": \"deepCoadd_sky_noise_map_weighted_mean\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step3a\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step3a\", \"storage_class\": \"HealSparseMap\", \"tract\": 5063}, {\"dataset_type\": \"deepCoadd_sky_background_map_weighted_mean\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step3a\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step3a\", \"storage_class\": \"HealSparseMap\", \"tract\": 5063}, {\"dataset_type\": \"deepCoadd_dcr_dra_map_weighted_mean\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step3a\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step3a\", \"storage_class\": \"HealSparseMap\", \"tract\": 5063}, {\"dataset_type\": \"deepCoadd_dcr_ddec_map_weighted_mean\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step3a\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step3a\", \"storage_class\": \"HealSparseMap\", \"tract\": 5063}, {\"dataset_type\": \"deepCoadd_dcr_e1_map_weighted_mean\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step3a\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step3a\", \"storage_class\": \"HealSparseMap\", \"tract\": 5063}, {\"dataset_type\": \"deepCoadd_dcr_e2_map_weighted_mean\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step3a\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step3a\", \"storage_class\": \"HealSparseMap\", \"tract\": 5063}, {\"dataset_type\": \"deepCoadd_epoch_map_mean\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step3a\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step3a\", \"storage_class\": \"HealSparseMap\", \"tract\": 5063}, {\"dataset_type\": \"deepCoadd_epoch_map_min\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step3a\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step3a\", \"storage_class\": \"HealSparseMap\", \"tract\": 5063}, {\"dataset_type\": \"deepCoadd_epoch_map_max\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step3a\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step3a\", \"storage_class\": \"HealSparseMap\", \"tract\": 5063}, {\"dataset_type\": \"ss_source_associated\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step4b\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step4b\", \"storage_class\": \"ArrowAstropy\", \"tract\": 5063}, {\"dataset_type\": \"analysis_source_association_metrics\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step4b\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step4b\", \"storage_class\": \"MetricMeasurementBundle\", \"tract\": 5063}, {\"dataset_type\": \"object\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step3a\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step3a\", \"storage_class\": \"ArrowAstropy\", \"tract\": 5063}, {\"dataset_type\": \"dia_object\", \"sides\": [{\"collection\": \"LSSTCam/runs/DR1/step4b\", \"site\": \"usdf\"}, {\"collection\": \"LSSTCam/runs/DR1/incoming/crosscheck/frdf\", \"site\": \"frdf\"}], \"stage\": \"step4b\", \"storage_class\": \"DataFrame\", \"tract\": 5063}], \"repo\": \"/sdf/group/rubin/repo/drp\", \"skymap\": \"lsst_cells_v1\", \"tolerance\": {\"count_fraction\": 0.0, \"mag_mad\": 0.02, \"match_arcsec\": 0.5, \"matched_fraction\": 0.95}}")
TOL: dict[str, float] = PLAN["tolerance"]
CATALOG_STORAGE_CLASSES = frozenset({"ArrowAstropy", "ArrowTable", "ArrowNumpy",
                                     "ArrowNumpyDict", "AstropyTable", "DataFrame"})
POSITION_COLUMNS = (("coord_ra", "coord_dec"), ("ra", "dec"))
FLUX_SUFFIXES = ("psfFlux", "Flux")
MAX_LISTED = 10


class UsageError(Exception):
    """Something to fix before a comparison means anything (exit 2)."""


# -- reading ------------------------------------------------------------------------------------
def data_id_text(ref: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in ref.dataId.required.items())


def column_names(table: Any) -> list[str]:
    """The columns of a catalog as butler.get returns it (astropy, pyarrow, pandas, numpy)."""
    if hasattr(table, "colnames"):
        return [str(c) for c in table.colnames]
    if hasattr(table, "column_names"):
        return [str(c) for c in table.column_names]
    if hasattr(table, "columns") and hasattr(table, "to_numpy"):
        return [str(c) for c in table.columns]
    dtype = getattr(table, "dtype", None)
    if dtype is not None and dtype.names:
        return list(dtype.names)
    if isinstance(table, dict):
        return [str(c) for c in table]
    raise TypeError(f"not a catalog: {type(table).__name__}")


def row_count(table: Any) -> int:
    if isinstance(table, dict):  # ArrowNumpyDict: column name -> array
        return len(next(iter(table.values()))) if table else 0
    return len(table)


def column(table: Any, name: str, degrees: bool = False) -> Any:
    """One column as a float array, missing values as NaN (positions in degrees)."""
    import numpy as np

    if hasattr(table, "colnames"):  # astropy Table, perhaps masked, perhaps with units
        col = table[name]
        unit = getattr(col, "unit", None)
        values: Any = np.ma.filled(np.ma.asarray(col, dtype=float), np.nan)
        if degrees and unit is not None and unit.physical_type == "angle":
            import astropy.units as u

            values = (values * unit).to_value(u.deg)
        return np.asarray(values, dtype=float)
    if hasattr(table, "column_names"):  # pyarrow Table: nulls become NaN
        return np.asarray(table.column(name).to_numpy(), dtype=float)
    if hasattr(table, "columns") and hasattr(table, "to_numpy"):  # pandas DataFrame
        return np.asarray(table[name].to_numpy(dtype=float, na_value=np.nan), dtype=float)
    return np.asarray(table[name], dtype=float)


class Repository:
    def __init__(self, repo: str) -> None:
        from lsst.daf.butler import Butler

        try:
            self.butler = Butler.from_config(repo)
        except Exception as exc:  # FileNotFoundError, ValueError, ...: name the repository
            raise UsageError(f"cannot open the Butler repository {repo}: {exc}") from exc

    def missing_collections(self, names: Sequence[str]) -> list[str]:
        from lsst.daf.butler import MissingCollectionError

        missing = []
        for name in names:
            try:
                self.butler.collections.get_info(name)
            except MissingCollectionError:
                missing.append(name)
        return missing

    def storage_class(self, dataset_type: str) -> Any:
        """The type's storage class as registered here (None: never registered, so no site
        returned any of it)."""
        from lsst.daf.butler import MissingDatasetTypeError

        try:
            return self.butler.get_dataset_type(dataset_type).storageClass
        except MissingDatasetTypeError:
            return None

    def refs(self, dataset_type: str, collection: str, tract: int) -> dict[str, Any]:
        """Data ID text -> ref of the type's datasets of the tract that `collection` shows."""
        found = self.butler.query_datasets(
            dataset_type, collections=collection, find_first=True,
            where="skymap = skymap_name AND tract = tract_id",
            bind={"skymap_name": PLAN["skymap"], "tract_id": tract}, limit=None, explain=False)
        return {data_id_text(ref): ref for ref in found}

    def columns_of(self, ref: Any) -> list[str] | None:
        """The catalog's column names without reading it (None: the storage class cannot say)."""
        sc = ref.datasetType.storageClass
        if "columns" not in sc.derivedComponents or "columns" not in sc.parameters:
            return None
        return [str(c) for c in self.butler.get(ref.makeComponentRef("columns"))]

    def read(self, ref: Any, columns: list[str] | None) -> Any:
        if columns is None:
            return self.butler.get(ref)
        return self.butler.get(ref, parameters={"columns": columns})


# -- matching -----------------------------------------------------------------------------------
def unit_vectors(ra_deg: Any, dec_deg: Any) -> Any:
    import numpy as np

    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=1)


def nearest(rows: Any, others: Any, dist2: Any, n: int) -> Any:
    """For each of n rows, the index of its nearest candidate (-1: none)."""
    import numpy as np

    best = np.full(n, -1, dtype=np.int64)
    order = np.lexsort((dist2, rows))
    first = np.ones(len(order), dtype=bool)
    first[1:] = rows[order][1:] != rows[order][:-1]
    best[rows[order][first]] = others[order][first]
    return best


def match(ra_a: Any, dec_a: Any, ra_b: Any, dec_b: Any, radius_arcsec: float) -> tuple[Any, Any]:
    """Indices (in a, in b) of the mutual nearest neighbours closer than the radius.

    Both catalogs go into a grid of cubes on the unit sphere (edge >= the chord of the radius):
    a row's neighbours within the radius are in its cube or one of the 26 around it, found by
    binary search in b's sorted cube keys. Memory and time grow with the rows, not their
    product, so 1e5-row catalogs take a moment; no KD-tree (scipy) needed.
    """
    import numpy as np

    ok_a = np.flatnonzero(np.isfinite(ra_a) & np.isfinite(dec_a))
    ok_b = np.flatnonzero(np.isfinite(ra_b) & np.isfinite(dec_b))
    empty = np.zeros(0, dtype=np.int64)
    if not len(ok_a) or not len(ok_b):
        return empty, empty
    va, vb = unit_vectors(ra_a[ok_a], dec_a[ok_a]), unit_vectors(ra_b[ok_b], dec_b[ok_b])
    chord = 2 * math.sin(math.radians(radius_arcsec / 3600) / 2)
    cube = max(chord, 2e-6)  # keeps the keys below 2**63
    span = math.ceil(2 / cube) + 3
    shift = span // 2

    def keys(cells: Any) -> Any:
        c = cells + shift
        return (c[:, 0] * span + c[:, 1]) * span + c[:, 2]

    cells_a = np.floor(va / cube).astype(np.int64)
    keys_b = keys(np.floor(vb / cube).astype(np.int64))
    order_b = np.argsort(keys_b, kind="stable")
    sorted_b = keys_b[order_b]
    found_a, found_b, found_d = [], [], []
    for step in product((-1, 0, 1), repeat=3):
        wanted = keys(cells_a + np.asarray(step, dtype=np.int64))
        lo = np.searchsorted(sorted_b, wanted, side="left")
        counts = np.searchsorted(sorted_b, wanted, side="right") - lo
        total = int(counts.sum())
        if not total:
            continue
        rows = np.repeat(np.arange(len(wanted)), counts)
        within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        others = order_b[np.repeat(lo, counts) + within]
        dist2 = np.sum((va[rows] - vb[others]) ** 2, axis=1)
        close = dist2 <= chord * chord
        found_a.append(rows[close])
        found_b.append(others[close])
        found_d.append(dist2[close])
    if not found_a:
        return empty, empty
    rows, others, dist2 = (np.concatenate(x) for x in (found_a, found_b, found_d))
    best_b = nearest(rows, others, dist2, len(ok_a))
    best_a = nearest(others, rows, dist2, len(ok_b))
    mine = np.flatnonzero(best_b >= 0)
    mutual = mine[best_a[best_b[mine]] == mine]
    return ok_a[mutual], ok_b[best_b[mutual]]


def flux_columns(names_a: Sequence[str], names_b: Sequence[str]) -> list[str]:
    both = set(names_a) & set(names_b)
    for suffix in FLUX_SUFFIXES:
        found = sorted(c for c in both if c.endswith(suffix))
        if found:
            return found
    return []


def relative(a: float, b: float) -> float:
    return abs(a - b) / max(a, b) if max(a, b) else 0.0


def compare_catalogs(repo: Repository, ref_a: Any, ref_b: Any) -> dict[str, Any]:
    """Rows, matched objects and photometry of one data ID's two catalogs."""
    import numpy as np

    names_a, names_b = repo.columns_of(ref_a), repo.columns_of(ref_b)
    wanted: list[str] | None = None
    if names_a is not None and names_b is not None:
        both = set(names_a) & set(names_b)
        wanted = sorted({c for pair in POSITION_COLUMNS for c in pair if c in both}
                        | set(flux_columns(names_a, names_b))) or sorted(both)[:1] or None
        # (one column is enough to count the rows; none at all would read none of them)
    table_a, table_b = repo.read(ref_a, wanted), repo.read(ref_b, wanted)
    names_a, names_b = column_names(table_a), column_names(table_b)
    rows = [row_count(table_a), row_count(table_b)]
    result: dict[str, Any] = {"rows": rows, "row_fraction": relative(*rows), "matched": None,
                              "matched_fraction": None, "mag_column": None, "mag_mad": None,
                              "mag_offset": None, "notes": []}
    position = next((p for p in POSITION_COLUMNS
                     if set(p) <= set(names_a) and set(p) <= set(names_b)), None)
    if position is None:
        result["notes"].append("no sky positions (coord_ra/coord_dec or ra/dec) in both: rows "
                               "not matched")
        return result
    ra, dec = position
    in_a, in_b = match(column(table_a, ra, True), column(table_a, dec, True),
                       column(table_b, ra, True), column(table_b, dec, True), TOL["match_arcsec"])
    result["matched"] = len(in_a)
    result["matched_fraction"] = (min(len(in_a) / rows[0] if rows[0] else 1.0,
                                      len(in_b) / rows[1] if rows[1] else 1.0))
    fluxes = flux_columns(names_a, names_b)
    if not fluxes:
        result["notes"].append("no flux column (names ending in psfFlux or Flux) in both: "
                               "photometry not compared")
        return result
    for name in fluxes:
        fa, fb = column(table_a, name)[in_a], column(table_b, name)[in_b]
        good = np.isfinite(fa) & np.isfinite(fb) & (fa > 0) & (fb > 0)
        if not good.any():
            continue
        diff = -2.5 * np.log10(fa[good] / fb[good])
        mad = float(np.median(np.abs(diff)))
        if result["mag_mad"] is None or mad > result["mag_mad"]:
            result.update(mag_column=name, mag_mad=mad, mag_offset=float(np.median(diff)))
    if result["mag_column"] is None:
        result["notes"].append(f"no matched row with a positive flux in both ({', '.join(fluxes)})"
                               ": photometry not compared")
    return result


def worst(found: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The catalog figures of a pair: each the worst over its data IDs."""
    if not found:
        return None

    def pick(key: str, fn: Any) -> Any:
        values = [f for f in found if f[key] is not None]
        return fn(values, key=lambda f: f[key]) if values else None

    rows = max(found, key=lambda f: f["row_fraction"])
    matched = pick("matched_fraction", min)
    mag = pick("mag_mad", max)
    notes = sorted({n for f in found for n in f["notes"]})
    return {"rows": rows["rows"], "row_fraction": rows["row_fraction"],
            "matched": matched["matched"] if matched else None,
            "matched_fraction": matched["matched_fraction"] if matched else None,
            "mag_column": mag["mag_column"] if mag else None,
            "mag_mad": mag["mag_mad"] if mag else None,
            "mag_offset": mag["mag_offset"] if mag else None, "notes": notes}


# -- comparing ----------------------------------------------------------------------------------
def listed(items: list[str]) -> str:
    more = f", ... ({len(items)} in all)" if len(items) > MAX_LISTED else ""
    return "; ".join(items[:MAX_LISTED]) + more


def compare(repo: Repository, pair: dict[str, Any]) -> dict[str, Any]:
    side_a, side_b = pair["sides"]
    sc = repo.storage_class(pair["dataset_type"])
    refs_a: dict[str, Any] = {}
    refs_b: dict[str, Any] = {}
    if sc is not None:  # else never registered here: nothing of it came back from either site
        refs_a, refs_b = (repo.refs(pair["dataset_type"], s["collection"], pair["tract"])
                          for s in (side_a, side_b))
    only = {side_a["site"]: sorted(set(refs_a) - set(refs_b)),
            side_b["site"]: sorted(set(refs_b) - set(refs_a))}
    larger = max(len(refs_a), len(refs_b))
    id_fraction = (len(only[side_a["site"]]) + len(only[side_b["site"]])) / larger if larger else 0
    problems = []
    if id_fraction > TOL["count_fraction"]:
        problems.append(f"{id_fraction:.3g} of the data IDs at one site only > count_fraction "
                        f"{TOL['count_fraction']:g}")
        problems += [f"only at {site}: {listed(ids)}" for site, ids in only.items() if ids]
    catalog = None
    storage_class = sc.name if sc is not None else pair["storage_class"]
    if sc is not None and storage_class in CATALOG_STORAGE_CLASSES:
        catalog = worst([compare_catalogs(repo, refs_a[k], refs_b[k])
                         for k in sorted(set(refs_a) & set(refs_b))])
    if catalog is not None:
        if catalog["row_fraction"] > TOL["count_fraction"]:
            problems.append(f"rows {catalog['rows'][0]} vs {catalog['rows'][1]}: relative "
                            f"difference {catalog['row_fraction']:.3g} > count_fraction "
                            f"{TOL['count_fraction']:g}")
        if catalog["matched_fraction"] is not None \
                and catalog["matched_fraction"] < TOL["matched_fraction"]:
            problems.append(f"matched {catalog['matched_fraction']:.1%} of the rows within "
                            f"{TOL['match_arcsec']:g} arcsec < matched_fraction "
                            f"{TOL['matched_fraction']:g}")
        if catalog["mag_mad"] is not None and catalog["mag_mad"] > TOL["mag_mad"]:
            problems.append(f"{catalog['mag_column']}: median |mag difference| "
                            f"{catalog['mag_mad']:.4f} > mag_mad {TOL['mag_mad']:g} (median offset "
                            f"{catalog['mag_offset']:+.4f})")
    status = "EMPTY" if not larger else ("DIFFERS" if problems else "OK")
    if status == "EMPTY":
        problems.append(f"neither collection holds {pair['dataset_type']} of tract "
                        f"{pair['tract']}: did both sites' cross-check returns arrive?")
    return {"tract": pair["tract"], "dataset_type": pair["dataset_type"],
            "storage_class": storage_class, "stage": pair["stage"], "status": status,
            "sides": [{"site": s["site"], "collection": s["collection"], "datasets": len(r)}
                      for s, r in ((side_a, refs_a), (side_b, refs_b))],
            "only_at": only, "id_fraction": id_fraction, "catalog": catalog,
            "problems": problems}


def unreadable(pair: dict[str, Any], exc: Exception) -> dict[str, Any]:
    return {"tract": pair["tract"], "dataset_type": pair["dataset_type"],
            "storage_class": pair["storage_class"], "stage": pair["stage"], "status": "ERROR",
            "sides": [{"site": s["site"], "collection": s["collection"], "datasets": None}
                      for s in pair["sides"]],
            "only_at": {}, "id_fraction": None, "catalog": None,
            "problems": [f"not compared: {type(exc).__name__}: {exc}"]}


def line(result: dict[str, Any]) -> str:
    (a, b) = result["sides"]
    text = f"{result['status']:<7} tract {result['tract']} {result['dataset_type']}: "
    if result["status"] == "ERROR":
        return text + f"{a['site']} and {b['site']} not compared"
    text += f"{a['datasets']} dataset(s) from {a['site']}, {b['datasets']} from {b['site']}"
    cat = result["catalog"]
    if cat is not None:
        text += f"; rows {cat['rows'][0]} vs {cat['rows'][1]}"
        if cat["matched_fraction"] is not None:
            text += (f", {cat['matched_fraction']:.1%} matched within "
                     f"{TOL['match_arcsec']:g} arcsec")
        if cat["mag_mad"] is not None:
            text += (f", {cat['mag_column']} median |dmag| {cat['mag_mad']:.4f} "
                     f"(offset {cat['mag_offset']:+.4f})")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", default=os.environ.get("BUTLER_REPO") or PLAN["repo"])
    parser.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    args = parser.parse_args(argv)
    try:
        repo = Repository(args.repo)
        collections = sorted({s["collection"] for p in PLAN["pairs"] for s in p["sides"]})
        missing = repo.missing_collections(collections)
        if missing:
            raise UsageError(f"collection(s) missing from {args.repo}: {', '.join(missing)} "
                             "(run every cross-check return's verify script here first)")
    except UsageError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    print(f"cross-check at {PLAN['central']} (tolerances: "
          + ", ".join(f"{k} {v:g}" for k, v in sorted(TOL.items())) + "):")
    results = []
    for pair in PLAN["pairs"]:
        try:
            result = compare(repo, pair)
        except Exception as exc:  # a file missing from the datastore, an unreadable catalog...
            result = unreadable(pair, exc)
        results.append(result)
        print(line(result))
        for text in result["problems"]:
            print(f"        {text}")
        for text in (result["catalog"] or {}).get("notes", []):
            print(f"        note: {text}")
    bad = [r for r in results if r["status"] != "OK"]
    counts = {key.lower(): sum(r["status"] == key for r in results)
              for key in ("OK", "DIFFERS", "EMPTY", "ERROR")}
    print(f"{PLAN['central']}: {counts['ok']} of {len(results)} comparison(s) within the "
          f"tolerances, {counts['differs']} differ(s), {counts['empty']} empty"
          + (f", {counts['error']} not compared (errors)" if counts["error"] else ""))
    if args.json:
        document = {key: PLAN[key] for key in ("campaign", "central", "skymap", "tolerance")}
        document.update(repo=args.repo, ok=not bad, counts=counts, comparisons=results)
        try:
            with open(args.json, "w", encoding="utf-8") as out:
                json.dump(document, out, indent=2, sort_keys=True)
                out.write("\n")
        except OSError as exc:
            print(f"error: cannot write {args.json}: {exc}", file=sys.stderr)
            return 2
    outside = [r for r in bad if r["status"] != "ERROR"]
    if outside:
        print("error: outside the tolerances: " + ", ".join(
            f"{r['dataset_type']} of tract {r['tract']} ({r['status']})" for r in outside),
            file=sys.stderr)
    errors = [r for r in bad if r["status"] == "ERROR"]
    if errors:
        print("error: not compared: " + ", ".join(
            f"{r['dataset_type']} of tract {r['tract']}" for r in errors), file=sys.stderr)
    return 2 if errors else 1 if outside else 0


if __name__ == "__main__":
    sys.exit(main())
