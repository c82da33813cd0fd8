"""sites/<site>/monitoring/: alert rules, PrometheusRule and the status exporter, checked by
their real consumers.

- `promtool check rules` passes on every site's rule file and on the PrometheusRule's groups,
  which are the same rules;
- `promtool test rules` proves every alert of a site both firing and not firing, on series
  shaped as `drpc status --format prometheus` and kube-state-metrics write them, with the exact
  labels and rendered annotations Alertmanager would get; and on the series the real
  `drpc status` Prometheus renderer prints for a report (the metric names are a contract);
- the PrometheusRule objects validate against prometheus-operator's CRD schema, as the
  validator @kubernetes-models/prometheus-operator generates from it (node, tests/
  k8s_models_validate.mjs; unknown fields refused as the API server's strict field validation
  does) and their metadata against Kubernetes' own ObjectMeta (kubernetes-validate, strict);
- every runbook_url points at a heading that the site's RUNBOOK.md has (parsed as Markdown);
- the exporter writes node_exporter's file atomically (`promtool check metrics` reads it),
  keeps the old one when drpc status fails, and the systemd units pass `systemd-analyze verify`.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from markdown_it import MarkdownIt

from compiler.pipeline import compile_campaign
from compiler.plan import Plan
from compiler.render import monitoring, runbook
from compiler.render.monitoring import (
    ALERTS,
    EXPORTER_SCRIPT,
    PROMETHEUS_RULE_FILE,
    RULES_FILE,
    Alert,
    alerts,
    metrics_file,
    monitoring_dir,
    unit_name,
)
from tests.helpers import bring_site_files, compile_data, example_data

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGNS = ROOT / "campaigns"
EXAMPLES = ("3x2.yaml", "dr1.yaml")
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
# prometheus-operator's CRD schema as @kubernetes-models/prometheus-operator compiles it into
# validators (5.0.1: from prometheus-operator v0.90.1's CRDs), installed by tools/bootstrap
# (npm ci in tools/mermaid-check)
K8S_MODELS_VALIDATE = ROOT / "tests" / "k8s_models_validate.mjs"
NODE_MODULES = ROOT / "tools" / "mermaid-check" / "node_modules"


_COMPILED: dict[str, tuple[Plan, dict[str, bytes]]] = {}


def compiled_example(name: str) -> tuple[Plan, dict[str, bytes]]:
    """An example campaign's plan and files, compiled once per test process."""
    if name not in _COMPILED:
        compiled = compile_campaign(CAMPAIGNS / name)
        _COMPILED[name] = (compiled.plan, compiled.files)
    return _COMPILED[name]


@pytest.fixture(params=EXAMPLES)
def example(request: pytest.FixtureRequest) -> tuple[Plan, dict[str, bytes]]:
    return compiled_example(request.param)


def site_files(files: dict[str, bytes], site: str) -> dict[str, bytes]:
    prefix = monitoring_dir(site) + "/"
    return {k[len(prefix):]: v for k, v in files.items() if k.startswith(prefix)}


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)


# -- the files -------------------------------------------------------------------------------------

def test_every_site_has_its_monitoring_files(example: tuple[Plan, dict[str, bytes]]) -> None:
    plan, files = example
    for site in plan.sites:
        unit = unit_name(plan, site.id)
        assert sorted(site_files(files, site.id)) == sorted(
            [RULES_FILE, PROMETHEUS_RULE_FILE, EXPORTER_SCRIPT, f"{unit}.service",
             f"{unit}.timer"]), site.id
        names = {a.name for a in alerts(plan, site.id)}
        has_ingestd = site.ingestd is not None and bool(plan.arrivals(site.id))
        expected = {"StatusExporterStale"}
        expected |= {"StatusSourceDown"} if plan.outgoing(site.id) or plan.incoming(site.id) \
            else set()
        expected |= {"IngestdDown", "IngestdCrashLooping", "IngestdLagStalled"} if has_ingestd \
            else set()
        expected |= {"RucioRuleStuck"} if plan.outgoing(site.id) else set()
        expected |= {"TransferNotIngested"} if plan.incoming(site.id) else set()
        assert names == expected, site.id


def test_site_only_renders_that_site(example: tuple[Plan, dict[str, bytes]]) -> None:
    plan, files = example
    site = plan.sites[-1].id
    only = monitoring.render(plan, site)
    assert only and all(p.startswith(f"sites/{site}/monitoring/") for p in only)
    assert only == {k: v for k, v in files.items() if k.startswith(f"sites/{site}/monitoring/")}


def test_rules_follow_the_plan(example: tuple[Plan, dict[str, bytes]]) -> None:
    """A stuck rule alerts at the move's source, a transfer not ingested at its destination."""
    plan, _ = example
    for site in plan.sites:
        got = alerts(plan, site.id)
        stuck = [a.labels["transfer"] for a in got if a.name == "RucioRuleStuck"]
        assert stuck == [m.id for m in plan.outgoing(site.id)]
        ingested = [a.labels["transfer"] for a in got if a.name == "TransferNotIngested"]
        assert ingested == [m.id for m in plan.incoming(site.id)]
        for a in got:
            assert a.labels["campaign"] == plan.campaign and a.labels["site"] == site.id


