"""`drpc status`: the campaign's state from BPS, Rucio, the Butlers and Kafka, as a click command.

Exit status 0: all well; 5: something needs attention (a failed job, a STUCK rule, a move
whose counts differ, a lag that does not fall); the usual 1, 2 and 4 otherwise. An unknown
source is shown as unknown, with its reason, and changes no exit status.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .errors import UsageError
from .guard import guarded

if TYPE_CHECKING:
    from .status import StatusReport


def _write(out: Path, text: str) -> None:
    """Atomically (node_exporter's textfile collector must never read half a file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)


def _read_reports(paths: tuple[Path, ...], campaign: str, sha256: str) -> list[StatusReport]:
    import jsonschema

    from .status import StatusReport
    from .status.model import schema_dict

    reports = []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            jsonschema.validate(data, schema_dict())
        except (OSError, ValueError, jsonschema.ValidationError) as exc:
            first = str(exc).splitlines()[0]
            raise UsageError(f"--merge {path}: not a drpc status JSON report ({first})") from None
        report = StatusReport.model_validate(data)
        if report.campaign != campaign or report.spec_sha256 != sha256:
            raise UsageError(f"--merge {path}: a report of campaign {report.campaign} "
                             f"(spec sha256 {report.spec_sha256[:12]}), not of this campaign "
                             f"file ({campaign}, {sha256[:12]})")
        reports.append(report)
    return reports


@click.command("status")
@click.argument("campaign", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("reports", nargs=-1, type=click.Path(dir_okay=False, exists=True,
                                                     path_type=Path))
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the status to this file (atomically) instead of stdout.")
@click.option("--site", help="Only what this site's credentials can read: its submit host's "
                             "runs, its moves' rules, its Butler, its ctrl_ingestd group.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "html", "prometheus"]),
              default="table", show_default=True,
              help="table for people, json for scripts and --merge, html for a browser, "
                   "prometheus for node_exporter's textfile collector.")
@click.option("--merge", is_flag=True,
              help="Combine the JSON reports REPORTS (one per site, of this CAMPAIGN) instead "
                   "of reading the sources.")
@click.option("--wms-service", metavar="CLASS",
              help="BPS WMS service class [default: $BPS_WMS_SERVICE_CLASS, else "
                   "lsst.ctrl.bps.panda.PanDAService].")
@click.option("--lag-interval", type=click.FloatRange(0, 600), default=10.0, show_default=True,
              help="Seconds between the two samples of a consumer lag (0: one sample).")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=20.0, show_default=True,
              help="Seconds to wait for an answer of Rucio or of a Kafka broker (the sites' "
                   "brokers are asked at once).")
@click.option("--crosscheck", "crosscheck", metavar="FILE",
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The cross-check result that the central site's crosscheck.py --json wrote "
                   "(its runbook's cross-check step).")
@click.option("--butler-repo", metavar="REPO",
              help="With --site: the site's Butler repository as this host reaches it, instead "
                   "of the campaign's sites.<id>.butler.repo (as BUTLER_REPO does for its "
                   "scripts).")
@click.option("--kafka-brokers", metavar="HOST:PORT,...",
              help="With --site: the site's Kafka bootstrap servers as this host reaches them "
                   "(e.g. a port-forward), instead of sites.<id>.ingestd.kafka_brokers.")
@guarded
def status_command(campaign: Path, reports: tuple[Path, ...], out: Path | None,
                   site: str | None, fmt: str, merge: bool, wms_service: str | None,
                   lag_interval: float, timeout: float, crosscheck: Path | None,
                   butler_repo: str | None, kafka_brokers: str | None) -> None:
    """Show where CAMPAIGN is: jobs, transfers, arrivals, ingest lag, and what can start next.

    With --merge, REPORTS are `drpc status --site ID --format json` outputs of the sites.
    """
    from .pipeline import compile_campaign
    from .status import Options, collect, render
    from .status import merge as merge_reports
    from .status.bps import wms_service_class
    from .status.collect import reached_as
    from .status.crosscheck_result import read_result

    if reports and not merge:
        raise UsageError("report files are only read with --merge")
    if merge and not reports:
        raise UsageError("--merge needs the JSON reports to combine")
    if merge and site:
        raise UsageError("--merge combines every site's view: leave out --site")
    if merge and crosscheck:
        raise UsageError("--merge takes the cross-check from the central site's report: "
                         "leave out --crosscheck")
    if (butler_repo or kafka_brokers) and not site:
        raise UsageError("--butler-repo and --kafka-brokers name one site's services: give "
                         "--site too")
    brokers = [b.strip() for b in (kafka_brokers or "").split(",") if b.strip()]
    if kafka_brokers is not None and not brokers:
        raise UsageError("--kafka-brokers: give HOST:PORT, comma-separated")
    plan = compile_campaign(campaign, site=site, render=False).plan
    if site and (butler_repo or brokers):
        plan = reached_as(plan, site, butler_repo=butler_repo, kafka_brokers=brokers)
    result = read_result(plan, crosscheck) if crosscheck is not None else None
    if merge:
        loaded = _read_reports(reports, plan.campaign, plan.spec_sha256)
        report = merge_reports(plan, loaded, [p.name for p in reports])
    else:
        env = dict(os.environ)
        report = collect(plan, Options(site=site, wms_service=wms_service_class(wms_service, env),
                                       lag_interval=lag_interval, timeout=timeout,
                                       crosscheck=result), env)
    text = render(report, fmt)
    if out is None:
        click.echo(text, nl=False)
    else:
        _write(out, text)
        click.echo(f"{out}: status of {plan.campaign}"
                   + (f", {len(report.attention)} thing(s) need attention" if report.attention
                      else ", all well"), err=True)
    if report.attention:
        if out is not None or fmt != "table":
            for line in report.attention:
                click.echo(f"drpc: needs attention: {line}", err=True)
        raise click.exceptions.Exit(report.exit_code)


__all__ = ["status_command"]
