"""The rehearsal's simulated jobs recorded as BPS records a submission.

No PanDA here: each simulated job is recorded as `bps submit` leaves a run behind, a link named
by the run id in the submit file's idLinkPath (under the rehearsal's own $HOME), and its state
in a JSON file that :class:`.wms.RehearsalWmsService` reports to `drpc status`.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from compiler.plan_model import Job
from compiler.status.bps import expand_link_path

#: The environment variable naming the runs file the rehearsal's WMS service reads.
RUNS_ENV = "DRPC_REHEARSAL_WMS_RUNS"
#: The WMS service class `drpc status --wms-service` loads.
SERVICE = "drpc_rehearsal.wms.RehearsalWmsService"


class RunRecorder:
    """Records the rehearsal's simulated runs: an idLinkPath link and a state per run."""

    def __init__(self, home: Path, runs_file: Path) -> None:
        self.home = home
        self.runs_file = runs_file
        self._lock = threading.Lock()
        self._runs: dict[str, dict[str, Any]] = {}
        self._next = 1

    def record(self, job: Job, submit_dir: Path, state: str, jobs: int) -> str:
        """A run of `job` in `state` with `jobs` PanDA jobs; returns its run id."""
        with self._lock:
            run_id = f"rehearsal-{self._next:04d}"
            self._next += 1
            folder = Path(expand_link_path(job, {"HOME": str(self.home)}))
            folder.mkdir(parents=True, exist_ok=True)
            submit_dir.mkdir(parents=True, exist_ok=True)
            (folder / run_id).symlink_to(submit_dir)
            self._runs[run_id] = {"state": state, "jobs": {state: jobs}, "stage": job.stage,
                                  "site": job.site}
            tmp = self.runs_file.with_name(self.runs_file.name + ".tmp")
            tmp.write_text(json.dumps(self._runs, indent=1, sort_keys=True))
            os.replace(tmp, self.runs_file)
            return run_id


__all__ = ["RUNS_ENV", "SERVICE", "RunRecorder"]