# -- promtool check rules ------------------------------------------------------------------------

def test_promtool_check_rules(example: tuple[Plan, dict[str, bytes]], tmp_path: Path) -> None:
    plan, files = example
    for site in plan.sites:
        mine = site_files(files, site.id)
        plain = tmp_path / f"{site.id}.rules.yaml"
        plain.write_bytes(mine[RULES_FILE])
        obj = yaml.safe_load(mine[PROMETHEUS_RULE_FILE])
        assert obj["spec"] == yaml.safe_load(mine[RULES_FILE]), "the two files differ"
        from_object = tmp_path / f"{site.id}.object.rules.yaml"
        from_object.write_text(yaml.safe_dump(obj["spec"]))
        result = run([PROMTOOL, "check", "rules", str(plain), str(from_object)])
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"SUCCESS: {len(alerts(plan, site.id))} rules found" in result.stdout


def test_promtool_check_rules_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.rules.yaml"
    bad.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: 'x >'\n")
    assert run([PROMTOOL, "check", "rules", str(bad)]).returncode != 0


# -- promtool test rules: every alert firing and not firing --------------------------------------

POD = "6d4cf56db6-x7k2p"  # a Deployment pod's name: <deployment>-<ReplicaSet hash>-<suffix>


def series(metric: str, values: str, **labels: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{metric}{{{inner}}}", "values": values}


def expand(text: str, labels: dict[str, str], value: str) -> str:
    """What Prometheus makes of the annotations' templates (the forms the rules use)."""
    text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)
    return re.sub(r"\{\{ \$value( \| humanize)? \}\}", value, text)


def expected(alert: Alert, series_labels: dict[str, str], value: str) -> dict[str, Any]:
    labels = {**series_labels, **alert.labels, "severity": alert.severity}
    rule = alert.as_rule()
    return {"exp_labels": labels,
            "exp_annotations": {k: expand(v, labels, value)
                                for k, v in rule["annotations"].items()}}


def case(alert: Alert, name: str, inputs: list[dict[str, str]], at: str,
         firing: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": f"{alert.name} {alert.labels.get('transfer', '')} {name}".strip(),
            "interval": "1m", "input_series": inputs,
            "alert_rule_test": [{"eval_time": at, "alertname": alert.name,
                                 "exp_alerts": firing}]}


