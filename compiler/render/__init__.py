"""Renderers: pure functions from the plan to {relative path: bytes}.

Each artifact family has its own module; `render_all` merges them and refuses two families
writing the same path.
"""

from __future__ import annotations

from collections.abc import Callable

from ..plan import Plan
from . import (
    bps,
    butler,
    crosscheck,
    docs,
    ingestd,
    inputs,
    monitoring,
    rucio,
    rucio_admin,
    runbook,
    selection,
    verify,
)

Renderer = Callable[[Plan, "str | None"], dict[str, bytes]]

RENDERERS: tuple[tuple[str, Renderer], ...] = (
    ("bps", bps.render),
    ("butler", butler.render),
    ("crosscheck", crosscheck.render),
    ("docs", docs.render),
    ("ingestd", ingestd.render),
    ("inputs", inputs.render),
    ("monitoring", monitoring.render),
    ("rucio", rucio.render),
    ("rucio_admin", rucio_admin.render),
    ("runbook", runbook.render),
    ("selection", selection.render),
    ("verify", verify.render),
)


def render_all(plan: Plan, site: str | None = None) -> dict[str, bytes]:
    """Every generated file (only `sites/<site>/...` when a site is given), sorted by path."""
    files: dict[str, bytes] = {}
    for family, renderer in RENDERERS:
        for path, content in renderer(plan, site).items():
            if path in files:
                raise RuntimeError(f"renderer '{family}' writes {path}, which another renderer "
                                   "wrote")
            if site is not None and not path.startswith(f"sites/{site}/"):
                continue
            files[path] = content
    return dict(sorted(files.items()))
