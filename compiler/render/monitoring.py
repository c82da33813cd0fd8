"""Per-site monitoring files: Prometheus alert rules and the status exporter (issue 14).

`sites/<site>/monitoring/` holds
- `drpc-alerts.rules.yaml`: the alert rules as a plain Prometheus rule file (`rule_files:`);
- `prometheusrule.yaml`: the same groups as a prometheus-operator `PrometheusRule` object, with
  the labels the site's Prometheus selects rules by (`sites.<id>.monitoring.rule_labels`);
- `status-exporter.sh`: runs `drpc status CAMPAIGN --site <site> --format prometheus` into a
  temporary file of node_exporter's textfile folder and renames it into place (node_exporter
  must never read a half-written file), run every few minutes by
- `drpc-status-<campaign>-<site>.service` and `.timer`: a systemd pair for the host that runs
  node_exporter and has drpc, the stack and the site's credentials.

The alerts read the metrics `drpc status --format prometheus` prints (compiler/status) and, for
ctrl_ingestd, kube-state-metrics' series of the Deployment `render/ingestd.py` writes. Each
alert's `runbook_url` points at the step of this site's RUNBOOK.md that says what to do: the
GitHub heading anchor of `### <N>. <title>` (templates/runbook/site.md.j2), under
`sites.<id>.monitoring.runbook_url` (where operators read the compiled tree), or the runbook's
path in the tree when none is given.

Which site alerts on what: a Rucio rule at its source (whose wait script and data manager act
on it), a transfer not ingested at its destination (whose ctrl_ingestd ingests it), ctrl_ingestd
and the exporter where they run, and a `drpc status` source (Rucio, Butler, Kafka) that the
site's other alerts read but drpc status could not (they would stay silent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .. import paths
from ..naming import file_path, ingestd_resource
from ..plan import Move, Plan, SitePlan
from ..text import safe_file_name
from . import runbook
from .common import EnvVar, comment_header, render_template, shell_prelude

# -- where the files go ----------------------------------------------------------------------------

RULES_FILE = paths.MONITORING_RULES_FILE
PROMETHEUS_RULE_FILE = paths.PROMETHEUS_RULE_FILE
EXPORTER_SCRIPT = paths.STATUS_EXPORTER_SCRIPT
DEFAULT_TREE_DIR = "/opt/drpc"  # the unit's WorkingDirectory: <this>/<campaign>, or a drop-in
monitoring_dir = paths.monitoring_dir


def unit_name(plan: Plan, site: str) -> str:
    return paths.status_unit(plan.campaign, site)


def metrics_file(plan: Plan, site: str) -> str:
    return paths.status_metrics_file(plan.campaign, site)


# -- thresholds ------------------------------------------------------------------------------------

EXPORT_INTERVAL_MINUTES = 5  # the timer's period
STALE_AFTER_SECONDS = 3 * EXPORT_INTERVAL_MINUTES * 60  # three runs missed
INGESTD_DOWN_FOR = "5m"
CRASHLOOP_WINDOW = "15m"
CRASHLOOP_RESTARTS = 3
CRASHLOOP_FOR = "5m"
LAG_WINDOW = "30m"
LAG_FOR = "15m"
RULE_STUCK_FOR = "15m"
NOT_INGESTED_FOR = "30m"
STALE_FOR = "5m"
SOURCE_DOWN_FOR = "15m"  # three status runs

SEVERITY = {"IngestdDown": "critical", "IngestdCrashLooping": "warning",
            "IngestdLagStalled": "warning", "RucioRuleStuck": "warning",
            "TransferNotIngested": "warning", "StatusExporterStale": "warning",
            "StatusSourceDown": "warning"}
ALERTS = tuple(SEVERITY)


# -- PromQL, Go template, systemd and Markdown text ------------------------------------------------

def promql_string(value: str) -> str:
    """A PromQL single-quoted string literal (Go escapes) holding exactly `value`.

    Single quotes, so that the rule files' YAML (double-quoted) needs no escapes to read."""
    out = []
    for ch in value:
        if ch in "'\\":
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def promql_regex(value: str) -> str:
    """`value` matched literally inside an RE2 regular expression."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", value)


def go_literal(text: str) -> str:
    """`text` read literally by Prometheus's Go templating of annotations: each `{{` becomes
    the action `{{ "{{" }}`, which prints it (a lone `}}` is plain text already)."""
    return text.replace("{{", '{{ "{{" }}')


def selector(metric: str, **labels: str) -> str:
    """`metric{label='value',...}` with every value quoted (labels sorted: stable output)."""
    matchers = ",".join(f"{k}={promql_string(v)}" for k, v in sorted(labels.items()))
    return f"{metric}{{{matchers}}}"


def systemd_value(value: str, *, exec_line: bool = False) -> str:
    """A double-quoted systemd unit-file word holding exactly `value`: `\\` and `"` escaped,
    `%` (specifiers) doubled, and in Exec lines `$` (variable expansion) doubled too."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError(f"refusing a control character in a systemd value: {value!r}")
    text = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if exec_line:
        text = text.replace("$", "$$")
    return f'"{text}"'


