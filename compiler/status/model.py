"""The status model: one schema-versioned description of where a campaign is.

Every renderer (table, JSON, HTML, Prometheus) reads this one model, and `--merge` combines
several of them (each site can only see its own Butler). A value that could not be read is
`None` with a `reason`, never a guess: an unknown is shown as `unknown` with why.
The JSON Schema of this model is committed as `schema/status.schema.json`.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ExitCode

SCHEMA_VERSION: Literal[1] = 1
NEEDS_ATTENTION = int(ExitCode.NEEDS_ATTENTION)  # `drpc status` when something needs attention

Source = Literal["bps", "rucio", "butler", "kafka"]
SOURCES: tuple[Source, ...] = ("bps", "rucio", "butler", "kafka")
# ctrl_bps's WmsStates names (lsst.ctrl.bps.WmsStates), the vocabulary of every job state.
WmsState = Literal["UNKNOWN", "MISFIT", "UNREADY", "READY", "PENDING", "RUNNING", "DELETED",
                   "HELD", "SUCCEEDED", "FAILED", "PRUNED"]
RuleState = Literal["OK", "REPLICATING", "STUCK", "SUSPENDED", "WAITING_APPROVAL", "INJECT"]
StepState = Literal["done", "running", "ready", "blocked", "failed"]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceStatus(Frozen):
    """Whether one source answered for one site (None: the campaign-wide view)."""

    source: Source
    site: str | None
    up: bool
    reason: str | None = Field(None, description="Why it is down (client missing, no answer).")


class JobStatus(Frozen):
    """One BPS workflow (a stage at a site), from the run ids its submit file recorded."""

    stage: str
    stage_index: int
    site: str
    submitted_from: str
    id_link_path: str = Field(description="The idLinkPath folder, ${HOME} expanded.")
    known: bool = Field(description="False: the state could not be read (see reason).")
    submitted: bool | None = Field(None, description="A run id is recorded (None: unknown).")
    run_ids: list[str] = Field(default_factory=list, description="Every recorded run, oldest "
                               "first; the last one is the current run.")
    state: WmsState | None = Field(None, description="WmsStates name of the current run.")
    job_counts: dict[str, int] = Field(default_factory=dict,
                                       description="PanDA jobs of the current run by state.")
    reason: str | None = None


class LockCounts(Frozen):
    ok: int
    replicating: int
    stuck: int


class RuleStatus(Frozen):
    """The move's replication rule and its files, as Rucio reports them."""

    known: bool
    rule_id: str | None = None
    state: RuleState | None = None
    locks: LockCounts | None = None
    files_sent: int | None = Field(None, description="Files under the move's Rucio DID.")
    error: str | None = Field(None, description="The rule's error, e.g. of a STUCK rule.")
    reason: str | None = None


class ArrivalStatus(Frozen):
    """What the destination's Butler holds of a move (only Butler counts prove arrival)."""

    known: bool
    collection: str
    ingested: int | None = Field(None, description="Files sent found as datasets of the type "
                                 "in the collection (find_first=False).")
    counted_by: Literal["files", "type"] | None = Field(None, description=(
        "files: each file Rucio says was sent, found by its path (as verify does); type: every "
        "dataset of the type in the collection (Rucio's file list was not available)."))
    reason: str | None = None


class TransferStatus(Frozen):
    id: str
    kind: str
    stage: str | None
    dataset_type: str
    source: str
    destination: str
    rucio_did: str
    may_be_empty: bool = False
    rule: RuleStatus
    arrival: ArrivalStatus


class LagStatus(Frozen):
    """Consumer lag of a site's ctrl_ingestd group on one topic (committed vs high marks)."""

    site: str
    group_id: str
    topic: str
    known: bool
    lag: int | None = None
    lag_before: int | None = Field(None, description="The first of two samples.")
    falling: bool | None = Field(None, description="The lag fell between the two samples "
                                 "(None: one sample, or no lag).")
    reason: str | None = None


class RepoStatus(Frozen):
    """Whether a site's Butler repository is set up (it opens and has its incoming chains)."""

    site: str
    known: bool
    ready: bool | None = None
    reason: str | None = None


class StepStatus(Frozen):
    """A step of a site's runbook, numbered as the runbook numbers it."""

    number: int
    key: str
    kind: str
    title: str
    state: StepState
    observed: bool = Field(description="Seen in a source; otherwise inferred (a later step "
                           "that needs it started, or its dependencies).")
    blocked_by: list[str] = Field(default_factory=list,
                                  description="'<site> step <N>' of each unmet dependency.")


class SiteSteps(Frozen):
    site: str
    next: list[int] = Field(description="Steps that can start now (all dependencies met).")
    blocked: list[int]
    steps: list[StepStatus]


class ComparisonStatus(Frozen):
    """One (tract, dataset type) of the cross-check comparison."""

    tract: int
    dataset_type: str
    status: Literal["OK", "DIFFERS", "EMPTY", "ERROR"]
    problems: list[str] = Field(default_factory=list,
                                description="What is outside the tolerances, or the error.")


class CrosscheckStatus(Frozen):
    """The central site's comparison of the cross-check tracts (`crosscheck.py --json`)."""

    known: bool
    central: str
    file: str | None = Field(None, description="The result file read (--crosscheck).")
    ok: bool | None = Field(None, description="Every comparison within the tolerances.")
    counts: dict[str, int] = Field(default_factory=dict,
                                   description="Comparisons by outcome (ok, differs, empty, "
                                   "error).")
    comparisons: list[ComparisonStatus] = Field(default_factory=list)
    reason: str | None = None


class StatusReport(Frozen):
    """`drpc status`: the whole campaign as the sources could see it."""

    schema_version: Literal[1] = SCHEMA_VERSION
    campaign: str
    spec_sha256: str
    drpc_version: str
    generated_at: float = Field(description="Unix time of this status run.")
    site: str | None = Field(description="--site: the only site whose view this is.")
    merged_from: list[str] = Field(default_factory=list)
    sources: list[SourceStatus]
    jobs: list[JobStatus]
    transfers: list[TransferStatus]
    lag: list[LagStatus]
    repos: list[RepoStatus]
    crosscheck: CrosscheckStatus | None = Field(None, description=(
        "The cross-check comparison's result (None: the campaign has no cross-check tract)."))
    sites: list[SiteSteps] = Field(description="Each site's runbook steps (with --site: that "
                                   "site's only).")
    attention: list[str] = Field(description="Why the status exits 5; empty: all well.")

    @property
    def exit_code(self) -> int:
        return NEEDS_ATTENTION if self.attention else 0


STATUS_SCHEMA_FILE = "status.schema.json"


def schema_dict() -> dict[str, object]:
    from ..schema import DIALECT, SCHEMA_BASE
    return {"$schema": DIALECT, "$id": SCHEMA_BASE + STATUS_SCHEMA_FILE,
            **StatusReport.model_json_schema(mode="serialization")}


def schema_text() -> str:
    """The JSON Schema of the status model, as committed in schema/status.schema.json."""
    return json.dumps(schema_dict(), indent=2, sort_keys=True) + "\n"


__all__ = ["NEEDS_ATTENTION", "SCHEMA_VERSION", "SOURCES", "STATUS_SCHEMA_FILE",
           "ArrivalStatus", "ComparisonStatus", "CrosscheckStatus", "JobStatus", "LagStatus",
           "LockCounts", "RepoStatus", "RuleState", "RuleStatus", "SiteSteps", "Source",
           "SourceStatus", "StatusReport", "StepState", "StepStatus", "TransferStatus", "WmsState",
           "schema_dict", "schema_text"]

