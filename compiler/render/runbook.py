"""RUNBOOK.md of the campaign and `sites/<site>/RUNBOOK.md` of each site (CONTRACT section 3).

Both are renderings of the plan's schedule (`plan.schedule`: the ordered, per-site-numbered
steps with their dependencies). This module only puts words to it: every step names the exact
generated file it runs (through `paths`), what a good result looks like and what to do when it
fails; a step's dependencies on other sites are the schedule's "wait for" steps in the site
runbook and written-out sync points in the campaign runbook.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .. import paths
from ..naming import file_path, ingestd_selector, ingestd_topic, raw_collection
from ..plan import Job, Move, Plan, SitePlan, StagePlan
from ..schedule import Phase, Step, inputs_key
from .common import header_lines, render_template, sh_quote


def fmt_days(days: float | None) -> str:
    if days is None:
        return "not estimated (the campaign has no `workload`)"
    return f"{days:,.1f} days" if days >= 1 else f"{days * 24:.1f} hours"


def move_what(move: Move) -> str:
    return "raws" if move.is_raw else move.dataset_type


def sink_text(plan: Plan, move: Move) -> str:
    """What waits for a move at its destination, for 'do not start <this> at <site>'."""
    if move.sink.kind == "archive":
        return "the archival"
    if move.sink.kind == "crosscheck":
        return "the cross-check comparison"
    if move.sink.kind == "inputs":
        return "the installation of the inputs"
    return f"`{move.sink.stage or plan.stages[0].name}`"


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and GitLab) give a Markdown heading: lowercase, punctuation but `-`
    and `_` dropped, spaces made `-`."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def has_ingestd(plan: Plan, site_id: str) -> bool:
    """The site has an `ingestd/` kustomize base: files arrive and it has an ingestd section."""
    return bool(plan.arrivals(site_id)) and plan.site(site_id).ingestd is not None


def pods_command(plan: Plan, site: SitePlan) -> str:
    assert site.ingestd is not None
    return (f"kubectl -n {site.ingestd.namespace} get pods "
            f"-l {ingestd_selector(plan.campaign, site.id)}")


def logs_command(plan: Plan, site: SitePlan) -> str:
    assert site.ingestd is not None
    return (f"kubectl -n {site.ingestd.namespace} logs "
            f"-l {ingestd_selector(plan.campaign, site.id)} --tail=200")


# -- the words of each step ---------------------------------------------------------------------

@dataclass
class StepText:
    """A schedule step with its words: what the runbooks print."""

    step: Step
    title: str
    command: str = ""  # the exact command; it contains the generated file's path
    how: str = ""  # where/when to run it, before the command
    expect: list[str] = field(default_factory=list)
    if_fails: list[str] = field(default_factory=list)
    waits: list[tuple[str, list[StepText]]] = field(default_factory=list)  # a wait-for step
    waited_by: list[tuple[str, int]] = field(default_factory=list)  # (site, step number)

    @property
    def key(self) -> str:
        return self.step.key

    @property
    def kind(self) -> str:
        return self.step.kind

    @property
    def site(self) -> str:
        return self.step.site

    @property
    def phase(self) -> int:
        return self.step.phase

    @property
    def number(self) -> int:
        return self.step.number

    @property
    def blocking(self) -> bool:
        return self.step.blocking

    @property
    def move(self) -> Move | None:
        return self.step.move

    @property
    def job(self) -> Job | None:
        return self.step.job


def _setup_repo(plan: Plan, step: Step) -> StepText:
    site = plan.site(step.site)
    incoming = list(plan.incoming_chains(site.id))
    colls = [raw_collection(plan.instrument), plan.calib_collection, *incoming]
    return StepText(
        step, "Create and populate the Butler repository", paths.setup_repo(site.id),
        how="Prefix it with `DRY_RUN=1` to print every command first.",
        expect=[("exits 0 and ends with its summary; run again, it changes nothing (every step "
                 "'already exists, skipping')"),
                f"`butler query-collections {sh_quote(site.butler_repo)}` lists "
                + ", ".join(f"`{c}`" for c in dict.fromkeys(colls))
                + (" (the `incoming` chains empty for now)" if incoming else "")],
        if_fails=[("it names the failing step (`FAILED at step \"...\"`): fix the cause and run it "
                   "again; it skips what already exists")])


def _ingestd(plan: Plan, step: Step) -> StepText:
    site = plan.site(step.site)
    assert site.ingestd is not None
    return StepText(
        step, "Start ctrl_ingestd, which ingests what arrives here",
        f"kubectl apply -k {paths.ingestd_dir(site.id)}",
        how=(f"Needs the namespace `{site.ingestd.namespace}` and the Secret "
             f"`{site.ingestd.butler_secret}` (Butler credentials) to exist, and Rucio's Hermes "
             "publishing the transfer-done events of "
             + ", ".join(f"`{t}`" for t in kafka_topics(plan, site.id))
             + " to " + ", ".join(f"`{b}`" for b in site.ingestd.kafka_brokers)
             + " (see the campaign runbook's Kafka topics)."),
        expect=[f"`{pods_command(plan, site)}` shows the pod `Running`, READY `1/1`"],
        if_fails=[(f"`CrashLoopBackOff`: read `{logs_command(plan, site)} --previous` (Butler "
                   "credentials, registry or Kafka brokers unreachable), fix, apply again"),
                  ("`CreateContainerConfigError`: the Secret "
                   f"`{site.ingestd.butler_secret}` is missing")])


def _datastore(plan: Plan, step: Step) -> StepText:
    site = plan.site(step.site)
    relation_path = site.rucio_datastore_root
    relation = f"`{relation_path}`"
    expect = [(f"it prints `{site.datastore_root}`: the Rucio set-up assumes the datastore root "
               f"is `<rse_root>/<scope>` = {relation}, so that a file's Rucio DID name is its "
               "path inside the datastore")]
    if site.datastore_root != relation_path:
        expect.append(f"**warning**: the campaign sets the datastore root to "
                      f"`{site.datastore_root}`, not {relation}: registered DID names will not "
                      "match Rucio's paths")
    if plan.outgoing(site.id):
        expect.append(f"the register scripts read `{paths.rucio_register_config(site.id)}`: "
                      f"its `rucio_rse` is `{site.rse}`, `scope` `{site.scope}`, "
                      f"`rse_root` `{site.rse_root}`")
    return StepText(
        step, "Check once: the datastore root the Rucio set-up assumes",
        f"butler config-dump {sh_quote(site.butler_repo)} --subset .datastore.root", expect=expect,
        if_fails=[("stop before any transfer: fix the repository, or set `butler.datastore_root` / "
                   "`rucio.rse_root` of this site in the campaign, recompile and start again")])


def _rucio_setup(plan: Plan, step: Step) -> StepText:
    scopes = sorted({m.rucio_scope for m in plan.moves})
    rses = sorted({m.destination_rse for m in plan.moves})
    return StepText(
        step, "Rucio admin: the campaign's scopes and account limits",
        paths.setup_rucio(step.site),
        how=("Run by the Rucio admin (an account with the admin attribute), once for the "
             "campaign; prefix it with `DRY_RUN=1` to see every change first. It needs a "
             "Python with the Rucio client: `RUCIO_PYTHON` (default `python3`; the Python of "
             "your `rucio` CLI)."),
        expect=[(f"the scope(s) {', '.join(f'`{s}`' for s in scopes)} exist and every account "
                 f"that owns a rule has a limit on {', '.join(f'`{r}`' for r in rses)}; it ends "
                 "with `N changes`, and a second run says `0 changes`")],
        if_fails=[("an account that does not exist is named: create it (`rucio-admin account "
                   "add`) or set `sites.<site>.rucio.account`; a scope owned by another account "
                   "is left alone with a warning")])


def _apply_rules(plan: Plan, step: Step) -> StepText:
    site = plan.site(step.site)
    return StepText(
        step, "Create this site's outgoing Rucio datasets and replication rules",
        paths.apply_rules(site.id),
        how=(f"It reads the rules beside it (`{paths.site_dir(site.id)}/rucio/*.rules.json`). "
             "A rule on an open, still-empty dataset replicates each file as a register script "
             "attaches it."),
        expect=[(f"it names, for each of the {len(plan.outgoing(site.id))} outgoing move(s), its "
                 "open Rucio dataset and the id of its rule (`rucio rule list --did <Rucio "
                 "dataset>` shows it); run again, it creates nothing")],
        if_fails=[("`rucio whoami` must show the campaign's Rucio account; fix and run again "
                   "(existing datasets and rules are skipped)")])


def _what(move: Move) -> str:
    return "the raws" if move.is_raw else f"`{move_what(move)}`"


def _register(plan: Plan, step: Step) -> StepText:
    m = step.move
    assert m is not None
    when = ("once the raws are in this site's Butler" if m.is_raw
            else (f"once this site's inputs step (step "
                  f"{plan.schedule.step(inputs_key(m.source)).number}) passed") if m.is_input
            else f"once `{m.stage}` finished here")
    return StepText(
        step, f"Register {_what(m)} for {m.destination}", paths.register_script(m),
        how=f"Run it {when}.",
        expect=[(f"exits 0: a file of every dataset selected ({m.selection}) is in a closed "
                 f"Rucio dataset of the container `{m.rucio_did}` (`rucio did content list "
                 f"{m.rucio_did}` lists the datasets, `rucio did show` of each its length), and "
                 "the rule made in the setup replicates them")],
        if_fails=[("check `rucio whoami` (authentication) and the datastore root check of the "
                   "setup; fix and run it again (closed datasets are skipped, an open one is "
                   "completed)")])


def _wait(plan: Plan, step: Step) -> StepText:
    m = step.move
    assert m is not None
    return StepText(
        step, f"Wait until {_what(m)} reached {m.destination} ({m.destination_rse})",
        paths.wait_script(m),
        how="Nothing later at this site needs it: run it in a second terminal and go on.",
        expect=["exits 0 when the rule is `OK` (every file replicated)"],
        if_fails=[
            (f"exit 1, rule `STUCK` or `SUSPENDED`: `rucio rule list --did {m.rucio_did}` gives "
             "the rule id; `rucio rule show <rule id> --examine` shows each failed file and why; "
             f"contact the data manager of {m.source} (the source storage) and, if the errors "
             f"name the destination, of {m.destination}; once fixed, `rucio rule update <rule id> "
             "--boost-rule` and run it again"),
            ("exit 1 on timeout: if `rucio rule show <rule id>` still shows locks moving to OK, "
             "run it again; otherwise treat it as STUCK")])


def _verify(plan: Plan, step: Step) -> StepText:
    m = step.move
    assert m is not None
    dst = plan.site(m.destination)
    landed = (f"the raws are in `{m.into}`" if m.is_raw
              else (f"the datasets keep their RUN collections of {m.source}; the inputs step "
                    f"(step {plan.schedule.step(inputs_key(m.destination)).number}) makes "
                    f"`{m.into}` of them")
              if m.is_input
              else f"the arrived RUN collections are chained into `{m.into}`")
    not_ingested = (f"arrived but not ingested: `{logs_command(plan, dst)}`"
                    if dst.ingestd is not None
                    else "arrived but not ingested: this site runs no ctrl_ingestd")
    register = plan.schedule.step(f"register:{m.id}")
    wait = plan.schedule.step(f"wait:{m.id}")
    what = _what(m) if m.is_raw else f"the {_what(m)} datasets"
    return StepText(
        step, f"Verify that {what} from {m.source} arrived and were ingested",
        paths.verify_script(m),
        expect=[(f"exits 0 and prints `{m.id}: verified`: every file of `{m.rucio_did}` "
                 "arrived and was ingested here (exit 1 lists each one missing)"),
                (f"{landed}: `butler query-collections {sh_quote(dst.butler_repo)} "
                 f"{sh_quote(m.into)} --chains tree`")],
        if_fails=[(f"datasets missing: ask {register.site} to run its steps {register.number} and "
                   f"{wait.number} again (register, then wait), then run this again"),
                  not_ingested])


def _visits(plan: Plan, step: Step) -> StepText:
    site = plan.site(step.site)
    central = site.is_central
    return StepText(
        step, "Define the visits and select them, whole", paths.visits_script(site.id),
        how=((f"The central site holds every raw: its `raws` step ingests them from "
              f"`{plan.butler_inputs.raws.ingest_from}` first (`butler ingest-raws`)."
              if plan.butler_inputs.raws else
              "The central site holds every raw; run it once they are all ingested here (its "
              "`raws` step stops if there is none).")
             if central else "Run it once the raws from the central site are verified here."),
        expect=[(f"`define-visits` defines the visits of the raws here (ctrl_ingestd never "
                 f"does); `select` makes `{site.raw_selection}` hold every raw of the visits "
                 f"overlapping {site.id}'s {len(site.processing_tracts):,} tract(s); `check` "
                 "prints how many whole visits and raws it holds and exits 0"),
                "run again, the selection reports `0 changes`"],
        if_fails=[("`check` lists visits that are not whole or are missing: for raws missing here, "
                   "run the raw transfer's register, wait and verify again; for raws visible "
                   "through `campaign.input_collections` outside the selection, take the raw "
                   "collection out of those collections (a `select: visits` stage would process "
                   "them too)")])


def _inputs(plan: Plan, step: Step) -> StepText:
    site = plan.site(step.site)
    defaults = f"`{plan.defaults_collection}`"
    sent = [s.collection for s in plan.input_sets]
    if not plan.input_moves:
        what = f"the defaults chain {defaults}"
        how, expect = "Run it after the setup.", [
            f"it creates {defaults} over {', '.join(f'`{c}`' for c in plan.defaults_children)}"]
    elif site.is_central:
        what = "Check the inputs to send, write their manifest, make the defaults chain"
        how = "Run it once the inputs (" + ", ".join(f"`{c}`" for c in sent) + ") are here."
        expect = [("it prints how many datasets of each input type it sends and writes the "
                   f"inputs' manifest into `{plan.inputs_manifest_run}`"),
                  f"then it creates {defaults}"]
    else:
        what = "Certify and chain the arrived inputs, make the defaults chain"
        how = "Run it once every verify of the inputs passed here."
        expect = [("it certifies the calibrations with the validity ranges of the central "
                   "site and makes " + ", ".join(f"`{c}`" for c in sent) + " here"),
                  f"then it creates {defaults}"]
    expect.append("run again, it reports `0 changes`")
    return StepText(
        step, what,
        f"python3 {paths.inputs_script(site.id)}", how=how, expect=expect,
        if_fails=[("it names what is wrong (a collection missing or of the wrong type, a "
                   "calibration certified with another range, a defaults chain holding other "
                   "collections) and the command that fixes it; run it again once fixed: it "
                   "does only what is left")])


def _submit(plan: Plan, step: Step) -> StepText:
    job = step.job
    assert job is not None
    st = plan.stage(job.stage)
    return StepText(
        step, f"Submit stage {st.index} `{st.name}` for {job.site} (remote build)",
        f"bps submit --compute-site {job.compute_site} {paths.bps_submit(job)}",
        how=(f"With the stack `{plan.stack}` and PanDA set up here; ctrl_bps_panda's remote "
             f"build makes the QuantumGraph at {job.site} against its Butler "
             f"(`{job.butler_config}`)."),
        expect=[(f"it prints the run id; it is also the name of a link in `{job.id_link_path}`; "
                 f"tell {job.site}: its job step follows the run")],
        if_fails=[("`bps ping` checks the PanDA authentication; the build task's log in PanDA's "
                   "monitor names a graph-building failure at the site (inputs missing there)")])


def _job(plan: Plan, step: Step) -> StepText:
    job = step.job
    assert job is not None
    site = plan.site(job.site)
    days = plan.stage_days(job.stage, job.site)
    st = plan.stage(job.stage)
    scope = {"visits": "its whole visits (the TAGGED raw selection)",
             "tracts": f"{len(job.tracts):,} tract(s)", "all": "the whole campaign (no spatial "
             "constraint)"}[job.select]
    estimate = f" Estimated duration: {fmt_days(days)}." if days is not None else ""
    where = f" on {job.submitted_from}'s submit host" if job.is_remote else ""
    report = (f"`bps report --id <run id>` (the run id is the name of the link in "
              f"`{job.id_link_path}`{where})")
    expect = [f"{report} shows the run; wait until every job succeeded",
              (f"`butler query-collections {sh_quote(site.butler_repo)} {sh_quote(job.output)} "
               "--chains tree` shows the chain with its RUN collection")]
    if_fails = [(f"{report} names the failed jobs and their logs; fix the cause (memory: raise "
                 "`request_memory_mb` of the stage, or of one task under `tasks:`, and "
                 "recompile) and `bps restart --id <run id>`")]
    if job.is_remote:
        submit = plan.schedule.step(f"submit:{job.stage}:{job.site}")
        return StepText(
            step, f"Follow stage {st.index} `{st.name}` ({st.subset}) running here",
            how=(f"{job.submitted_from} submits it (its step {submit.number}, remote build): "
                 f"the graph is built here against `{job.butler_config}` and PanDA runs it at "
                 f"`{site.panda_site}` on {scope}.{estimate} Nothing to submit here; the run id "
                 f"comes from {job.submitted_from}."),
            expect=expect, if_fails=if_fails)
    return StepText(
        step, f"Run stage {st.index} `{st.name}` ({st.subset})",
        f"bps submit {paths.bps_submit(job)}",
        how=(f"Here, with the stack `{plan.stack}`: BPS builds the QuantumGraph against this "
             f"site's Butler (`{job.butler_config}`) and PanDA runs it at computeSite "
             f"`{site.panda_site}` on {scope}.{estimate}"),
        expect=expect, if_fails=if_fails)


def _archive(plan: Plan, step: Step) -> StepText:
    central = plan.site(plan.central_site)
    archived = plan.schedule.phases[-1].moves
    chains = dict.fromkeys(m.archived_into for m in archived)
    return StepText(
        step, "Archival: check what came back",
        expect=[f"`butler query-collections {sh_quote(central.butler_repo)} {sh_quote(c)} "
                "--chains tree` lists the RUN collections that arrived from every other site"
                for c in chains]
        or [(f"the outputs of every stage at {central.id} are in "
             f"`{plan.output_collection}/<stage>`; "
             "nothing is returned from other sites in this campaign")])


def _crosscheck(plan: Plan, step: Step) -> StepText:
    tol = plan.crosscheck_tolerance
    tracts = sorted({c.tract for c in plan.crosschecks})
    return StepText(
        step, "Compare the cross-check tracts' results of both sites",
        f"python3 {paths.crosscheck_script(plan.central_site)} --json {paths.CROSSCHECK_RESULT}",
        how=(f"Once every cross-check return is verified here: tract(s) "
             f"{', '.join(map(str, tracts))}, {len({c.dataset_type for c in plan.crosschecks})} "
             "dataset type(s)."),
        expect=[(f"exits 0: for every dataset type, the same data IDs from both sites (counts "
                 f"within {tol.count_fraction:g}); for catalogs, at least "
                 f"{tol.matched_fraction:.0%} of the rows matched within "
                 f"{tol.match_arcsec:g} arcsec and their median absolute magnitude difference "
                 f"at most {tol.mag_mad:g} mag; `{paths.CROSSCHECK_RESULT}` holds every "
                 f"comparison, and `drpc status <campaign file> --site {plan.central_site} "
                 f"--crosscheck {paths.CROSSCHECK_RESULT}` shows it")],
        if_fails=[("exit 1 lists every type and tract outside the tolerances "
                   "(`sky.cross_check_tolerance`; `EMPTY`: neither site returned the type for the "
                   "tract): the two sites' results differ; compare their software stacks and "
                   "configs (`butler query-collections` of the two chains) before the release "
                   "uses either"),
                  ("exit 2 names a collection missing or a dataset it cannot read: run the "
                   "cross-check verify scripts first (they chain what arrived)")])


def _monitoring(plan: Plan, step: Step) -> StepText:
    site = plan.site(step.site)
    unit = paths.status_unit(plan.campaign, site.id)
    rules = paths.monitoring_file(site.id, paths.PROMETHEUS_RULE_FILE)
    plain_rules = paths.monitoring_file(site.id, paths.MONITORING_RULES_FILE)
    exporter = paths.monitoring_file(site.id, paths.STATUS_EXPORTER_SCRIPT)
    folder = file_path(site.monitoring.textfile_dir)
    metrics = paths.status_metrics_file(plan.campaign, site.id)
    crosscheck = (f" At this site the exporter also reads `{paths.CROSSCHECK_RESULT}` (the "
                  "cross-check step's) once it exists." if site.is_central and plan.crosschecks
                  else "")
    return StepText(
        step, "Install the monitoring: the alert rules and the status exporter",
        (f"kubectl apply -f {rules}\n"
         f"DRY_RUN=1 bash {exporter}\n"
         f"sudo install -m 0644 {paths.monitoring_dir(site.id)}/{unit}.service "
         f"{paths.monitoring_dir(site.id)}/{unit}.timer /etc/systemd/system/\n"
         f"sudo systemctl edit {unit}.service\n"
         f"sudo systemctl daemon-reload && sudo systemctl enable --now {unit}.timer"),
        how=("Where the site's Prometheus runs (prometheus-operator selects the "
             "`PrometheusRule` by its labels, `sites.<id>.monitoring.rule_labels`; a plain "
             f"Prometheus loads `{plain_rules}` through `rule_files:` instead), and on the host "
             "of node_exporter's textfile collector, which needs drpc, the stack's clients and "
             "this site's credentials. The drop-in (`systemctl edit`) names the account, the "
             "compiled tree (`WorkingDirectory=`) and the campaign file (`CAMPAIGN_FILE=`)."
             + crosscheck + " Nothing later waits for this step."),
        expect=[f"`kubectl get prometheusrule -n {site.monitoring.namespace} "
                f"drpc-{plan.campaign}-{site.id}` lists the rules",
                f"`systemctl list-timers {unit}.timer` shows its next run; after it, "
                f"`{folder}/{metrics}` exists and its `drpc_status_timestamp_seconds` is recent"],
        if_fails=[f"`journalctl -u {unit}.service`: drpc status exited 1, 2 or 4 (the campaign "
                  "file or the tree not where the drop-in says, drpc not on PATH); exit 5 is "
                  "success here (the metrics say what needs attention)",
                  "the rule object is refused: `promtool check rules` of "
                  f"`{plain_rules}` names the rule"])


def step_anchor(text: StepText) -> str:
    """The anchor of a step's heading in its site runbook (`### <N>. <title>`, see
    templates/runbook/site.md.j2): what an alert's runbook_url points at."""
    return github_anchor(f"{text.number}. {text.title}")


