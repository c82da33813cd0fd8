"""RUNBOOK.md and sites/<site>/RUNBOOK.md: every generated script cited exactly once, in an order
that works, with the sync points, explicit waits for other sites and per-phase durations.

The list of scripts and the order rules are derived here from the plan and `paths` alone (not
from the runbook renderer), so a runbook that forgets, repeats or misplaces a step fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compiler import paths
from compiler.pipeline import compile_campaign
from compiler.plan import Move, Plan
from compiler.render import runbook
from compiler.render.common import GENERATED
from tests.helpers import CAMPAIGNS, MINIMAL, compile_data, example_data, write

EXAMPLES = ("3x2.yaml", "dr1.yaml")
CODE_SPAN = re.compile(r"`([^`\n]+)`")


# -- what the runbooks must cite, and in which order (from the plan and paths.py only) ------------

def moves(plan: Plan) -> tuple[Move, ...]:
    return plan.moves


def expected_scripts(plan: Plan) -> dict[str, str]:
    """Every generated script (and the ingestd directory) a runbook must cite -> the site running it."""
    out: dict[str, str] = {}
    for s in plan.sites:
        out[paths.setup_repo(s.id)] = s.id
        out[paths.visits_script(s.id)] = s.id
        out[paths.inputs_script(s.id)] = s.id
        if plan.incoming(s.id) or any(r.destination == s.id for r in plan.raws):
            out[paths.ingestd_dir(s.id)] = s.id
        if any(m.source == s.id for m in moves(plan)):
            out[paths.apply_rules(s.id)] = s.id
    for m in moves(plan):
        out[paths.register_script(m)] = m.source
        out[paths.wait_script(m)] = m.source
        out[paths.verify_script(m)] = m.destination
    for j in plan.jobs:  # cited where it is submitted: the central site for a remote build
        out[paths.bps_submit(j)] = j.submitted_from
    return out


def order_rules(plan: Plan) -> list[tuple[str, str, str]]:
    """(must come first, must come later, why)."""
    jobs = {(j.stage, j.site): paths.bps_submit(j) for j in plan.jobs}
    first_stage = plan.stages[0].name
    rules: list[tuple[str, str, str]] = []
    for s in plan.sites:
        for path, site in expected_scripts(plan).items():
            if site == s.id and path != paths.setup_repo(s.id):
                rules.append((paths.setup_repo(s.id), path, "the repository is set up first"))
    for m in moves(plan):
        reg, wait, ver = paths.register_script(m), paths.wait_script(m), paths.verify_script(m)
        rules.append((paths.apply_rules(m.source), reg, "apply-rules before any register of its site"))
        if plan.incoming(m.destination) or m.is_raw:
            rules.append((paths.ingestd_dir(m.destination), reg, "ingestd runs where it arrives"))
        rules += [(reg, wait, "register before wait"), (wait, ver, "wait before verify")]
        if m.is_input:
            installs = paths.inputs_script(m.destination)
            rules += [(paths.inputs_script(m.source), reg, "inputs checked (manifest) first"),
                      (ver, installs, "inputs verified before they are installed"),
                      (installs, jobs[(first_stage, m.destination)], "inputs before stage 1")]
        elif m.is_raw:
            visits = paths.visits_script(m.destination)
            rules += [(ver, visits, "raws verified before the visits are selected"),
                      (visits, jobs[(first_stage, m.destination)], "whole visits before stage 1")]
        else:
            rules.append((jobs[(m.stage, m.source)], reg, "producer before register"))
            if (m.sink.stage, m.destination) in jobs:
                rules.append((ver, jobs[(m.sink.stage, m.destination)], "verify before the consumer"))
    return rules


def citations(text: str, path: str) -> list[int]:
    """Offsets of the inline code spans citing `path` as a whole word (`path`, `bps submit path`)."""
    return [m.start() for m in CODE_SPAN.finditer(text) if path in m.group(1).split()]


def order_violations(text: str, rules: list[tuple[str, str, str]]) -> list[str]:
    """Rules broken by the first citations in `text`; a rule naming an uncited path is skipped."""
    broken = []
    for first, later, why in rules:
        a, b = citations(text, first), citations(text, later)
        if a and b and a[0] > b[0]:
            broken.append(f"{first} after {later} ({why})")
    return broken


def site_rules(plan: Plan, site: str) -> list[tuple[str, str, str]]:
    owner = expected_scripts(plan)
    return [r for r in order_rules(plan) if owner.get(r[0]) == site and owner.get(r[1]) == site]


@pytest.fixture(scope="module", params=EXAMPLES)
def compiled(request: pytest.FixtureRequest) -> tuple[Plan, dict[str, str]]:
    plan = compile_campaign(CAMPAIGNS / request.param, render=False).plan
    return plan, {k: v.decode() for k, v in runbook.render(plan).items()}


# -- the checkers can fail ----------------------------------------------------------------------------

def test_citation_counter_and_order_checker_on_a_small_text() -> None:
    text = "run `a/x.sh` then `bps submit a/b.yaml`; not `a/x.sh.bak` nor a/x.sh bare\n"
    assert citations(text, "a/x.sh") == [4]
    assert len(citations(text, "a/b.yaml")) == 1
    assert order_violations(text, [("a/x.sh", "a/b.yaml", "x")]) == []
    assert order_violations(text, [("a/b.yaml", "a/x.sh", "y")]) == ["a/b.yaml after a/x.sh (y)"]


def _swap_lines(text: str, p1: str, p2: str) -> str:
    lines = text.split("\n")
    i = next(n for n, line in enumerate(lines) if citations(line, p1))
    j = next(n for n, line in enumerate(lines) if citations(line, p2))
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def test_order_checker_catches_shuffled_steps() -> None:
    plan = compile_campaign(CAMPAIGNS / "dr1.yaml", render=False).plan
    text = runbook.render(plan)["RUNBOOK.md"].decode()
    rules = order_rules(plan)
    assert order_violations(text, rules) == []
    gather = next(t for t in plan.transfers if t.kind == "gather")
    # a register moved below its verify
    bad = _swap_lines(text, paths.register_script(gather), paths.verify_script(gather))
    assert any("register before wait" in v for v in order_violations(bad, rules))
    # the consuming stage's submit file moved above the verify that guards it
    fgcm = next(j for j in plan.jobs if j.stage == gather.sink.stage)
    bad = _swap_lines(text, paths.verify_script(gather), paths.bps_submit(fgcm))
    assert any("verify before the consumer" in v for v in order_violations(bad, rules))
    # the visit selection at a site above its raw verify
    raw = plan.raws[0]
    bad = _swap_lines(text, paths.verify_script(raw), paths.visits_script(raw.destination))
    assert any("raws verified before the visits are selected" in v for v in order_violations(bad, rules))
    # a step cited twice is caught by the count
    line = next(ln for ln in text.split("\n") if citations(ln, paths.wait_script(gather)))
    assert len(citations(text + line, paths.wait_script(gather))) == 2


# -- the runbooks of the example campaigns ----------------------------------------------------------

def test_campaign_runbook_cites_every_script_once_in_order(compiled: tuple[Plan, dict[str, str]]) -> None:
    plan, files = compiled
    text = files["RUNBOOK.md"]
    counts = {path: len(citations(text, path)) for path in expected_scripts(plan)}
    assert {p: n for p, n in counts.items() if n != 1} == {}
    assert order_violations(text, order_rules(plan)) == []


def test_site_runbooks_cite_their_own_scripts_once_in_order(compiled: tuple[Plan, dict[str, str]]) -> None:
    plan, files = compiled
    owner = expected_scripts(plan)
    assert sorted(files) == sorted(["RUNBOOK.md", *(paths.site_runbook(s.id) for s in plan.sites)])
    for site in plan.sites:
        text = files[paths.site_runbook(site.id)]
        counts = {path: len(citations(text, path)) for path in owner}
        wanted = {path: (1 if s == site.id else 0) for path, s in owner.items()}
        assert counts == wanted, site.id
        assert order_violations(text, site_rules(plan, site.id)) == [], site.id


def test_sync_points_are_written_out(compiled: tuple[Plan, dict[str, str]]) -> None:
    plan, files = compiled
    text = files["RUNBOOK.md"]
    for m in moves(plan):
        if m.is_raw:
            guarded = f"`{plan.stages[0].name}`"
        else:
            guarded = {"archive": "the archival", "crosscheck": "the cross-check comparison",
                       "inputs": "the installation of the inputs"}.get(
                m.sink.kind, f"`{m.sink.stage}`")
        head = f"Do not start {guarded} at {m.destination} until"
        blocks = [text[i.start():].split("\n\n", 1)[0] for i in re.finditer(re.escape(head), text)]
        assert any(citations(b, paths.wait_script(m)) and citations(b, paths.verify_script(m))
                   for b in blocks), m.id


def _step_sections(text: str) -> list[tuple[int, str]]:
    parts = re.split(r"^### (\d+)\. ", text, flags=re.MULTILINE)
    return [(int(parts[i]), parts[i + 1]) for i in range(1, len(parts), 2)]


def test_site_runbooks_wait_explicitly_for_other_sites(compiled: tuple[Plan, dict[str, str]]) -> None:
    plan, files = compiled
    sections = {s.id: _step_sections(files[paths.site_runbook(s.id)]) for s in plan.sites}

    def step_of(site: str, path: str) -> int:
        return next(n for n, body in sections[site] if citations(body, path))

    numbers = {s.id: [n for n, _ in sections[s.id]] for s in plan.sites}
    assert all(ns == list(range(1, len(ns) + 1)) for ns in numbers.values())
    for m in moves(plan):
        wait_n = step_of(m.source, paths.wait_script(m))
        verify_n = step_of(m.destination, paths.verify_script(m))
        waits = [body for n, body in sections[m.destination] if n < verify_n
                 and body.startswith(f"Wait for {m.source}\n") and f"its step {wait_n}:" in body]
        assert waits, f"{m.destination} does not wait for step {wait_n} of {m.source} before {m.id}"
        # ... and the source is told who waits for its wait script
        body = dict(sections[m.source])[wait_n]
        assert f"**{m.destination} waits for this**" in body


def test_site_runbook_states_the_datastore_relation(compiled: tuple[Plan, dict[str, str]]) -> None:
    plan, files = compiled
    for site in plan.sites:
        text = files[paths.site_runbook(site.id)]
        assert "`<rse_root>/<scope>`" in text
        assert f"`{site.rse_root.rstrip('/')}/{site.scope}`" in text
        assert f"butler config-dump {site.butler_repo} --subset .datastore.root" in text
        assert f"it prints `{site.datastore_root}`" in text


def test_headers_and_determinism(compiled: tuple[Plan, dict[str, str]]) -> None:
    plan, files = compiled
    for text in files.values():
        assert text.startswith("<!--\n") and GENERATED in text.split("-->")[0]
        assert plan.spec_sha256 not in text  # rev 2: the manifest keeps it
        assert "\n\n\n" not in text and text.endswith("\n") and not text.endswith("\n\n")
    again = {k: v.decode() for k, v in runbook.render(plan).items()}
    assert again == files
    one = plan.sites[1].id
    assert runbook.render(plan, one) == {paths.site_runbook(one): files[paths.site_runbook(one)].encode()}


def _phase_sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## (Phase \d+: .*)$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_dr1_runbook_shows_per_phase_durations() -> None:
    plan = compile_campaign(CAMPAIGNS / "dr1.yaml", render=False).plan
    text = runbook.render(plan)["RUNBOOK.md"].decode()
    sections = _phase_sections(text)
    assert len(sections) == len(plan.schedule.phases)  # setup, raws, stages, moves, archival
    for st in plan.stages:
        title, body = next((t, b) for t, b in sections.items() if t.endswith(f"Stage {st.index}: `{st.name}`"))
        days = {s: plan.stage_days(st.name, s) for s in st.sites}
        slowest = max(days.values())
        assert slowest is not None and slowest > 1
        assert f"Estimated duration: {slowest:,.1f} days" in body, title
        for s, d in days.items():  # per site, in the jobs table
            assert re.search(rf"^\| {re.escape(s)} \|.*\| {d:,.1f} days \|$", body, flags=re.MULTILINE), (title, s)
    for title, body in sections.items():
        if any(k in title for k in ("Raw distribution", "Gather", "Scatter", "Return")):
            assert "Estimated duration: bounded by the wait scripts' timeout" in body, title
    glance = text.split("## Phases at a glance", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in glance.split("\n") if re.match(r"^\| \d+ \|", ln)]
    assert len(rows) == len(sections) and all(ln.rstrip(" |").split("|")[-1].strip() for ln in rows)
    first = plan.stages[0]
    days = {s: plan.stage_days(first.name, s) or 0.0 for s in first.sites}
    slowest = max(days, key=lambda s: days[s])
    assert f"{days[slowest]:,.1f} days (slowest: {slowest})" in glance  # the bottleneck's stage 1


# -- campaigns with other shapes --------------------------------------------------------------------

def _check_all(plan: Plan) -> dict[str, str]:
    files = {k: v.decode() for k, v in runbook.render(plan).items()}
    owner = expected_scripts(plan)
    text = files["RUNBOOK.md"]
    assert {p: n for p, n in ((p, len(citations(text, p))) for p in owner) if n != 1} == {}
    assert order_violations(text, order_rules(plan)) == []
    for site in plan.sites:
        st = files[paths.site_runbook(site.id)]
        assert {p: len(citations(st, p)) for p in owner} == {p: int(s == site.id) for p, s in owner.items()}
        assert order_violations(st, site_rules(plan, site.id)) == []
    return files


def test_cross_check_moves_are_cited_and_archived(tmp_path: Path) -> None:
    data = example_data("3x2.yaml")
    data["sky"]["cross_check"] = [{"tract": 9948, "also_at": "ukdf-lancs"}]
    data["datasets"].append({"type": "deepCoadd", "dimensions": ["skymap", "tract", "patch", "band"],
                             "produced_by": "step3", "storage_class": "ExposureF"})
    plan = compile_data(tmp_path, data).plan
    cross = [t for t in plan.transfers if t.kind == "crosscheck"]
    assert {t.source for t in cross} == {"frdf", "ukdf-lancs"}
    files = _check_all(plan)
    assert "Do not start the cross-check comparison at usdf until" in files["RUNBOOK.md"]
    [phase] = [p for p in plan.schedule.phases
               if p.kind == "crosscheck" and p.stage is not None and p.stage.name == "step3"]
    assert f"## Phase {phase.number}: Cross-check outputs of `step3` to usdf" in files["RUNBOOK.md"]


def test_single_site_campaign_says_why_there_is_no_ingestd(tmp_path: Path) -> None:
    text = MINIMAL.split("  frdf:\n")[0] + "sky:" + MINIMAL.split("\nsky:", 1)[1]
    text = text.replace("share: 0.5", "share: 1.0").replace("      frdf: [9948, 9949]\n", "")
    plan = compile_campaign(write(tmp_path, text), render=False).plan
    assert not plan.transfers and not plan.raws
    files = _check_all(plan)
    for body in (files["RUNBOOK.md"], files[paths.site_runbook("usdf")]):
        assert "nothing arrives at usdf in this campaign" in body or "nothing arrives there" in body
        assert "ingestd" not in "".join(m.group(1) for m in CODE_SPAN.finditer(body) if "kubectl apply" in m.group(1))
    assert paths.apply_rules("usdf") not in files["RUNBOOK.md"]
