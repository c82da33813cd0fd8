"""`sites/<central>/butler/crosscheck.py` against a real daf_butler repository (SQLite).

3x2 with two cross-check tracts: 9948 (owned by frdf, also at ukdf-lancs: both results come
back into their cross-check chains) and 9469 (owned by usdf, the central site, also at frdf: its
own result is its stage output). Every pair's type is put into each side's collection: catalogs
(ArrowAstropy astropy Tables with positions and fluxes, or without positions; pandas DataFrames
in a second repository), and StructuredDataDict stand-ins for the other types (one with a band
dimension, two data IDs per tract). What a side shows is set by redefining its CHAINED collection over RUNs: the agreeing
results, then with a RUN in front that holds shifted photometry and positions, or one more data
ID, so each case reads exactly what the central site would.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from compiler.emit import write_tree
from compiler.pipeline import compile_campaign
from compiler.plan import Plan
from compiler.render import crosscheck
from drpc_rehearsal import butlers as B
from tests.helpers import CAMPAIGNS, bring_site_files

CENTRAL = "usdf"
OUT = "HSC/runs/drp-3x2/DM-48353"
CHAINS = {"frdf": f"{OUT}/incoming/crosscheck/frdf",
          "ukdf-lancs": f"{OUT}/incoming/crosscheck/ukdf-lancs"}
STAGE_CHAINS = (f"{OUT}/step2a-tracts", f"{OUT}/step3")  # usdf's own results: its stage outputs
SDD = "StructuredDataDict"
ROWS = 2001  # the flux pattern below repeats every 3 rows
BANDS = ("g", "r")
MAP = "deepCoadd_exposure_time_map_sum"


def crosscheck_campaign(tmp: Path) -> Path:
    """3x2 with the two cross-check tracts, one band-level map of step3 (the rest dropped to
    keep it small) and daf_butler's own storage classes for the stack's."""
    yaml = YAML()
    doc = yaml.load((CAMPAIGNS / "3x2.yaml").read_text())
    bring_site_files(tmp)
    for sid in doc["sites"]:
        doc["sites"][sid]["butler"] = {"repo": str(tmp / sid / "repo")}
        doc["sites"][sid]["rucio"] = {"fs_prefix": f"file://{tmp}/{sid}/rse/"}
    doc["sky"]["cross_check"] = [{"tract": 9948, "also_at": "ukdf-lancs"},
                                 {"tract": 9469, "also_at": "frdf"}]
    kept = []
    for ds in doc["datasets"]:
        if ds["type"].startswith("deepCoadd_") and ds["type"] != MAP:
            continue
        if ds.get("storage_class") in ("MetricMeasurementBundle", "HealSparseMap"):
            ds["storage_class"] = SDD
        kept.append(ds)
    doc["datasets"] = kept
    path = tmp / "3x2-crosscheck.yaml"
    with path.open("w") as f:
        yaml.dump(doc, f)
    return path


def catalog(dataset_type: str, tract: int, other: bool, fainter: bool = False,
            moved: bool = False) -> Any:
    """One site's catalog of the tract. The other site's has the same objects 0.1 arcsec away
    and fluxes that differ by a fixed 0.005 (g, ap) or 0.002 (r) mag, two thirds of them one
    way: median |dmag| 0.0050 and 0.0020, median offset -0.0050 and -0.0020. `fainter`: its
    r fluxes 0.1 mag fainter; `moved`: its positions 2 arcsec north."""
    import numpy as np
    from astropy.table import Table

    rng = np.random.default_rng(tract)
    ra = (tract % 360) + rng.uniform(-0.25, 0.25, ROWS)
    dec = rng.uniform(-0.25, 0.25, ROWS)
    flux = rng.uniform(1e3, 1e5, ROWS)
    sign = np.resize([1.0, 1.0, -1.0], ROWS)
    if other:
        dec = dec + sign * 0.1 / 3600 + (2 / 3600 if moved else 0)
    g = flux * (10 ** (-0.4 * 0.005 * sign) if other else 1)
    r = flux * (10 ** (-0.4 * (0.1 if fainter else 0.002 * sign)) if other else 1)
    if dataset_type == "objectTable_tract":
        return Table({"coord_ra": ra, "coord_dec": dec, "g_psfFlux": g, "r_psfFlux": r,
                      "g_psfFluxErr": np.sqrt(g)})
    if dataset_type == "isolated_star_presources":
        return Table({"ra": ra, "dec": dec, "apFlux": g})
    return Table({"obj_index": np.arange(ROWS), "source_row": np.arange(ROWS)[::-1]})


def put_side(butler: Any, plan: Plan, run: str, tract: int, other: bool,
             as_dataframe: frozenset[str] = frozenset()) -> None:
    """Every pair's type for the tract into `run`: what one site returned (the types in
    `as_dataframe` as pandas DataFrames)."""
    butler.collections.register(run)
    for pair in plan.crosschecks:
        if pair.tract != tract:
            continue
        data_id = {"instrument": plan.instrument, "skymap": plan.skymap.name, "tract": tract}
        if pair.dataset_type in as_dataframe:
            butler.put(catalog(pair.dataset_type, tract, other).to_pandas(), pair.dataset_type,
                       run=run, **data_id)
        elif pair.storage_class == "ArrowAstropy":
            butler.put(catalog(pair.dataset_type, tract, other), pair.dataset_type, run=run,
                       **data_id)
        elif pair.dataset_type == MAP:
            for band in BANDS:
                butler.put({"band": band}, pair.dataset_type, run=run, band=band, **data_id)
        else:
            butler.put({"tract": tract}, pair.dataset_type, run=run, **data_id)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("crosscheck")
    campaign = crosscheck_campaign(tmp)
    compiled = compile_campaign(campaign)
    plan = compiled.plan
    tree = tmp / "tree"
    write_tree(tree, compiled.files)
    repo = plan.site(CENTRAL).butler_repo
    with central_repo(repo, plan) as butler:
        # ukdf-lancs: objectTable_tract with fainter r fluxes, its isolated stars moved 2 arcsec
        butler.collections.register("xc/ukdf-lancs/shifted")
        ids = {"instrument": plan.instrument, "skymap": plan.skymap.name, "tract": 9948}
        butler.put(catalog("objectTable_tract", 9948, other=True, fainter=True),
                   "objectTable_tract", run="xc/ukdf-lancs/shifted", **ids)
        butler.put(catalog("isolated_star_presources", 9948, other=True, moved=True),
                   "isolated_star_presources", run="xc/ukdf-lancs/shifted", **ids)
        # ... and 20 fewer associations
        butler.put(catalog("isolated_star_presource_associations", 9948, other=True)[:-20],
                   "isolated_star_presource_associations", run="xc/ukdf-lancs/shifted", **ids)
        # frdf's map of tract 9469 in one more band than usdf's
        butler.collections.register("xc/frdf/extra")
        butler.put({"band": "i"}, MAP, run="xc/frdf/extra", band="i",
                   **{**ids, "tract": 9469})
        # frdf's objectTable_tract of tract 9948, its file lost from the datastore
        butler.collections.register("xc/frdf/lost")
        lost = butler.put(catalog("objectTable_tract", 9948, other=False), "objectTable_tract",
                          run="xc/frdf/lost", **ids)
        Path(butler.getURI(lost).ospath).unlink()
    return {"plan": plan, "tree": tree, "repo": repo, "tmp": tmp, "campaign": campaign}


@contextlib.contextmanager
def central_repo(repo: str, plan: Plan,
                 as_dataframe: frozenset[str] = frozenset()) -> Iterator[Any]:
    """A new repository at `repo` with the stack's records, every pair's type registered
    (those in `as_dataframe` as DataFrame), the agreeing sides in their RUNs, the cross-check
    chains and usdf's stage outputs (showing its agreeing side); yields its writeable Butler."""
    from lsst.daf.butler import Butler, CollectionType, DatasetType

    Butler.makeRepo(repo)
    B.insert_stack_records(repo, plan, CENTRAL, n_detectors=1)
    datasets = {d.type: d for d in plan.datasets}
    with Butler.from_config(repo, writeable=True) as butler:
        for name in sorted({p.dataset_type for p in plan.crosschecks}):
            ds = datasets[name]
            storage_class = "DataFrame" if name in as_dataframe else ds.storage_class
            butler.registry.registerDatasetType(DatasetType(
                name, list(ds.dimensions), storage_class, universe=butler.dimensions))
        put_side(butler, plan, "xc/frdf/good", 9948, other=False, as_dataframe=as_dataframe)
        put_side(butler, plan, "xc/ukdf-lancs/good", 9948, other=True, as_dataframe=as_dataframe)
        put_side(butler, plan, "xc/usdf/good", 9469, other=False, as_dataframe=as_dataframe)
        put_side(butler, plan, "xc/frdf/good-9469", 9469, other=True, as_dataframe=as_dataframe)
        for chain in (CHAINS["frdf"], CHAINS["ukdf-lancs"], *STAGE_CHAINS):
            butler.collections.register(chain, CollectionType.CHAINED)
        for chain in STAGE_CHAINS:
            butler.collections.redefine_chain(chain, ["xc/usdf/good"])
        yield butler