def cases(plan: Plan, alert: Alert) -> list[dict[str, Any]]:
    """Input series that make `alert` fire, and ones that must not, with what fires."""
    site = plan.site(alert.labels["site"])
    campaign = plan.campaign
    if alert.name == "IngestdDown":
        assert site.ingestd is not None
        dep = {"namespace": site.ingestd.namespace, "deployment": f"ingestd-{campaign}"}
        metric = "kube_deployment_status_replicas_available"
        return [case(alert, "no replica", [series(metric, "0x20", **dep)], "10m",
                     [expected(alert, dep, "0")]),
                case(alert, "no Deployment", [series("up", "1x20", job="x")], "10m",
                     [expected(alert, dep, "1")]),
                case(alert, "one replica", [series(metric, "1x20", **dep)], "10m", []),
                case(alert, "down for less than 5m", [series(metric, "1x6 0x4", **dep)], "10m",
                     [])]
    if alert.name == "IngestdCrashLooping":
        assert site.ingestd is not None
        ns = site.ingestd.namespace
        pod = {"namespace": ns, "pod": f"ingestd-{campaign}-{POD}", "container": "ingestd"}
        other = {**pod, "pod": f"ingestd-{campaign}-b-{POD}"}  # campaign drp-...-b's pod
        metric = "kube_pod_container_status_restarts_total"
        return [case(alert, "restarting", [series(metric, "0+1x40", **pod)], "30m",
                     [expected(alert, pod, "15")]),
                case(alert, "stable", [series(metric, "4x40", **pod)], "30m", []),
                case(alert, "another campaign's pod", [series(metric, "0+1x40", **other)],
                     "30m", [])]
    if alert.name == "IngestdLagStalled":
        lag = {"campaign": campaign, "site": site.id, "topic": f"{site.rse}-{site.scope}"}
        metric = "drpc_ingestd_consumer_lag"
        return [case(alert, "stalled", [series(metric, "100x90", **lag)], "60m",
                     [expected(alert, lag, "100")]),
                case(alert, "going down", [series(metric, "100-1x90", **lag)], "60m", []),
                case(alert, "caught up", [series(metric, "0x90", **lag)], "60m", []),
                case(alert, "caught up in the window", [series(metric, "0x40 100x50", **lag)],
                     "60m", [])]
    if alert.name == "RucioRuleStuck":
        move = next(m for m in plan.moves if m.id == alert.labels["transfer"])
        rule = {"campaign": campaign, "transfer": move.id, "source": move.source,
                "destination": move.destination}
        metric = "drpc_rule_stuck"
        return [case(alert, "stuck", [series(metric, "1x40", **rule)], "30m",
                     [expected(alert, rule, "1")]),
                case(alert, "not stuck", [series(metric, "0x40", **rule)], "30m", []),
                case(alert, "stuck for 10m only", [series(metric, "0x20 1x10", **rule)], "30m",
                     []),
                case(alert, "another campaign", [series(metric, "1x40",
                                                        **{**rule, "campaign": "other"})],
                     "30m", [])]
    if alert.name == "TransferNotIngested":
        move = next(m for m in plan.moves if m.id == alert.labels["transfer"])
        dst = {"campaign": campaign, "transfer": move.id, "destination": move.destination}
        rule = {**dst, "source": move.source}

        def inputs(ingested: str, ok: str) -> list[dict[str, str]]:
            return [series("drpc_transfer_files_sent", "10x50", **dst),
                    series("drpc_transfer_files_ingested", ingested, **dst),
                    series("drpc_rule_ok", ok, **rule)]
        return [case(alert, "not ingested", inputs("7x50", "1x50"), "45m",
                     [expected(alert, dst, "3")]),
                case(alert, "all ingested", inputs("10x50", "1x50"), "45m", []),
                case(alert, "still replicating", inputs("7x50", "0x50"), "45m", []),
                case(alert, "ingested within 30m", inputs("7x20 10x30", "1x50"), "45m", [])]
    if alert.name == "StatusSourceDown":
        up = {"campaign": campaign, "site": site.id, "source": "rucio"}
        metric = "drpc_status_source_up"
        unwatched = {**up, "source": "bps"}  # no alert reads the job states
        return [case(alert, "rucio down", [series(metric, "0x30", **up)], "20m",
                     [expected(alert, up, "0")]),
                case(alert, "rucio up", [series(metric, "1x30", **up)], "20m", []),
                case(alert, "down for 10m only", [series(metric, "1x10 0x10", **up)], "20m",
                     []),
                case(alert, "bps down", [series(metric, "0x30", **unwatched)], "20m", [])]
    assert alert.name == "StatusExporterStale"
    stamp = {"campaign": campaign, "site": site.id}
    metric = "drpc_status_timestamp_seconds"
    return [case(alert, "stale", [series(metric, "0x40", **stamp)], "30m",
                 [expected(alert, stamp, "1800")]),
            case(alert, "never ran", [series("up", "1x40", job="x")], "30m",
                 [expected(alert, stamp, "1")]),
            case(alert, "fresh", [series(metric, "0+60x40", **stamp)], "30m", []),
            case(alert, "fresh, and an old file elsewhere",
                 [series(metric, "0+60x40", **stamp, instance="b:9100"),
                  series(metric, "0x40", **stamp, instance="a:9100")], "30m", []),
            case(alert, "another site's only", [series(metric, "0+60x40",
                                                       **{**stamp, "site": "elsewhere"})],
                 "30m", [expected(alert, stamp, "1")])]


def promtool_test(rules: Path, tests: list[dict[str, Any]], tmp_path: Path
                  ) -> subprocess.CompletedProcess[str]:
    spec = {"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": tests}
    path = tmp_path / f"{rules.stem}.test.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return run([PROMTOOL, "test", "rules", str(path)])


def one_rule_files(rules_yaml: bytes, folder: Path) -> list[Path]:
    """Each rule of a generated file alone in a rule file (same group name), in order: promtool
    evaluates every rule of a file in every test, which for 50 rules x 200 tests takes
    minutes; alone, each rule is tested against its own cases in a second."""
    doc = yaml.safe_load(rules_yaml)
    out = []
    for group in doc["groups"]:
        for i, rule in enumerate(group["rules"]):
            path = folder / f"{group['name']}.{i:03d}.rules.yaml"
            path.write_text(yaml.safe_dump({"groups": [{**group, "rules": [rule]}]}))
            out.append(path)
    return out


def sample(site_alerts: list[Alert]) -> set[int]:
    """Indexes of the rules to unit-test: every one of a kind, or the first and the last of a
    per-transfer kind (the same function wrote them all, for other transfers;
    test_rules_follow_the_plan checks that each transfer has its rule)."""
    by_name: dict[str, list[int]] = {}
    for i, alert in enumerate(site_alerts):
        by_name.setdefault(alert.name, []).append(i)
    return {i for found in by_name.values() for i in (found[0], found[-1])}


