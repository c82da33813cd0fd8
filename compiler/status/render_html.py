"""`drpc status --format html`: one self-contained page (inline CSS, no script, no network).

Its own Jinja environment autoescapes every value (HTML is the page's language; the shared
environment of `render.common` writes scripts and YAML, where autoescaping would be wrong). The
page's Content-Security-Policy forbids loading anything, so it shows the same offline.
"""

from __future__ import annotations

from functools import lru_cache

import jinja2

from ..render.common import GENERATED, templates_dir
from .cells import (
    arrived_cell,
    comparison_cell,
    crosscheck_cell,
    lag_cell,
    ranges,
    rule_cell,
    sent_cell,
    stage_grid,
    step_cell,
    view,
    when,
)
from .model import StatusReport


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())),
                              undefined=jinja2.StrictUndefined, autoescape=True,
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render_html(report: StatusReport) -> str:
    sites, grid = stage_grid(report)
    return _environment().get_template("status/status.html.j2").render(
        header=f"drpc status of campaign '{report.campaign}', {GENERATED}: drpc "
               f"{report.drpc_version}",
        report=report, view=view(report), when=when(report), sites=sites, grid=grid,
        transfers=[(t, rule_cell(t), sent_cell(t), arrived_cell(t)) for t in report.transfers],
        lag=[(x, lag_cell(x)) for x in report.lag],
        crosscheck=(None if report.crosscheck is None else
                    (report.crosscheck, crosscheck_cell(report.crosscheck),
                     [(c, comparison_cell(c)) for c in report.crosscheck.comparisons])),
        steps=[(s, [(st, step_cell(st)) for st in s.steps]) for s in report.sites],
        ranges=ranges)


__all__ = ["render_html"]