# -- the alerts ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Alert:
    """One alerting rule, as both rule files write it."""

    name: str
    expr: str
    for_: str
    summary: str
    description: str
    runbook_url: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        return SEVERITY[self.name]

    def as_rule(self) -> dict[str, Any]:
        return {"alert": self.name, "expr": self.expr, "for": self.for_,
                "labels": {"severity": self.severity, **dict(sorted(self.labels.items()))},
                "annotations": {"summary": self.summary, "description": self.description,
                                "runbook_url": self.runbook_url}}


def runbook_base(site: SitePlan) -> str:
    """The site runbook's URL: under `monitoring.runbook_url`, or its path in the tree; as an
    annotation's template (the spec's URL may hold `{{`)."""
    rel = paths.site_runbook(site.id)
    base = site.monitoring.runbook_url
    return go_literal(f"{base.rstrip('/')}/{rel}" if base else rel)


def _steps(plan: Plan, site_id: str) -> dict[str, runbook.StepText]:
    return {s.key: s for s in runbook.build(plan).sites[site_id]}


def _url(base: str, step: runbook.StepText | None) -> str:
    return f"{base}#{runbook.step_anchor(step)}" if step is not None else base


def ingestd_alerts(plan: Plan, site: SitePlan, steps: dict[str, runbook.StepText]
                   ) -> list[Alert]:
    """IngestdDown, IngestdCrashLooping, IngestdLagStalled, for a site running ctrl_ingestd."""
    if site.ingestd is None or not plan.arrivals(site.id):
        return []
    ns, deployment = site.ingestd.namespace, ingestd_resource(plan.campaign)
    url = _url(runbook_base(site), steps.get(f"ingestd:{site.id}"))
    where = f"{ns}/{deployment}"
    site_labels = {"campaign": plan.campaign, "site": site.id}
    available = selector("kube_deployment_status_replicas_available", namespace=ns,
                         deployment=deployment)
    restarts = (f"kube_pod_container_status_restarts_total{{namespace={promql_string(ns)},"
                f"pod=~{promql_string(promql_regex(deployment) + '-[a-z0-9]+-[a-z0-9]+')},"
                f"container='ingestd'}}")
    lag = selector("drpc_ingestd_consumer_lag", campaign=plan.campaign, site=site.id)
    return [
        Alert("IngestdDown", f"{available} < 1 or absent({available})", INGESTD_DOWN_FOR,
              f"ctrl_ingestd of {plan.campaign} at {site.id} is down",
              (f"The Deployment {where} has had no available replica for {INGESTD_DOWN_FOR} "
               "(or kube-state-metrics reports no such Deployment): files arriving at "
               f"{site.id} are not ingested into its Butler."),
              url, site_labels),
        Alert("IngestdCrashLooping",
              f"increase({restarts}[{CRASHLOOP_WINDOW}]) >= {CRASHLOOP_RESTARTS}", CRASHLOOP_FOR,
              f"ctrl_ingestd of {plan.campaign} at {site.id} is restarting",
              (f"Container ingestd of pod {{{{ $labels.pod }}}} ({where}) restarted "
               f"{{{{ $value | humanize }}}} times in {CRASHLOOP_WINDOW}: read its previous log "
               f"(kubectl -n {ns} logs {{{{ $labels.pod }}}} -c ingestd --previous)."),
              url, site_labels),
        Alert("IngestdLagStalled",
              (f"{lag} > 0 and min_over_time({lag}[{LAG_WINDOW}]) > 0 "
               f"and delta({lag}[{LAG_WINDOW}]) >= 0"), LAG_FOR,
              f"ctrl_ingestd of {plan.campaign} at {site.id} is not consuming",
              (f"Consumer group lag on topic {{{{ $labels.topic }}}} is {{{{ $value }}}} "
               f"message(s) and has not gone down in {LAG_WINDOW}: transfer-done events wait "
               f"and their files are not ingested at {site.id}."),
              url, site_labels),
    ]


