"""`drpc validate` of an include fragment on its own (issue 15): every value a fragment holds is
checked by the models of a whole campaign, at its line and column; the keys an including file
may supply are left to the campaigns that include it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from compiler.cli import cli
from compiler.fragment import is_fragment
from tests.helpers import CAMPAIGNS, MINIMAL, replace_line

SUMMARY = "fragment: 1 site(s) valid; required keys are checked where it is included"


def run(*args: str | Path, cwd: Path | None = None) -> Any:
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, [str(a) for a in args], prog_name="drpc")
    finally:
        os.chdir(old)


def at(path: Path, text: str) -> str:
    """`FILE:LINE:COL` of the first occurrence of `text` in the file (the value's position)."""
    lines = path.read_text().splitlines()
    line = next(i for i, s in enumerate(lines) if text in s)
    return f"{path}:{line + 1}:{lines[line].index(text) + 1}"


@pytest.mark.parametrize("site", ["usdf", "frdf", "ukdf-lancs", "ukdf-ral"])
def test_each_site_fragment_validates_on_its_own(site: str) -> None:
    path = CAMPAIGNS / "sites" / f"{site}.yaml"
    result = run("validate", path)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"{path}: {SUMMARY}", "1 fragment(s) valid"]
    assert result.stdout == ""


def test_mixed_campaigns_and_fragments(tmp_path: Path) -> None:
    result = run("validate", *sorted(CAMPAIGNS.glob("*.yaml")),
                 *sorted((CAMPAIGNS / "sites").glob("*.yaml")))
    assert result.exit_code == 0, result.output
    last = result.stderr.splitlines()[-1]
    assert last.startswith("2 campaign(s) and 4 fragment(s) valid"), last
    assert result.stderr.count(SUMMARY) == 4


def bad_fragment(tmp_path: Path) -> Path:
    text = (CAMPAIGNS / "sites" / "frdf.yaml").read_text()
    text = replace_line(text, "    cloud: EU", "    cloud: UK")
    text = replace_line(text, "      fs_prefix: file:///sps/lsst/rucio/",
                        "      fs_prefix: /sps/lsst/rucio/")
    text = replace_line(text, "    panda_site: CC-IN2P3", "    panda_site: CC-IN2P3\n    cpus: 8")
    path = tmp_path / "sites" / "frdf.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_bad_values_in_a_fragment_are_reported_at_their_line_and_column(tmp_path: Path) -> None:
    path = bad_fragment(tmp_path)
    result = run("validate", path)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{at(path, 'cpus')}: error: sites.frdf.cpus: unknown key 'cpus' (allowed: 'bps', "
        "'butler', 'cloud', 'cores', 'facility', 'gb_per_core', 'ingestd', 'monitoring', "
        "'panda_site', 'rucio', 'share', 'storage_tb')",
        f"{at(path, 'UK')}: error: sites.frdf.cloud: 'UK' is not allowed; expected 'US' or 'EU' "
        "(allowed: 'EU', 'US')",
        f"{at(path, '/sps/lsst/rucio/')}: error: sites.frdf.rucio.fs_prefix: "
        "'/sps/lsst/rucio/' is not a local file URL: it starts with file:// (e.g. "
        "file:///sdf/data/rubin/rucio/), with no control character or quote (did you mean "
        "'file:///sps/lsst/rucio/'?)",
        "1 fragment(s): 3 error(s)"]


def test_a_fragment_is_checked_by_the_same_models_as_the_campaign_that_includes_it(
        tmp_path: Path) -> None:
    """The same problems, at the same positions in the fragment, whether the fragment is
    validated alone or through a campaign that includes it."""
    fragment = bad_fragment(tmp_path)
    campaign = tmp_path / "campaign.yaml"
    start, end = MINIMAL.index("  frdf:\n"), MINIMAL.index("sky:\n")
    text = (MINIMAL[:start] + "  frdf: {cores: 100, gb_per_core: 4, storage_tb: 100, share: 0.5}\n"
            + MINIMAL[end:])
    campaign.write_text(replace_line(text, "kind: Campaign\n",
                                     "kind: Campaign\ninclude: [sites/frdf.yaml]\n"))
    alone = run("validate", fragment).stderr.splitlines()[:-1]
    included = run("validate", campaign).stderr.splitlines()[:-1]
    assert alone and set(alone) <= set(included)
    assert all(line.startswith(str(fragment)) for line in alone)


def test_a_list_item_keeps_its_required_keys_and_secrets_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "sky.yaml"
    path.write_text("sky:\n"
                    "  assignment:\n"
                    "    rings:\n"
                    "      - {dec_max: 3.0}\n"
                    "sites:\n"
                    "  usdf:\n"
                    "    butler: {registry: 'postgresql://drp:hunter2@db.example:5432/drp'}\n")
    result = run("validate", path)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == (f"{path}:4:9: error: sky.assignment.rings[0].site: required field 'site' "
                        "is missing")
    assert lines[1].startswith(f"{path}:7:24: error: sites.usdf.butler.registry: a URI with a "
                               "password; specs hold no secrets")
    assert "hunter2" not in result.output
    assert lines[-1] == "1 fragment(s): 2 error(s)"


def test_a_fragment_that_includes_another_points_into_the_included_file(tmp_path: Path) -> None:
    inner = bad_fragment(tmp_path)
    outer = tmp_path / "site-overrides.yaml"
    outer.write_text("include: [sites/frdf.yaml]\nsites:\n  frdf:\n    cores: 5000\n")
    result = run("validate", outer)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 3 and all(line.startswith(str(inner)) for line in errors)
    fixed = tmp_path / "sites" / "frdf.yaml"
    fixed.write_text((CAMPAIGNS / "sites" / "frdf.yaml").read_text())
    ok = run("validate", outer)
    assert ok.exit_code == 0 and f"{outer}: {SUMMARY}" in ok.stderr


def test_a_campaign_missing_its_kind_is_still_a_campaign(tmp_path: Path) -> None:
    path = tmp_path / "campaign.yaml"
    path.write_text(replace_line(MINIMAL, "kind: Campaign\n", ""))
    result = run("validate", path)
    assert result.exit_code == 1
    assert "kind: required field 'kind' is missing" in result.stderr
    assert result.stderr.splitlines()[-1] == "1 campaign(s): 1 error(s)"


def test_a_bad_fragment_beside_good_campaigns_fails_the_run(tmp_path: Path) -> None:
    fragment = bad_fragment(tmp_path)
    result = run("validate", "--format", "json", CAMPAIGNS / "3x2.yaml", fragment)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "1 campaign(s) and 1 fragment(s): 3 error(s)"
    assert '"file": "' + str(fragment) in result.stdout


@pytest.mark.parametrize("data, fragment", [
    ({"sites": {}}, True),
    ({"skymaps": {}, "sky": {}}, True),
    ({"datasets": []}, True),
    ({"apiVersion": "drpc/v1"}, False),
    ({"kind": "Campaign"}, False),
    ({"metadata": {}}, False),
    ({"campaign": {}, "sites": {}}, False),
    ({"stages": []}, False),
])
def test_what_makes_a_file_a_fragment(data: dict[str, Any], fragment: bool) -> None:
    assert is_fragment(data) is fragment