def show(world: dict[str, Any], frdf: list[str], ukdf: list[str]) -> None:
    """What the cross-check chains of frdf and ukdf-lancs hold, in search order."""
    from lsst.daf.butler import Butler

    with Butler.from_config(world["repo"], writeable=True) as butler:
        butler.collections.redefine_chain(CHAINS["frdf"], frdf)
        butler.collections.redefine_chain(CHAINS["ukdf-lancs"], ukdf)


GOOD_FRDF = ["xc/frdf/good", "xc/frdf/good-9469"]
GOOD_UKDF = ["xc/ukdf-lancs/good"]


def run_crosscheck(world: dict[str, Any], *args: str,
                   repo: str | None = None) -> subprocess.CompletedProcess[str]:
    script = world["tree"] / "sites" / CENTRAL / "butler" / "crosscheck.py"
    env = {k: v for k, v in os.environ.items() if k != "BUTLER_REPO"}
    env["BUTLER_REPO"] = repo or world["repo"]
    return subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True,
                          text=True, timeout=300)


def agreeing_lines(tract: int, a: str, b: str) -> list[str]:
    pre = f"tract {tract}"
    sides = f"1 dataset(s) from {a}, 1 from {b}"
    return [
        f"OK      {pre} isolated_star_presources: {sides}; rows 2001 vs 2001, 100.0% matched "
        "within 0.5 arcsec, apFlux median |dmag| 0.0050 (offset -0.0050)",
        f"OK      {pre} isolated_star_presource_associations: {sides}; rows 2001 vs 2001",
        "        note: no sky positions (coord_ra/coord_dec or ra/dec) in both: rows not matched",
        f"OK      {pre} objectTable_tract: {sides}; rows 2001 vs 2001, 100.0% matched within "
        "0.5 arcsec, g_psfFlux median |dmag| 0.0050 (offset -0.0050)",
        f"OK      {pre} objectTableCore_metrics: {sides}",
        f"OK      {pre} objectTable_tract_gaia_dr3_20230707_match_astrom_metrics: {sides}",
        f"OK      {pre} matchedVisitCore_metrics: {sides}",
        f"OK      {pre} {MAP}: 2 dataset(s) from {a}, 2 from {b}",
    ]


