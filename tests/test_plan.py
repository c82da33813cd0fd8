"""Each derivation rule of CONTRACT section 2, on small campaigns built inline."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.errors import SpecError
from compiler.pipeline import compile_campaign
from compiler.plan import rucio_dataset_name, tract_predicate, tract_query
from tests.helpers import CAMPAIGNS, MINIMAL, compile_data, example_data, replace_line, write


def plan_of(tmp_path: Path, text: str = MINIMAL):
    return compile_campaign(write(tmp_path, text), render=False).plan


def test_tract_predicate_picks_the_shorter_form() -> None:
    assert tract_predicate([9469]) == "tract = 9469"
    assert tract_predicate([9470, 9469]) == "tract IN (9469, 9470)"
    assert tract_predicate(range(100, 200)) == "tract >= 100 AND tract <= 199"
    assert tract_predicate([*range(1, 50), 70, *range(100, 150)]) == (
        "((tract >= 1 AND tract <= 49) OR tract = 70 OR (tract >= 100 AND tract <= 149))")
    assert tract_query("HSC", "hsc_rings_v1", [1, 2]) == "instrument='HSC' AND skymap='hsc_rings_v1' AND tract IN (1, 2)"


def test_rucio_dataset_names_are_shortened_deterministically() -> None:
    short = rucio_dataset_name("dr1", "stage1.x.a-to-b")
    assert short == "dr1.stage1.x.a-to-b"
    long_id = "s" * 40 + "." + "T" * 100 + "." + "a" * 40 + "-to-" + "b" * 40 + ".extra" * 5
    name = rucio_dataset_name("c" * 40, long_id)
    # 243: room for a container's datasets' ".NNNNNN" under Rucio's 250
    assert len(name) == 243 and name == rucio_dataset_name("c" * 40, long_id)
    assert name != rucio_dataset_name("c" * 40, long_id + "x")


def test_jobs_every_site_and_central(tmp_path: Path) -> None:
    plan = plan_of(tmp_path)
    assert [(j.stage, j.site) for j in plan.jobs] == [
        ("step1", "usdf"), ("step1", "frdf"), ("fgcm", "usdf"), ("step3", "usdf"), ("step3", "frdf")]
    by = {(j.stage, j.site): j for j in plan.jobs}
    assert by["step1", "frdf"].data_query == "instrument='HSC' AND skymap='hsc_rings_v1' AND tract IN (9948, 9949)"
    # a central stage defaults to select: all (a global subset: no spatial constraint)
    assert by["fgcm", "usdf"].select == "all"
    assert by["fgcm", "usdf"].data_query == "instrument='HSC' AND skymap='hsc_rings_v1'"
    assert by["step3", "frdf"].path == "sites/frdf/bps/03-step3.yaml"
    assert by["step1", "usdf"].output == "HSC/runs/mini/step1"


def test_transfers_gather_scatter_return(tmp_path: Path) -> None:
    plan = plan_of(tmp_path)
    assert [(t.kind, t.id) for t in plan.transfers] == [
        ("gather", "step1.preliminary_visit_summary.frdf-to-usdf"),
        ("scatter", "fgcm.fgcm_photoCalibCatalog.usdf-to-frdf"),
        ("return", "step3.objectTable_tract.frdf-to-usdf"),
    ]
    gather, scatter, ret = plan.transfers
    # visit-level: each visit once, from its home site, selected into a TAGGED collection
    assert (gather.select_by, gather.select_site) == ("home-visits", "frdf")
    assert gather.selection_collection == "HSC/runs/mini/outgoing/" + gather.id
    assert gather.incoming_collection == "HSC/runs/mini/incoming/fgcm"
    assert gather.source_collection == "HSC/runs/mini/step1"
    assert gather.rucio_did == "frdf:mini.step1.preliminary_visit_summary.frdf-to-usdf"
    assert gather.destination_rse == "SLAC_BUTLER_DISK"
    # split by ownership: per-visit data only to the site that holds the visits (its tracts)
    assert (scatter.select_by, scatter.select_site) == ("visits-held", "frdf")
    assert scatter.tracts == (9948, 9949)
    assert scatter.incoming_collection == "HSC/runs/mini/incoming/step3"
    assert ret.incoming_collection == "HSC/runs/mini/incoming/archive"


def test_scatter_split_by_visit_tract_or_neither(tmp_path: Path) -> None:
    data = example_data("3x2.yaml")
    data["datasets"] += [
        {"type": "fgcm_tract_thing", "dimensions": ["skymap", "tract"], "produced_by": "step2c", "consumed_by": ["step3"],
         "storage_class": "ArrowAstropy"},
        {"type": "fgcm_global_thing", "dimensions": ["instrument"], "produced_by": "step2c", "consumed_by": ["step3"],
         "storage_class": "ArrowAstropy"},
    ]
    plan = compile_data(tmp_path, data).plan
    scatters = {(t.dataset_type, t.destination): t for t in plan.transfers if t.kind == "scatter"}
    assert set(scatters) >= {(ds, dst) for ds in ("fgcmPhotoCalibCatalog", "fgcm_tract_thing", "fgcm_global_thing")
                             for dst in ("frdf", "ukdf-lancs")}
    visit = scatters["fgcmPhotoCalibCatalog", "ukdf-lancs"]
    assert (visit.select_by, visit.select_site, visit.tracts) == ("visits-held", "ukdf-lancs", (9941, 9942))
    tract = scatters["fgcm_tract_thing", "frdf"]
    assert (tract.select_by, tract.tracts) == ("tracts", (9948, 9949))
    assert scatters["fgcm_global_thing", "frdf"].select_by == "everything"
    # the visit-split scatter goes only to the site that holds the visits, never to the others
    assert 9948 not in visit.tracts


def test_nothing_moves_within_a_site(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "produced_by: step1, consumed_by: [fgcm]}", "produced_by: step1, consumed_by: [step3]}")
    text = replace_line(text, "produced_by: step3, archive: true}", "produced_by: step3}")
    plan = plan_of(tmp_path, text)
    assert [t.kind for t in plan.transfers] == ["scatter"]


def test_input_collections_after_inputs_and_earlier_outputs(tmp_path: Path) -> None:
    """A job reads what arrived for it, then the previous stage's output chain at its site (which
    holds every earlier output and the campaign inputs), or the campaign inputs for a first
    stage: chains stay linear, never nested in each other."""
    plan = plan_of(tmp_path)
    by = {(j.stage, j.site): j for j in plan.jobs}
    assert by["step1", "frdf"].in_collections == ("HSC/defaults",)
    assert by["step3", "frdf"].in_collections == ("HSC/runs/mini/incoming/step3", "HSC/runs/mini/step1")
    assert by["fgcm", "usdf"].in_collections == ("HSC/runs/mini/incoming/fgcm", "HSC/runs/mini/step1")
    assert by["step3", "usdf"].in_collections == ("HSC/runs/mini/fgcm",)


def test_ring_assignment_and_ranges(tmp_path: Path) -> None:
    rings = ("  footprint: {dec_min: -90, dec_max: 30}\n  assignment:\n    rings:\n"
             "      - {dec_max: -30, site: frdf}\n      - {dec_max: 30, site: usdf}\n")
    text = replace_line(MINIMAL, "  assignment:\n    tracts:\n      usdf: [9469, 9470]\n      frdf: [9948, 9949]\n", rings)
    plan = plan_of(tmp_path, text)
    frdf, usdf = plan.site("frdf"), plan.site("usdf")
    sm = plan.skymap
    assert frdf.owned_tracts[0] == 0 and usdf.owned_tracts[-1] == max(plan.all_tracts)
    assert all(sm.tract_center(t)[1] < -30 for t in frdf.owned_tracts)
    assert all(-30 <= sm.tract_center(t)[1] <= 30 for t in usdf.owned_tracts)
    # whole rings are contiguous ids, so each site's query is one id range
    job = next(j for j in plan.jobs if j.site == "usdf" and j.stage == "step1")
    assert job.data_query == (f"instrument='HSC' AND skymap='hsc_rings_v1' AND tract >= {usdf.owned_tracts[0]} "
                              f"AND tract <= {usdf.owned_tracts[-1]}")
    assert len(plan.all_tracts) == len(sm.tracts_with_center_dec_in(-90, 30, include_max=True))


def test_custom_skymap_declared_in_the_spec(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "  skymap: hsc_rings_v1", "  skymap: coarse_rings")
    text = replace_line(text, "sites:\n  usdf:", "skymaps:\n  coarse_rings: {num_rings: 10, ra_start_deg: 5}\nsites:\n  usdf:")
    text = replace_line(text, "      usdf: [9469, 9470]\n      frdf: [9948, 9949]", "      usdf: [1, 2]\n      frdf: [60, 61]")
    plan = plan_of(tmp_path, text)
    assert plan.skymap.name == "coarse_rings" and plan.skymap.num_rings == 10
    assert plan.skymap.tract_center(1)[0] == pytest.approx(5.0)
    bad = replace_line(text, "      frdf: [60, 61]", "      frdf: [60, 500]")
    with pytest.raises(SpecError, match="tract 500 is not in skymap 'coarse_rings'"):
        plan_of(tmp_path, bad)


def test_cross_check_runs_at_both_sites_and_returns_from_both(tmp_path: Path) -> None:
    data = example_data("3x2.yaml")
    data["sky"]["cross_check"] = [{"tract": 9948, "also_at": "ukdf-lancs"}]
    data["datasets"] = [d for d in data["datasets"] if d["type"] != "objectTable_tract"]
    data["datasets"].append({"type": "deep_coadd", "dimensions": ["skymap", "tract", "patch", "band"],
                             "produced_by": "step3"})
    plan = compile_data(tmp_path, data).plan
    lancs = plan.site("ukdf-lancs")
    assert lancs.owned_tracts == (9941, 9942) and lancs.processing_tracts == (9941, 9942, 9948)
    assert plan.ownership.owner[9948] == "frdf"
    job = next(j for j in plan.jobs if j.site == "ukdf-lancs" and j.stage == "step3")
    assert "tract IN (9941, 9942, 9948)" in job.data_query
    cc = {t.id: t for t in plan.transfers if t.kind == "crosscheck" and t.dataset_type == "deep_coadd"}
    assert set(cc) == {"crosscheck.step3.deep_coadd.frdf-to-usdf",
                       "crosscheck.step3.deep_coadd.ukdf-lancs-to-usdf"}
    assert all((t.select_by, t.tracts) == ("tracts", (9948,)) for t in cc.values())
    assert all(t.incoming_collection.endswith("/incoming/crosscheck") for t in cc.values())
    out = plan.output_collection
    assert {t.source: t.also_into for t in cc.values()} == {
        "frdf": (f"{out}/incoming/crosscheck/frdf",),
        "ukdf-lancs": (f"{out}/incoming/crosscheck/ukdf-lancs",)}
    [pair] = [p for p in plan.crosschecks if p.dataset_type == "deep_coadd"]
    assert pair.tract == 9948 and [(s.site, s.collection) for s in pair.sides] == [
        ("frdf", f"{out}/incoming/crosscheck/frdf"),
        ("ukdf-lancs", f"{out}/incoming/crosscheck/ukdf-lancs")]
    assert set(plan.schedule.step("crosscheck:usdf").deps) >= {f"verify:{i}" for i in cc}


def test_a_cross_check_beside_a_return_of_the_same_type_comes_back(tmp_path: Path) -> None:
    """dr1 archives `object` from every site and cross-checks tract 5063 (owned by the central
    site) at frdf: frdf's return carries its own tracts, the cross-check move tract 5063, and
    the comparison reads the central site's own stage output for the owner's side."""
    plan = compile_campaign(CAMPAIGNS / "dr1.yaml", render=False).plan
    ids = {m.id for m in plan.moves}
    assert {"step3a.object.frdf-to-usdf", "crosscheck.step3a.object.frdf-to-usdf"} <= ids
    cc = next(m for m in plan.moves if m.id == "crosscheck.step3a.object.frdf-to-usdf")
    ret = next(m for m in plan.moves if m.id == "step3a.object.frdf-to-usdf")
    assert cc.tracts == (5063,) and 5063 not in ret.tracts
    [pair] = [p for p in plan.crosschecks if p.dataset_type == "object"]
    out = plan.output_collection
    assert [(s.site, s.collection) for s in pair.sides] == [
        ("usdf", f"{out}/step3a"), ("frdf", f"{out}/incoming/crosscheck/frdf")]


def test_raw_distribution_follows_visit_ownership(tmp_path: Path) -> None:
    plan = plan_of(tmp_path)
    [raw] = plan.raws
    assert (raw.id, raw.source_rse, raw.destination_rse) == ("raw.usdf-to-frdf", "SLAC_RAW_DISK", "IN2P3_RAW_DISK")
    # whole visits: every raw of the visits overlapping frdf's tracts, as a TAGGED selection
    assert (raw.select_by, raw.select_site, raw.tracts) == ("visits-held", "frdf", (9948, 9949))
    assert raw.source_collection == "HSC/raw/all"
    assert raw.selection_collection == plan.site("frdf").raw_selection == "HSC/raw/mini/frdf"


def test_dr1_example_fractions_match_shares() -> None:
    from tests.helpers import CAMPAIGNS
    compiled = compile_campaign(CAMPAIGNS / "dr1.yaml", render=False)
    for site in compiled.plan.sites:
        assert abs(site.fraction - site.share) <= 0.05, site.id
    assert not any("share" in d.path for d in compiled.warnings)
    kinds = sorted(d.path for d in compiled.warnings)
    assert "sites.frdf.cores" in kinds and "sites.ukdf-lancs.cores" in kinds
    assert "sites.ukdf-lancs.storage_tb" in kinds and "sites.frdf.storage_tb" in kinds
