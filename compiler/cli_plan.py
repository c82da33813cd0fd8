"""`drpc plan` (table, json, markdown, --balance) and `drpc plot`, as click commands.

The `drpc` group imports this module only when one of them runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .errors import UsageError
from .guard import guarded


def _emit_warnings(compiled: Any) -> None:
    from .errors import format_diagnostics
    if compiled.warnings:
        click.echo(format_diagnostics(list(compiled.warnings), "text"), err=True)


@click.command("plan")
@click.argument("campaign", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table",
              show_default=True, help="table for people, json for scripts, markdown = plan.md.")
@click.option("--balance", is_flag=True,
              help="Propose ring boundaries (same rings, same site order) that make the sites "
                   "finish together, as YAML to paste under sky.assignment (JSON with --format "
                   "json; not with --format markdown).")
@click.option("--by", "balance_by", type=click.Choice(["days", "share"]), default=None,
              help="With --balance: make the sites finish together (days, the default) or give "
                   "each site the fraction of tracts nearest its share.")
@click.option("--keep-boundary", "keep", type=float, multiple=True, metavar="DEC",
              help="With --balance: keep the ring boundary at this declination where it is "
                   "(repeatable), e.g. when the tracts on one side already sit at a site.")
@guarded
def plan_command(campaign: Path, fmt: str, balance: bool, balance_by: str | None,
                 keep: tuple[float, ...]) -> None:
    """Print the plan: per-site tracts, visits, core-hours, storage, days; bottleneck; warnings."""
    if (balance_by or keep) and not balance:
        raise UsageError("--by and --keep-boundary say how to balance: use them with --balance")
    if balance and fmt == "markdown":
        raise UsageError("drpc plan --balance prints YAML to paste under sky.assignment (or JSON "
                         "with --format json); --format markdown is for the plan itself")
    from .pipeline import compile_campaign
    from .render.docs import plan_markdown
    from .report import plan_json, plan_table
    compiled = compile_campaign(campaign, render=False)
    _emit_warnings(compiled)
    plan = compiled.plan
    if balance:
        from .balance import balance_json, balance_rings, balance_yaml
        result = balance_rings(plan, by=balance_by or "days", keep=keep)
        if fmt == "json":
            click.echo(json.dumps(balance_json(result), indent=2, sort_keys=True))
        else:
            click.echo(balance_yaml(result), nl=False)
        return
    if fmt == "json":
        click.echo(json.dumps(plan_json(plan), indent=2, sort_keys=True))
    elif fmt == "markdown":
        click.echo(plan_markdown(plan), nl=False)
    else:
        click.echo(plan_table(plan), nl=False)


@click.command("plot")
@click.argument("campaign", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Image to write (.png, .svg or .pdf).")
@click.option("--projection", type=click.Choice(["auto", "mollweide", "radec"]), default="auto",
              show_default=True,
              help="Whole sky (mollweide), plain RA/Dec around the campaign's tracts (radec), or "
                   "auto: mollweide only when the tracts span more than 90 degrees.")
@click.option("--dpi", type=click.IntRange(50, 600), default=150, show_default=True)
@guarded
def plot_command(campaign: Path, out: Path, projection: str, dpi: int) -> None:
    """Draw the sky with every tract coloured by the site that owns it, and the ring boundaries."""
    from .pipeline import compile_campaign
    from .plot import plot_sky
    compiled = compile_campaign(campaign, render=False)
    _emit_warnings(compiled)
    if out.suffix.lower() not in {".png", ".svg", ".pdf"}:
        raise UsageError(f"-o {out}: the image must end in .png, .svg or .pdf")
    plot_sky(compiled.plan, out, projection=projection, dpi=dpi)
    click.echo(f"{out}: {len(compiled.plan.ownership.owner):,} tracts at "
               f"{len(compiled.plan.sites)} site(s)", err=True)


__all__ = ["plan_command", "plot_command"]
