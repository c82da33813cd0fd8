"""`drpc status --crosscheck FILE`: the central site's comparison in the status model.

The real crosscheck.py writes the file in tests/test_crosscheck.py, which reads it back with
`drpc status`; here: what a file must be to be read, the cell when none was given, `--merge`,
and every rendering of a failed comparison.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from compiler.cli_status import status_command
from compiler.errors import UsageError
from compiler.pipeline import compile_campaign
from compiler.plan import Plan
from compiler.status import render_html, render_json, render_prometheus, render_table
from compiler.status.collect import assemble, merge
from compiler.status.crosscheck_result import not_read, read_result
from compiler.status.model import CrosscheckStatus
from tests.helpers import MINIMAL, ROOT, write
from tests.test_crosscheck import crosscheck_campaign

SCHEMA = json.loads((ROOT / "schema" / "status.schema.json").read_text())


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return crosscheck_campaign(tmp_path_factory.mktemp("xc"))


@pytest.fixture(scope="module")
def plan(campaign: Path) -> Plan:
    return compile_campaign(campaign, render=False).plan


def result_file(plan: Plan, tmp_path: Path, *, bad: int = 0, **changes: Any) -> Path:
    """A result as crosscheck.py --json writes it, the first `bad` comparisons DIFFERS."""
    comparisons = [{"tract": c.tract, "dataset_type": c.dataset_type, "stage": c.stage,
                    "status": "DIFFERS" if i < bad else "OK",
                    "problems": ["rows 10 vs 9: relative difference 0.1 > count_fraction 0"]
                    if i < bad else []}
                   for i, c in enumerate(plan.crosschecks)]
    doc = {"campaign": plan.campaign, "central": plan.central_site, "ok": not bad,
           "comparisons": comparisons, **changes}
    path = tmp_path / "crosscheck-result.json"
    path.write_text(json.dumps(doc))
    return path


def report(plan: Plan, crosscheck: CrosscheckStatus | None, site: str | None = None) -> Any:
    return assemble(plan, site=site, generated_at=1.0e9, sources=[], jobs=[], transfers=[],
                    lag=[], repos=[], crosscheck=crosscheck)


def test_a_result_within_the_tolerances(plan: Plan, tmp_path: Path) -> None:
    got = read_result(plan, result_file(plan, tmp_path))
    assert got.known and got.ok and got.counts == {"ok": len(plan.crosschecks), "differs": 0,
                                                   "empty": 0, "error": 0}
    rep = report(plan, got)
    assert rep.attention == [] and rep.exit_code == 0
    step = next(st for s in rep.sites for st in s.steps if st.key == "crosscheck:usdf")
    assert step.state == "done" and step.observed
    jsonschema.validate(json.loads(render_json(rep)), SCHEMA)


def test_a_result_outside_them_needs_attention_everywhere(plan: Plan, tmp_path: Path) -> None:
    got = read_result(plan, result_file(plan, tmp_path, bad=2))
    rep = report(plan, got)
    first, second = plan.crosschecks[:2]
    assert rep.exit_code == 5 and rep.attention == [
        f"cross-check at usdf: {c.dataset_type} of tract {c.tract} DIFFERS: rows 10 vs 9: "
        "relative difference 0.1 > count_fraction 0" for c in (first, second)]
    step = next(st for s in rep.sites for st in s.steps if st.key == "crosscheck:usdf")
    assert step.state == "failed"
    table = render_table(rep)
    assert f"Cross-check at usdf: 2 of {len(plan.crosschecks)} comparison(s) not OK" in table
    page = render_html(rep)
    assert 'id="crosscheck" class="failed"' in page
    assert (f'<tr data-tract="{first.tract}" data-type="{first.dataset_type}">'
            in page) and page.count('<td class="failed">DIFFERS') == 2
    metrics = render_prometheus(rep)
    assert 'drpc_crosscheck_ok{campaign="drp-3x2",site="usdf"} 0' in metrics
    assert 'drpc_crosscheck_comparisons{campaign="drp-3x2",site="usdf",outcome="differs"} 2' \
        in metrics
    jsonschema.validate(json.loads(render_json(rep)), SCHEMA)


@pytest.mark.parametrize(("changes", "message"), [
    ({"campaign": "drp-other"}, "a result of campaign 'drp-other', not drp-3x2"),
    ({"comparisons": []}, "compares none of"),
    ({"comparisons": [{"tract": 1}]}, "not the JSON of crosscheck.py --json"),
    ({"comparisons": [{"tract": 1, "dataset_type": "x", "status": "MAYBE"}]},
     "comparison status 'MAYBE' is none of OK, DIFFERS, EMPTY, ERROR"),
])
def test_a_file_that_is_not_this_comparison_is_refused(plan: Plan, tmp_path: Path,
                                                       changes: dict[str, Any],
                                                       message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_result(plan, result_file(plan, tmp_path, **changes))


def test_no_file_given_is_an_unknown_cell_that_says_how(plan: Plan) -> None:
    cell = not_read(plan, None)
    assert cell is not None and not cell.known
    assert "--crosscheck FILE" in (cell.reason or "") and "crosscheck.py --json" in (
        cell.reason or "")
    elsewhere = not_read(plan, "frdf")
    assert elsewhere is not None and "drpc status --site usdf --crosscheck" in (
        elsewhere.reason or "")
    rep = report(plan, cell)
    assert rep.exit_code == 0 and "Cross-check at usdf: unknown [" in render_table(rep)


def test_a_campaign_without_cross_checks_has_none(tmp_path: Path) -> None:
    mini = compile_campaign(write(tmp_path, MINIMAL), render=False).plan
    assert not_read(mini, None) is None
    assert "Cross-check" not in render_table(report(mini, None))
    with pytest.raises(UsageError, match="has no cross-check tract"):
        read_result(mini, tmp_path / "any.json")


def test_merge_takes_the_central_sites_result(plan: Plan, tmp_path: Path) -> None:
    central = report(plan, read_result(plan, result_file(plan, tmp_path, bad=1)), "usdf")
    other = report(plan, not_read(plan, "frdf"), "frdf")
    merged = merge(plan, [other, central], ["frdf.json", "usdf.json"])
    assert merged.crosscheck is not None and merged.crosscheck.known
    assert merged.exit_code == 5 and merged.attention[0].startswith("cross-check at usdf: ")


def test_cli_refuses_crosscheck_with_merge(campaign: Path, plan: Plan, tmp_path: Path) -> None:
    path = result_file(plan, tmp_path)
    rep = tmp_path / "usdf.json"
    rep.write_text(render_json(report(plan, None, "usdf")))
    got = CliRunner().invoke(status_command, [str(campaign), "--merge", str(rep),
                                              "--crosscheck", str(path)])
    assert got.exit_code == 2 and "leave out --crosscheck" in got.output