def test_promtool_test_rules_every_alert_fires_and_stays_quiet(tmp_path: Path) -> None:
    plan, files = compiled_example("3x2.yaml")
    seen: set[str] = set()
    test_files: list[str] = []
    for site in plan.sites:
        site_alerts = alerts(plan, site.id)
        rules = one_rule_files(site_files(files, site.id)[RULES_FILE], tmp_path)
        assert len(rules) == len(site_alerts)
        chosen = sample(site_alerts)
        for i, (alert, rule_file) in enumerate(zip(site_alerts, rules, strict=True)):
            assert yaml.safe_load(rule_file.read_text())["groups"][0]["rules"] == [
                alert.as_rule()]
            if i not in chosen:
                continue
            spec = {"rule_files": [str(rule_file)], "evaluation_interval": "1m",
                    "tests": cases(plan, alert)}
            test_file = rule_file.with_suffix(".test.yaml")
            test_file.write_text(yaml.safe_dump(spec, sort_keys=False))
            test_files.append(str(test_file))
            seen.add(alert.name)
    result = run([PROMTOOL, "test", "rules", *test_files])
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert (result.stdout + result.stderr).count("SUCCESS") == len(test_files)
    assert seen == set(ALERTS)


def test_promtool_test_rules_catches_a_wrong_expectation(tmp_path: Path) -> None:
    """The harness can fail: expecting a quiet alert to fire is reported."""
    plan, files = compiled_example("3x2.yaml")
    site = plan.central_site
    rules = tmp_path / "rules.yaml"
    rules.write_bytes(site_files(files, site)[RULES_FILE])
    stale = next(a for a in alerts(plan, site) if a.name == "StatusExporterStale")
    fresh = cases(plan, stale)[2]
    wrong = copy.deepcopy(fresh)
    wrong["alert_rule_test"][0]["exp_alerts"] = [expected(stale, dict(stale.labels), "1")]
    result = promtool_test(rules, [wrong], tmp_path)
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr


# -- the PrometheusRule object -------------------------------------------------------------------

def schema_problems(objs: list[dict[str, Any]]) -> list[list[str]]:
    """Each object's problems by the CRD schema's validator ("<path>: <problem>"), one node run
    for them all."""
    assert shutil.which("node") and (NODE_MODULES / "@kubernetes-models" / "prometheus-operator"
                                     ).is_dir(), "needs node and its packages: run tools/bootstrap"
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp, f"{i}.json") for i in range(len(objs))]
        for path, obj in zip(paths, objs, strict=True):
            path.write_text(json.dumps(obj))
        result = run(["node", str(K8S_MODELS_VALIDATE), *map(str, paths)],
                     env={**os.environ, "DRPC_NODE_MODULES": str(NODE_MODULES)}, check=False)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    lines = result.stdout.splitlines()
    out: list[list[str]] = []
    for path in paths:
        mine = [line[len(f"{path}: "):] for line in lines if line.startswith(f"{path}: ")]
        assert mine, result.stdout + result.stderr  # the checker says something of each file
        out.append([] if mine == ["ok"] else mine)
    assert (result.returncode == 1) == any(out), result.stdout
    return out


def crd_problems_each(objs: list[dict[str, Any]]) -> list[list[str]]:
    return [metadata_problems(obj, problems)
            for obj, problems in zip(objs, schema_problems(objs), strict=True)]


def crd_problems(obj: dict[str, Any]) -> list[str]:
    return crd_problems_each([obj])[0]


def metadata_problems(obj: dict[str, Any], problems: list[str]) -> list[str]:
    """`problems` plus those of the object's type and metadata."""
    if obj.get("apiVersion") != "monitoring.coreos.com/v1" or obj.get("kind") != "PrometheusRule":
        problems.append("not a monitoring.coreos.com/v1 PrometheusRule")
    # metadata: `type: object` in the CRD; the API server checks it as every ObjectMeta
    holder = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]}
    try:
        kubernetes_validate.validate(holder, kubernetes_validate.latest_version(), strict=True)
    except kubernetes_validate.ValidationError as exc:
        problems.append(f"metadata: {exc}")
    return problems


def test_prometheusrule_validates_against_the_crd(example: tuple[Plan, dict[str, bytes]]
                                                  ) -> None:
    plan, files = example
    objs = [yaml.safe_load(site_files(files, site.id)[PROMETHEUS_RULE_FILE]) for site in plan.sites]
    assert len(objs) > 1
    assert dict(zip([s.id for s in plan.sites], crd_problems_each(objs), strict=True)) == {
        site.id: [] for site in plan.sites}