def body(out: str) -> list[str]:
    """The per-comparison lines: between the heading and the summary."""
    return out.splitlines()[1:-1]


NUM = "<NUM>"  # in an expected line: any figure with 4 decimals, such as -0.6418


def assert_lines(found: list[str], expected: list[str]) -> None:
    """Each line exactly as expected, but for NUM where a figure is."""
    import re

    assert len(found) == len(expected), "\n".join(found)
    for line, want in zip(found, expected, strict=True):
        pattern = re.escape(want).replace(re.escape(NUM), r"[-+]?\d+\.\d{4}")
        assert re.fullmatch(pattern, line), (line, want)


def status_of(world: dict[str, Any], result: Path, fmt: str = "json") -> tuple[int, str]:
    """`drpc status --site usdf --crosscheck RESULT` of the world's campaign: its real Butler,
    no Rucio or Kafka here (unknown cells, which change no exit status)."""
    from click.testing import CliRunner

    from compiler.cli import cli

    env = {"RUCIO_CONFIG": str(world["tmp"] / "no-rucio.cfg"), "HOME": str(world["tmp"])}
    got = CliRunner().invoke(cli, ["status", str(world["campaign"]), "--site", CENTRAL,
                                   "--crosscheck", str(result), "--format", fmt,
                                   "--timeout", "1", "--lag-interval", "0"], env=env)
    return got.exit_code, got.output


