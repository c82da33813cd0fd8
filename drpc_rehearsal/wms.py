"""The rehearsal's stand-in for PanDA: the WMS service `drpc status` reads its simulated runs from.

`RehearsalWmsService` is a real ctrl_bps `BaseWmsService`, loaded by name by ctrl_bps's own
`retrieve_report` (as it loads PanDA's), so the status reads the rehearsal's jobs (recorded by
:class:`.bps_runs.RunRecorder`) through the same code path as a campaign's. Imported only by
the `drpc status` the rehearsal runs (it needs lsst-ctrl-bps).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .bps_runs import RUNS_ENV


def _service_class() -> type:
    """The class, built on first use: importing this module imports no LSST package (the
    rehearsal package has no import side effects), ctrl_bps's `doImport` reaches the class
    through the module's `__getattr__`."""
    from lsst.ctrl.bps import BaseWmsService, WmsRunReport, WmsStates

    class RehearsalWmsService(BaseWmsService):  # type: ignore[misc]
        """Reports the runs of the file named by $DRPC_REHEARSAL_WMS_RUNS (by id only: like
        PanDA's plugin, it cannot list runs without an id)."""

        def report(self, wms_workflow_id: str | None = None, user: str | None = None,
                   hist: float = 0, pass_thru: str | None = None, is_global: bool = False,
                   return_exit_codes: bool = False) -> tuple[list[Any], str]:
            if wms_workflow_id is None:
                return [], "the rehearsal's WMS lists runs by id only"
            runs = json.loads(Path(os.environ[RUNS_ENV]).read_text())
            run = runs.get(wms_workflow_id)
            if run is None:
                return [], f"no rehearsal run {wms_workflow_id}"
            counts = {WmsStates[k]: v for k, v in run["jobs"].items()}
            return [WmsRunReport(wms_id=wms_workflow_id, state=WmsStates[run["state"]],
                                 job_state_counts=counts,
                                 total_number_jobs=sum(counts.values()))], ""

    RehearsalWmsService.__module__ = __name__
    RehearsalWmsService.__qualname__ = "RehearsalWmsService"
    return RehearsalWmsService


def __getattr__(name: str) -> Any:
    if name == "RehearsalWmsService":
        cls = _service_class()
        globals()[name] = cls
        return cls
    raise AttributeError(name)