_WORDS = {"setup-repo": _setup_repo, "monitoring": _monitoring, "visits": _visits,
          "rucio-setup": _rucio_setup, "ingestd": _ingestd, "inputs": _inputs,
          "crosscheck": _crosscheck,
          "datastore": _datastore, "apply-rules": _apply_rules, "register": _register,
          "wait": _wait, "verify": _verify, "submit": _submit, "job": _job, "archive": _archive}


# -- phases: the campaign runbook's sections ------------------------------------------------------

@dataclass
class Sync:
    what: str  # e.g. "`fgcm` at usdf"
    pairs: list[tuple[StepText, StepText]]  # (wait at the source, verify at the destination)


@dataclass
class PhaseText:
    number: int
    kind: str
    title: str
    where: str
    starts: str
    duration: str
    stage: StagePlan | None
    moves: tuple[Move, ...]
    steps: list[StepText]
    syncs: list[Sync] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)  # stage: one per job


@dataclass
class Runbooks:
    phases: list[PhaseText]
    steps: list[StepText]  # every step, campaign order
    sites: dict[str, list[StepText]]  # per site, numbered, with the "wait for" steps


BOUNDED = "bounded by the wait scripts' timeout"


def _move_phase(plan: Plan, ph: Phase, texts: dict[str, StepText]) -> PhaseText:
    central = plan.central_site
    moves = ph.moves
    srcs = ", ".join(dict.fromkeys(m.source for m in moves))
    dsts = ", ".join(dict.fromkeys(m.destination for m in moves))
    if ph.kind == "raws":
        title, where = f"Raw distribution from {central}", f"{central} -> every other site"
        starts = "its destinations finished the setup"
    elif ph.kind == "inputs":
        title = (f"Inputs from {central} and the defaults chains" if moves
                 else "The defaults chains")
        where = f"{central} -> every other site" if moves else "every site"
        starts = "the setup"
    else:
        assert ph.stage is not None
        name = ph.stage.name
        sinks = ", ".join(dict.fromkeys(sink_text(plan, m) for m in moves))
        title = {"gather": f"Gather `{name}` outputs at {dsts} for {sinks}",
                 "scatter": f"Scatter `{name}` outputs from {srcs} for {sinks}",
                 "return": f"Return `{name}` outputs to {dsts} for archival",
                 "crosscheck": f"Cross-check outputs of `{name}` to {dsts}"}[ph.kind]
        where, starts = f"{srcs} -> {dsts}", f"`{name}` finished at each source"
    out = PhaseText(ph.number, ph.kind, title, where, starts, BOUNDED, ph.stage, moves,
                    [texts[k] for k in ph.steps])
    order = {s.id: i for i, s in enumerate(plan.sites)}
    for m in moves:
        what = f"{sink_text(plan, m)} at {m.destination}"
        sync = next((x for x in out.syncs if x.what == what), None)
        if sync is None:
            out.syncs.append(sync := Sync(what, []))
        sync.pairs.append((texts[f"wait:{m.id}"], texts[f"verify:{m.id}"]))
    for sync in out.syncs:
        sync.pairs.sort(key=lambda p: order[p[0].site])
    return out


