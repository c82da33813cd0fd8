"""`drpc rehearse`: run a compiled campaign's own scripts, in its runbook's order, on one machine.

Every site gets a real Butler repository (SQLite), every move goes through a real Rucio server
(on PostgreSQL) with Rucio's own conveyor (mock transfer tool, bytes copied by us), Hermes'
events go through a Kafka-protocol broker to an ingest consumer at the destination. The scripts
are pointed at these stand-ins only through the environment variables they already honour;
what cannot run here (LSST stack steps, PanDA, Kubernetes) is replaced, and the report says so.

The steps run as soon as what they need passed (:func:`step_needs`: the schedule's dependencies
and each site's order), those that do not need each other side by side (:mod:`.runner`): the
sites work independently, as they do for real. The report and the progress lines still follow
the runbook's order, and a failure stops the run where a run one step at a time would stop.
Each step kind has its handler (:meth:`Rehearsal._do`); the transfers between register and
wait are :mod:`.transfers`'.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from compiler import paths
from compiler.emit import write_tree
from compiler.naming import ingestd_topic, manifest_name
from compiler.pipeline import compile_campaign
from compiler.plan import Move
from compiler.render.rucio import APPLIED_RULE_LINE
from compiler.schedule import Step

from .bps_runs import RunRecorder
from .report import Report, StepResult
from .runner import run_steps
from .transfers import Transfers

#: Steps run side by side, at most this many at once: most of a step is waiting on the
#: processes it started (scripts, Rucio's daemons, Kafka), and the machine may have 2 cores.
WORKERS = 4


class StepFailed(Exception):
    pass


class Rehearsal:
    """One rehearsal of one campaign in a work directory."""

    def __init__(self, campaign: Path, work: Path, *, inject: str | None = None,
                 progress: Callable[[str], None] = lambda line: None, visits_per_tract: int = 2,
                 wait_timeout: int = 30, sample: int | None = None) -> None:
        if inject not in (None, "loss", "stuck"):
            raise ValueError(f"--inject takes loss or stuck, not {inject!r}")
        self.campaign = Path(campaign)
        self.work = Path(work).resolve()
        self.inject = inject
        self._takes_limit: str | None = None  # rucio-register data-products takes --limit
        self.progress = progress
        self.visits_per_tract = visits_per_tract
        self.wait_timeout = wait_timeout
        self.sample_size = sample
        self.sample: frozenset[int] | None = None  # the sampled tracts (None: every tract)
        self._local = threading.local()  # the step a worker thread runs (its results and lines)
        self._results: dict[str, list[StepResult]] = {}  # step key -> its report rows
        # (transfer id, DID) -> the rule id apply-rules.sh printed for it
        self._applied: dict[tuple[str, str], str] = {}
        self._homes: dict[int, str] | None = None  # visit -> its home site (home_sites), once
        self._lines: dict[str, list[str]] = {}  # step key -> its progress lines
        self._children: set[subprocess.Popen[str]] = set()  # scripts running now
        self._children_lock = threading.Lock()

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> Report:
        from . import butlers
        from .services import Services, Terminated

        t0 = time.monotonic()
        compiled = compile_campaign(self.campaign)
        plan = compiled.plan
        self.plan = plan
        self.tree = self.work / "tree"
        write_tree(self.tree, compiled.files)
        report = Report(plan.campaign, self.work)
        self.report = report
        self.progress(f"compiled {self.campaign} into {self.tree} ({len(compiled.files)} files)")

        self.rse_roots = {}
        for site in plan.sites:
            for rse in (site.rse, site.raw_rse):
                self.rse_roots[rse] = self.work / "rses" / rse
        scopes = sorted({s.scope for s in plan.sites})
        if self.sample_size is not None:
            from .sample import choose_sample

            chosen = choose_sample(plan, self.sample_size)
            self.sample = chosen.tracts
            report.sample = chosen.describe()
            self.progress(report.sample)
        self.visits = butlers.synthesize_visits(
            plan, per_tract=self.visits_per_tract,
            tracts=sorted(self.sample) if self.sample is not None else None)
        self.home = self.work / "home"  # the submit host's $HOME: where BPS links the runs
        self.runs = RunRecorder(self.home, self.work / "wms-runs.json")
        try:
            with Services(self.work / "services", rses=self.rse_roots, scopes=scopes) as svc:
                self.svc = svc
                took = ", ".join(f"{name} {sec:.1f} s" for name, sec in svc.timings.items())
                self.progress(f"services up: PostgreSQL, Rucio {svc.rucio.url}, "
                              f"Kafka {svc.broker.bootstrap} ({took})")
                self.consumers: dict[str, Any] = {}
                self.transfers = Transfers(
                    svc, self.consumers,
                    {s.id: {ingestd_topic(a.rse, a.scope) for a in plan.arrivals(s.id)}
                     for s in plan.sites},
                    lambda move: list(self._manifest(move)["dataset_ids"]),
                    inject=self.inject, target=self._inject_target() if self.inject else None)
                for site in plan.sites:  # written once, before the threads read them
                    self._register_config(site.id, raw=False)
                    self._register_config(site.id, raw=True)
                try:
                    self._run_schedule(plan.schedule.steps)
                finally:
                    for consumer in self.consumers.values():
                        consumer.close()  # commits the offsets: the lag the status reads
                self._final_status()
        except Terminated as exc:
            report.failure = f"interrupted ({exc})"
        report.seconds = time.monotonic() - t0
        moves = [s for s in report.steps if s.key.startswith("verify:") and s.source is not None]
        report.sent = sum(s.source or 0 for s in moves)
        report.arrived = sum(s.destination or 0 for s in moves)
        if not report.failure and not report.ok:
            bad = [s.key for s in report.steps if s.expected is not None
                   and (s.source not in (None, s.expected)
                        or s.destination not in (None, s.expected))]
            report.failure = f"counts differ from the plan at {', '.join(bad)}"
        return report

    def _final_status(self) -> None:
        """`drpc status` of every site, merged: all green after a clean run, or the fault."""
        from .bps_runs import RUNS_ENV
        from .final_status import final_status

        def env_of(site: str) -> dict[str, str]:
            return {**self.site_env(site), "HOME": str(self.home),
                    RUNS_ENV: str(self.runs.runs_file)}

        self.progress("[all] drpc status --site <each> --format json, then --merge")
        outcome = final_status(self.campaign, self.plan, self.work / "status",
                               repos={s.id: self.repo(s.id) for s in self.plan.sites},
                               brokers=self.svc.broker.bootstrap, env_of=env_of,
                               crosscheck=self.work / paths.CROSSCHECK_RESULT)
        self.report.status = outcome.not_green
        self.report.status_files = {k: str(v) for k, v in outcome.files.items()}
        self.progress(f"    {'all green' if not outcome.not_green else 'NOT green'} "
                      f"({outcome.seconds:.1f} s)")
        if not self.report.failure and outcome.not_green:
            self.report.failure = ("drpc status is not all green after the run: "
                                   + "; ".join(outcome.not_green[:5]))

    def _run_schedule(self, steps: Sequence[Step]) -> None:
        """Every step once the steps it needs passed (:func:`step_needs`), independent ones side
        by side; the report and the progress lines keep the campaign's order, and the first
        failure in that order stops the run."""
        try:
            ran, error = run_steps(steps, step_needs(steps), self._do, workers=WORKERS,
                                   emit=self._emit, abort=self._stop_children)
        except BaseException:  # interrupted: what ran so far
            self.report.steps = [r for st in steps for r in self._results.get(st.key, [])]
            raise
        self.report.steps = [r for st in ran for r in self._results.get(st.key, [])]
        if isinstance(error, StepFailed):
            self.report.failure = str(error)
        elif error is not None:
            raise error

    def _emit(self, step: Step) -> None:
        for line in self._lines.get(step.key, []):
            self.progress(line)

    # -- one runbook step -------------------------------------------------------------------------
    def _do(self, step: Step) -> None:
        """Run one schedule step, by its kind."""
        handlers: dict[str, Callable[[Step], None]] = {
            "setup-repo": self._step_setup_repo, "ingestd": self._step_ingestd,
            "datastore": self._step_datastore, "apply-rules": self._step_apply_rules,
            "visits": self._step_visits, "submit": self._step_submit,
            "rucio-setup": self._step_rucio_setup,
            "job": self._step_job, "register": self._step_register, "wait": self._step_wait,
            "verify": self._step_verify, "archive": self._step_archive,
            "inputs": self._step_inputs, "crosscheck": self._step_crosscheck,
            "monitoring": self._step_monitoring,
        }
        if step.kind not in handlers:
            raise NotImplementedError(f"the rehearsal cannot run {step.key}: no handler for "
                                      f"steps of kind {step.kind!r}")
        self._local.key = step.key
        self._results[step.key] = []
        self._lines[step.key] = [f"[{step.site}] {step.key}"]
        handlers[step.kind](step)

    def _record(self, result: StepResult) -> StepResult:
        """A report row of the step this thread runs (and its progress line)."""
        key = self._local.key
        self._results[key].append(result)
        mark = "ok" if result.status in ("ok", "replaced", "simulated") else result.status
        self._lines[key].append(f"    {mark} ({result.seconds:.1f} s)"
                                f"{'  ' + result.note if result.note else ''}")
        return result

    def _run(self, argv: list[str], *, env: dict[str, str],
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """A script or tool, in its own process group so that an interrupted rehearsal stops
        it and what it started (:meth:`_stop_children`)."""
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        with self._children_lock:
            self._children.add(proc)
        try:
            out, err = proc.communicate()
        finally:
            with self._children_lock:
                self._children.discard(proc)
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def _stop_children(self) -> None:
        with self._children_lock:
            children = list(self._children)
        for proc in children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def site_env(self, site_id: str) -> dict[str, str]:
        svc_env = self.svc.env()
        venv_bin = str(Path(sys.executable).parent)
        env = {**os.environ, **svc_env}
        # The stack's python, butler and rucio-register first (the site's stack set-up); the rucio
        # client there is the server's version. The server venv's tools come after.
        env["PATH"] = os.pathsep.join([venv_bin, svc_env["PATH"]])
        env.update({
            "BUTLER_REPO": str(self.repo(site_id)),
            "BUTLER_REGISTRY": "",
            "BUTLER_DATASTORE_ROOT": str(self.datastore_root(site_id)),
            "BUTLER_PYTHON": sys.executable,
            "RUCIO_REGISTER_CONFIG": str(self._register_config(site_id, raw=False)),
            "RUCIO_REGISTER_RAW_CONFIG": str(self._register_config(site_id, raw=True)),
            "MANIFEST_DIR": str(self.work / "manifests"),
            "WAIT_INTERVAL": "1",
            "WAIT_TIMEOUT": str(self.wait_timeout),
            "DRY_RUN": "0",
            "RUCIO_REGISTER_LIMIT": self._register_takes_limit(env),
        })
        env.pop("RUCIO_REGISTER", None)
        (self.work / "manifests").mkdir(parents=True, exist_ok=True)
        return env

    def _register_takes_limit(self, env: dict[str, str]) -> str:
        """yes or no for every register script: whether this stack's rucio-register
        data-products takes --limit, asked once (each script would ask it again per move,
        a stack start-up each), as a site's loop over its scripts can."""
        if self._takes_limit is None:
            helped = subprocess.run(["rucio-register", "data-products", "--help"], env=env,
                                    capture_output=True, text=True, check=False, timeout=120)
            self._takes_limit = "yes" if "--limit" in helped.stdout else "no"
        return self._takes_limit

    def repo(self, site_id: str) -> Path:
        return self.work / "sites" / site_id / "repo"

    def datastore_root(self, site_id: str) -> Path:
        """`<rse_root>/<scope>`: the relation the runbook asks every site to check."""
        site = self.plan.site(site_id)
        return self.rse_roots[site.rse] / site.scope

    def _register_config(self, site_id: str, *, raw: bool) -> Path:
        """The site's rucio-register config with the local RSE root and URL (same four keys)."""
        site = self.plan.site(site_id)
        rse = site.raw_rse if raw else site.rse
        path = self.work / "sites" / site_id / ("rucio-register-raw.yaml" if raw
                                                else "rucio-register.yaml")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            root = str(self.rse_roots[rse])
            path.write_text(json.dumps({"rucio_rse": rse, "scope": site.scope, "rse_root": root,
                                        "dtn_url": self.svc.rucio.rse_url(rse).rstrip("/")}) + "\n")
        return path

    def script(self, site_id: str, rel: str, *, extra_env: dict[str, str] | None = None,
               key: str, expected: int | None = None, args: Sequence[str] = (),
               on_stdout: Callable[[str], None] | None = None) -> StepResult:
        env = self.site_env(site_id)
        env.update(extra_env or {})
        t = time.monotonic()
        # a generated Python script (inputs.py, crosscheck.py) runs with the stack's Python
        argv = ([sys.executable, str(self.tree / rel), *args] if rel.endswith(".py")
                else ["bash", str(self.tree / rel), *args])
        proc = self._run(argv, cwd=self.tree, env=env)
        log = self.work / "logs" / (key.replace(":", "_").replace("/", "_") + ".log")
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {rel}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
        result = StepResult(site_id, key, rel, "ok" if proc.returncode == 0 else "FAILED",
                            time.monotonic() - t, proc.returncode, expected)
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-12:])
            self._record(result)
            raise StepFailed(f"{rel} at {site_id} exited {proc.returncode} (log: {log}):\n{tail}")
        if on_stdout is not None:
            on_stdout(proc.stdout)
        return result

    # -- setup ------------------------------------------------------------------------------------
    def _step_setup_repo(self, step: Step) -> None:
        from . import butlers

        site = step.site
        rel = paths.setup_repo(site)
        skip = " ".join(butlers.replaced_setup_steps(self.plan))
        first = self.script(site, rel, key=step.key, extra_env={"SKIP_STEPS": skip})
        t = time.monotonic()
        butlers.insert_stack_records(str(self.repo(site)), self.plan, site,
                                     tracts=sorted(self.sample) if self.sample else None)
        held = butlers.visits_held_by(self.plan, site, self.visits, sample=self.sample)
        butlers.define_visits(str(self.repo(site)), self.plan, site, held)
        # The raws: the central site's from the summit (ingest-raws); another site's stand for
        # the raw transfer, whose Rucio part is replaced (see _step_register).
        raws = butlers.ingest_raws(str(self.repo(site)), self.plan, held)
        first.seconds += time.monotonic() - t
        first.note = (f"SKIP_STEPS={skip}: replaced by dimension records; {len(held)} visits "
                      f"defined, {raws} raws ingested")
        self._record(first)
        again = self.script(site, rel, key=step.key + ":again", extra_env={"SKIP_STEPS": skip})
        again.note = "second run: changes nothing"
        self._record(again)

    def _step_inputs(self, step: Step) -> None:
        """inputs.py for real: at the central site over stand-in inputs (its real ones are there
        before a campaign), elsewhere over what arrived."""
        from .inputs import make_inputs

        t = time.monotonic()
        made = (make_inputs(str(self.repo(step.site)), self.plan)
                if step.site == self.plan.central_site else {})
        result = self.script(step.site, paths.inputs_script(step.site), key=step.key)
        result.seconds += time.monotonic() - t
        result.note = (f"{sum(made.values())} stand-in input dataset(s) of {len(made)} type(s) "
                       "first" if made else "certified and chained what arrived")
        self._record(result)

    def _step_crosscheck(self, step: Step) -> None:
        """crosscheck.py for real on the two sites' returned results."""
        result = self.script(step.site, paths.crosscheck_script(step.site), key=step.key,
                             args=("--json", str(self.work / paths.CROSSCHECK_RESULT)))
        result.note = f"{len(self.plan.crosschecks)} comparison(s)"
        self._record(result)

    def _step_monitoring(self, step: Step) -> None:
        """No Prometheus or systemd here: the exporter's own dry run shows what it would run."""
        rel = paths.monitoring_file(step.site, paths.STATUS_EXPORTER_SCRIPT)
        result = self.script(step.site, rel, key=step.key,
                             extra_env={"DRY_RUN": "1", "DRPC": "drpc",
                                        "TEXTFILE_DIR": str(self.work / "textfile")})
        result.status = "replaced"
        result.note = "kubectl apply and systemctl replaced; the exporter's DRY_RUN=1 ran"
        self._record(result)

    def _step_ingestd(self, step: Step) -> None:
        from .ingest import IngestConsumer, load_ingestd_config

        t = time.monotonic()
        site = step.site
        config = load_ingestd_config(self.tree, site)
        config["brokers"] = [self.svc.broker.bootstrap]
        arrivals = {ingestd_topic(a.rse, a.scope): a for a in self.plan.arrivals(site)}
        for topic, prefixes in config["topics"].items():
            rse = arrivals[topic].rse
            prefixes["rucio_prefix"] = self.svc.rucio.rse_url(rse)
            prefixes["fs_prefix"] = f"file://{self.rse_roots[rse]}/"
        consumer = IngestConsumer(config, str(self.repo(site)))
        self.consumers[site] = consumer
        self.report.ingest = consumer.implementation
        self._record(StepResult(site, step.key, f"kubectl apply -k {paths.ingestd_dir(site)}",
                                "replaced", time.monotonic() - t,
                                note=f"{consumer.implementation} on {', '.join(config['topics'])}"))

    def _step_datastore(self, step: Step) -> None:
        from lsst.daf.butler import Butler

        t = time.monotonic()
        butler = Butler.from_config(str(self.repo(step.site)))
        # the file datastore's root: not public API (the check a site runs is `butler config-dump`)
        store = getattr(butler, "_datastore", None)
        root = str(getattr(store, "root", ""))
        expected = str(self.datastore_root(step.site))
        ok = root.rstrip("/").endswith(expected.rstrip("/"))
        self._record(StepResult(step.site, step.key, "datastore root == <rse_root>/<scope>",
                                "ok" if ok else "FAILED", time.monotonic() - t, note=root))
        if not ok:
            raise StepFailed(f"{step.site}: datastore root {root} is not {expected}")

    def _step_apply_rules(self, step: Step) -> None:
        """apply-rules.sh for real; the rule ids it prints are kept for the register steps."""
        def keep(stdout: str) -> None:
            for transfer, did, rule_id, _ in APPLIED_RULE_LINE.findall(stdout):
                self._applied[(transfer, did)] = rule_id

        self._record(self.script(step.site, paths.apply_rules(step.site), key=step.key,
                                 on_stdout=keep))

    def _step_visits(self, step: Step) -> None:
        """visits.sh for real but define-visits (the obs package's; done in the setup)."""
        result = self.script(step.site, paths.visits_script(step.site), key=step.key,
                             extra_env={"SKIP_STEPS": "define-visits"})
        result.note = "define-visits replaced (records inserted in the setup); selection real"
        self._record(result)

    def _step_rucio_setup(self, step: Step) -> None:
        """setup-rucio.sh for real, as the server's root account (the admin)."""
        self._record(self.script(step.site, paths.setup_rucio(step.site), key=step.key))

    def _step_submit(self, step: Step) -> None:
        job = step.job
        assert job is not None
        self._record(StepResult(step.site, step.key, f"bps submit --compute-site "
                                f"{job.compute_site} {paths.bps_submit(job)}", "replaced", 0.0,
                                note=f"remote build for {job.site}: the job step simulates it"))

    # -- processing -------------------------------------------------------------------------------
    def _step_job(self, step: Step) -> None:
        from . import butlers

        job = step.job
        assert job is not None
        command = f"bps submit {paths.bps_submit(job)}"
        t = time.monotonic()
        try:
            result = butlers.simulate_job(str(self.repo(job.site)), self.plan, job, self.visits,
                                          sample=self.sample)
        except butlers.JobInputError as exc:
            self._record(StepResult(job.site, step.key, command, "FAILED", time.monotonic() - t))
            raise StepFailed(f"{command} at {job.site} cannot start: {exc}") from None
        total = sum(result.produced.values())
        run_id = self.runs.record(job, self.work / "submit" / step.key.replace(":", "_"),
                                  "SUCCEEDED", max(1, total))
        self._record(StepResult(job.site, step.key, command, "simulated", time.monotonic() - t,
                                note=f"{total} datasets into {result.run} (run {run_id})"))

    # -- moves ------------------------------------------------------------------------------------
    def _step_register(self, step: Step) -> None:
        move = step.move
        assert move is not None
        if move.is_raw:  # the whole-visit selection runs for real; the Rucio part is replaced
            t = time.monotonic()
            script = self.tree / paths.select_script(move.source)
            proc = self._run([sys.executable, str(script), "raws", move.destination],
                             env=self.site_env(move.source))
            if proc.returncode != 0:
                raise StepFailed(f"{paths.select_script(move.source)} raws {move.destination} "
                                 f"exited {proc.returncode}:\n{proc.stderr[-2000:]}")
            result = StepResult(step.site, step.key, paths.register_script(move), "replaced",
                                time.monotonic() - t,
                                note=f"{proc.stdout.strip()}; raws reach the destination "
                                     "in its setup (no raw files through Rucio)")
        else:
            result = self.script(step.site, paths.register_script(move), key=step.key,
                                 expected=self.expected_count(move))
            result.source = _manifest_count(self._manifest(move))
        t = time.monotonic()
        self.transfers.registered(move, self._rule_id(move))
        result.seconds += time.monotonic() - t
        self._record(result)

    def _rule_id(self, move: Move) -> str:
        """The move's rule: as apply-rules.sh printed it (else asked of Rucio)."""
        if (move.id, move.rucio_did) in self._applied:
            return self._applied[(move.id, move.rucio_did)]
        rules = self.svc.rucio.rule_ids(move.rucio_scope, move.rucio_name, move.destination_rse)
        if not rules:
            raise StepFailed(f"no rule for {move.rucio_did} to {move.destination_rse}: "
                             "did apply-rules.sh run?")
        return str(rules[0])

    def _inject_target(self) -> Move | None:
        """The move `--inject` goes into: the campaign's first move of a stage's outputs (not
        raws, not inputs) that carries datasets."""
        return next((st.move for st in self.plan.schedule.steps
                     if st.kind == "register" and st.move is not None
                     and st.move.stage is not None and self.expected_count(st.move) > 0), None)

    def _step_wait(self, step: Step) -> None:
        move = step.move
        assert move is not None
        t = time.monotonic()
        self.transfers.settle(move)  # its files moved, their events ingested at the destination
        rule_id = self.transfers.rule_ids[move.id]
        prep = time.monotonic() - t
        try:
            result = self.script(step.site, paths.wait_script(move), key=step.key,
                                 extra_env={"RULE_ID": rule_id})
        except StepFailed:
            if self.inject == "stuck" and self.transfers.injected == move.id:
                raise StepFailed(f"injected fault found: {paths.wait_script(move)} exited 1 on the "
                                 f"STUCK rule {rule_id} of {move.id} and named its stuck "
                                 "locks") from None
            raise
        result.seconds += prep
        result.note = self.transfers.note(move)
        self._record(result)

    def _step_verify(self, step: Step) -> None:
        move = step.move
        assert move is not None
        raw = move.is_raw
        expected = None if raw else self.expected_count(move)
        try:
            result = self.script(step.site, paths.verify_script(move), key=step.key,
                                 expected=expected,
                                 extra_env={"ALLOW_EMPTY": "1"} if raw else None)
        except StepFailed as exc:
            if not raw:  # the counts of the failed verify belong in the report too
                manifest = self._manifest(move)
                failed = self._results[step.key][-1]
                failed.source, failed.destination = (_manifest_count(manifest),
                                                     self._arrived(move, manifest))
            if self.inject == "loss" and self.transfers.injected == move.id:
                raise StepFailed(f"injected fault found: {paths.verify_script(move)} exited 1 and "
                                 f"named the lost dataset:\n{exc}") from None
            raise
        if not raw:
            manifest = self._manifest(move)
            result.source = _manifest_count(manifest)
            result.destination = self._arrived(move, manifest)
        else:
            result.note = "no raw files in the rehearsal (see the register step)"
        self._record(result)

    def _step_archive(self, step: Step) -> None:
        """The archival check at the central site: every returned output is in its chain."""
        from lsst.daf.butler import Butler

        t = time.monotonic()
        archived = self.plan.schedule.phases[-1].moves
        missing = []
        with Butler.from_config(str(self.repo(step.site))) as butler:
            for chain in sorted({m.archived_into for m in archived if m.archived_into}):
                children = butler.collections.get_info(chain).children
                runs = {r for m in archived if m.archived_into == chain
                        for r in self._manifest(m)["runs"]}
                missing += sorted(runs - set(children))
        self._record(StepResult(step.site, step.key, "archival check at the central site",
                                "ok" if not missing else "FAILED", time.monotonic() - t,
                                note=f"{len(archived)} returned move(s) chained"))
        if missing:
            raise StepFailed(f"archival at {step.site}: runs not chained: {', '.join(missing)}")

    def _manifest(self, move: Move) -> dict[str, Any]:
        """What the move's register script wrote (its manifest)."""
        data: dict[str, Any] = json.loads(
            (self.work / "manifests" / manifest_name(move.id)).read_text())
        return data

    def _arrived(self, move: Move, manifest: dict[str, Any]) -> int:
        """How many of the datasets the source registered are in the destination's Butler now."""
        from lsst.daf.butler import Butler

        with Butler.from_config(str(self.repo(move.destination))) as butler:
            return sum(butler.get_dataset(uuid.UUID(i)) is not None
                       for i in manifest["dataset_ids"])

    # -- the plan's expectations ------------------------------------------------------------------
    def expected_count(self, move: Move) -> int:
        """How many datasets the move must carry, from the plan and the synthesized visits."""
        from . import butlers

        if move.is_input:  # drpc_rehearsal.inputs' stand-ins; the manifest is one dataset
            from .inputs import stand_in_count

            return stand_in_count(self.plan, move.dataset_type)
        dims = set(move.dimensions)
        # the plan's: whose datasets (or overlapping visits) it carries; of the sample only;
        # times the world's data IDs per tract or visit (patches, bands, detectors)
        per = butlers.data_ids_per_unit(self.plan, dims)
        tracts = {t for t in move.tracts if self.sample is None or t in self.sample}
        if "visit" in dims:
            visits = butlers.visits_overlapping(self.plan, sorted(tracts), self.visits)
            if move.select_by == "home-visits":  # each visit from its home site only
                if self._homes is None:  # the visits are fixed once synthesized
                    self._homes = butlers.home_sites(self.plan, self.visits, sample=self.sample)
                visits = [v for v in visits if self._homes.get(v.id) == move.select_site]
            return per * len(visits)
        if "tract" in dims:
            return per * len(tracts)
        return per