def test_agreeing_sites_pass(world: dict[str, Any]) -> None:
    show(world, GOOD_FRDF, GOOD_UKDF)
    report = world["tmp"] / "good.json"
    proc = run_crosscheck(world, "--json", str(report))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == ("cross-check at usdf (tolerances: count_fraction 0, mag_mad 0.02, "
                        "match_arcsec 0.5, matched_fraction 0.95):")
    assert body(proc.stdout) == (agreeing_lines(9948, "frdf", "ukdf-lancs")
                                 + agreeing_lines(9469, "usdf", "frdf"))
    assert lines[-1] == "usdf: 14 of 14 comparison(s) within the tolerances, 0 differ(s), 0 empty"
    doc = json.loads(report.read_text())
    assert doc["ok"] is True and doc["counts"] == {"ok": 14, "differs": 0, "empty": 0,
                                                   "error": 0}
    assert doc["tolerance"]["mag_mad"] == 0.02 and doc["repo"] == world["repo"]
    obj = next(c for c in doc["comparisons"]
               if c["tract"] == 9469 and c["dataset_type"] == "objectTable_tract")
    assert obj["status"] == "OK" and obj["storage_class"] == "ArrowAstropy"
    assert obj["sides"] == [{"site": "usdf", "collection": f"{OUT}/step3", "datasets": 1},
                            {"site": "frdf", "collection": CHAINS["frdf"], "datasets": 1}]
    assert obj["catalog"]["matched"] == ROWS and obj["catalog"]["mag_column"] == "g_psfFlux"
    assert obj["catalog"]["mag_mad"] == pytest.approx(0.005)
    # drpc status reads the result: the comparison OK, its runbook step done, nothing to do
    code, out = status_of(world, report)
    status = json.loads(out)
    assert code == 0 and status["attention"] == [], out
    xc = status["crosscheck"]
    assert xc["known"] and xc["ok"] and xc["counts"]["ok"] == 14 and xc["file"] == str(report)
    step = next(st for s in status["sites"] if s["site"] == CENTRAL for st in s["steps"]
                if st["key"] == f"crosscheck:{CENTRAL}")
    assert step["state"] == "done" and step["observed"]
    assert "drpc_crosscheck_ok{campaign=\"drp-3x2\",site=\"usdf\"} 1" in status_of(
        world, report, "prometheus")[1]


def test_shifted_photometry_positions_and_rows_differ(world: dict[str, Any]) -> None:
    show(world, GOOD_FRDF, ["xc/ukdf-lancs/shifted", *GOOD_UKDF])
    report = world["tmp"] / "shifted.json"
    proc = run_crosscheck(world, "--json", str(report))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    sides = "1 dataset(s) from frdf, 1 from ukdf-lancs"
    expected = agreeing_lines(9948, "frdf", "ukdf-lancs")
    # 2 arcsec apart: none of the objects matched, only a chance neighbour or two
    expected[0:3] = [
        f"DIFFERS tract 9948 isolated_star_presources: {sides}; rows 2001 vs 2001, 0.0% matched "
        f"within 0.5 arcsec, apFlux median |dmag| {NUM} (offset {NUM})",
        "        matched 0.0% of the rows within 0.5 arcsec < matched_fraction 0.95",
        f"        apFlux: median |mag difference| {NUM} > mag_mad 0.02 (median offset {NUM})",
        f"DIFFERS tract 9948 isolated_star_presource_associations: {sides}; rows 2001 vs 1981",
        "        rows 2001 vs 1981: relative difference 0.01 > count_fraction 0",
        "        note: no sky positions (coord_ra/coord_dec or ra/dec) in both: rows not matched"]
    at = expected.index(next(x for x in expected if " objectTable_tract: " in x))
    expected[at:at + 1] = [
        f"DIFFERS tract 9948 objectTable_tract: {sides}; rows 2001 vs 2001, 100.0% matched "
        "within 0.5 arcsec, r_psfFlux median |dmag| 0.1000 (offset -0.1000)",
        "        r_psfFlux: median |mag difference| 0.1000 > mag_mad 0.02 (median offset -0.1000)"]
    assert_lines(body(proc.stdout), expected + agreeing_lines(9469, "usdf", "frdf"))
    assert proc.stdout.splitlines()[-1] == ("usdf: 11 of 14 comparison(s) within the "
                                            "tolerances, 3 differ(s), 0 empty")
    assert proc.stderr.splitlines()[-1] == (
        "error: outside the tolerances: isolated_star_presources of tract 9948 (DIFFERS), "
        "isolated_star_presource_associations of tract 9948 (DIFFERS), objectTable_tract of "
        "tract 9948 (DIFFERS)")
    doc = json.loads(report.read_text())
    assert doc["ok"] is False and doc["counts"]["differs"] == 3
    obj = next(c for c in doc["comparisons"]
               if c["tract"] == 9948 and c["dataset_type"] == "objectTable_tract")
    assert obj["catalog"]["mag_offset"] == pytest.approx(-0.1)
    # drpc status: exit 5, each comparison outside the tolerances named, the step failed
    code, out = status_of(world, report, "table")
    assert code == 5, out
    assert "Cross-check at usdf: 3 of 14 comparison(s) not OK" in out
    assert ("  - cross-check at usdf: objectTable_tract of tract 9948 DIFFERS: r_psfFlux: "
            "median |mag difference| 0.1000 > mag_mad 0.02") in out
    assert "; FAILED " in out and "cross-check tracts" in out.split("; FAILED ")[1]


