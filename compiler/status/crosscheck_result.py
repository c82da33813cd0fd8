"""The cross-check comparison's result, as `sites/<central>/butler/crosscheck.py --json` wrote it.

The comparison reads whole catalogs, so the status does not run it again: it reads the JSON the
runbook's cross-check step writes (`drpc status --crosscheck FILE`). The file is checked to be
of this campaign and to cover every (tract, dataset type) the plan compares: a file of an
older compile that misses a pair, or one of another campaign, is not this comparison's result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import UsageError
from ..plan import Plan
from .model import ComparisonStatus, CrosscheckStatus

OUTCOMES = ("OK", "DIFFERS", "EMPTY", "ERROR")


def not_read(plan: Plan, site: str | None) -> CrosscheckStatus | None:
    """The cell when no result file was given (None: the campaign has no cross-check tract)."""
    if not plan.crosschecks:
        return None
    central = plan.central_site
    if site not in (None, central):
        reason = (f"compared at {central} (drpc status --site {central} --crosscheck "
                  f"{paths.CROSSCHECK_RESULT})")
    else:
        reason = (f"pass --crosscheck FILE: the JSON of {central}'s cross-check step "
                  f"(python3 {paths.crosscheck_script(central)} --json FILE)")
    return CrosscheckStatus(known=False, central=central, reason=reason)


def _comparison(item: Any) -> ComparisonStatus:
    if not isinstance(item, dict):
        raise ValueError("a comparison is not an object")
    outcome = item.get("status")
    if outcome not in OUTCOMES:
        raise ValueError(f"comparison status {outcome!r} is none of {', '.join(OUTCOMES)}")
    problems = item.get("problems") or []
    if not isinstance(problems, list):
        raise ValueError("problems is not a list")
    return ComparisonStatus(tract=int(item["tract"]), dataset_type=str(item["dataset_type"]),
                            status=outcome, problems=[str(p)[:500] for p in problems])


def read_result(plan: Plan, path: Path) -> CrosscheckStatus:
    """The result file as a status cell; a file that is not this campaign's is a usage error."""
    where = f"--crosscheck {path}"
    if not plan.crosschecks:
        raise UsageError(f"{where}: campaign {plan.campaign} has no cross-check tract")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        comparisons = [_comparison(c) for c in data.get("comparisons") or []]
        campaign = data.get("campaign")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{where}: not the JSON of crosscheck.py --json ({exc})") from None
    if campaign != plan.campaign:
        raise UsageError(f"{where}: a result of campaign {campaign!r}, not {plan.campaign}")
    wanted = {(c.tract, c.dataset_type) for c in plan.crosschecks}
    have = {(c.tract, c.dataset_type) for c in comparisons}
    missing = sorted(wanted - have)
    if missing:
        named = ", ".join(f"{t} of tract {n}" for n, t in missing[:5])
        raise UsageError(f"{where}: compares none of {named}"
                         + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                         + ": not the result of this compile's crosscheck.py (run it again)")
    mine = [c for c in comparisons if (c.tract, c.dataset_type) in wanted]
    counts = {o.lower(): sum(c.status == o for c in mine) for o in OUTCOMES}
    return CrosscheckStatus(known=True, central=plan.central_site, file=str(path),
                            ok=all(c.status == "OK" for c in mine), counts=counts,
                            comparisons=mine)


def attention_lines(result: CrosscheckStatus | None) -> list[str]:
    """Why the cross-check makes `drpc status` exit 5: every comparison that is not OK."""
    if result is None or not result.known or result.ok:
        return []
    bad = [c for c in result.comparisons if c.status != "OK"]
    return [f"cross-check at {result.central}: {c.dataset_type} of tract {c.tract} {c.status}"
            + (f": {c.problems[0]}" if c.problems else "") for c in bad]


__all__ = ["OUTCOMES", "attention_lines", "not_read", "read_result"]