def _stage_phase(plan: Plan, ph: Phase, texts: dict[str, StepText]) -> PhaseText:
    st = ph.stage
    assert st is not None
    central = plan.central_site
    jobs = [j for j in plan.jobs if j.stage == st.name]
    days = [(j.site, plan.stage_days(st.name, j.site)) for j in jobs]
    known = [d for _, d in days if d is not None]
    slowest = max(days, key=lambda x: x[1] or 0.0)
    duration = (f"{fmt_days(max(known))}" + (f" (slowest: {slowest[0]})" if len(jobs) > 1 else "")
                if known else fmt_days(None))
    where = "every site" if st.runs_at == "every-site" else f"{central} (central)"
    out = PhaseText(ph.number, "stage", f"Stage {st.index}: `{st.name}`", where, "", duration, st,
                    (), [texts[k] for k in ph.steps])
    move_phase_of = {k: p.number for p in plan.schedule.phases for k in p.steps}
    for text in out.steps:
        j = text.job
        assert j is not None
        before = [e.name for e in plan.stages[: st.index - 1] if j.site in e.sites]
        after = [f"`{before[-1]}` finished there"] if before else []
        after += [f"the sync point of phase {n}"
                  for n in sorted({move_phase_of[d] for d in text.step.deps})]
        out.rows.append({"site": j.site, "tracts": f"{len(j.tracts):,}",
                         "after": ", ".join(after or ["the setup (phase 1)"]),
                         "command": text.command,
                         "days": fmt_days(plan.stage_days(st.name, j.site))})
    same: dict[str, list[str]] = {}
    for row in out.rows:
        same.setdefault(row["after"], []).append(row["site"])
    out.starts = ("; ".join(f"{', '.join(sites)}: {after}" for after, sites in same.items())
                  if len(same) > 1 else next(iter(same)))
    return out


