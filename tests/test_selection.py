"""`sites/<site>/butler/selection.py` against a real daf_butler repository (SQLite).

The repository is the central site's: every visit defined (exposure, visit, visit_detector_region
records with sphgeom regions) and one raw per detector. Some visits are centred on the common
edge of two tracts owned by different sites, so their detectors straddle the boundary: a Butler
query with a tract constraint returns only the detectors on the tract, the generated selection
every detector of the visit.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from compiler.emit import write_tree
from compiler.naming import tract_query
from compiler.pipeline import compile_campaign
from compiler.plan import Plan
from drpc_rehearsal import butlers as B
from tests.helpers import CAMPAIGNS, bring_site_files

CENTRAL = "usdf"
DETECTORS = 16  # a 4 x 4 grid: a field on a tract edge has detectors well clear of it


def adjacent_campaign(tmp: Path) -> Path:
    """3x2 with FRDF's tracts beside UKDF's (9943, 9944 next to 9941, 9942 in ring 61): two
    sites share a tract edge, so boundary visits exist."""
    yaml = YAML()
    doc = yaml.load((CAMPAIGNS / "3x2.yaml").read_text())
    bring_site_files(tmp)
    doc["sky"]["assignment"]["tracts"]["frdf"] = [9943, 9944]
    for sid in doc["sites"]:
        doc["sites"][sid]["butler"] = {"repo": str(tmp / sid / "repo")}
        doc["sites"][sid]["rucio"] = {"fs_prefix": f"file://{tmp}/{sid}/rse/"}
    path = tmp / "3x2-adjacent.yaml"
    with path.open("w") as f:
        yaml.dump(doc, f)
    return path


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from lsst.daf.butler import Butler

    tmp = tmp_path_factory.mktemp("selection")
    compiled = compile_campaign(adjacent_campaign(tmp))
    plan = compiled.plan
    tree = tmp / "tree"
    write_tree(tree, compiled.files)
    repo = plan.site(CENTRAL).butler_repo
    Butler.makeRepo(repo)
    B.insert_stack_records(repo, plan, CENTRAL, n_detectors=DETECTORS)
    visits = B.synthesize_visits(plan, per_tract=1, per_boundary=2)
    B.define_visits(repo, plan, CENTRAL, visits, n_detectors=DETECTORS)
    n_raws = B.ingest_raws(repo, plan, visits, n_detectors=DETECTORS)
    return {"plan": plan, "tree": tree, "repo": repo, "visits": visits, "n_raws": n_raws}


def selection(world: dict[str, Any], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = world["tree"] / "sites" / CENTRAL / "butler" / "selection.py"
    full = {k: v for k, v in os.environ.items() if k not in ("DRY_RUN", "BUTLER_REPO")}
    full.update(BUTLER_REPO=world["repo"], **env)
    return subprocess.run([sys.executable, str(script), *args], env=full, capture_output=True,
                          text=True, timeout=300)


def raws_by_visit(repo: str, collections: str) -> dict[int, set[int]]:
    """Exposure (= visit, one-to-one) -> detectors of the raws in `collections`."""
    from lsst.daf.butler import Butler

    with Butler.from_config(repo) as butler:
        refs = butler.query_datasets("raw", collections=collections,
                                     find_first=False, limit=None, explain=False)
        out: dict[int, set[int]] = {}
        for ref in refs:
            out.setdefault(int(ref.dataId["exposure"]), set()).add(int(ref.dataId["detector"]))
        return out


def test_selection_holds_every_detector_where_the_tract_query_cuts_the_visit(
        central: dict[str, Any]) -> None:
    plan: Plan = central["plan"]
    frdf = plan.site("frdf")
    boundary = [v for v in central["visits"] if v.kind == "boundary"
                and set(v.centred_on) & set(frdf.owned_tracts)]
    assert boundary, "the campaign has visits on frdf's boundary"

    # the old way: a tract-constrained query (as the graph builder makes for step1's visit x
    # detector quanta) returns only the detectors on frdf's tracts
    from lsst.daf.butler import Butler

    with Butler.from_config(central["repo"]) as butler:
        cut: dict[int, set[int]] = {}
        for d in butler.query_data_ids(
                ["visit", "detector"], limit=None, explain=False,
                where=tract_query(plan.instrument, plan.skymap.name, frdf.processing_tracts)):
            cut.setdefault(int(d["visit"]), set()).add(int(d["detector"]))
    partial = [v.id for v in boundary if 0 < len(cut.get(v.id, set())) < DETECTORS]
    assert partial, "some boundary visit is cut by the tract query"

    proc = selection(central, "raws", "frdf")
    assert proc.returncode == 0, proc.stderr
    got = raws_by_visit(central["repo"], frdf.raw_selection)
    held = B.visits_held_by(plan, "frdf", central["visits"])
    assert set(got) == {v.id for v in held}  # the visits overlapping frdf's tracts ...
    assert all(dets == set(range(DETECTORS)) for dets in got.values())  # ... whole
    assert set(partial) <= set(got)
    assert "0 changes" not in proc.stdout

    again = selection(central, "raws", "frdf")
    assert again.returncode == 0, again.stderr
    assert "changed: 0 (+0 -0) - 0 changes" in again.stdout

    # a boundary visit is held by both sites, so a coadd on either side of the edge is complete
    lancs = selection(central, "raws", "ukdf-lancs")
    assert lancs.returncode == 0, lancs.stderr
    both = set(got) & set(raws_by_visit(central["repo"], plan.site("ukdf-lancs").raw_selection))
    assert {v.id for v in boundary if "ukdf-lancs" in {plan.ownership.owner[t]
                                                        for t in v.centred_on}} <= both


def test_check_finds_partial_visits_and_raws_behind_the_inputs(central: dict[str, Any]) -> None:
    from lsst.daf.butler import Butler, CollectionType

    plan: Plan = central["plan"]
    assert selection(central, "raws", "usdf").returncode == 0
    ok = selection(central, "check", "usdf")
    assert ok.returncode == 0, ok.stderr
    assert "whole visit(s)" in ok.stdout

    tagged = plan.site("usdf").raw_selection
    with Butler.from_config(central["repo"], writeable=True) as butler:
        [one] = butler.query_datasets("raw", collections=tagged, limit=1, explain=False)
        butler.registry.disassociate(tagged, [one])
        # a defaults chain over every raw: what a `select: visits` job must never read
        butler.collections.register("HSC/defaults", CollectionType.CHAINED)
        butler.collections.redefine_chain("HSC/defaults", ["HSC/raw/all"])
    bad = selection(central, "check", "usdf")
    assert bad.returncode == 1
    assert "not whole" in bad.stderr
    if plan.input_collections == ("HSC/defaults",) and any(s.select == "visits" for s in plan.stages):
        assert "visible through campaign.input_collections" in bad.stderr
    fixed = selection(central, "raws", "usdf")
    assert "(+1 -0)" in fixed.stdout


def test_home_visits_send_each_visit_once(central: dict[str, Any]) -> None:
    """Visit-level gathers: the home (owner of the tract holding the centre) sends it, the other
    holder does not; every held visit has exactly one home."""
    plan: Plan = central["plan"]
    script = central["tree"] / "sites" / CENTRAL / "butler" / "selection.py"
    namespace: dict[str, Any] = {"__name__": "drpc_selection"}
    exec(compile(script.read_text(), str(script), "exec"), namespace)  # noqa: S102 - our output
    sel = namespace["Selector"](central["repo"], True)
    held = {s.id: set(sel.held_visits(s.id)) for s in plan.sites}
    homes = sel.home_of(sorted(set().union(*held.values())))
    for visit, home in homes.items():
        assert visit in held[home]
    from lsst.sphgeom import LonLat

    by_id = {v.id: v for v in central["visits"]}
    for visit, home in homes.items():
        centre = LonLat(by_id[visit].region.getBoundingCircle().getCenter())
        tract = plan.skymap.tract_at(centre.getLon().asDegrees(), centre.getLat().asDegrees())
        assert plan.ownership.owner.get(tract) in (home, None)
    # a boundary visit has one home, though both sites hold it
    shared = held["frdf"] & held["ukdf-lancs"]
    assert shared and all(homes[v] in ("frdf", "ukdf-lancs") for v in shared)


def test_tract_at_of_the_script_is_the_skymaps(central: dict[str, Any]) -> None:
    plan: Plan = central["plan"]
    script = central["tree"] / "sites" / CENTRAL / "butler" / "selection.py"
    namespace: dict[str, Any] = {"__name__": "drpc_selection"}
    exec(compile(script.read_text(), str(script), "exec"), namespace)  # noqa: S102 - our output
    rng = random.Random(7)
    for _ in range(5000):
        ra, dec = rng.uniform(0, 360), rng.uniform(-90, 90)
        assert namespace["tract_at"](ra, dec) == plan.skymap.tract_at(ra, dec), (ra, dec)


def visits_sh(tree: Path, repo: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = tree / "sites" / CENTRAL / "butler" / "visits.sh"
    full = {k: v for k, v in os.environ.items()
            if k not in ("DRY_RUN", "BUTLER_REPO", "SKIP_STEPS", "FORCE_INGEST")}
    full.update(BUTLER_REPO=repo, BUTLER_PYTHON=sys.executable,
                SKIP_STEPS="define-visits select check", **env)
    return subprocess.run(["bash", str(script)], env=full, capture_output=True, text=True,
                          timeout=300)


def test_the_central_site_checks_it_holds_the_raws(central: dict[str, Any],
                                                  tmp_path: Path) -> None:
    """Without `butler.raws`, the visits step stops where no raw is there, and says how."""
    from lsst.daf.butler import Butler

    held = visits_sh(central["tree"], central["repo"])
    assert held.returncode == 0, held.stderr
    assert f"{central['n_raws']} raw(s) in HSC/raw/all" in held.stderr
    empty = str(tmp_path / "empty")
    Butler.makeRepo(empty)
    missing = visits_sh(central["tree"], empty)
    assert missing.returncode == 1
    assert "no raw in HSC/raw/all" in missing.stderr and "butler.raws.ingest_from" in missing.stderr
    dry = visits_sh(central["tree"], empty, DRY_RUN="1")
    assert dry.returncode == 0 and "a real run stops here" in dry.stderr


def test_the_central_site_ingests_raws_from_the_spec_location(central: dict[str, Any],
                                                             tmp_path: Path) -> None:
    from lsst.daf.butler import Butler

    yaml = YAML()
    path = adjacent_campaign(tmp_path)
    doc = yaml.load(path.read_text())
    doc["butler"] = {"raws": {"ingest_from": "/data/summit/HSC", "transfer": "copy"}}
    with path.open("w") as f:
        yaml.dump(doc, f)
    tree = tmp_path / "tree"
    write_tree(tree, compile_campaign(path).files)
    empty = str(tmp_path / "empty")
    Butler.makeRepo(empty)
    dry = visits_sh(tree, empty, DRY_RUN="1")
    assert dry.returncode == 0, dry.stderr
    assert (f"butler ingest-raws {empty} /data/summit/HSC --transfer copy --output-run "
            "HSC/raw/all") in dry.stdout.splitlines()
    there = visits_sh(tree, central["repo"], DRY_RUN="1")
    assert "already; skipping ingest-raws" in there.stderr and "ingest-raws" not in there.stdout
    forced = visits_sh(tree, central["repo"], DRY_RUN="1", FORCE_INGEST="1")
    assert "butler ingest-raws" in forced.stdout


def test_define_visits_is_the_obs_command_under_dry_run(central: dict[str, Any]) -> None:
    """define-visits needs the instrument's obs package (not on PyPI): its exact command."""
    for site in ("usdf", "frdf"):
        script = central["tree"] / "sites" / site / "butler" / "visits.sh"
        env = {k: v for k, v in os.environ.items() if k not in ("BUTLER_REPO", "SKIP_STEPS")}
        proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=300,
                              env={**env, "DRY_RUN": "1", "BUTLER_REPO": central["repo"],
                                   "BUTLER_PYTHON": sys.executable,
                                   "SKIP_STEPS": ("raws " if site == "usdf" else "")
                                   + "select check"})
        assert proc.returncode == 0, proc.stderr
        assert (f"butler define-visits {central['repo']} HSC --collections HSC/raw/all"
                in proc.stdout.splitlines()), proc.stdout
