"""The rehearsal's last act: `drpc status` of the rehearsed campaign, as the sites would run it.

Each site's view is a real `drpc status --site ID --format json` with that site's stand-ins
(its Butler through `--butler-repo`, the loopback broker through `--kafka-brokers`, the Rucio
server through the client's config, the simulated runs through the rehearsal's WMS service),
then `--merge` of the views, as no one holds every site's credentials. A clean rehearsal must
end all green; an injected fault must show where the operators would see it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from compiler.plan import Plan
from compiler.status import StatusReport, merge, render

from .bps_runs import SERVICE

STATUS_TIMEOUT = 300  # seconds for one site's drpc status


@dataclass
class StatusOutcome:
    """The merged report, what is not green in it, and where its renderings are."""

    report: StatusReport | None
    not_green: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


def not_green(report: StatusReport) -> list[str]:
    """Everything in the report short of a finished campaign, one line each: the attention
    lines, then any job, rule, arrival, lag, repository, source or step that is not done."""
    out = list(report.attention)
    for j in report.jobs:
        if j.state != "SUCCEEDED":
            out.append(f"job {j.stage} at {j.site}: {j.state or 'unknown'}"
                       + (f" ({j.reason})" if j.reason else ""))
    for t in report.transfers:
        r, a = t.rule, t.arrival
        if r.state != "OK":
            out.append(f"transfer {t.id}: rule {r.state or 'unknown'}"
                       + (f" ({r.reason})" if r.reason else ""))
        elif a.ingested is None or a.ingested != r.files_sent:
            out.append(f"transfer {t.id}: {r.files_sent} sent, {a.ingested} counted at "
                       f"{t.destination}" + (f" ({a.reason})" if a.reason else ""))
    out += [f"ctrl_ingestd of {x.site} on {x.topic}: lag {x.lag}" + (
        f" ({x.reason})" if x.reason else "") for x in report.lag if x.lag != 0]
    out += [f"repository of {r.site}: not set up ({r.reason})" for r in report.repos
            if not r.ready]
    out += [f"source {s.source}{' of ' + s.site if s.site else ''} down: {s.reason}"
            for s in report.sources if not s.up]
    if report.crosscheck is not None and not report.crosscheck.ok:
        out.append(f"cross-check: {report.crosscheck.reason or 'not OK'}")
    out += [f"{s.site} step {st.number} {st.title}: {st.state}" for s in report.sites
            for st in s.steps if st.state in ("failed", "running", "blocked")]
    return list(dict.fromkeys(out))


def site_view(campaign: Path, plan: Plan, site: str, *, repo: Path, brokers: str,
              env: Mapping[str, str], out: Path, crosscheck: Path | None
              ) -> subprocess.CompletedProcess[str]:
    """One site's `drpc status --site` JSON, written to `out`."""
    argv = [sys.executable, "-m", "compiler", "status", str(campaign), "--site", site,
            "--format", "json", "-o", str(out), "--butler-repo", str(repo),
            "--wms-service", SERVICE, "--lag-interval", "0", "--timeout", "10"]
    if plan.site(site).ingestd is not None:
        argv += ["--kafka-brokers", brokers]
    if crosscheck is not None and site == plan.central_site and crosscheck.exists():
        argv += ["--crosscheck", str(crosscheck)]
    return subprocess.run(argv, env=dict(env), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=STATUS_TIMEOUT)


def final_status(campaign: Path, plan: Plan, folder: Path, *, repos: Mapping[str, Path],
                 brokers: str, env_of: Callable[[str], Mapping[str, str]],
                 crosscheck: Path | None) -> StatusOutcome:
    """Every site's view side by side, merged; the renderings written into `folder`."""
    t = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    outs = {s.id: folder / f"{s.id}.json" for s in plan.sites}
    with ThreadPoolExecutor(max_workers=len(outs)) as pool:
        runs = {site: pool.submit(site_view, campaign, plan, site, repo=repos[site],
                                  brokers=brokers, env=env_of(site), out=out,
                                  crosscheck=crosscheck)
                for site, out in outs.items()}
    failed = [f"drpc status --site {site} exited {run.result().returncode}: "
              + (run.result().stderr.strip().splitlines() or ["(no output)"])[-1]
              for site, run in runs.items() if run.result().returncode not in (0, 5)]
    if failed:
        return StatusOutcome(None, failed, seconds=time.monotonic() - t)
    views = [StatusReport.model_validate_json(out.read_text()) for out in outs.values()]
    report = merge(plan, views, [out.name for out in outs.values()])
    files = {}
    for fmt, name in (("json", "status.json"), ("html", "status.html"),
                      ("prometheus", "status.prom"), ("table", "status.txt")):
        files[fmt] = folder / name
        files[fmt].write_text(render(report, fmt), encoding="utf-8")
    return StatusOutcome(report, not_green(report), files, time.monotonic() - t)


__all__ = ["StatusOutcome", "final_status", "not_green", "site_view"]