def test_dataframe_catalogs_are_matched_and_compared_alike(world: dict[str, Any]) -> None:
    """The catalogs as pandas DataFrames (dr1's dia_object is one): read by column, matched and
    compared with the same figures as their ArrowAstropy twins, a shift found the same way."""
    frames = frozenset({"objectTable_tract", "isolated_star_presources"})
    repo = str(world["tmp"] / "dataframes")
    with central_repo(repo, world["plan"], as_dataframe=frames) as butler:
        ids = {"instrument": world["plan"].instrument, "skymap": world["plan"].skymap.name,
               "tract": 9948}
        butler.collections.register("xc/ukdf-lancs/fainter")
        butler.put(catalog("objectTable_tract", 9948, other=True, fainter=True).to_pandas(),
                   "objectTable_tract", run="xc/ukdf-lancs/fainter", **ids)
        butler.collections.redefine_chain(CHAINS["frdf"], GOOD_FRDF)
        butler.collections.redefine_chain(CHAINS["ukdf-lancs"], GOOD_UKDF)
    report = world["tmp"] / "dataframes.json"
    proc = run_crosscheck(world, "--json", str(report), repo=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert body(proc.stdout) == (agreeing_lines(9948, "frdf", "ukdf-lancs")
                                 + agreeing_lines(9469, "usdf", "frdf"))
    doc = json.loads(report.read_text())
    assert {c["storage_class"] for c in doc["comparisons"]
            if c["dataset_type"] in frames} == {"DataFrame"}
    from lsst.daf.butler import Butler

    with Butler.from_config(repo, writeable=True) as butler:
        butler.collections.redefine_chain(CHAINS["ukdf-lancs"],
                                          ["xc/ukdf-lancs/fainter", *GOOD_UKDF])
    proc = run_crosscheck(world, repo=repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert ("DIFFERS tract 9948 objectTable_tract: 1 dataset(s) from frdf, 1 from ukdf-lancs; "
            "rows 2001 vs 2001, 100.0% matched within 0.5 arcsec, r_psfFlux median |dmag| 0.1000 "
            "(offset -0.1000)") in proc.stdout.splitlines()


def test_a_data_id_at_one_site_only_differs(world: dict[str, Any]) -> None:
    show(world, ["xc/frdf/extra", *GOOD_FRDF], GOOD_UKDF)
    proc = run_crosscheck(world)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    expected = agreeing_lines(9469, "usdf", "frdf")
    expected[-1:] = [
        f"DIFFERS tract 9469 {MAP}: 2 dataset(s) from usdf, 3 from frdf",
        "        0.333 of the data IDs at one site only > count_fraction 0",
        "        only at frdf: band=i, skymap=hsc_rings_v1, tract=9469"]
    assert body(proc.stdout) == agreeing_lines(9948, "frdf", "ukdf-lancs") + expected
    assert proc.stderr.splitlines()[-1] == (
        f"error: outside the tolerances: {MAP} of tract 9469 (DIFFERS)")


def test_nothing_returned_differs_or_is_empty(world: dict[str, Any]) -> None:
    show(world, [], [])  # the chains exist, nothing arrived in them
    proc = run_crosscheck(world)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = body(proc.stdout)
    # tract 9948: from neither site; tract 9469: from usdf only
    assert lines[:2] == [
        "EMPTY   tract 9948 isolated_star_presources: 0 dataset(s) from frdf, 0 from ukdf-lancs",
        "        neither collection holds isolated_star_presources of tract 9948: did both "
        "sites' cross-check returns arrive?"]
    at = lines.index(f"DIFFERS tract 9469 {MAP}: 2 dataset(s) from usdf, 0 from frdf")
    assert lines[at + 1:] == ["        1 of the data IDs at one site only > count_fraction 0",
                              "        only at usdf: band=g, skymap=hsc_rings_v1, tract=9469; "
                              "band=r, skymap=hsc_rings_v1, tract=9469"]
    assert proc.stdout.splitlines()[-1] == ("usdf: 0 of 14 comparison(s) within the "
                                            "tolerances, 7 differ(s), 7 empty")


def test_an_unreadable_dataset_is_not_compared(world: dict[str, Any]) -> None:
    show(world, ["xc/frdf/lost", *GOOD_FRDF], GOOD_UKDF)
    report = world["tmp"] / "lost.json"
    proc = run_crosscheck(world, "--json", str(report))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = body(proc.stdout)
    at = lines.index("ERROR   tract 9948 objectTable_tract: frdf and ukdf-lancs not compared")
    assert lines[at + 1].startswith("        not compared: FileNotFoundError: ")
    assert proc.stdout.splitlines()[-1] == ("usdf: 13 of 14 comparison(s) within the "
                                            "tolerances, 0 differ(s), 0 empty, 1 not compared "
                                            "(errors)")
    assert proc.stderr.splitlines()[-1] == "error: not compared: objectTable_tract of tract 9948"
    doc = json.loads(report.read_text())
    assert doc["ok"] is False and doc["counts"] == {"ok": 13, "differs": 0, "empty": 0,
                                                    "error": 1}


def test_a_missing_collection_is_a_usage_error(world: dict[str, Any]) -> None:
    from lsst.daf.butler import Butler

    bare = str(world["tmp"] / "bare")
    Butler.makeRepo(bare)
    proc = run_crosscheck(world, repo=bare)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == (
        f"error: collection(s) missing from {bare}: {CHAINS['frdf']}, {CHAINS['ukdf-lancs']}, "
        f"{OUT}/step2a-tracts, {OUT}/step3 (run every cross-check return's verify script here "
        "first)\n")


def test_matching_scales_and_survives_ra_wrap(world: dict[str, Any]) -> None:
    """1e5 rows around RA 0 matched one to one in a second or so, without scipy."""
    import numpy as np

    script = world["tree"] / "sites" / CENTRAL / "butler" / "crosscheck.py"
    namespace: dict[str, Any] = {"__name__": "crosscheck"}
    exec(compile(script.read_text(), str(script), "exec"), namespace)  # noqa: S102 - our output
    rng = np.random.default_rng(7)
    n = 100_000
    ra = rng.uniform(-1, 1, n) % 360
    dec = rng.uniform(-1, 1, n)
    perm = rng.permutation(n)
    ra_b = (ra[perm] + rng.normal(0, 0.1 / 3600, n)) % 360
    dec_b = dec[perm] + rng.normal(0, 0.1 / 3600, n)
    start = time.monotonic()
    in_a, in_b = namespace["match"](ra, dec, ra_b, dec_b, 0.5)
    took = time.monotonic() - start
    assert took < 10, f"{took:.1f} s"
    # objects closer together than the jitter are rare at this density: they alone may be
    # swapped or left out
    assert len(in_a) > 0.999 * n
    assert np.count_nonzero(perm[in_b] != in_a) < 0.0005 * n
    near_pole = namespace["match"](np.array([0.0, 180.0]), np.array([89.9999, 89.9999]),
                                   np.array([180.0, 0.0]), np.array([89.9999, 89.9999]), 0.5)
    assert [list(x) for x in near_pole] == [[0, 1], [1, 0]]


def test_only_the_central_site_gets_it_and_only_with_cross_checks(
        world: dict[str, Any]) -> None:
    plan = world["plan"]
    assert list(crosscheck.render(plan)) == ["sites/usdf/butler/crosscheck.py"]
    assert crosscheck.render(plan, "frdf") == {}
    assert list(crosscheck.render(plan, CENTRAL)) == ["sites/usdf/butler/crosscheck.py"]
    assert crosscheck.render(compile_campaign(CAMPAIGNS / "3x2.yaml").plan) == {}
    script = world["tree"] / "sites" / CENTRAL / "butler" / "crosscheck.py"
    subprocess.run([sys.executable, "-m", "py_compile", str(script)], check=True)