_BUILT: list[tuple[Plan, Runbooks]] = []  # the last few plans' runbooks, by identity


def build(plan: Plan) -> Runbooks:
    """The words of the plan's schedule: phases, the campaign's steps, each site's steps. Built
    once per plan (the runbooks, every site's alert links and `drpc status` read them; a DR2
    campaign's take ~25 ms); callers do not change what they get."""
    for built_for, runbooks in _BUILT:
        if built_for is plan:
            return runbooks
    runbooks = _build(plan)
    _BUILT[:] = [(plan, runbooks), *_BUILT[:3]]
    return runbooks


def _build(plan: Plan) -> Runbooks:
    sched = plan.schedule
    texts = {s.key: _WORDS[s.kind](plan, s) for s in sched.steps}
    for s in sched.steps:
        texts[s.key].waited_by = sched.waited_by(s.key)
    sites: dict[str, list[StepText]] = {}
    for site_id, steps in sched.sites.items():
        sites[site_id] = [
            StepText(s, f"Wait for {s.waits[0][0]}",
                     waits=[(other, [texts[k] for k in keys]) for other, keys in s.waits])
            if s.kind == "wait-for" else texts[s.key] for s in steps]
    phases: list[PhaseText] = []
    for ph in sched.phases:
        if ph.kind == "setup":
            phases.append(PhaseText(ph.number, "setup", "Site setup", "every site", "now",
                                    "not estimated by the plan (hours per site)", None, (),
                                    [texts[k] for k in ph.steps]))
        elif ph.kind == "stage":
            phases.append(_stage_phase(plan, ph, texts))
        elif ph.kind == "archive":
            phases.append(PhaseText(
                ph.number, "archive", f"Archival at {plan.central_site}", plan.central_site,
                "every return and cross-check sync point" if ph.moves else "the last stage",
                "not estimated by the plan", None, ph.moves, [texts[k] for k in ph.steps]))
        else:
            phases.append(_move_phase(plan, ph, texts))
    return Runbooks(phases, [texts[s.key] for s in sched.steps], sites)


