"""BPS submit files for PanDA: one per stage per site (CONTRACT section 3)."""

from __future__ import annotations

import re

from ..plan import Job, Plan
from ..text import plain_lines
from .common import comment_header, render_template


def referenced_env_vars(values: list[str]) -> list[str]:
    """Environment variables a submit file needs at `bps submit` time, e.g. CTRL_BPS_PANDA_DIR."""
    return sorted({m for v in values for m in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", v)})


def render_job(plan: Plan, job: Job) -> bytes:
    """One submit file. Every value goes through the `bps`/`bps_path` filters (text.bps_value:
    YAML-escaped, and refused if BPS would expand it), and the whole file is checked for stray
    line breaks, so that no spec value can add a key that BPS reads."""
    site = plan.site(job.site)
    keys = [key for key, _ in job.overrides]
    keys += [name for label, values in job.task_overrides
             for name in (label, *(k for k, _ in values))]
    for key in keys:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"refusing to write the BPS key {key!r}")
    if not re.fullmatch(r"\$\{HOME\}/[A-Za-z0-9_./-]+", job.id_link_path):
        raise ValueError(f"refusing the idLinkPath {job.id_link_path!r}")
    content = render_template(
        "bps/submit.yaml.j2",
        header=comment_header(plan, f"BPS submit file for stage '{job.stage}' at {site.id} "
                                    f"({site.facility})"),
        plan=plan,
        job=job,
        site=site,
        project=plan.ticket or plan.campaign,
        env_vars=referenced_env_vars([*job.includes, job.pipeline_yaml, job.id_link_path]),
    )
    plain_lines(content.decode("utf-8"), job.path)
    return content


def render(plan: Plan, site: str | None = None) -> dict[str, bytes]:
    return {job.path: render_job(plan, job) for job in plan.jobs
            if site is None or job.site == site}
