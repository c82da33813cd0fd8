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
    assert text.splitlines()[5] == "    rings:"
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


# -- by share, kept boundaries, the one-line infeasibility ----------------------------------------

def max_share_gap(plan: Plan) -> float:
    return max(abs(s.fraction - s.share) for s in plan.sites)


def test_by_share_brings_every_site_nearest_its_share(tmp_path: Path, dr1: Plan) -> None:
    by_share = balance_rings(dr1, by="share")
    assert by_share.by == "share" and "balanced on the sites' shares" in balance_yaml(by_share)
    plan = pasted(tmp_path, example_data("dr1.yaml"), balance_yaml(by_share))
    # what it promised, recompiled; and no worse than the campaign's own rings or the days split
    assert {s.site: s.tracts for s in by_share.sites} == \
        {s.id: len(s.owned_tracts) for s in plan.sites}
    days_plan = pasted(tmp_path / "days", example_data("dr1.yaml"),
                       balance_yaml(balance_rings(dr1)))
    assert max_share_gap(plan) <= max_share_gap(dr1)
    assert max_share_gap(plan) < max_share_gap(days_plan)
    assert max_share_gap(plan) < 0.01  # whole skymap rings of ~100-300 tracts in 14,121
    # moving any one boundary by one skymap ring does not bring the worst site nearer its share
    sky = sky_rings(dr1)
    centres = [r.dec for r in sky]
    for j, ring in enumerate(by_share.rings[:-1]):
        for step in (-1, 1):
            below = max(i for i, c in enumerate(centres) if c < ring.dec_max)
            k = below + step
            if not 0 <= k < len(centres) - 1:
                continue
            moved = [dict(site=r.site, dec_max=r.dec_max) for r in by_share.rings]
            moved[j]["dec_max"] = boundary_between(centres[k], centres[k + 1])
            decs = [r["dec_max"] for r in moved]
            if decs != sorted(decs) or len(set(decs)) != len(decs):
                continue
            data = example_data("dr1.yaml")
            data["sky"]["assignment"]["rings"] = moved
            other = compile_data(tmp_path / f"m{j}{step}", data).plan
            assert max_share_gap(other) >= max_share_gap(plan) - 1e-12


def test_kept_boundaries_do_not_move_any_tract_behind_them(tmp_path: Path, dr1: Plan) -> None:
    # ukdf-lancs goes offline: its northern ring goes to ukdf-ral, every boundary but the two
    # around that ring stays (their tracts' data already sits at their sites)
    data = example_data("dr1.yaml")
    rings = data["sky"]["assignment"]["rings"]
    offline = next(i for i, r in enumerate(rings) if r["site"] == "ukdf-lancs" and i > 0)
    rings[offline]["site"] = "ukdf-ral"
    before = compile_data(tmp_path / "before", data).plan
    free = {rings[offline - 1]["dec_max"], rings[offline]["dec_max"]}
    keep = [r["dec_max"] for r in rings[:-1] if r["dec_max"] not in free]
    result = balance_rings(before, keep=keep)
    assert result.kept == tuple(sorted(keep))
    assert f"kept boundaries: {', '.join(f'{d:.2f}' for d in sorted(keep))}" in balance_yaml(result)
    after = pasted(tmp_path / "after", data, balance_yaml(result))
    proposed = [r.dec_max for r in result.rings]
    for d in keep:
        assert d in proposed
    # the two free boundaries may move: only tracts between their outer neighbours change owner
    moved = {t for t, s in before.ownership.owner.items() if after.ownership.owner.get(t) != s}
    assert moved, "the free boundaries should have moved"
    south, north = rings[offline - 2]["dec_max"], rings[offline + 1]["dec_max"]
    for t in moved:
        dec = before.skymap.tract_center(t)[1]
        assert south <= dec < north, (t, dec)


def test_a_kept_boundary_must_be_one_of_the_campaign(dr1: Plan) -> None:
    from compiler.balance import BalanceError
    with pytest.raises(BalanceError, match=r"--keep-boundary 3 is not a boundary between two "
                                           r"rings of .*dr1.yaml \(its boundaries: -68.43, "):
        balance_rings(dr1, keep=[3.0])


def test_cli_by_share_and_keep_boundary() -> None:
    result = CliRunner().invoke(cli, ["plan", str(DR1), "--balance", "--by", "share",
                                      "--keep-boundary", "-31.24", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["by"] == "share" and data["kept_boundaries"] == [-31.24]
    assert any(r["dec_max"] == -31.24 for r in data["rings"])
    alone = CliRunner().invoke(cli, ["plan", str(DR1), "--by", "share"])
    assert alone.exit_code == 2 and "use them with --balance" in alone.stderr
    wrong = CliRunner().invoke(cli, ["plan", str(DR1), "--balance", "--keep-boundary", "7"])
    assert wrong.exit_code == 2 and "--keep-boundary 7 is not a boundary" in wrong.stderr
    assert "Traceback" not in wrong.output


def test_shares_and_cores_that_cannot_meet_the_deadline_say_so_in_one_line(tmp_path: Path) -> None:
    from compiler.render.docs import plan_markdown
    from compiler.report import plan_json, plan_table
    dr1 = compile_campaign(DR1, render=False).plan
    line = ("infeasible: the shares and cores cannot meet deadline_days 150 together: frdf's "
            "share 0.4 takes 222 days at its 3,000 cores (a share of at most 0.270 fits there, "
            "or 4,445 cores); all the cores together would finish on day 128")
    assert line in plan_table(dr1).splitlines()
    assert plan_json(dr1)["infeasible"] == line
    assert "**Deadline**: Infeasible: the shares and cores" in plan_markdown(dr1)
    assert line in balance_yaml(balance_rings(dr1, by="share"))
    # by hand: 0.4 of the workload at 3,000 cores
    wl = dr1.workload
    assert wl is not None and round(wl.core_hours * 0.4 / 3000 / 24) == 222
    # a deadline no split can meet
    data = example_data("dr1.yaml")
    data["campaign"]["deadline_days"] = 100
    tight = compile_data(tmp_path, data).plan
    assert plan_json(tight)["infeasible"].startswith(
        "infeasible: no split meets deadline_days 100: all 13,000 cores together need 128 days")
    # shares that fit: nothing said
    three = compile_campaign(CAMPAIGNS / "3x2.yaml", render=False).plan
    assert plan_json(three)["infeasible"] is None and "infeasible" not in plan_table(three)
