"""Where every generated file lives in the compiled tree (CONTRACT section 3).

The renderers write these paths, the runbooks cite them and the rehearsal runs them: one
definition of each, so a runbook can never name a script that is not there.
"""

from __future__ import annotations

from .plan_model import Job, Move


def site_dir(site: str) -> str:
    return f"sites/{site}"


def site_runbook(site: str) -> str:
    return f"{site_dir(site)}/RUNBOOK.md"


def bps_submit(job: Job) -> str:
    return job.path


def setup_repo(site: str) -> str:
    return f"{site_dir(site)}/butler/setup-repo.sh"


def select_script(site: str) -> str:
    return f"{site_dir(site)}/butler/selection.py"


def inputs_script(site: str) -> str:
    return f"{site_dir(site)}/butler/inputs.py"


def crosscheck_script(central: str) -> str:
    return f"{site_dir(central)}/butler/crosscheck.py"


def visits_script(site: str) -> str:
    return f"{site_dir(site)}/butler/visits.sh"


def rucio_register_config(site: str) -> str:
    return f"{site_dir(site)}/rucio/rucio-register.yaml"


def rucio_register_raw_config(site: str) -> str:
    return f"{site_dir(site)}/rucio/rucio-register-raw.yaml"


def manifest_helper(site: str) -> str:
    return f"{site_dir(site)}/rucio/butler-manifest.py"


def rucio_datasets_helper(site: str) -> str:
    return f"{site_dir(site)}/rucio/rucio-datasets.py"


def rucio_rules_helper(site: str) -> str:
    return f"{site_dir(site)}/rucio/rucio-rules.py"


def raw_register_helper(site: str) -> str:
    return f"{site_dir(site)}/rucio/register-raws.py"


def arrived_helper(site: str) -> str:
    return f"{site_dir(site)}/verify/butler-arrived.py"


def register_script(move: Move) -> str:
    return f"{site_dir(move.source)}/rucio/{move.id}.register.sh"


def rules_file(move: Move) -> str:
    return f"{site_dir(move.source)}/rucio/{move.id}.rules.json"


def setup_rucio(central: str) -> str:
    """The Rucio admin's one script: scopes and account limits of the whole campaign."""
    return f"{site_dir(central)}/rucio/setup-rucio.sh"


def rucio_setup_helper(central: str) -> str:
    """The Python beside setup-rucio.sh that checks and makes the scopes and limits."""
    return f"{site_dir(central)}/rucio/rucio-setup.py"


def apply_rules(site: str) -> str:
    return f"{site_dir(site)}/rucio/apply-rules.sh"


def wait_script(move: Move) -> str:
    return f"{site_dir(move.source)}/rucio/wait-{move.id}.sh"


def verify_script(move: Move) -> str:
    return f"{site_dir(move.destination)}/verify/{move.id}.sh"


def ingestd_dir(site: str) -> str:
    return f"{site_dir(site)}/ingestd"


def ingestd_file(site: str, name: str) -> str:
    return f"{ingestd_dir(site)}/{name}"


#: The cross-check step's result (`crosscheck.py --json`), at the tree's root where the runbook
#: runs it; `drpc status --crosscheck` and the central site's status exporter read it.
CROSSCHECK_RESULT = "crosscheck-result.json"
MONITORING_RULES_FILE = "drpc-alerts.rules.yaml"
PROMETHEUS_RULE_FILE = "prometheusrule.yaml"
STATUS_EXPORTER_SCRIPT = "status-exporter.sh"


def monitoring_dir(site: str) -> str:
    return f"{site_dir(site)}/monitoring"


def monitoring_file(site: str, name: str) -> str:
    return f"{monitoring_dir(site)}/{name}"


def status_unit(campaign: str, site: str) -> str:
    """The status exporter's systemd unit name (service and timer): one per campaign and site
    on a host."""
    return f"drpc-status-{campaign}-{site}"


def status_metrics_file(campaign: str, site: str) -> str:
    """The exporter's file in node_exporter's textfile folder (it reads `*.prom` only)."""
    return f"drpc-status-{campaign}-{site}.prom"


def relative(script: str, target: str) -> str:
    """`target` as a script in the same site folder names it (`../butler/selection.py`)."""
    here, there = script.split("/"), target.split("/")
    assert here[:2] == there[:2], "both in one site's folder"
    return "/".join([".."] * (len(here) - 3) + there[2:])


def beside(path: str) -> str:
    """The file name alone: how a script names a file in its own folder."""
    return path.rsplit("/", 1)[-1]
