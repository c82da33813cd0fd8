"""Finite, bounded numbers and safe text: what no campaign may hold, refused at the right line.

A number too large for a float (or for the planner), `.inf`, `-.inf`, `.nan`, `1e999` and a
ring skymap too fine to build quickly are validation errors (exit 1 with a positioned
diagnostic), never an internal error later. Free text and paths hold no line break of YAML
1.1 or 1.2 and no control character: PyYAML and libyaml end a `#` comment at U+0085, U+2028
and U+2029, and drpc writes `facility` into the comment headers of BPS and Kubernetes files.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from compiler.errors import SpecError
from compiler.model import MAX_NUM_RINGS, CampaignSettings, SiteButler, SiteRucio, Stage
from compiler.pipeline import compile_campaign
from tests.helpers import MINIMAL, ROOT, write

V = "@V@"  # where the value under test goes
BIG = "1" + "0" * 99  # 10**99: the longest integer the loader reads, beyond every bound
HUGE = "1" + "0" * 309  # 10**309: more than a float can hold; the loader refuses it
N_LINES = len(MINIMAL.splitlines())


def set_line(number: int, new: str) -> Callable[[], str]:
    """MINIMAL with its 1-based line `number` replaced."""
    def make() -> str:
        lines = MINIMAL.splitlines(keepends=True)
        lines[number - 1] = new + "\n"
        return "".join(lines)
    return make


def append(*new: str) -> Callable[[], str]:
    return lambda: MINIMAL + "".join(line + "\n" for line in new)


def custom_skymap(body: str) -> Callable[[], str]:
    """MINIMAL on a declared ring skymap `fine` (its line is the last one)."""
    def make() -> str:
        text = set_line(7, "  skymap: fine")()
        return text + "skymaps:\n  fine: " + body + "\n"
    return make


RINGS = ("  assignment:\n    rings:\n      - {dec_max: 0, site: usdf}\n"
         "      - {dec_max: 90, site: frdf}\n")


# (dotted path, MINIMAL with the value replaced by V)
FLOAT_FIELDS: list[tuple[str, Callable[[], str]]] = [
    ("sites.usdf.gb_per_core", set_line(19, f"    gb_per_core: {V}")),
    ("sites.usdf.storage_tb", set_line(20, f"    storage_tb: {V}")),
    ("sites.frdf.share", set_line(32, f"    share: {V}")),
    ("campaign.deadline_days", set_line(12, f"  output_collection: HSC/runs/mini\n  deadline_days: {V}")),
    ("workload.core_hours", append(f"workload: {{visits: 1000, core_hours: {V}, storage_tb: 300}}")),
    ("workload.storage_tb", append(f"workload: {{visits: 1000, core_hours: 1000, storage_tb: {V}}}")),
    ("sky.footprint.dec_min", set_line(36, f"sky:\n  footprint: {{dec_min: {V}}}")),
    ("sky.footprint.dec_max", set_line(36, f"sky:\n  footprint: {{dec_max: {V}}}")),
    ("stages[0].weight", set_line(42, f"  - {{name: step1, subset: step1, runs_at: every-site, weight: {V}}}")),
    ("stages[1].memory_multiplier",
     set_line(43, f"  - {{name: fgcm, subset: fgcm, runs_at: central, memory_multiplier: {V}}}")),
    ("skymaps.fine.ra_start_deg", custom_skymap(f"{{num_rings: 120, ra_start_deg: {V}}}")),
    ("skymaps.fine.tract_overlap_arcmin", custom_skymap(f"{{num_rings: 120, tract_overlap_arcmin: {V}}}")),
    ("skymaps.fine.pixel_scale_arcsec", custom_skymap(f"{{num_rings: 120, pixel_scale_arcsec: {V}}}")),
]


def ring_field(field: str) -> Callable[[], str]:
    def make() -> str:
        text = MINIMAL.replace("  assignment:\n    tracts:\n      usdf: [9469, 9470]\n      frdf: [9948, 9949]\n",
                               RINGS.replace("{dec_max: 0, site: usdf}", f"{{{field}: {V}, site: usdf}}"
                                             if field == "dec_max" else f"{{dec_min: {V}, dec_max: 0, site: usdf}}"))
        assert V in text
        return text
    return make


FLOAT_FIELDS += [("sky.assignment.rings[0].dec_min", ring_field("dec_min")),
                 ("sky.assignment.rings[0].dec_max", ring_field("dec_max"))]

INT_FIELDS: list[tuple[str, Callable[[], str]]] = [
    ("sites.usdf.cores", set_line(18, f"    cores: {V}")),
    ("workload.visits", append(f"workload: {{visits: {V}, core_hours: 1000, storage_tb: 300}}")),
    ("sky.assignment.tracts.usdf[1]", set_line(39, f"      usdf: [9469, {V}]")),
    ("stages[1].request_memory_mb",
     set_line(43, f"  - {{name: fgcm, subset: fgcm, runs_at: central, request_memory_mb: {V}}}")),
    ("stages[1].request_cpus", set_line(43, f"  - {{name: fgcm, subset: fgcm, runs_at: central, request_cpus: {V}}}")),
    ("stages[1].number_of_retries",
     set_line(43, f"  - {{name: fgcm, subset: fgcm, runs_at: central, number_of_retries: {V}}}")),
    ("stages[1].request_walltime_s",
     set_line(43, f"  - {{name: fgcm, subset: fgcm, runs_at: central, request_walltime_s: {V}}}")),
    ("skymaps.fine.num_rings", custom_skymap(f"{{num_rings: {V}}}")),
    ("skymaps.fine.patch_inner_dimensions", custom_skymap(f"{{num_rings: 120, patch_inner_dimensions: {V}}}")),
    ("skymaps.fine.patch_border", custom_skymap(f"{{num_rings: 120, patch_border: {V}}}")),
]


def placed(make: Callable[[], str], value: str) -> tuple[str, str]:
    """The campaign text with `value` in place, and the LINE:COL where the value sits."""
    text = make()
    assert text.count(V) == 1
    for number, line in enumerate(text.splitlines(), start=1):
        if V in line:
            return text.replace(V, value), f"{number}:{line.index(V) + 1}"
    raise AssertionError("unreachable")


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        compile_campaign(path, render=False)
    return [d.text().replace(f"{path}:", "") for d in info.value.diagnostics]


def assert_one_error_at(out: list[str], where: str, dotted: str, message: str | None = None) -> None:
    assert len(out) == 1, out
    assert out[0].startswith(f"{where}: error: {dotted}: "), out
    if message is not None:
        assert message in out[0], out


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1e999", "-1e999"])
@pytest.mark.parametrize(("dotted", "make"), FLOAT_FIELDS, ids=[f for f, _ in FLOAT_FIELDS])
def test_every_float_is_finite(tmp_path: Path, dotted: str, make: Callable[[], str], value: str) -> None:
    text, where = placed(make, value)
    assert_one_error_at(problems(tmp_path, text), where, dotted, "input should be a finite number")


@pytest.mark.parametrize(("dotted", "make"), FLOAT_FIELDS, ids=[f for f, _ in FLOAT_FIELDS])
def test_every_float_is_bounded(tmp_path: Path, dotted: str, make: Callable[[], str]) -> None:
    for value in (BIG, "1e300"):
        text, where = placed(make, value)
        assert_one_error_at(problems(tmp_path, text), where, dotted)


@pytest.mark.parametrize(("dotted", "make"), INT_FIELDS, ids=[f for f, _ in INT_FIELDS])
def test_every_int_is_bounded(tmp_path: Path, dotted: str, make: Callable[[], str]) -> None:
    text, where = placed(make, BIG)
    assert_one_error_at(problems(tmp_path, text), where, dotted, "input should be less than or equal to")
    text, where = placed(make, ".inf")
    assert_one_error_at(problems(tmp_path, text), where, dotted, "input should be a valid integer")


def test_bounds_that_matter(tmp_path: Path) -> None:
    for make, value, message in (
        (custom_skymap(f"{{num_rings: {V}}}"), str(MAX_NUM_RINGS + 1), f"less than or equal to {MAX_NUM_RINGS}"),
        (custom_skymap(f"{{num_rings: 120, tract_overlap_arcmin: {V}}}"), "61", "less than or equal to 60"),
        (set_line(18, f"    cores: {V}"), "10000001", "less than or equal to 10000000"),
    ):
        text, where = placed(make, value)
        out = problems(tmp_path, text)
        assert len(out) == 1 and out[0].startswith(f"{where}: error: ") and message in out[0], out


def test_values_at_the_bounds_are_valid(tmp_path: Path) -> None:
    text = set_line(18, "    cores: 10000000")()
    text = text.replace("  assignment:\n    tracts:\n      usdf: [9469, 9470]\n      frdf: [9948, 9949]\n", RINGS)
    text = text.replace("  skymap: hsc_rings_v1", "  skymap: fine")
    text += (f"skymaps:\n  fine: {{num_rings: {MAX_NUM_RINGS}, tract_overlap_arcmin: 60, "
             "pixel_scale_arcsec: 10}\n")
    compile_campaign(write(tmp_path, text), render=False)


# -- through the command line: exit 1 with a positioned diagnostic, never exit 4 -------------------

def drpc_validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "compiler", "validate", str(path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


CLI_CASES = [
    ("cores", set_line(18, f"    cores: {V}"), BIG, "sites.usdf.cores"),
    ("storage_tb-int", set_line(20, f"    storage_tb: {V}"), BIG, "sites.usdf.storage_tb"),
    ("storage_tb-inf", set_line(20, f"    storage_tb: {V}"), ".inf", "sites.usdf.storage_tb"),
    ("gb_per_core-nan", set_line(19, f"    gb_per_core: {V}"), ".nan", "sites.usdf.gb_per_core"),
    ("share-1e999", set_line(32, f"    share: {V}"), "1e999", "sites.frdf.share"),
    ("core_hours-neginf", append(f"workload: {{visits: 1000, core_hours: {V}, storage_tb: 300}}"), "-.inf",
     "workload.core_hours"),
    ("visits", append(f"workload: {{visits: {V}, core_hours: 1000, storage_tb: 300}}"), BIG, "workload.visits"),
    # too long to read as a number at all: refused by the loader at the value, before the model
    ("cores-huge", set_line(18, f"    cores: {V}"), HUGE, "<root>"),
    ("num_rings-3000", custom_skymap(f"{{num_rings: {V}}}"), "3000", "skymaps.fine.num_rings"),
    ("num_rings-huge", custom_skymap(f"{{num_rings: {V}}}"), BIG, "skymaps.fine.num_rings"),
]


@pytest.mark.parametrize(("case", "make", "value", "dotted"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_drpc_validate_refuses_with_exit_1(tmp_path: Path, case: str, make: Callable[[], str],
                                           value: str, dotted: str) -> None:
    text, where = placed(make, value)
    path = write(tmp_path, text)
    result = drpc_validate(path)
    assert result.returncode == 1, result.stderr
    assert f"{path}:{where}: error: {dotted}: " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


# -- text --------------------------------------------------------------------------------------------

# YAML double-quoted escapes of every kind of character PlainText refuses.
REFUSED = {
    "LINE SEPARATOR": r"\u2028", "PARAGRAPH SEPARATOR": r"\u2029", "NEL": r"\u0085", "NEL-escape": r"\N",
    "LS-escape": r"\L", "LF": r"\n", "CR": r"\r", "TAB": r"\t", "NUL": r"\0", "BEL": r"\a", "ESC": r"\e",
    "US": r"\x1f", "DEL": r"\x7f", "CSI": r"\x9b", "APC": r"\u009f",
}


@pytest.mark.parametrize("char", sorted(REFUSED))
@pytest.mark.parametrize(("dotted", "line", "prefix"), [
    ("sites.usdf.facility", 15, "    facility: "),
    ("metadata.description", 4, "  name: mini\n  description: "),
])
def test_free_text_refuses_line_breaks_and_controls(tmp_path: Path, dotted: str, line: int, prefix: str,
                                                    char: str) -> None:
    text, where = placed(set_line(line, prefix + V), f'"Site{REFUSED[char]}stack: w_2099_99"')
    assert_one_error_at(problems(tmp_path, text), where, dotted, "does not match the pattern")


@pytest.mark.parametrize(("dotted", "make"), [
    ("campaign.pipeline", set_line(9, f"  pipeline: {V}")),
    ("sites.usdf.butler.repo", set_line(22, f"    butler: {{repo: {V}}}")),
    ("stages[1].extra_query", set_line(43, f"  - {{name: fgcm, subset: fgcm, runs_at: central, extra_query: {V}}}")),
])
@pytest.mark.parametrize("char", [r"\u2028", r"\u0085", r"\u2029", r"\t", r"\x1b", r"\x7f"])
def test_paths_and_queries_refuse_line_breaks_and_controls(tmp_path: Path, dotted: str,
                                                           make: Callable[[], str], char: str) -> None:
    text, where = placed(make, f'"/a{char}b"')
    # the model's pattern or, for values that reach BPS files, the BPS check refuses it first
    out = problems(tmp_path, text)
    assert_one_error_at(out, where, dotted)
    assert "does not match the pattern" in out[0] or "BPS" in out[0], out


@pytest.mark.parametrize("char", ["\u0085", "\u2028", "\u2029"])
def test_raw_yaml11_line_break_in_a_file_is_refused(tmp_path: Path, char: str) -> None:
    """Written raw (not as an escape), the character never reaches a value: the loader refuses
    it where it stands, since YAML 1.1 readers would break the line there."""
    text, where = placed(set_line(15, f"    facility: {V}"), f'"USDF{char}panda_site: X"')
    line, column = where.split(":")
    out = problems(tmp_path, text)
    assert len(out) == 1 and out[0].startswith(f"{line}:{int(column) + 5}: error: "), out
    assert f"U+{ord(char):04X}" in out[0], out
    assert drpc_validate(write(tmp_path, text)).returncode == 1


def test_ordinary_text_is_still_welcome(tmp_path: Path) -> None:
    text, _ = placed(set_line(15, f"    facility: {V}"), "'USDF (SLAC) - Menlo Park, ça va: #1 \U0001F52D'")
    compile_campaign(write(tmp_path, text), render=False)


# -- enumerations and prefixes -------------------------------------------------------------------------

def test_cloud_is_us_or_eu(tmp_path: Path) -> None:
    text, where = placed(set_line(17, f"    cloud: {V}"), "UK")
    out = problems(tmp_path, text)
    assert_one_error_at(out, where, "sites.usdf.cloud", "'UK' is not allowed; expected 'US' or 'EU'")


@pytest.mark.parametrize("field", ["fs_prefix", "raw_fs_prefix"])
@pytest.mark.parametrize("value", ["/data/usdf/", "davs://slac:1094/rubin/", "FILE:///data/", "file://"])
def test_fs_prefixes_are_local_file_urls(tmp_path: Path, field: str, value: str) -> None:
    rucio = ("    rucio: {rse: SLAC_BUTLER_DISK, raw_rse: SLAC_RAW_DISK, rucio_prefix: 'davs://slac:1094/rubin/', "
             "fs_prefix: 'file:///data/usdf/'")
    if field == "fs_prefix":
        make = set_line(23, rucio.replace("'file:///data/usdf/'", V) + "}")
    else:
        make = set_line(23, rucio + f", raw_fs_prefix: {V}}}")
    text, where = placed(make, f"'{value}'")
    assert_one_error_at(problems(tmp_path, text), where, f"sites.usdf.rucio.{field}",
                        "is not a local file URL: it starts with file://")


ONE_OF_EACH = ["\u2028", "\u2029", "\u0085", "\t", "\n", "\r", "\x00", "\x1b", "\x7f", "\x9b"]


@pytest.mark.parametrize("char", ONE_OF_EACH, ids=[f"U+{ord(c):04X}" for c in ONE_OF_EACH])
def test_models_refuse_line_breaks_and_controls_in_paths_and_queries(char: str) -> None:
    """The models' own patterns (what editors check too), whatever validate.py checks first."""
    rucio = {"rse": "A", "raw_rse": "B", "rucio_prefix": "davs://h:1/", "fs_prefix": "file:///d/"}
    SiteRucio.model_validate(rucio)
    with pytest.raises(ValidationError, match="should match pattern"):
        SiteButler.model_validate({"repo": f"/repo{char}x"})
    with pytest.raises(ValidationError, match="should match pattern"):
        SiteRucio.model_validate({**rucio, "fs_prefix": f"file:///d{char}/"})
    with pytest.raises(ValidationError, match="should match pattern"):
        Stage.model_validate({"name": "s", "subset": "s", "runs_at": "central",
                              "extra_query": f"band = 'g'{char}"})
    with pytest.raises(ValidationError, match="should match pattern"):
        CampaignSettings.model_validate({
            "instrument": "HSC", "skymap": "hsc_rings_v1", "stack": "w",
            "pipeline": f"/p{char}.yaml", "central_site": "usdf", "input_collections": ["a"],
            "output_collection": "b"})
