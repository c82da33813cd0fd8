"""The rehearsal's report: a row per step, what was real and what simulated, the final count."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What is real and what is simulated: the README lists the same, from this table.
REAL_AND_SIMULATED: tuple[tuple[str, str], ...] = (
    ("real", "the compiled tree, compiled from the campaign file"),
    ("real", "one Butler repository per site (daf_butler, SQLite), made by the generated "
             "setup-repo.sh"),
    ("real", "a Rucio server (PyPI rucio) on a PostgreSQL database, one RSE per site RSE "
             "(file protocol)"),
    ("real", "apply-rules.sh, register, wait and verify scripts, exactly as generated"),
    ("real", "rucio-register data-products (lsst-rucio-register) with its Butler metadata"),
    ("real", "butler/selection.py: whole visits and each move's selection as TAGGED collections, "
             "run by visits.sh and the register scripts against the sites' Butlers"),
    ("real", "Rucio's judge-evaluator and conveyor daemons (submitter, poller, finisher): rules go "
             "REPLICATING -> OK and Rucio writes its transfer-done messages"),
    ("real", "a Kafka-protocol broker (librdkafka's mock cluster) carrying transfer-done events"),
    ("simulated", "the bytes of a transfer: copied by the rehearsal (Rucio's mock transfer tool "
                  "copies none)"),
    ("simulated", "Hermes: Rucio's messages table turned into ctrl_ingestd's events by the "
                  "rehearsal"),
    ("simulated", "PanDA jobs: each `bps submit` puts small datasets of the spec's types into the "
                  "job's RUN"),
    ("simulated", "setup-repo.sh's stack-only steps (instrument, calibrations, skymap) and "
                  "define-visits: the equivalent dimension records are inserted"),
    ("simulated", "raw transfers: the central site selects each site's whole visits for real, "
                  "their raws are ingested at the site directly (raw rules carry no files)"),
    ("simulated", "`kubectl apply -k ingestd`: an ingest consumer reads the generated ctrl_ingestd "
                  "config (brokers and RSE prefixes pointed at the stand-ins)"),
)


@dataclass
class StepResult:
    site: str
    key: str
    script: str
    status: str  # ok | FAILED | replaced | simulated
    seconds: float
    exit_code: int | None = None
    expected: int | None = None
    source: int | None = None
    destination: int | None = None
    note: str = ""


@dataclass
class Report:
    campaign: str
    work: Path
    steps: list[StepResult] = field(default_factory=list)
    ingest: str = ""
    failure: str | None = None
    sent: int = 0
    arrived: int = 0
    seconds: float = 0.0
    sample: str | None = None  # --sample: what was sampled
    status: list[str] | None = None  # what drpc status at the end shows short of done
    status_files: dict[str, str] = field(default_factory=dict)  # format -> file

    @property
    def lost(self) -> int:
        return self.sent - self.arrived

    @property
    def ok(self) -> bool:
        return self.failure is None and all(
            s.expected is None
            or (s.source in (None, s.expected) and s.destination in (None, s.expected))
            for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign, "ok": self.ok and not self.failure, "failure": self.failure,
            "sent": self.sent, "arrived": self.arrived, "lost": self.lost, "ingest": self.ingest,
            "seconds": round(self.seconds, 1), "sample": self.sample,
            "steps": [{"site": s.site, "key": s.key, "script": s.script, "status": s.status,
                       "exit_code": s.exit_code, "seconds": round(s.seconds, 2),
                       "expected": s.expected, "sent": s.source, "arrived": s.destination,
                       "note": s.note} for s in self.steps],
            "real_and_simulated": [list(x) for x in REAL_AND_SIMULATED],
            "status": {"green": self.status == [], "not_green": self.status,
                       "files": self.status_files},
        }

    def table(self) -> str:
        head = (f"{'site':<11} {'step':<62} {'status':<9} {'exit':>4} {'sec':>6} {'plan':>5} "
                f"{'sent':>5} {'arrived':>7}")
        lines = [head, "-" * len(head)]
        for s in self.steps:
            lines.append(f"{s.site:<11} {_short(s.script or s.key, 62):<62} {s.status:<9} "
                         f"{'' if s.exit_code is None else s.exit_code:>4} {s.seconds:>6.1f} "
                         f"{_num(s.expected):>5} {_num(s.source):>5} {_num(s.destination):>7}"
                         + (f"  {s.note}" if s.note else ""))
        return "\n".join(lines)

    def text(self) -> str:
        parts = [self.table(), "", "What ran for real and what was simulated:"]
        parts += [f"  {kind:<9} {what}" for kind, what in REAL_AND_SIMULATED]
        parts.append(f"  ingest    at the destinations: {self.ingest}")
        if self.sample:
            parts.append(f"  sample    {self.sample}")
        if self.status is not None:
            where = self.status_files.get("table", "")
            parts += ["", f"drpc status of every site, merged ({where}): "
                      + ("all green" if not self.status else "needs attention")]
            parts += [f"  - {line}" for line in self.status[:20]]
        if self.failure:
            parts += ["", f"REHEARSAL FAILED: {self.failure}"]
        parts += ["",
                  f"rehearsal of {self.campaign}: {len(self.steps)} steps in {self.seconds:.0f} s",
                  f"{self.sent} datasets sent, {self.arrived} arrived, {self.lost} lost"]
        return "\n".join(parts) + "\n"


def _num(n: int | None) -> str:
    return "" if n is None else str(n)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3):]
