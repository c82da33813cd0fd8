"""Small facts and phrases the runbooks state about a site or a move (also used by the tests)."""

from __future__ import annotations

from ..plan import Plan, RawDistribution, SitePlan, Transfer
from . import ingestd

Move = Transfer | RawDistribution


def fmt_days(days: float | None) -> str:
    if days is None:
        return "not estimated (the campaign has no `workload`)"
    return f"{days:,.1f} days" if days >= 1 else f"{days * 24:.1f} hours"


def arrives_at(plan: Plan, site_id: str) -> bool:
    """Something arrives at the site: a transfer or a raw distribution."""
    return bool(plan.arrivals(site_id))


def has_ingestd(plan: Plan, site_id: str) -> bool:
    """The site has an `ingestd/` kustomize base (the ingestd renderer's own rule)."""
    return ingestd.receives_transfers(plan, site_id) and plan.site(site_id).ingestd is not None


def outgoing_moves(plan: Plan, site_id: str) -> list[Move]:
    return [*(r for r in plan.raws if r.source == site_id), *plan.outgoing(site_id)]


def is_source(plan: Plan, site_id: str) -> bool:
    return bool(outgoing_moves(plan, site_id))


def move_what(move: Move) -> str:
    return "raws" if isinstance(move, RawDistribution) else move.dataset_type


def move_into(move: Move) -> str:
    return move.collection if isinstance(move, RawDistribution) else move.incoming_collection


def move_selection(move: Move) -> str:
    if isinstance(move, RawDistribution):
        return f"raws of the visits overlapping {move.destination}'s {len(move.tracts):,} tract(s)"
    return move.selection


def consumer_text(plan: Plan, move: Move) -> str:
    """What waits for a move at its destination, for 'do not start <this> at <site>'."""
    if isinstance(move, RawDistribution):
        return f"`{plan.stages[0].name}`"
    return {"archive": "the archival", "crosscheck": "the cross-check comparison"}.get(
        move.consumer, f"`{move.consumer}`")


def pods_command(plan: Plan, site: SitePlan) -> str:
    assert site.ingestd is not None
    return (f"kubectl -n {site.ingestd.namespace} get pods "
            f"-l drpc.lsst.io/campaign={plan.campaign},drpc.lsst.io/site={site.id}")


def logs_command(plan: Plan, site: SitePlan) -> str:
    assert site.ingestd is not None
    return (f"kubectl -n {site.ingestd.namespace} logs "
            f"-l drpc.lsst.io/campaign={plan.campaign},drpc.lsst.io/site={site.id} --tail=200")
