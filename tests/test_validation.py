"""Every rule of CONTRACT 1.2: the exact position and message of each problem, all at once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compiler.errors import SpecError
from compiler.pipeline import compile_campaign
from tests.helpers import MINIMAL, replace_line, write


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        compile_campaign(path, render=False)
    prefix = f"{path}:"
    return [d.text().replace(prefix, "") for d in info.value.diagnostics]


def warnings_of(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    prefix = f"{path}:"
    return [d.text().replace(prefix, "") for d in compile_campaign(path, render=False).warnings]


def test_minimal_campaign_is_valid(tmp_path: Path) -> None:
    assert warnings_of(tmp_path, MINIMAL) == []


def test_unknown_key_with_hint(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "    cores: 100\n    gb_per_core: 4\n    storage_tb: 100\n    share: 0.5\n    butler: {repo: /repo/usdf}",
                        "    cors: 100\n    gb_per_core: 4\n    storage_tb: 100\n    share: 0.5\n    butler: {repo: /repo/usdf}")
    assert problems(tmp_path, text) == [
        "14:3: error: sites.usdf.cores: required field 'cores' is missing",
        "18:5: error: sites.usdf.cors: unknown key 'cors' (did you mean 'cores'?)",
    ]


def test_wrong_type_and_range(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "    cores: 100\n    gb_per_core: 4\n    storage_tb: 100\n    share: 0.5\n    butler: {repo: /repo/frdf}",
                        "    cores: many\n    gb_per_core: -4\n    storage_tb: 100\n    share: 0.5\n    butler: {repo: /repo/frdf}")
    assert problems(tmp_path, text) == [
        "29:12: error: sites.frdf.cores: input should be a valid integer",
        "30:18: error: sites.frdf.gb_per_core: input should be greater than 0",
    ]


def test_name_patterns(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "  name: mini", "  name: Mini_Campaign")
    text = replace_line(text, "  - {name: step3, subset", "  - {name: 3step, subset")
    out = problems(tmp_path, text)
    words = ("is not a valid name: names are lowercase letters, digits and '-', starting with a "
             "letter, at most 40 characters")
    assert out[0] == f"4:9: error: metadata.name: 'Mini_Campaign' {words} (did you mean 'mini-campaign'?)"
    assert out[1] == f"44:12: error: stages[2].name: '3step' {words}"


def test_bad_site_id_points_at_the_key(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "  frdf:\n    facility: FRDF", "  FR_DF:\n    facility: FRDF")
    out = problems(tmp_path, text)
    assert out[0].startswith("25:3: error: sites.FR_DF: invalid name 'FR_DF'")


def test_literal_choice_with_hint(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "{name: fgcm, subset: fgcm, runs_at: central}", "{name: fgcm, subset: fgcm, runs_at: centrl}")
    assert problems(tmp_path, text) == [
        "43:41: error: stages[1].runs_at: 'centrl' is not allowed; expected 'every-site' or 'central' "
        "(did you mean 'central'?)",
    ]


def test_unknown_site_references_with_hints(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "  central_site: usdf", "  central_site: usdf2")
    text = replace_line(text, "      frdf: [9948, 9949]", "      frdf: [9948, 9949]\n      frfd: [9941]")
    out = problems(tmp_path, text)
    assert "10:17: error: campaign.central_site: unknown site 'usdf2' (did you mean 'usdf'?)" in out
    assert "41:7: error: sky.assignment.tracts.frfd: unknown site 'frfd' (did you mean 'frdf'?)" in out


def test_tract_not_in_skymap_and_assigned_twice(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "      frdf: [9948, 9949]", "      frdf: [9948, 9470, 99999]")
    assert problems(tmp_path, text) == [
        "40:20: error: sky.assignment.tracts.frdf[1]: tract 9470 is assigned to two sites ('usdf' and 'frdf') "
        "(already listed at sky.assignment.tracts.usdf[1])",
        "40:26: error: sky.assignment.tracts.frdf[2]: tract 99999 is not in skymap 'hsc_rings_v1' "
        "(valid ids: 0..18937)",
    ]


def test_site_without_tract_and_shares(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "      frdf: [9948, 9949]\n", "")
    text = replace_line(text, "    share: 0.5\n    butler: {repo: /repo/frdf}", "    share: 0.4\n    butler: {repo: /repo/frdf}")
    assert problems(tmp_path, text) == [
        "13:1: error: sites: site shares sum to 0.9000, not 1 "
        "(shares are fractions of the whole campaign; make them add up to 1 (within 0.001))",
        "25:3: error: sites.frdf: site 'frdf' owns no tract of the footprint "
        "(give it a ring or a tract list, or remove the site)",
    ]


def test_stages_and_dataset_graph(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "  - {name: step3, subset: step3", "  - {name: step1, subset: step3")
    text = replace_line(text, "produced_by: fgcm, consumed_by: [step3],", "produced_by: fgcm, consumed_by: [step1, stepp3],")
    text = replace_line(text, "produced_by: step3, archive", "produced_by: stage3, archive")
    assert problems(tmp_path, text) == [
        "44:12: error: stages[2].name: duplicate stage name 'step1' (first declared as stages[0])",
        "47:102: error: datasets[1].consumed_by[0]: stage 'step1' does not run after the producer 'fgcm' "
        "(a dataset is consumed only by stages listed after its producer)",
        "47:109: error: datasets[1].consumed_by[1]: unknown stage 'stepp3' (did you mean 'step1'?)",
        "48:73: error: datasets[2].produced_by: unknown stage 'stage3' (allowed: 'fgcm', 'step1')",
    ]


def test_dimensions_are_butler_names(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "dimensions: [skymap, tract]", "dimensions: [skymap, tracts]")
    out = problems(tmp_path, text)
    assert len(out) == 1
    assert out[0].startswith("48:52: error: datasets[2].dimensions[1]: 'tracts' is not allowed; expected 'instrument', ")
    assert out[0].endswith("(did you mean 'tract'?)")


def test_rings_order_gap_and_cover(tmp_path: Path) -> None:
    rings = (
        "  footprint: {dec_min: -60, dec_max: 30}\n"
        "  assignment:\n"
        "    rings:\n"
        "      - {dec_min: -50, dec_max: -10, site: usdf}\n"
        "      - {dec_max: -20, site: frdf}\n"
        "      - {dec_min: 0, dec_max: 20, site: frdf}\n"
    )
    text = replace_line(MINIMAL, "  assignment:\n    tracts:\n      usdf: [9469, 9470]\n      frdf: [9948, 9949]\n", rings)
    assert problems(tmp_path, text) == [
        "40:19: error: sky.assignment.rings[0].dec_min: the rings start at dec -50, north of the footprint's "
        "dec_min -60 (the rings must cover the footprint with no gap)",
        "41:19: error: sky.assignment.rings[1].dec_max: ring 2 is empty or reversed: dec -10 .. -20 "
        "(rings are listed south to north with increasing dec_max)",
        "42:19: error: sky.assignment.rings[2].dec_min: gap between ring 2 and ring 3: dec -20 .. 0 is in no ring",
        "42:31: error: sky.assignment.rings[2].dec_max: the rings end at dec 20, south of the footprint's "
        "dec_max 30 (the rings must cover the footprint with no gap)",
    ]


def test_rings_overlap(tmp_path: Path) -> None:
    rings = (
        "  assignment:\n"
        "    rings:\n"
        "      - {dec_max: 1, site: usdf}\n"
        "      - {dec_min: 0.5, dec_max: 90, site: frdf}\n"
    )
    text = replace_line(MINIMAL, "  assignment:\n    tracts:\n      usdf: [9469, 9470]\n      frdf: [9948, 9949]\n", rings)
    assert problems(tmp_path, text) == [
        "40:19: error: sky.assignment.rings[1].dec_min: ring 2 overlaps ring 1: it starts at 0.5, below the "
        "previous dec_max 1",
    ]


def test_rings_and_tracts_are_exclusive(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "  assignment:\n", "  assignment:\n    rings: [{dec_max: 90, site: usdf}]\n")
    assert problems(tmp_path, text) == [
        "38:5: error: sky.assignment: give exactly one of `rings` or `tracts` "
        "(rings assign declination bands; tracts list each site's tract ids)",
    ]


def test_cross_check_rules(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "stages:\n", "  cross_check:\n    - {tract: 9469, also_at: usdf}\n"
                        "    - {tract: 9948, also_at: ukdf}\n    - {tract: 5, also_at: frdf}\nstages:\n")
    assert problems(tmp_path, text) == [
        "42:30: error: sky.cross_check[0].also_at: tract 9469 is already owned by 'usdf' "
        "(also_at names a second site, other than the owner)",
        "43:30: error: sky.cross_check[1].also_at: unknown site 'ukdf' (did you mean 'usdf'?)",
        "44:15: error: sky.cross_check[2].tract: tract 5 is not one of the campaign's tracts "
        "(a cross-check tract must be owned by a site)",
    ]


def test_secrets_are_rejected(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "    butler: {repo: /repo/usdf}",
                        "    butler: {repo: /repo/usdf, registry: 'postgresql://rubin:hunter2@db.slac:5432/main'}\n"
                        "    password: hunter2")
    assert problems(tmp_path, text) == [
        "22:42: error: sites.usdf.butler.registry: a URI with a password; specs hold no secrets (drop the "
        "password: PostgreSQL credentials come from ~/.lsst/db-auth.yaml or PGPASSWORD at the site, mounted "
        "from a Kubernetes Secret for ctrl_ingestd)",
        "23:5: error: sites.usdf.password: 'password' holds a literal secret; specs hold no secrets (store it "
        "in a Kubernetes Secret (name it with ingestd.butler_secret) or an environment variable, and refer to "
        "it by name)",
    ]


def test_secret_in_ingestd_section(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "host_path: /data}]}\nsky:", "host_path: /data}], token: abc123}\nsky:")
    out = problems(tmp_path, text)
    assert out == ["35:261: error: sites.frdf.ingestd.token: 'token' holds a literal secret; specs hold no "
                   "secrets (store it in a Kubernetes Secret (name it with ingestd.butler_secret) or an "
                   "environment variable, and refer to it by name)"]


def test_unknown_skymap(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "  skymap: hsc_rings_v1", "  skymap: hsc_ring_v1")
    assert problems(tmp_path, text) == [
        "7:11: error: campaign.skymap: unknown skymap 'hsc_ring_v1' (did you mean 'hsc_rings_v1'?)",
    ]


def test_all_problems_at_once_across_kinds(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "  central_site: usdf", "  central_site: nowhere")
    text = replace_line(text, "      frdf: [9948, 9949]", "      frdf: [9948, 9469]")
    text = replace_line(text, "{name: fgcm, subset: fgcm, runs_at: central}", "{name: fgcm, subset: fgcm, runs_at: central, colour: red}")
    out = problems(tmp_path, text)
    # structure first: an unknown key stops the semantic pass, so it alone is reported with it
    assert out == ["43:50: error: stages[1].colour: unknown key 'colour' (allowed: 'bps_includes', 'extra_query', "
                   "'memory_multiplier', 'name', 'number_of_retries', 'request_cpus', 'request_memory_mb', "
                   "'request_walltime_s', 'runs_at', 'select', 'subset', 'tasks', 'weight')"]
    text = text.replace(", colour: red", "")
    out = problems(tmp_path, text)
    assert len(out) == 2 and "unknown site 'nowhere'" in out[0] and "assigned to two sites" in out[1]


def test_share_warning_and_strictness(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "      frdf: [9948, 9949]", "      frdf: [9948]")
    assert warnings_of(tmp_path, text) == [
        "21:12: warning: sites.usdf.share: site 'usdf' owns 0.667 of the footprint's tracts, but its share is 0.5 "
        "(move a ring boundary (`drpc plan --balance` proposes some) or change the share)",
        "32:12: warning: sites.frdf.share: site 'frdf' owns 0.333 of the footprint's tracts, but its share is 0.5 "
        "(move a ring boundary (`drpc plan --balance` proposes some) or change the share)",
    ]


def test_deadline_and_storage_warnings(tmp_path: Path) -> None:
    text = MINIMAL.replace("  output_collection: HSC/runs/mini\n",
                           "  output_collection: HSC/runs/mini\n  deadline_days: 10\n")
    text += "workload: {visits: 1000, core_hours: 100000, storage_tb: 300}\n"
    out = warnings_of(tmp_path, text)
    # usdf's own 21 days of work, but MINIMAL's central stage waits for frdf: day 28
    assert out[0] == ("19:12: warning: sites.usdf.cores: site 'usdf' finishes on day 28 (50,000 "
                      "core-hours at its 100 cores), after deadline_days 10 (add cores, move tracts "
                      "to another site, or extend the deadline)")
    assert out[1] == ("21:17: warning: sites.usdf.storage_tb: site 'usdf' needs about 150 TB, over its "
                      "storage_tb 100 (add storage or move tracts to another site)")
    assert len(out) == 4


def test_unknown_ring_site(tmp_path: Path) -> None:
    rings = "  assignment:\n    rings:\n      - {dec_max: 0, site: usdf}\n      - {dec_max: 90, site: frdff}\n"
    text = replace_line(MINIMAL, "  assignment:\n    tracts:\n      usdf: [9469, 9470]\n      frdf: [9948, 9949]\n", rings)
    assert problems(tmp_path, text) == [
        "40:29: error: sky.assignment.rings[1].site: unknown site 'frdff' (did you mean 'frdf'?)",
    ]


def test_moved_type_without_storage_class_is_an_error_at_the_dataset(tmp_path: Path) -> None:
    """The destination cannot register a type it knows no storage class of: refused at validate
    time (not 5 minutes into a rehearsal), at the dataset, with the known classes."""
    text = MINIMAL.replace("{type: objectTable_tract,", "{type: tract_metrics,")
    out = problems(tmp_path, text)
    [line] = [p for p in out if "tract_metrics" in p]
    assert re.match(r"\d+:\d+: error: datasets\[2\]\.type: 'tract_metrics' moves between sites but "
                    r"its storage class is unknown", line)
    assert "set datasets[2].storage_class to the pipeline's, e.g. one of " in line and "ArrowAstropy" in line
    # nothing moves, nothing to register: no error
    text = text.replace("produced_by: step3, archive: true}", "produced_by: step3}")
    compile_campaign(write(tmp_path, text), render=False)


def test_rings_reaching_past_the_footprint_are_warned(tmp_path: Path) -> None:
    rings = (
        "  footprint: {dec_min: -40, dec_max: 10}\n"
        "  assignment:\n"
        "    rings:\n"
        "      - {dec_min: -50, dec_max: 0, site: usdf}\n"
        "      - {dec_max: 30, site: frdf}\n"
        "      - {dec_max: 40, site: frdf}\n"
    )
    text = replace_line(MINIMAL, "  assignment:\n    tracts:\n      usdf: [9469, 9470]\n      frdf: [9948, 9949]\n", rings)
    found = [w for w in warnings_of(tmp_path, text) if "footprint's dec" in w or "wholly" in w]
    assert found == [
        "40:19: warning: sky.assignment.rings[0].dec_min: ring 1 (usdf) starts at dec -50, past the "
        "footprint's dec_min -40: tracts south of -40 take no part (start it at -40 (or leave dec_min "
        "out), or widen sky.footprint)",
        "41:19: warning: sky.assignment.rings[1].dec_max: ring 2 (frdf) reaches dec 30, past the "
        "footprint's dec_max 10: tracts north of 10 take no part (end it at 10, or widen sky.footprint)",
        "42:19: warning: sky.assignment.rings[2].dec_max: ring 3 (frdf, dec 30 .. 40) lies wholly "
        "outside the footprint (dec -40 .. 10): it owns no tract (remove the ring, or widen sky.footprint)",
    ]
    # a ring that ends at the footprint's edge, as the examples do, is not warned
    exact = text.replace("{dec_max: 30, site: frdf}", "{dec_max: 10, site: frdf}").replace(
        "      - {dec_max: 40, site: frdf}\n", "").replace("dec_min: -50, dec_max: 0", "dec_max: 0")
    assert [w for w in warnings_of(tmp_path, exact) if "footprint's dec" in w] == []
