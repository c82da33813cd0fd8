"""The words and the colour of every cell, shared by the table and the HTML page.

A cell is its text and one of a few tones (ok, running, failed, waiting, unknown, none), so the
two renderings say the same thing; an unknown cell carries its reason as a note.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

from .model import (
    ComparisonStatus,
    CrosscheckStatus,
    JobStatus,
    LagStatus,
    StatusReport,
    StepStatus,
    TransferStatus,
)

Tone = Literal["ok", "running", "failed", "waiting", "unknown", "none"]


@dataclass(frozen=True)
class Cell:
    text: str
    tone: Tone
    note: str | None = None  # why it is unknown, or more detail


NONE = Cell("-", "none")
_JOB_TONES: dict[str, Tone] = {"SUCCEEDED": "ok", "FAILED": "failed", "PRUNED": "failed",
                               "HELD": "failed", "DELETED": "failed", "UNKNOWN": "unknown"}
_RULE_TONES: dict[str, Tone] = {"OK": "ok", "STUCK": "failed", "SUSPENDED": "failed"}
_STEP_TONES: dict[str, Tone] = {"done": "ok", "running": "running", "ready": "waiting",
                                "blocked": "none", "failed": "failed"}


def when(report: StatusReport) -> str:
    stamp = datetime.datetime.fromtimestamp(report.generated_at, datetime.UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC")


def view(report: StatusReport) -> str:
    if report.merged_from:
        return "merged from " + ", ".join(report.merged_from)
    return f"the view of {report.site}" if report.site else "every site"


def job_cell(job: JobStatus | None) -> Cell:
    if job is None:
        return NONE
    if not job.known:
        return Cell("unknown", "unknown", job.reason)
    if not job.submitted:
        return Cell("not submitted", "waiting", job.reason)
    state = job.state or "UNKNOWN"
    counts = ", ".join(f"{n} {s.lower()}" for s, n in job.job_counts.items())
    return Cell(state + (f" ({counts})" if counts else ""), _JOB_TONES.get(state, "running"),
                job.reason)


def stage_grid(report: StatusReport) -> tuple[list[str], list[tuple[str, list[Cell]]]]:
    """(sites, [(\"N stage\", one cell per site)]): the stage x site grid."""
    sites = list(dict.fromkeys([*(j.site for j in report.jobs), *(s.site for s in report.sites)]))
    stages: dict[tuple[int, str], dict[str, JobStatus]] = {}
    for j in report.jobs:
        stages.setdefault((j.stage_index, j.stage), {})[j.site] = j
    rows = [(f"{index} {name}", [job_cell(by_site.get(s)) for s in sites])
            for (index, name), by_site in sorted(stages.items())]
    return sites, rows


def rule_cell(t: TransferStatus) -> Cell:
    r = t.rule
    if not r.known:
        return Cell("unknown", "unknown", r.reason)
    if r.state is None:
        return Cell("no rule", "waiting", r.reason)
    note = r.error or r.reason
    if r.locks is not None:
        locks = f"{r.locks.ok}/{r.locks.replicating}/{r.locks.stuck}"
        return Cell(f"{r.state} {locks}", _RULE_TONES.get(r.state, "running"), note)
    return Cell(r.state, _RULE_TONES.get(r.state, "running"), note)


def sent_cell(t: TransferStatus) -> Cell:
    if not t.rule.known or t.rule.files_sent is None:
        return Cell("unknown", "unknown", t.rule.reason)
    return Cell(str(t.rule.files_sent), "none")


def arrived_cell(t: TransferStatus) -> Cell:
    a = t.arrival
    if not a.known or a.ingested is None:
        return Cell("unknown", "unknown", a.reason)
    sent = t.rule.files_sent if t.rule.known else None
    if sent is not None and sent > 0:
        tone: Tone = "ok" if a.ingested == sent else ("failed" if a.ingested else "waiting")
        if a.ingested and a.ingested != sent and t.rule.state != "OK":
            tone = "running"
        return Cell(str(a.ingested), tone, a.reason)
    return Cell(str(a.ingested), "none", a.reason)


def lag_cell(x: LagStatus) -> Cell:
    if not x.known or x.lag is None:
        return Cell("unknown", "unknown", x.reason)
    if x.lag == 0:
        return Cell("0", "ok", x.reason)
    if x.lag_before is None:
        return Cell(str(x.lag), "running", x.reason)
    trend = "falling" if x.falling else "not falling"
    return Cell(f"{x.lag} ({trend}, was {x.lag_before})", "running" if x.falling else "failed")


_COMPARISON_TONES: dict[str, Tone] = {"OK": "ok", "DIFFERS": "failed", "EMPTY": "failed",
                                      "ERROR": "failed"}


def crosscheck_cell(result: CrosscheckStatus) -> Cell:
    """The whole comparison in one cell: OK, or how many are outside the tolerances."""
    if not result.known:
        return Cell("unknown", "unknown", result.reason)
    total = len(result.comparisons)
    if result.ok:
        return Cell(f"OK ({total} comparison(s) within the tolerances)", "ok", result.file)
    bad = total - result.counts.get("ok", 0)
    return Cell(f"{bad} of {total} comparison(s) not OK", "failed", result.file)


def comparison_cell(item: ComparisonStatus) -> Cell:
    return Cell(item.status, _COMPARISON_TONES[item.status],
                "; ".join(item.problems) or None)


def step_cell(step: StepStatus) -> Cell:
    note = ("waits for " + ", ".join(step.blocked_by)) if step.blocked_by else None
    how = "" if step.observed or step.state in ("ready", "blocked") else " (inferred)"
    return Cell(f"{step.state}{how}", _STEP_TONES[step.state], note)


def ranges(numbers: list[int]) -> str:
    """[4, 5, 6, 9] -> "4-6, 9"."""
    out: list[str] = []
    for n in numbers:
        if out and out[-1].split("-")[-1] == str(n - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ", ".join(out)


__all__ = ["Cell", "Tone", "arrived_cell", "comparison_cell", "crosscheck_cell", "job_cell",
           "lag_cell", "ranges", "rule_cell", "sent_cell", "stage_grid", "step_cell", "view",
           "when"]