def rule_stuck_alert(plan: Plan, site: SitePlan, move: Move,
                     steps: dict[str, runbook.StepText]) -> Alert:
    """A move leaving this site whose Rucio rule is STUCK: the wait step says what to do."""
    stuck = selector("drpc_rule_stuck", campaign=plan.campaign, transfer=move.id)
    return Alert(
        "RucioRuleStuck", f"{stuck} == 1", RULE_STUCK_FOR,
        f"Rucio rule of {move.id} is STUCK",
        (f"The replication rule of {go_literal(move.rucio_did)} ({move.source} to "
         f"{move.destination}, {go_literal(move.destination_rse)}) has been STUCK for "
         f"{RULE_STUCK_FOR}: some files could not be copied; `rucio rule show <rule id> "
         "--examine` says why."),
        _url(runbook_base(site), steps.get(f"wait:{move.id}")),
        {"campaign": plan.campaign, "site": site.id, "transfer": move.id})


def not_ingested_alert(plan: Plan, site: SitePlan, move: Move,
                       steps: dict[str, runbook.StepText]) -> Alert:
    """A move into this site whose rule is OK but whose files are not all ingested here."""
    sent = selector("drpc_transfer_files_sent", campaign=plan.campaign, transfer=move.id)
    ingested = selector("drpc_transfer_files_ingested", campaign=plan.campaign,
                        transfer=move.id)
    ok = selector("drpc_rule_ok", campaign=plan.campaign, transfer=move.id)
    return Alert(
        "TransferNotIngested",
        f"({sent} - {ingested}) > 0 and on(campaign, transfer) {ok} == 1", NOT_INGESTED_FOR,
        f"{move.id}: files arrived at {site.id} but are not ingested",
        (f"The rule of {go_literal(move.rucio_did)} is OK, yet {{{{ $value }}}} of the files "
         f"sent are not in {site.id}'s Butler after {NOT_INGESTED_FOR}: ctrl_ingestd did not "
         "ingest them."),
        _url(runbook_base(site), steps.get(f"verify:{move.id}")),
        {"campaign": plan.campaign, "site": site.id, "transfer": move.id})


