"""`drpc rehearse --sample N`: which tracts are sampled (pure; the rehearsal test runs one)."""

from __future__ import annotations

import pytest

from compiler.pipeline import compile_campaign
from drpc_rehearsal.sample import choose_sample
from drpc_rehearsal.visits import tract_neighbours
from tests.helpers import CAMPAIGNS


def test_dr1_sample_keeps_borders_and_the_cross_check_tract() -> None:
    plan = compile_campaign(CAMPAIGNS / "dr1.yaml", render=False).plan
    sample = choose_sample(plan, 1)
    crosscheck = {c.tract for c in plan.crosschecks}
    assert crosscheck <= sample.tracts
    for site in plan.sites:
        mine = sample.per_site[site.id]
        assert mine and set(mine) <= set(site.processing_tracts)
        assert len(set(mine) - crosscheck) <= 1
    owner = plan.ownership.owner
    assert sample.boundary_pairs >= 1 and sample.boundary_pairs == sum(
        1 for a in sample.tracts for b in tract_neighbours(plan.skymap, a)
        if a < b and b in sample.tracts and owner[a] != owner[b])
    assert sample.describe().startswith(f"sampled {len(sample.tracts)} of 14121 tracts (usdf ")
    assert choose_sample(plan, 1) == sample  # deterministic


def test_sample_needs_one_tract_at_least() -> None:
    plan = compile_campaign(CAMPAIGNS / "3x2.yaml", render=False).plan
    with pytest.raises(ValueError, match="at least 1"):
        choose_sample(plan, 0)
    assert choose_sample(plan, 2).tracts == frozenset(plan.all_tracts)