# -- rendering -------------------------------------------------------------------------------------

def _header(plan: Plan, what: str) -> str:
    return "<!--\n" + "".join(f"  {line}\n" for line in header_lines(plan, what)) + "-->\n"


def _glance(runbooks: Runbooks) -> list[dict[str, str]]:
    return [{"number": str(p.number), "title": p.title, "where": p.where, "starts": p.starts,
             "duration": p.duration} for p in runbooks.phases]


def _tidy(text: bytes) -> bytes:
    """At most one blank line in a row, one newline at the end."""
    return re.sub(rb"\n{3,}", b"\n\n", text).rstrip(b"\n") + b"\n"


def render_campaign(plan: Plan, runbooks: Runbooks) -> bytes:
    cap = plan.capacity
    return _tidy(render_template(
        "runbook/campaign.md.j2", header=_header(plan, "Campaign runbook (RUNBOOK.md)"), plan=plan,
        rb=runbooks, glance=_glance(runbooks),
        finish=f"day {cap.finish_day:,.1f}" if cap else fmt_days(None),
        bottleneck=cap.bottleneck if cap else None,
        has_estimates=cap is not None, site_runbook=paths.site_runbook,
        has_ingestd=lambda s: has_ingestd(plan, s), arrives_at=lambda s: bool(plan.arrivals(s)),
        selector=ingestd_selector(plan.campaign), move_what=move_what,
        topics=lambda s: kafka_topics(plan, s)))