def exporter_alert(plan: Plan, site: SitePlan, steps: dict[str, runbook.StepText]) -> Alert:
    """The newest status run is too old, or none ever ran. `max by`: a file left by an older
    host or a previous run elsewhere must not keep it firing once a fresh one is scraped."""
    stamp = selector("drpc_status_timestamp_seconds", campaign=plan.campaign, site=site.id)
    minutes = STALE_AFTER_SECONDS // 60
    return Alert(
        "StatusExporterStale",
        (f"time() - max by (campaign, site) ({stamp}) > {STALE_AFTER_SECONDS} "
         f"or absent({stamp})"), STALE_FOR,
        f"drpc status of {plan.campaign} at {site.id} is stale",
        (f"{EXPORTER_SCRIPT} (timer {unit_name(plan, site.id)}.timer, every "
         f"{EXPORT_INTERVAL_MINUTES} minutes) has written no metrics for over {minutes} minutes, "
         "or never: the other drpc alerts of this site see old data or none. "
         f"`systemctl status {unit_name(plan, site.id)}.service` shows why."),
        _url(runbook_base(site), steps.get(f"monitoring:{site.id}")),
        {"campaign": plan.campaign, "site": site.id})


def watched_sources(plan: Plan, site: SitePlan) -> list[str]:
    """The `drpc status` sources the site's other alerts read: Rucio for the rules, the Butler
    for ingested counts, Kafka for ctrl_ingestd's lag."""
    out = []
    if plan.outgoing(site.id) or plan.incoming(site.id):
        out.append("rucio")
    if plan.incoming(site.id):
        out.append("butler")
    if site.ingestd is not None and plan.arrivals(site.id):
        out.append("kafka")
    return out


def source_alert(plan: Plan, site: SitePlan, steps: dict[str, runbook.StepText]
                 ) -> Alert | None:
    """A source drpc status could not read: the alerts built on it would stay silent."""
    sources = watched_sources(plan, site)
    if not sources:
        return None
    up = (f"drpc_status_source_up{{campaign={promql_string(plan.campaign)},"
          f"site={promql_string(site.id)},source=~{promql_string('|'.join(sources))}}}")
    return Alert(
        "StatusSourceDown", f"{up} == 0", SOURCE_DOWN_FOR,
        f"drpc status of {plan.campaign} at {site.id} cannot read {{{{ $labels.source }}}}",
        (f"drpc status has not been able to read {{{{ $labels.source }}}} at {site.id} for "
         f"{SOURCE_DOWN_FOR}: the alerts that read it (rucio: RucioRuleStuck and "
         "TransferNotIngested; butler: TransferNotIngested; kafka: IngestdLagStalled) cannot "
         f"fire. `drpc status <campaign file> --site {site.id}` says why."),
        _url(runbook_base(site), steps.get(f"monitoring:{site.id}")),
        {"campaign": plan.campaign, "site": site.id})


def alerts(plan: Plan, site_id: str) -> list[Alert]:
    """Every alert of a site, in a fixed order."""
    site = plan.site(site_id)
    steps = _steps(plan, site_id)
    out = ingestd_alerts(plan, site, steps)
    out += [rule_stuck_alert(plan, site, m, steps) for m in plan.outgoing(site_id)]
    out += [not_ingested_alert(plan, site, m, steps) for m in plan.incoming(site_id)]
    out.append(exporter_alert(plan, site, steps))
    source = source_alert(plan, site, steps)
    return out + ([source] if source is not None else [])


def rule_groups(plan: Plan, site_id: str) -> list[dict[str, Any]]:
    """The rule groups, as data: what both rule files hold."""
    return [{"name": f"drpc.{plan.campaign}.{site_id}",
             "rules": [a.as_rule() for a in alerts(plan, site_id)]}]


# -- rendering -------------------------------------------------------------------------------------

def campaign_file(plan: Plan) -> str:
    """The campaign file's name as the exporter's default: the header's safe form (`?` for
    anything outside `[A-Za-z0-9._/+@-]`), since the name is the one value no validation saw."""
    return safe_file_name(plan.spec_file)[0]


