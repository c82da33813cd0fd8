"""`drpc status`: where a campaign is, read from the real systems through their own clients.

model (the schema-versioned status model) <- collect (bps, rucio_rules, butler_counts,
kafka_lag, each optional; steps: what can start next) -> render (table, json, html,
prometheus). Every client is imported only when its source is read, so a missing one is an
`unknown` cell with its reason.
"""

from __future__ import annotations

import json

from .collect import Options, collect, merge
from .model import NEEDS_ATTENTION, SCHEMA_VERSION, StatusReport, schema_text
from .render_html import render_html
from .render_prometheus import render_prometheus
from .render_table import render_table

FORMATS = ("table", "json", "html", "prometheus")


def render_json(report: StatusReport) -> str:
    return json.dumps(report.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def render(report: StatusReport, fmt: str) -> str:
    """The report in one of FORMATS."""
    renderers = {"table": render_table, "json": render_json, "html": render_html,
                 "prometheus": render_prometheus}
    return renderers[fmt](report)


__all__ = ["FORMATS", "NEEDS_ATTENTION", "SCHEMA_VERSION", "Options", "StatusReport", "collect",
           "merge", "render", "render_html", "render_json", "render_prometheus", "render_table",
           "schema_text"]
