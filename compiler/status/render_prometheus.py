"""`drpc status --format prometheus`: node_exporter's textfile-collector format of the model.

The metric names are a contract with the alert rules written against them. A value that is
unknown is left out (no series) and its source says so with `drpc_status_source_up 0`, so an
alert never fires on a guess.
"""

from __future__ import annotations

from collections.abc import Iterable

from .model import SOURCES, StatusReport

METRICS: dict[str, tuple[str, str]] = {
    "drpc_status_timestamp_seconds": ("gauge", "Unix time of this drpc status run."),
    "drpc_status_source_up": ("gauge", "1 if the source (bps, rucio, butler, kafka) answered "
                              "for the site, 0 if its values are unknown."),
    "drpc_job_state": ("gauge", "1 for the current WmsStates name of the job's run."),
    "drpc_rule_ok": ("gauge", "1 if the move's Rucio rule is OK, else 0."),
    "drpc_rule_stuck": ("gauge", "1 if the move's Rucio rule is STUCK, else 0."),
    "drpc_rule_locks": ("gauge", "Locks of the move's Rucio rule by state."),
    "drpc_transfer_files_sent": ("gauge", "Files under the move's Rucio DID (sent)."),
    "drpc_transfer_files_ingested": ("gauge", "Datasets of the move in the destination's "
                                     "Butler."),
    "drpc_ingestd_consumer_lag": ("gauge", "Messages the site's ctrl_ingestd group is behind "
                                  "on the topic."),
    "drpc_crosscheck_ok": ("gauge", "1 if every cross-check comparison at the central site is "
                           "within the tolerances, else 0."),
    "drpc_crosscheck_comparisons": ("gauge", "Cross-check comparisons by outcome."),
}


def label_value(value: str) -> str:
    """A label value in the exposition format: backslash, double quote and line feed escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _series(name: str, labels: Iterable[tuple[str, str | None]], value: float | int) -> str:
    shown = ",".join(f'{k}="{label_value(v)}"' for k, v in labels if v is not None)
    number = repr(float(value)) if isinstance(value, float) else str(int(value))
    return f"{name}{{{shown}}} {number}"


def render_prometheus(report: StatusReport) -> str:
    c = report.campaign
    lines: dict[str, list[str]] = {name: [] for name in METRICS}
    lines["drpc_status_timestamp_seconds"].append(_series(
        "drpc_status_timestamp_seconds", [("campaign", c), ("site", report.site)],
        round(report.generated_at, 3)))
    for src in sorted(report.sources, key=lambda s: (SOURCES.index(s.source), s.site or "")):
        lines["drpc_status_source_up"].append(_series(
            "drpc_status_source_up", [("campaign", c), ("site", src.site),
                                      ("source", src.source)], int(src.up)))
    for j in report.jobs:
        if j.known and j.state is not None:
            lines["drpc_job_state"].append(_series(
                "drpc_job_state", [("campaign", c), ("site", j.site), ("stage", j.stage),
                                   ("state", j.state.lower())], 1))
    for t in report.transfers:
        r = t.rule
        move = [("campaign", c), ("transfer", t.id)]
        ends = [("source", t.source), ("destination", t.destination)]
        if r.known and r.state is not None:
            lines["drpc_rule_ok"].append(_series("drpc_rule_ok", [*move, *ends],
                                                 int(r.state == "OK")))
            lines["drpc_rule_stuck"].append(_series("drpc_rule_stuck", [*move, *ends],
                                                    int(r.state == "STUCK")))
        if r.known and r.locks is not None:
            for state, count in (("ok", r.locks.ok), ("replicating", r.locks.replicating),
                                 ("stuck", r.locks.stuck)):
                lines["drpc_rule_locks"].append(_series(
                    "drpc_rule_locks", [*move, ("state", state)], count))
        if r.known and r.files_sent is not None:
            lines["drpc_transfer_files_sent"].append(_series(
                "drpc_transfer_files_sent", [*move, ("destination", t.destination)],
                r.files_sent))
        if t.arrival.known and t.arrival.ingested is not None:
            lines["drpc_transfer_files_ingested"].append(_series(
                "drpc_transfer_files_ingested", [*move, ("destination", t.destination)],
                t.arrival.ingested))
    for x in report.lag:
        if x.known and x.lag is not None:
            lines["drpc_ingestd_consumer_lag"].append(_series(
                "drpc_ingestd_consumer_lag", [("campaign", c), ("site", x.site),
                                              ("topic", x.topic)], x.lag))
    xc = report.crosscheck
    if xc is not None and xc.known:
        lines["drpc_crosscheck_ok"].append(_series(
            "drpc_crosscheck_ok", [("campaign", c), ("site", xc.central)], int(bool(xc.ok))))
        for outcome, count in sorted(xc.counts.items()):
            lines["drpc_crosscheck_comparisons"].append(_series(
                "drpc_crosscheck_comparisons", [("campaign", c), ("site", xc.central),
                                                ("outcome", outcome)], count))
    out: list[str] = []
    for name, (kind, help_text) in METRICS.items():
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *lines[name]]
    return "\n".join(out) + "\n"


__all__ = ["METRICS", "label_value", "render_prometheus"]
