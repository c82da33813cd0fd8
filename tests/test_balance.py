"""`drpc plan --balance`: ring boundaries that equalise finishing days, checked by pasting them back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from compiler.balance import (
    Balance,
    balance_json,
    balance_rings,
    balance_yaml,
    boundary_between,
    sky_rings,
)
from compiler.cli import cli
from compiler.cli_plan import plan_command
from compiler.pipeline import compile_campaign
from compiler.plan import Plan
from tests.helpers import CAMPAIGNS, compile_data, example_data

DR1 = CAMPAIGNS / "dr1.yaml"
cli.add_command(plan_command, "plan")


@pytest.fixture(scope="module")
def dr1() -> Plan:
    return compile_campaign(DR1, render=False).plan


@pytest.fixture(scope="module")
def dr1_balance(dr1: Plan) -> Balance:
    return balance_rings(dr1)


def days_by_hand(core_hours: float, tracts: int, total: int, cores: int) -> float:
    return core_hours * tracts / total / cores / 24


def pasted(tmp_path: Path, data: dict, yaml_text: str) -> Plan:
    """Paste the proposal under sky.assignment and compile the result."""
    rings = YAML(typ="safe").load(yaml_text)["rings"]
    data["sky"]["assignment"]["rings"] = rings
    return compile_data(tmp_path, data).plan


def test_dr1_proposal_keeps_rings_and_order(dr1: Plan, dr1_balance: Balance) -> None:
    before = [r.site for r in dr1.spec.sky.assignment.rings or []]
    assert [r.site for r in dr1_balance.rings] == before
    assert dr1_balance.rings[-1].dec_max == 30.0
    centres = [r.dec for r in sky_rings(dr1)]
    for r in dr1_balance.rings[:-1]:
        assert round(r.dec_max, 2) == r.dec_max
        below = max(c for c in centres if c < r.dec_max)
        above = min(c for c in centres if c > r.dec_max)
        assert below < r.dec_max < above
    assert sum(r.tracts for r in dr1_balance.rings) == 14121


def test_dr1_balanced_days_by_hand(dr1_balance: Balance) -> None:
    ideal = 40e6 / (6000 + 3000 + 1000 + 3000) / 24  # every core busy until the same day
    assert dr1_balance.ideal_days == pytest.approx(ideal) and round(ideal, 1) == 128.2
    for s in dr1_balance.sites:
        assert s.days == pytest.approx(days_by_hand(40e6, s.tracts, 14121, s.cores))
    assert dr1_balance.finish_days == max(s.days for s in dr1_balance.sites)
    # whole rings of ~100-240 tracts: within a few days of the ideal, far below today's 222
    assert ideal <= dr1_balance.finish_days < ideal + 5
    assert dr1_balance.finish_days < 150
    assert dr1_balance.current_finish_days == pytest.approx(days_by_hand(40e6, 5640, 14121, 3000))
    assert dr1_balance.current_bottleneck == "frdf"
    spread = max(s.days for s in dr1_balance.sites) - min(s.days for s in dr1_balance.sites)
    assert spread < 5


def test_dr1_storage_is_impossible(dr1_balance: Balance) -> None:
    assert not dr1_balance.storage_feasible
    assert dr1_balance.storage_needed_tb == 50000 and dr1_balance.storage_available_tb == 20300
    assert dr1_balance.notes[0].startswith(
        "storage cannot be met: the workload needs 50,000 TB and the sites have 20,300 TB together")


def test_pasting_the_yaml_gives_what_was_promised(tmp_path: Path, dr1_balance: Balance) -> None:
    text = balance_yaml(dr1_balance)
    assert text.splitlines()[4] == "    rings:"
    plan = pasted(tmp_path, example_data("dr1.yaml"), text)
    got = {s.id: len(s.owned_tracts) for s in plan.sites}
    assert got == {s.site: s.tracts for s in dr1_balance.sites}
    est = {e.site: e.days for e in plan.estimates}
    for s in dr1_balance.sites:
        assert est[s.site] == pytest.approx(s.days)
    # and balancing the balanced campaign changes nothing
    again = balance_rings(plan)
    assert [r.dec_max for r in again.rings] == [r.dec_max for r in dr1_balance.rings]


def test_no_single_ring_move_lowers_the_finish(dr1: Plan, dr1_balance: Balance) -> None:
    """A local optimum: moving any boundary by one skymap ring does not finish earlier."""
    rings = sky_rings(dr1)
    counts = [r.tracts for r in rings]
    edges = [0]
    for r in dr1_balance.rings:
        edges.append(edges[-1] + len([x for x in rings if r.first_ring <= x.ring <= r.last_ring]))
    cores = {s.site: s.cores for s in dr1_balance.sites}

    def finish(cuts: list[int]) -> float:
        tracts: dict[str, int] = {}
        for j, r in enumerate(dr1_balance.rings):
            tracts[r.site] = tracts.get(r.site, 0) + sum(counts[cuts[j]:cuts[j + 1]])
        return max(days_by_hand(40e6, t, 14121, cores[s]) for s, t in tracts.items())

    best = finish(edges)
    assert best == pytest.approx(dr1_balance.finish_days)
    for j in range(1, len(edges) - 1):
        for step in (-1, 1):
            moved = list(edges)
            moved[j] += step
            if moved[j - 1] < moved[j] < moved[j + 1]:
                assert finish(moved) >= best - 1e-9


def test_storage_limits_a_site(tmp_path: Path) -> None:
    data = example_data("dr1.yaml")
    caps = {"usdf": 30000, "frdf": 10000, "ukdf-lancs": 5000, "ukdf-ral": 20000}
    for site, cap in caps.items():
        data["sites"][site]["storage_tb"] = cap
    plan = compile_data(tmp_path, data).plan
    b = balance_rings(plan)
    assert b.storage_feasible
    by_site = {s.site: s for s in b.sites}
    # frdf's cores would want 3000/13000 = 0.231 of the sky, its storage allows 10000/50000 = 0.2
    assert by_site["frdf"].fraction <= 0.2
    assert by_site["frdf"].storage_tb == pytest.approx(50000 * by_site["frdf"].tracts / 14121)
    for s in b.sites:
        assert not s.over_storage, s
    assert not any("storage" in n for n in b.notes)
    # the others share the rest by cores, so frdf (held back by storage) finishes first
    assert by_site["frdf"].days == min(s.days for s in b.sites)


def test_boundary_between() -> None:
    assert boundary_between(-31.98, -30.50) == -31.24
    assert boundary_between(-0.74, 0.74) == 0.0
    assert boundary_between(1.0, 1.01) == 1.005  # too close for 2 decimals: 3
    assert boundary_between(-90.0, -88.512) == -89.26


def test_cli_yaml_and_json() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["plan", str(DR1), "--balance"])
    assert result.exit_code == 0, result.output
    doc = YAML(typ="safe").load(result.stdout)
    assert [r["site"] for r in doc["rings"]] == ["ukdf-lancs", "ukdf-ral", "frdf", "usdf"] * 2
    assert "# note: storage cannot be met" in result.stdout
    assert "#   frdf " in result.stdout and "days (was 221.9)" in result.stdout
    as_json = runner.invoke(cli, ["plan", str(DR1), "--balance", "--format", "json"])
    assert as_json.exit_code == 0
    data = json.loads(as_json.stdout)
    assert data == json.loads(json.dumps(balance_json(balance_rings(compile_campaign(DR1, render=False).plan))))
    assert data["storage_feasible"] is False and len(data["rings"]) == 8


def test_cli_explicit_tracts_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["plan", str(CAMPAIGNS / "3x2.yaml"), "--balance"])
    assert result.exit_code == 2
    assert "drpc: error: --balance moves ring boundaries, but 3x2.yaml assigns tracts explicitly " \
           "(sky.assignment.tracts); use sky.assignment.rings" in result.stderr
    assert "Traceback" not in result.output


def test_cli_without_workload_is_a_usage_error(tmp_path: Path) -> None:
    data = example_data("dr1.yaml")
    del data["workload"]
    path = tmp_path / "c" / "campaign.yaml"
    from tests.helpers import dump_yaml
    dump_yaml(data, path)
    result = CliRunner().invoke(cli, ["plan", str(path), "--balance"])
    assert result.exit_code == 2
    assert "--balance needs the campaign's workload" in result.stderr
