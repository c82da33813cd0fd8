"""load -> validate -> plan -> render: the whole compile, without touching the output directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import Diagnostic, SpecError, UsageError, did_you_mean
from .loader import LoadedCampaign, load_campaign
from .plan import Plan, build_plan
from .validate import plan_errors, plan_warnings, validate_loaded


@dataclass(frozen=True)
class Compiled:
    loaded: LoadedCampaign
    plan: Plan
    warnings: tuple[Diagnostic, ...]
    files: dict[str, bytes]  # manifest included; empty when not rendered


def compile_campaign(path: str | Path, *, site: str | None = None, render: bool = True,
                     check_pipeline: bool = False) -> Compiled:
    """Compile a campaign file in memory; raise SpecError listing every problem.

    `check_pipeline` also reads `campaign.pipeline` with lsst-pipe-base (where it is installed
    and the pipeline's files are reachable) and checks every stage's subset against it.
    """
    from .emit import with_manifest
    from .render import render_all

    loaded = load_campaign(path)
    spec, warnings = validate_loaded(loaded)
    if site is not None and site not in spec.sites:
        raise UsageError(f"--site {site}: no such site in {loaded.name} "
                         f"({did_you_mean(site, spec.sites) or 'sites: ' + ', '.join(spec.sites)})")
    if check_pipeline:
        from .pipeline_check import pipeline_problems

        found = pipeline_problems(spec, loaded)
        if any(d.severity == "error" for d in found):
            raise SpecError(sorted([*found, *warnings], key=Diagnostic.sort_key))
        warnings = [*warnings, *found]
    plan = build_plan(spec, loaded)
    errors = plan_errors(plan, loaded)
    if errors:
        raise SpecError(sorted([*errors, *warnings], key=Diagnostic.sort_key))
    all_warnings = sorted([*warnings, *plan_warnings(plan, loaded)], key=Diagnostic.sort_key)
    files = with_manifest(plan, render_all(plan, site), site) if render else {}
    return Compiled(loaded, plan, tuple(all_warnings), files)


__all__ = ["Compiled", "compile_campaign", "SpecError"]
