"""The status renderings: the HTML page in a real headless Chromium (Debian's `chromium`), the
Prometheus text checked by promtool, the JSON against the committed schema, escaping."""

from __future__ import annotations

import html.parser
import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from compiler.pipeline import compile_campaign
from compiler.plan import Plan
from compiler.status import render_html, render_json, render_prometheus, render_table
from compiler.status.collect import assemble
from compiler.status.model import LagStatus, SourceStatus, StatusReport
from tests.helpers import MINIMAL, ROOT, write
from tests.test_status_steps import job, transfer

SCHEMA = json.loads((ROOT / "schema" / "status.schema.json").read_text())
GREEN, RED = (0xCD, 0xEB, 0xD3), (0xF6, 0xC9, 0xC6)  # .ok and .failed of the page's CSS


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    return compile_campaign(write(tmp_path, MINIMAL), render=False).plan


def every_state(plan: Plan) -> StatusReport:
    """Jobs succeeded, running, failed, unknown and not submitted; rules OK, REPLICATING,
    STUCK and unknown; a lag that does not fall and one whose broker did not answer."""
    jobs = [job(plan, "step1", "usdf", "SUCCEEDED"), job(plan, "step1", "frdf", "RUNNING"),
            job(plan, "fgcm", "usdf", "FAILED"), job(plan, "step3", "frdf", None),
            job(plan, "step3", "usdf", None, known=False).model_copy(
                update={"reason": "PanDA: <b>no answer</b>"})]
    transfers = [transfer(plan, "gather", state="OK", sent=3, arrived=3),
                 transfer(plan, "scatter", state="REPLICATING", sent=2, arrived=0),
                 transfer(plan, "return", state="STUCK", sent=2),
                 transfer(plan, "raw", known=False)]
    lag = [LagStatus(site="usdf", group_id="g-usdf", topic="SLAC_BUTLER_DISK-usdf", known=True,
                     lag=7, lag_before=7, falling=False),
           LagStatus(site="frdf", group_id="g-frdf", topic="IN2P3_BUTLER_DISK-frdf",
                     known=False, reason="Kafka kafka:9092: no answer")]
    sources = [SourceStatus(source="bps", site="usdf", up=False, reason="PanDA: no answer"),
               SourceStatus(source="kafka", site="frdf", up=False, reason="no answer"),
               SourceStatus(source="rucio", site=None, up=True)]
    return assemble(plan, site=None, generated_at=1_796_000_000.5, sources=sources, jobs=jobs,
                    transfers=transfers, lag=lag, repos=[])


class Cells(html.parser.HTMLParser):
    """Every grid cell of the page: (stage, site) -> (class, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], tuple[str, str]] = {}
        self._at: tuple[str, str] | None = None
        self._class = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "td" and a.get("data-site"):
            self._at = (str(a["data-stage"]), str(a["data-site"]))
            self._class = str(a.get("class"))
            self.cells[self._at] = (self._class, "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._at = None

    def handle_data(self, data: str) -> None:
        if self._at is not None:
            cls, text = self.cells[self._at]
            self.cells[self._at] = (cls, text + data)


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    assert binary, "Chromium is missing: apt-get install -y chromium"
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_page_in_a_real_browser_shows_the_grid(plan: Plan, tmp_path: Path) -> None:
    page = tmp_path / "status.html"
    page.write_text(render_html(every_state(plan)))
    profile = f"--user-data-dir={tmp_path / 'profile'}"
    dom = chromium(profile, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    parser = Cells()
    parser.feed(dom.stdout)
    cells = {k: (cls, " ".join(text.split())) for k, (cls, text) in parser.cells.items()}
    assert cells[("1 step1", "usdf")] == ("ok", "SUCCEEDED")
    assert cells[("1 step1", "frdf")] == ("running", "RUNNING")
    assert cells[("2 fgcm", "usdf")] == ("failed", "FAILED")
    assert cells[("2 fgcm", "frdf")] == ("none", "-")
    assert cells[("3 step3", "usdf")] == ("unknown", "unknownPanDA: <b>no answer</b>")
    assert cells[("3 step3", "frdf")][0] == "waiting"
    assert "<b>no answer</b>" not in page.read_text()  # escaped, shown as text

    shot = tmp_path / "status.png"
    taken = chromium(profile, "--window-size=1200,900", f"--screenshot={shot}", page.as_uri())
    assert taken.returncode == 0 and shot.exists(), taken.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1200, 900)
        colours = {rgb for _, rgb in image.convert("RGB").getcolors(maxcolors=1 << 20) or []}
    assert GREEN in colours and RED in colours  # the grid's cells are painted


def test_json_is_schema_valid_and_prometheus_passes_promtool(plan: Plan) -> None:
    report = every_state(plan)
    jsonschema.validate(json.loads(render_json(report)), SCHEMA)
    prom = render_prometheus(report)
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install -y prometheus"
    lint = subprocess.run([promtool, "check", "metrics"], input=prom, capture_output=True,
                          text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    lines = prom.splitlines()
    for name in ("drpc_status_timestamp_seconds", "drpc_job_state", "drpc_rule_ok",
                 "drpc_rule_stuck", "drpc_rule_locks", "drpc_transfer_files_sent",
                 "drpc_transfer_files_ingested", "drpc_ingestd_consumer_lag",
                 "drpc_status_source_up"):
        assert f"# TYPE {name} gauge" in lines and any(ln.startswith(f"# HELP {name} ")
                                                        for ln in lines)
    assert 'drpc_status_timestamp_seconds{campaign="mini"} 1796000000.5' in lines
    assert 'drpc_job_state{campaign="mini",site="usdf",stage="fgcm",state="failed"} 1' in lines
    assert not any('stage="step3"' in ln for ln in lines)  # unknown or not submitted: no series
    raw = next(m for m in plan.moves if m.kind == "raw")
    assert not any(f'transfer="{raw.id}"' in ln for ln in lines)  # its Rucio was unknown
    assert 'drpc_status_source_up{campaign="mini",site="usdf",source="bps"} 0' in lines
    assert 'drpc_ingestd_consumer_lag{campaign="mini",site="usdf",topic="SLAC_BUTLER_DISK-usdf"} 7' in lines
    assert not any('site="frdf",topic=' in ln for ln in lines)


def test_table_names_unknowns_and_attention(plan: Plan) -> None:
    text = render_table(every_state(plan))
    assert "3 step3  unknown [1]" in text
    assert "  [1] PanDA: <b>no answer</b>" in text
    assert "Needs attention (exit 5)" in text
    assert "  - job fgcm at usdf: FAILED (run 7)" in text
    assert "7 (not falling, was 7)" in text


def test_renderings_are_deterministic(plan: Plan) -> None:
    report = every_state(plan)
    for render in (render_html, render_json, render_prometheus, render_table):
        assert render(report) == render(StatusReport.model_validate_json(render_json(report)))
