"""Job states from BPS: the run ids each submit file recorded, read through ctrl_bps itself.

Every submit file sets `makeIdLink: true` and an `idLinkPath` per (stage, site): after `bps
submit`, that folder on the submit host holds one link per run, named by the run id. The state
of the newest run is read with `lsst.ctrl.bps.report.retrieve_report(wms_service, run_id=...)`,
the call behind `bps report --id`. PanDA's plugin cannot list runs without an id, and its
`get_status` maps PanDA's SubFinished to FAILED where `report` says SUCCEEDED, so only `report`
is used. States are ctrl_bps's `WmsStates` names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..plan_model import Job
from .errors import SourceUnavailable, missing_client, reason_of
from .model import JobStatus, SourceStatus

DEFAULT_WMS_SERVICE = "lsst.ctrl.bps.panda.PanDAService"
Retrieve = Callable[..., tuple[list[Any], list[str]]]


def wms_service_class(option: str | None, env: Mapping[str, str]) -> str:
    """--wms-service, else BPS's own BPS_WMS_SERVICE_CLASS, else PanDA's service."""
    return option or env.get("BPS_WMS_SERVICE_CLASS") or DEFAULT_WMS_SERVICE


def expand_link_path(job: Job, env: Mapping[str, str]) -> str:
    """idLinkPath with ${HOME} (and any other variable) from `env`, as BPS expands it."""
    path = job.id_link_path
    for name, value in sorted(env.items(), key=lambda kv: -len(kv[0])):
        path = path.replace("${" + name + "}", value)
    return path


def recorded_runs(folder: Path) -> list[str]:
    """Run ids linked in `folder`, oldest link first (the last one is the current run)."""
    if not folder.is_dir():
        return []
    links = [p for p in folder.iterdir() if p.is_symlink() or p.is_dir()]
    return [p.name for p in sorted(links, key=lambda p: (p.lstat().st_mtime_ns, p.name))]


def _retrieve() -> Retrieve:
    try:
        from lsst.ctrl.bps.report import retrieve_report
    except ImportError as exc:
        raise missing_client("lsst-ctrl-bps", "lsst.ctrl.bps.report", exc) from None
    result: Retrieve = retrieve_report
    return result


def _state_of(job: Job, base: dict[str, Any], run_id: str, retrieve: Retrieve,
              service: str) -> JobStatus:
    reports, messages = retrieve(service, run_id=run_id)
    report = next((r for r in reports if str(r.wms_id) == run_id), reports[0] if reports else None)
    if report is None:
        why = "; ".join(messages) or "the WMS returned no report"
        raise SourceUnavailable(f"run {run_id}: {why}")
    state = report.state.name if report.state is not None else "UNKNOWN"
    counts = {s.name: int(n) for s, n in (report.job_state_counts or {}).items() if n}
    return JobStatus(**base, known=True, submitted=True, state=state,
                     job_counts=dict(sorted(counts.items())),
                     reason="; ".join(messages) or None)


def collect_jobs(jobs: Sequence[Job], service: str, env: Mapping[str, str]
                 ) -> tuple[list[JobStatus], list[SourceStatus]]:
    """Each job's current run and state; a site whose WMS could not be read is down."""
    down: dict[str, str] = {}
    try:
        retrieve: Retrieve | None = _retrieve()
    except SourceUnavailable as exc:
        retrieve, missing = None, str(exc)
    out: list[JobStatus] = []
    for job in jobs:
        folder = expand_link_path(job, env)
        runs = recorded_runs(Path(folder))
        base: dict[str, Any] = {"stage": job.stage, "stage_index": job.stage_index,
                                "site": job.site, "submitted_from": job.submitted_from,
                                "id_link_path": folder, "run_ids": runs}
        if not runs:
            out.append(JobStatus(**base, known=True, submitted=False,
                                 reason=f"no run id recorded in {folder} (not submitted yet, "
                                        f"or not from this host)"))
            continue
        if retrieve is None:
            down[job.submitted_from] = missing
            out.append(JobStatus(**base, known=False, submitted=True, reason=missing))
            continue
        try:
            out.append(_state_of(job, base, runs[-1], retrieve, service))
        except Exception as exc:  # noqa: BLE001 - any failure of the WMS is an unknown cell
            why = str(exc) if isinstance(exc, SourceUnavailable) else reason_of(exc)
            down[job.submitted_from] = why
            out.append(JobStatus(**base, known=False, submitted=True, reason=why))
    hosts = sorted({j.submitted_from for j in jobs})
    if retrieve is None:
        down = {h: missing for h in hosts}
    sources = [SourceStatus(source="bps", site=h, up=h not in down, reason=down.get(h))
               for h in hosts]
    return out, sources


__all__ = ["DEFAULT_WMS_SERVICE", "collect_jobs", "expand_link_path", "recorded_runs",
           "wms_service_class"]