def _exporter(plan: Plan, site: SitePlan) -> bytes:
    env = [EnvVar("CAMPAIGN_FILE", campaign_file(plan),
                  "the campaign file this tree was compiled from, as drpc status reads it"),
           EnvVar("DRPC", "drpc", "the drpc command"),
           EnvVar("TEXTFILE_DIR", file_path(site.monitoring.textfile_dir),
                  "node_exporter's textfile collector folder")]
    reads_crosscheck = site.is_central and bool(plan.crosschecks)
    if reads_crosscheck:
        env.append(EnvVar("CROSSCHECK_RESULT", paths.CROSSCHECK_RESULT,
                          "the cross-check step's result, read once it exists"))
    prelude = shell_prelude(plan, f"drpc status exporter for {site.id} ({site.facility})", env)
    return render_template("monitoring/status-exporter.sh.j2", prelude=prelude, plan=plan,
                           site=site, metrics_file=metrics_file(plan, site.id),
                           interval=EXPORT_INTERVAL_MINUTES, unit=unit_name(plan, site.id),
                           reads_crosscheck=reads_crosscheck)


def render_site(plan: Plan, site_id: str) -> dict[str, bytes]:
    site = plan.site(site_id)
    folder = monitoring_dir(site_id)
    groups = rule_groups(plan, site_id)
    unit = unit_name(plan, site_id)
    labels = {"app.kubernetes.io/name": "drpc-alerts", "app.kubernetes.io/part-of": "drpc",
              "app.kubernetes.io/managed-by": "drpc", "drpc.lsst.io/campaign": plan.campaign,
              "drpc.lsst.io/site": site_id, **site.monitoring.rule_labels}
    textfile_dir = file_path(site.monitoring.textfile_dir)
    ctx: dict[str, Any] = {
        "plan": plan, "site": site, "groups": groups,
        "namespace": site.monitoring.namespace,  # the plan resolved it
        "rule_labels": dict(sorted(site.monitoring.rule_labels.items())),
        "object_labels": dict(sorted(labels.items())),
        "working_directory": f"{DEFAULT_TREE_DIR}/{plan.campaign}",  # [a-z0-9-]: no quoting
        "campaign_env": systemd_value(f"CAMPAIGN_FILE={campaign_file(plan)}"),
        "campaign_file": campaign_file(plan),
        "textfile_env": systemd_value(f"TEXTFILE_DIR={textfile_dir}"),
        "exporter_arg": systemd_value(f"{folder}/{EXPORTER_SCRIPT}", exec_line=True),
        "object_name": f"drpc-{plan.campaign}-{site_id}", "unit": unit,
        "exporter": f"{folder}/{EXPORTER_SCRIPT}", "interval": EXPORT_INTERVAL_MINUTES,
        "textfile_dir": textfile_dir,
        "metrics_file": metrics_file(plan, site_id), "rules_file": f"{folder}/{RULES_FILE}",
        "prometheus_rule_file": f"{folder}/{PROMETHEUS_RULE_FILE}",
    }
    what = f"for {site.id} ({site.facility})"
    return {
        f"{folder}/{RULES_FILE}": render_template(
            "monitoring/alerts.rules.yaml.j2",
            header=comment_header(plan, f"drpc alert rules (Prometheus rule file) {what}"),
            **ctx),
        f"{folder}/{PROMETHEUS_RULE_FILE}": render_template(
            "monitoring/prometheusrule.yaml.j2",
            header=comment_header(plan, f"drpc alert rules (PrometheusRule) {what}"), **ctx),
        f"{folder}/{EXPORTER_SCRIPT}": _exporter(plan, site),
        f"{folder}/{unit}.service": render_template(
            "monitoring/status.service.j2",
            header=comment_header(plan, f"drpc status exporter service {what}"), **ctx),
        f"{folder}/{unit}.timer": render_template(
            "monitoring/status.timer.j2",
            header=comment_header(plan, f"drpc status exporter timer {what}"), **ctx),
    }


def render(plan: Plan, site: str | None = None) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for s in plan.sites_to_render(site):
        files.update(render_site(plan, s.id))
    return dict(sorted(files.items()))


__all__ = ["ALERTS", "Alert", "alerts", "metrics_file", "monitoring_dir",
           "promql_string", "render", "render_site", "rule_groups",
           "unit_name"]
