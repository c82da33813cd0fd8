"""`drpc rehearse`: the whole campaign, end to end, on this machine (extra `drpc[rehearsal]`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from compiler.guard import guarded

from .errors import MissingDependencyError


@click.command("rehearse")
@click.argument("campaign", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--work", type=click.Path(file_okay=False, path_type=Path),
              help="Work directory (kept); default: a temporary one, removed unless --keep.")
@click.option("--keep", is_flag=True, help="Keep the temporary work directory (repos, logs, tree).")
@click.option("--inject", type=click.Choice(["loss", "stuck"]),
              help="Inject a fault: lose one file in transit, or make one rule STUCK.")
@click.option("--sample", type=click.IntRange(min=1), metavar="N",
              help="Every site, stage and move on N tracts per site (those bordering another "
                   "site's first, and the cross-check tracts), for a large campaign.")
def rehearse_command(campaign: Path, work: Path | None, keep: bool, inject: str | None,
                     sample: int | None) -> None:
    """Run CAMPAIGN's compiled scripts in the runbook's order against local stand-ins of every site.

    Exit 0 only when every verify passed and every count matches the plan.
    """
    guarded(_rehearse)(campaign=campaign, work=work, keep=keep, inject=inject, sample=sample)


def _rehearse(campaign: Path, work: Path | None, keep: bool, inject: str | None,
              sample: int | None) -> None:
    try:
        import confluent_kafka  # noqa: F401
        import lsst.daf.butler  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(f"drpc rehearse needs the rehearsal extra ({exc.name} is "
                                     "missing)", "pip install 'drpc[rehearsal]'") from None
    from .orchestrate import rehearse

    def progress(line: str) -> None:
        click.echo(line, err=True)

    report = rehearse(campaign, work, keep=keep, inject=inject, progress=progress, sample=sample)
    click.echo(report.text(), nl=False)
    if not report.ok or report.failure:
        sys.exit(1)