CVMFS_STACK = "/cvmfs/sw.lsst.eu/almalinux-x86_64/lsst_distrib/{stack}/loadLSST.bash"


@dataclass
class Prerequisite:
    what: str
    command: str
    expect: str


def kafka_topics(plan: Plan, site_id: str) -> list[str]:
    """The Kafka topics this site's ctrl_ingestd reads: one per (RSE, scope) arriving here."""
    return [ingestd_topic(a.rse, a.scope) for a in plan.arrivals(site_id)]


def prerequisites(plan: Plan, site: SitePlan) -> list[Prerequisite]:
    """What an operator checks from a bare login before step 1 (each one a command)."""
    stack = CVMFS_STACK.format(stack=plan.stack)
    needs: list[Prerequisite] = [
        Prerequisite(f"the LSST stack `{plan.stack}` from CVMFS",
                     f"source {stack} && setup lsst_distrib",
                     "`butler --help` and `bps --help` run (every script below needs the stack's "
                     "`python`, `butler` and `rucio-register`)"),
    ]
    if plan.jobs_at(site.id) and (site.submit == "local" or site.is_central):
        needs.append(Prerequisite(
            "PanDA authentication (ctrl_bps_panda)",
            "panda_auth status && BPS_WMS_SERVICE_CLASS=lsst.ctrl.bps.panda.PanDAService bps ping",
            "a valid token and `bps ping` exits 0 (`panda_auth reset` renews the token)"))
    if plan.outgoing(site.id) or plan.incoming(site.id):
        account = f" (account `{site.rucio_account}`)" if site.rucio_account else ""
        needs.append(Prerequisite(
            f"the Rucio client{account}", "rucio whoami",
            "prints your account: the register, wait and verify scripts use it "
            "(`RUCIO_ACCOUNT` overrides it)"))
    if site.butler_registry and site.butler_registry.startswith("postgresql"):
        needs.append(Prerequisite(
            "the registry's credentials", "ls -l ~/.lsst/db-auth.yaml",
            f"a file of mode `-rw-------` (0600) with an entry for `{site.butler_registry}` "
            "(setup-repo.sh checks it, and the database's btree_gist extension)"))
    if has_ingestd(plan, site.id):
        assert site.ingestd is not None
        needs.append(Prerequisite(
            "the Kubernetes cluster of ctrl_ingestd",
            f"kubectl config current-context && kubectl auth can-i create deployments "
            f"-n {site.ingestd.namespace}",
            f"the site's cluster, and `yes` for the namespace `{site.ingestd.namespace}`"))
    return needs