@pytest.mark.parametrize("damage, found", [
    (lambda o: o["spec"]["groups"][0]["rules"][0].update({"expr": ["up == 0"]}),
     "/spec/groups/0/rules/0/expr: must match a schema in \"anyOf\""),
    (lambda o: o["spec"]["groups"][0]["rules"][0].update({"for": "5 minutes"}),
     "/spec/groups/0/rules/0/for: must match pattern"),
    (lambda o: o["spec"]["groups"][0]["rules"][0].update({"severity": "page"}),
     "/spec/groups/0/rules/0/severity: unknown field"),
    (lambda o: o["spec"]["groups"][0].pop("name"), "/spec/groups/0: must have required property"),
    (lambda o: o.update({"kind": "ConfigMap"}), "/kind: must be equal to one of the allowed values"),
    (lambda o: o["metadata"].update({"lables": {"x": "y"}}), "/metadata/lables: unknown field"),
    (lambda o: o["metadata"].update({"lables": {"x": "y"}}), "metadata: "),  # kubernetes-validate
])
def test_crd_validation_can_fail(damage: Any, found: str) -> None:
    plan, files = compiled_example("3x2.yaml")
    obj = yaml.safe_load(site_files(files, plan.central_site)[PROMETHEUS_RULE_FILE])
    damage(obj)
    assert any(found in p for p in crd_problems(obj))


