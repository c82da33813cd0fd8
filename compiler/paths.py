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


def rucio_register_config(site: str) -> str:
    return f"{site_dir(site)}/rucio/rucio-register.yaml"


def rucio_register_raw_config(site: str) -> str:
    return f"{site_dir(site)}/rucio/rucio-register-raw.yaml"


def manifest_helper(site: str) -> str:
    return f"{site_dir(site)}/rucio/butler-manifest.py"


def arrived_helper(site: str) -> str:
    return f"{site_dir(site)}/verify/butler-arrived.py"


def register_script(move: Move) -> str:
    return f"{site_dir(move.source)}/rucio/{move.id}.register.sh"


def rules_file(move: Move) -> str:
    return f"{site_dir(move.source)}/rucio/{move.id}.rules.json"


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


def beside(path: str) -> str:
    """The file name alone: how a script names a file in its own folder."""
    return path.rsplit("/", 1)[-1]
