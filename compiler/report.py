"""Human and machine views of the plan: `drpc plan` and `drpc explain`."""

from __future__ import annotations

from typing import Any

from .plan import Plan, tract_predicate
from .skymap import compress_ranges


def ranges_text(tracts: tuple[int, ...] | list[int]) -> str:
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in compress_ranges(tracts)]
    return ", ".join(parts) if parts else "-"


def plan_table(plan: Plan) -> str:
    lines = [f"campaign {plan.campaign}: {plan.footprint_tract_count} tracts of {plan.skymap.name}, "
             f"central site {plan.central_site}", ""]
    est = {e.site: e for e in plan.estimates}
    head = f"{'site':<12} {'panda':<10} {'tracts':>6} {'fraction':>8} {'share':>6}"
    if est:
        head += f" {'visits':>8} {'core-hours':>12} {'days':>6} {'storage TB':>11}"
    lines += [head, "-" * len(head)]
    for s in plan.sites:
        row = f"{s.id:<12} {s.panda_site:<10} {len(s.owned_tracts):>6} {s.fraction:>8.3f} {s.share:>6.2f}"
        if s.id in est:
            e = est[s.id]
            row += f" {e.visits:>8,} {e.core_hours:>12,.0f} {e.days:>6.0f} {e.storage_tb:>11,.0f}"
        lines.append(row)
    lines.append("")
    lines.append("tracts per site:")
    for s in plan.sites:
        extra = sorted(set(s.processing_tracts) - set(s.owned_tracts))
        lines.append(f"  {s.id}: {ranges_text(s.owned_tracts)}"
                     + (f" (+ cross-check {ranges_text(extra)})" if extra else ""))
    lines += ["", "jobs (stage x site):"]
    for j in plan.jobs:
        lines.append(f"  {j.path}  [{len(j.tracts)} tracts]")
    lines += ["", "transfers:"]
    for t in plan.transfers:
        lines.append(f"  {t.kind:<10} {t.id}  -> {t.incoming_collection}")
    if not plan.transfers:
        lines.append("  (none)")
    return "\n".join(lines) + "\n"


def plan_json(plan: Plan) -> dict[str, Any]:
    est = {e.site: e for e in plan.estimates}
    return {
        "campaign": plan.campaign,
        "skymap": plan.skymap.name,
        "central_site": plan.central_site,
        "footprint_tracts": plan.footprint_tract_count,
        "deadline_days": plan.deadline_days,
        "sites": [
            {
                "id": s.id, "panda_site": s.panda_site, "tracts": len(s.owned_tracts),
                "tract_ranges": [list(r) for r in compress_ranges(s.owned_tracts)],
                "processing_tracts": len(s.processing_tracts), "fraction": round(s.fraction, 6),
                "share": s.share, "cores": s.cores, "storage_tb": s.storage_tb,
                **({"estimate": {
                    "visits": est[s.id].visits, "boundary_visits": est[s.id].boundary_visits,
                    "core_hours": round(est[s.id].core_hours, 1), "days": round(est[s.id].days, 2),
                    "storage_tb": round(est[s.id].storage_tb, 1),
                    "boundary_storage_tb": round(est[s.id].boundary_storage_tb, 1),
                }} if s.id in est else {}),
            }
            for s in plan.sites
        ],
        "jobs": [
            {"stage": j.stage, "site": j.site, "path": j.path, "tracts": len(j.tracts),
             "data_query": j.data_query, "in_collections": list(j.in_collections), "output": j.output}
            for j in plan.jobs
        ],
        "transfers": [
            {"id": t.id, "kind": t.kind, "stage": t.stage, "consumer": t.consumer,
             "dataset_type": t.dataset_type, "source": t.source, "destination": t.destination,
             "where": t.where, "rucio_did": t.rucio_did, "destination_rse": t.destination_rse,
             "incoming_collection": t.incoming_collection}
            for t in plan.transfers
        ],
    }


def explain_tract(plan: Plan, tract: int) -> str:
    sm = plan.skymap
    if not sm.is_valid_tract(tract):
        raise ValueError(f"tract {tract} is not in skymap {sm.name} (valid: 0..{sm.tract_count() - 1})")
    ra, dec = sm.tract_center(tract)
    head = f"tract {tract} of {sm.name}: centre RA {ra:.4f}, Dec {dec:.4f} (skymap ring {sm.ring_of_tract(tract)})"
    owner = plan.ownership.owner.get(tract)
    if owner is None:
        return f"{head}\nnot part of the campaign: no site owns it (outside the footprint or not listed)"
    lines = [head, f"owned by {owner} ({plan.site(owner).facility}): {plan.ownership.reason[tract]}"]
    for s in plan.sites:
        if s.id != owner and tract in s.processing_tracts:
            lines.append(f"also processed at {s.id} as a cross-check tract")
    lines.append(f"its visits are held by every site whose query matches it: "
                 f"skymap='{sm.name}' AND {tract_predicate([tract])}")
    return "\n".join(lines)


def explain_radec(plan: Plan, ra: float, dec: float) -> str:
    tract = plan.skymap.tract_at(ra, dec)
    return f"RA {ra:g}, Dec {dec:g} lies in tract {tract}\n" + explain_tract(plan, tract)