def test_site_settings_reach_the_files(tmp_path: Path) -> None:
    """rule_labels, namespace, runbook_url and textfile_dir of sites.<id>.monitoring."""
    data = example_data("3x2.yaml")
    site = next(iter(data["sites"]))
    data["sites"][site]["monitoring"] = {
        "rule_labels": {"release": "kube-prometheus-stack", "true": "yes"},
        "namespace": "monitoring",
        "runbook_url": "https://git.example.org/drp/tree/main/out/",
        "textfile_dir": "file:///srv/node_exporter/textfile",
    }
    compiled = compile_data(tmp_path, data, render=True)
    mine = site_files(compiled.files, site)
    obj = yaml.safe_load(mine[PROMETHEUS_RULE_FILE])
    assert obj["metadata"]["namespace"] == "monitoring"
    assert obj["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert obj["metadata"]["labels"]["true"] == "yes"  # read back as strings, not booleans
    assert crd_problems(obj) == []
    for group in obj["spec"]["groups"]:
        for rule in group["rules"]:
            assert rule["annotations"]["runbook_url"].startswith(
                f"https://git.example.org/drp/tree/main/out/sites/{site}/RUNBOOK.md")
    assert b"TEXTFILE_DIR=/srv/node_exporter/textfile" in mine[EXPORTER_SCRIPT]
    # another site keeps the defaults: ctrl_ingestd's namespace, the runbook's path in the tree
    other = next(s for s in compiled.plan.sites if s.id != site and s.ingestd is not None)
    theirs = yaml.safe_load(site_files(compiled.files, other.id)[PROMETHEUS_RULE_FILE])
    assert other.ingestd is not None
    assert theirs["metadata"]["namespace"] == other.ingestd.namespace
    url = theirs["spec"]["groups"][0]["rules"][0]["annotations"]["runbook_url"]
    assert url.startswith(f"sites/{other.id}/RUNBOOK.md")


# -- runbook links -------------------------------------------------------------------------------

def heading_anchors(markdown: str) -> set[str]:
    """GitHub's anchors of every heading: its text as a Markdown parser reads it (no code
    marks), lowercase, punctuation but `-`/`_` dropped, spaces made `-`."""
    tokens = MarkdownIt().parse(markdown)
    anchors: set[str] = set()
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            inline = tokens[i + 1]
            text = "".join(c.content for c in inline.children or []
                           if c.type in ("text", "code_inline"))
            anchors.add(re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-"))
    return anchors


def test_runbook_urls_point_at_runbook_steps(example: tuple[Plan, dict[str, bytes]]) -> None:
    plan, files = example
    for site in plan.sites:
        runbook_path = f"sites/{site.id}/RUNBOOK.md"
        anchors = heading_anchors(files[runbook_path].decode())
        for alert in alerts(plan, site.id):
            path, _, anchor = alert.runbook_url.partition("#")
            assert path == runbook_path
            assert anchor in anchors, (alert.name, alert.runbook_url)
            number = int(anchor.split("-", 1)[0])
            kind = {"RucioRuleStuck": "wait", "TransferNotIngested": "verify",
                    "StatusExporterStale": "monitoring", "StatusSourceDown": "monitoring"}.get(
                alert.name, "ingestd")
            step = next(s for s in plan.schedule.sites[site.id] if s.number == number)
            assert step.kind == kind, (alert.name, anchor)
            if "transfer" in alert.labels:
                assert step.move is not None and step.move.id == alert.labels["transfer"]


# -- the exporter ----------------------------------------------------------------------------------

METRICS = """\
# HELP drpc_status_timestamp_seconds Unix time of the last drpc status run.
# TYPE drpc_status_timestamp_seconds gauge
drpc_status_timestamp_seconds{campaign="drp-3x2",site="SITE"} 1.7e+09
"""


def fake_drpc(tmp_path: Path, exit_code: int, output: str) -> Path:
    """Stands in for `drpc status` (its Prometheus format is another module's to test): prints
    `output`, records its arguments, exits `exit_code`."""
    tool = tmp_path / f"drpc-{exit_code}"
    tool.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        printf '%s\\n' "$@" > {tmp_path}/args
        cat <<'METRICS'
        {textwrap.indent(output, '        ').strip()}
        METRICS
        exit {exit_code}
        """))
    tool.chmod(0o755)
    return tool


def run_exporter(files: dict[str, bytes], plan: Plan, site: str, tmp_path: Path, drpc: Path,
                 textfile: Path, **env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / EXPORTER_SCRIPT
    script.write_bytes(site_files(files, site)[EXPORTER_SCRIPT])
    return run(["bash", str(script)], env={**os.environ, "DRPC": str(drpc),
                                           "TEXTFILE_DIR": str(textfile),
                                           "CAMPAIGN_FILE": "campaign.yaml", **env})


def test_exporter_shellcheck(example: tuple[Plan, dict[str, bytes]], tmp_path: Path) -> None:
    plan, files = example
    shellcheck = Path(ROOT / ".venv" / "bin" / "shellcheck")
    for site in plan.sites:
        script = tmp_path / f"{site.id}.sh"
        script.write_bytes(site_files(files, site.id)[EXPORTER_SCRIPT])
        result = run([str(shellcheck), "-x", str(script)])
        assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("exit_code", [0, 5])
def test_exporter_writes_the_metrics_atomically(tmp_path: Path, exit_code: int) -> None:
    plan, files = compiled_example("3x2.yaml")
    site = plan.sites[1].id
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    output = METRICS.replace("SITE", site)
    result = run_exporter(files, plan, site, tmp_path,
                          fake_drpc(tmp_path, exit_code, output), textfile)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "args").read_text().split() == ["status", "campaign.yaml", "--site", site,
                                                       "--format", "prometheus"]
    assert [p.name for p in textfile.iterdir()] == [metrics_file(plan, site)]
    target = textfile / metrics_file(plan, site)
    assert target.read_text() == output
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=target.read_text(),
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_central_exporter_passes_the_cross_check_result_once_it_exists(tmp_path: Path) -> None:
    """dr1 has a cross-check tract: usdf's exporter adds --crosscheck FILE only when the
    runbook's cross-check step has written it (the real drpc status reads it: see
    tests/test_crosscheck.py)."""
    plan, files = compiled_example("dr1.yaml")
    site = plan.central_site
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    output = METRICS.replace("SITE", site)
    result = tmp_path / "crosscheck-result.json"
    for exists in (False, True):
        if exists:
            result.write_text("{}")
        ran = run_exporter(files, plan, site, tmp_path, fake_drpc(tmp_path, 0, output), textfile,
                           CROSSCHECK_RESULT=str(result))
        assert ran.returncode == 0, ran.stderr
        args = ["status", "campaign.yaml", "--site", site, "--format", "prometheus"]
        assert (tmp_path / "args").read_text().split() == (
            [*args, "--crosscheck", str(result)] if exists else args)
    # a site that compares nothing has no such option
    other = plan.sites[1].id
    assert b"CROSSCHECK_RESULT" not in site_files(files, other)[EXPORTER_SCRIPT]


@pytest.mark.parametrize("exit_code, output", [(1, "drpc_status_timestamp_seconds 1\n"),
                                                (0, "# nothing\n")])
def test_exporter_keeps_the_old_file_on_failure(tmp_path: Path, exit_code: int,
                                                 output: str) -> None:
    plan, files = compiled_example("3x2.yaml")
    site = plan.sites[0].id
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    target = textfile / metrics_file(plan, site)
    target.write_text("old\n")
    result = run_exporter(files, plan, site, tmp_path,
                          fake_drpc(tmp_path, exit_code, output), textfile)
    assert result.returncode != 0
    assert "left as it was" in result.stderr
    assert [p.name for p in textfile.iterdir()] == [target.name]  # no temporary file left
    assert target.read_text() == "old\n"


def test_exporter_dry_run_writes_nothing(tmp_path: Path) -> None:
    plan, files = compiled_example("3x2.yaml")
    site = plan.sites[0].id
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    drpc = fake_drpc(tmp_path, 0, METRICS)
    result = run_exporter(files, plan, site, tmp_path, drpc, textfile, DRY_RUN="1")
    assert result.returncode == 0, result.stderr
    assert f"{drpc} status campaign.yaml --site {site} --format prometheus" in result.stdout
    assert not list(textfile.iterdir()) and not (tmp_path / "args").exists()


def test_systemd_units_verify(example: tuple[Plan, dict[str, bytes]], tmp_path: Path) -> None:
    plan, files = example
    for site in plan.sites:
        unit = unit_name(plan, site.id)
        mine = site_files(files, site.id)
        folder = tmp_path / site.id
        folder.mkdir()
        for suffix in (".service", ".timer"):
            (folder / f"{unit}{suffix}").write_bytes(mine[f"{unit}{suffix}"])
        result = run([SYSTEMD_ANALYZE, "verify", f"{unit}.service", f"{unit}.timer"],
                     cwd=folder)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        service = mine[f"{unit}.service"].decode()
        assert f'ExecStart=/bin/bash "{monitoring_dir(site.id)}/{EXPORTER_SCRIPT}"' in service


def test_systemd_verify_can_fail(tmp_path: Path) -> None:
    (tmp_path / "x.service").write_text("[Service]\nType=oneshot\nExecStart=/bin/true\n"
                                        "TimeoutStartSec=soon\n")
    result = run([SYSTEMD_ANALYZE, "verify", "x.service"], cwd=tmp_path)
    assert result.stderr != ""


def test_hostile_site_settings_stay_literal(tmp_path: Path) -> None:
    """Go template actions, systemd specifiers and shell syntax in the spec's URL and folder reach
    Alertmanager, systemd and bash as the literal text (promtool renders the annotations)."""
    url = "https://h/{{query}}/{{.}}/%n$HOME\\x"
    folder = "/srv/t%n$(id)\\x"
    data = example_data("3x2.yaml")
    site = next(iter(data["sites"]))
    data["sites"][site]["monitoring"] = {"runbook_url": url, "textfile_dir": folder}
    compiled = compile_data(tmp_path, data, render=True)
    plan, mine = compiled.plan, site_files(compiled.files, site)
    rules = tmp_path / "rules.yaml"
    rules.write_bytes(mine[RULES_FILE])
    stale = next(a for a in alerts(plan, site) if a.name == "StatusExporterStale")
    never = cases(plan, stale)[1]
    step = next(s for s in runbook.build(plan).sites[site] if s.kind == "monitoring")
    never["alert_rule_test"][0]["exp_alerts"][0]["exp_annotations"]["runbook_url"] = (
        f"{url}/sites/{site}/RUNBOOK.md#{runbook.step_anchor(step)}")
    result = promtool_test(rules, [never], tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    # systemd: no warning, and the value is written as systemd reads it back
    unit = unit_name(plan, site)
    for suffix in (".service", ".timer"):
        (tmp_path / f"{unit}{suffix}").write_bytes(mine[f"{unit}{suffix}"])
    verify = run([SYSTEMD_ANALYZE, "verify", f"{unit}.service"], cwd=tmp_path)
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr
    assert 'Environment="TEXTFILE_DIR=/srv/t%%n$(id)\\\\x"' in mine[f"{unit}.service"].decode()
    # bash: the exporter writes into exactly that folder
    textfile = tmp_path / folder.lstrip("/")
    textfile.mkdir(parents=True)
    output = METRICS.replace("SITE", site)
    script = tmp_path / EXPORTER_SCRIPT
    script.write_bytes(mine[EXPORTER_SCRIPT])
    env = {k: v for k, v in os.environ.items() if k != "TEXTFILE_DIR"}
    result = run(["bash", str(script)], cwd=tmp_path,
                 env={**env, "DRPC": str(fake_drpc(tmp_path, 0, output))})
    assert result.returncode != 0 and f"no folder {folder}" in result.stderr  # the spec's path
    result = run(["bash", str(script)], cwd=tmp_path,
                 env={**env, "DRPC": str(fake_drpc(tmp_path, 0, output)),
                      "TEXTFILE_DIR": str(textfile)})
    assert result.returncode == 0, result.stderr
    assert (textfile / metrics_file(plan, site)).read_text() == output


# -- the contract with `drpc status --format prometheus` -------------------------------------------

def status_series(plan: Plan, site: str, *, stuck: bool, ingested: int, lag: int,
                  rucio_up: bool = True) -> list[dict[str, str]]:
    """What the real `drpc status --site` renderer prints for a report of this site (one
    outgoing and one incoming move), as promtool input series held for 60 minutes."""
    from compiler.status import render_prometheus
    from compiler.status.model import (
        ArrivalStatus,
        LagStatus,
        LockCounts,
        RuleStatus,
        SourceStatus,
        StatusReport,
        TransferStatus,
    )

    def transfer(move: Any, state: str, sent: int, arrived: int) -> TransferStatus:
        return TransferStatus(
            id=move.id, kind=move.kind, stage=move.stage, dataset_type=move.dataset_type,
            source=move.source, destination=move.destination, rucio_did=move.rucio_did,
            rule=RuleStatus(known=True, rule_id="0" * 32, state=state,
                            locks=LockCounts(ok=sent, replicating=0, stuck=0),
                            files_sent=sent),
            arrival=ArrivalStatus(known=True, collection="c", ingested=arrived))

    out_move, in_move = plan.outgoing(site)[0], plan.incoming(site)[0]
    topic = sorted(monitoring_topics(plan, site))[0]
    # model_construct: only the fields the Prometheus renderer reads (the report's other parts
    # are the status module's to test)
    fields: dict[str, Any] = {
        "campaign": plan.campaign, "spec_sha256": "0" * 64, "drpc_version": "test",
        "generated_at": 0.0, "site": site,
        "sources": [SourceStatus(source="rucio", site=site, up=rucio_up),
                    SourceStatus(source="butler", site=site, up=True),
                    SourceStatus(source="kafka", site=site, up=True)],
        "jobs": [], "transfers": [transfer(out_move, "STUCK" if stuck else "OK", 4, 4),
                                  transfer(in_move, "OK", 10, ingested)],
        "lag": [LagStatus(site=site, group_id="g", topic=topic, known=True, lag=lag)],
        "sites": [], "attention": []}
    report = StatusReport.model_construct(**fields)
    lines = [ln for ln in render_prometheus(report).splitlines() if ln and ln[0] != "#"]
    return [{"series": ln.rsplit(" ", 1)[0], "values": f"{ln.rsplit(' ', 1)[1]}x60"}
            for ln in lines]


def monitoring_topics(plan: Plan, site: str) -> set[str]:
    from compiler.render.ingestd import ingestd_config
    return set(ingestd_config(plan, site)["topics"])


def test_rules_read_what_drpc_status_prints(tmp_path: Path) -> None:
    """Series from the real Prometheus renderer of `drpc status` fire the alerts with the
    labels the rules expect, and a healthy report fires none of them."""
    plan, files = compiled_example("3x2.yaml")
    site = next(s.id for s in plan.sites if plan.outgoing(s.id) and plan.incoming(s.id)
                and plan.site(s.id).ingestd is not None)
    rules = tmp_path / "rules.yaml"
    rules.write_bytes(site_files(files, site)[RULES_FILE])
    by_key = {(a.name, a.labels.get("transfer")): a for a in alerts(plan, site)}
    out_move, in_move = plan.outgoing(site)[0], plan.incoming(site)[0]
    topic = sorted(monitoring_topics(plan, site))[0]
    stuck = by_key[("RucioRuleStuck", out_move.id)]
    missing = by_key[("TransferNotIngested", in_move.id)]
    stalled = by_key[("IngestdLagStalled", None)]
    down = by_key[("StatusSourceDown", None)]
    bad = status_series(plan, site, stuck=True, ingested=7, lag=100)
    good = status_series(plan, site, stuck=False, ingested=10, lag=0)
    blind = status_series(plan, site, stuck=False, ingested=10, lag=0, rucio_up=False)
    ends = {"source": out_move.source, "destination": out_move.destination}

    def test(name: str, inputs: list[dict[str, str]], alert: Alert,
             firing: list[dict[str, Any]]) -> dict[str, Any]:
        return {"name": name, "interval": "1m", "input_series": inputs,
                "alert_rule_test": [{"eval_time": "50m", "alertname": alert.name,
                                     "exp_alerts": firing}]}
    tests = [
        test("stuck", bad, stuck, [expected(stuck, {"campaign": plan.campaign,
                                                    "transfer": out_move.id, **ends}, "1")]),
        test("not ingested", bad, missing, [expected(missing, {
            "campaign": plan.campaign, "transfer": in_move.id,
            "destination": in_move.destination}, "3")]),
        test("lag stalled", bad, stalled, [expected(stalled, {
            "campaign": plan.campaign, "site": site, "topic": topic}, "100")]),
        test("rucio down", blind, down, [expected(down, {
            "campaign": plan.campaign, "site": site, "source": "rucio"}, "0")]),
        *[test(f"healthy: {a.name}", good, a, [])
          for a in (stuck, missing, stalled, down)],
    ]
    result = promtool_test(rules, tests, tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


def test_exporter_runs_the_real_drpc_status(tmp_path: Path) -> None:
    """The exporter with the real `drpc status` (registered in the CLI): with no service
    reachable from here, every source is `unknown`, and the file node_exporter reads still holds
    the timestamp and the sources' up series, which promtool accepts."""
    plan, files = compiled_example("3x2.yaml")
    site = plan.sites[1].id
    bring_site_files(tmp_path)
    shutil.copy(CAMPAIGNS / "3x2.yaml", tmp_path / "campaign.yaml")
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    script = tmp_path / EXPORTER_SCRIPT
    script.write_bytes(site_files(files, site)[EXPORTER_SCRIPT])
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUCIO")}
    result = subprocess.run(
        ["bash", str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**env, "DRPC": str(ROOT / ".venv" / "bin" / "drpc"), "TEXTFILE_DIR": str(textfile),
             "CAMPAIGN_FILE": str(tmp_path / "campaign.yaml"), "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    text = (textfile / metrics_file(plan, site)).read_text()
    assert f'drpc_status_timestamp_seconds{{campaign="drp-3x2",site="{site}"}}' in text
    assert 'drpc_status_source_up{' in text and 'source="rucio"' in text
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