#: Step kinds of which consecutive steps at one site, in one phase, are moves between different
#: sites: they do not wait for each other (the schedule lists them one after the other).
SIDE_BY_SIDE = ("register", "verify")


def step_needs(steps: Sequence[Step]) -> dict[str, set[str]]:
    """The steps each step waits for: its `deps` and, at its site, the steps before it (the
    runbook's order: a step follows the last blocking one), except that consecutive
    :data:`SIDE_BY_SIDE` steps of one kind and phase at a site wait only for what came before
    them all, and what follows waits for all of them. A wait also waits for every register of
    its phase, so that one batch of Rucio's daemons carries the whole phase (transfers.py)."""
    keys = {st.key for st in steps}
    run: dict[str, tuple[tuple[str, int], set[str], set[str]]] = {}  # site -> its last blocking
    # run: (kind, phase), its steps, and what they wait for
    needs: dict[str, set[str]] = {}
    for st in steps:
        kind, members, before = run.get(st.site, (("", 0), set(), set()))
        together = st.blocking and st.kind in SIDE_BY_SIDE and kind == (st.kind, st.phase)
        needs[st.key] = {d for d in st.deps if d in keys} | (before if together else members)
        if together:
            members.add(st.key)
        elif st.blocking:
            run[st.site] = ((st.kind, st.phase), {st.key}, set(members))
    for st in steps:
        if st.kind == "wait":
            needs[st.key] |= {r.key for r in steps if r.kind == "register" and r.phase == st.phase}
    return needs


def _manifest_count(manifest: dict[str, Any]) -> int:
    """The number of datasets the register script selected (its manifest's `butler_datasets`)."""
    count = manifest.get("butler_datasets")
    if not isinstance(count, int):
        raise StepFailed(f"the register manifest has no dataset count: {sorted(manifest)}")
    return count


def rehearse(campaign: Path, work: Path | None, *, keep: bool, inject: str | None,
             progress: Callable[[str], None], sample: int | None = None) -> Report:
    """Run a rehearsal; remove its work directory afterwards unless `keep` (or it was given)."""
    import tempfile

    own = work is None
    root = Path(work) if work is not None else Path(tempfile.mkdtemp(prefix="drpc-rehearsal-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        report = Rehearsal(campaign, root, inject=inject, progress=progress,
                           sample=sample).run()
        (root / "report.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
        return report
    finally:
        if own and not keep:
            shutil.rmtree(root, ignore_errors=True)