def render_site(plan: Plan, runbooks: Runbooks, site_id: str) -> bytes:
    site = plan.site(site_id)
    stages = [(plan.stage(j.stage), j, fmt_days(plan.stage_days(j.stage, site_id)))
              for j in plan.jobs_at(site_id)]
    return _tidy(render_template(
        "runbook/site.md.j2",
        header=_header(plan, f"Runbook of site {site_id} ({paths.site_runbook(site_id)})"),
        plan=plan, site=site, steps=runbooks.sites[site_id], stages=stages,
        outgoing=plan.outgoing(site_id), incoming=plan.incoming(site_id),
        has_ingestd=has_ingestd(plan, site_id), arrives=bool(plan.arrivals(site_id)),
        site_runbook=paths.site_runbook, phases={p.number: p for p in runbooks.phases},
        selector=ingestd_selector(plan.campaign, site_id), move_what=move_what,
        prerequisites=prerequisites(plan, site), topics=kafka_topics(plan, site_id)))


def render(plan: Plan, site: str | None = None) -> dict[str, bytes]:
    runbooks = build(plan)
    files: dict[str, bytes] = {}
    if site is None:
        files["RUNBOOK.md"] = render_campaign(plan, runbooks)
    for s in plan.sites_to_render(site):
        files[paths.site_runbook(s.id)] = render_site(plan, runbooks, s.id)
    return files


__all__ = ["Runbooks", "StepText", "build", "fmt_days", "has_ingestd", "render"]
