"""`drpc rehearse --sample N`: every site, stage and move, on N tracts per site.

A DR2-scale campaign has thousands of tracts; its rehearsal's cost grows with them (visits,
records, data IDs of every job), while what it proves (every script, every move, every sync
point) does not. A sample keeps, for each site, N of the tracts it processes: first the tracts
that border another site's tracts (their boundary visits are the ones a mistake in the whole-visit
selection or a scatter loses), then every cross-check tract (its comparison must run), then
the lowest ids. Only the sample's tracts get Butler records, so the generated scripts, run as
compiled for the whole campaign, select the sample's data alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.plan import Plan


@dataclass(frozen=True)
class Sample:
    tracts: frozenset[int]
    per_site: dict[str, tuple[int, ...]]  # site -> its sampled processing tracts
    boundary_pairs: int  # neighbouring sampled tracts of different owners
    of: int  # the campaign's tracts

    def describe(self) -> str:
        sites = "; ".join(f"{site} {', '.join(map(str, tracts))}"
                          for site, tracts in self.per_site.items())
        return (f"sampled {len(self.tracts)} of {self.of} tracts ({sites}), "
                f"{self.boundary_pairs} boundary pair(s) between sites")


def choose_sample(plan: Plan, per_site: int) -> Sample:
    """N tracts per site, borders first (see the module's docstring); deterministic. Tracts are
    scanned in id order and only until enough are found: a DR1 site has thousands."""
    from .visits import tract_neighbours  # lsst.sphgeom: only when a sample is asked for

    if per_site < 1:
        raise ValueError("--sample takes a number of tracts per site, at least 1")
    owner = plan.ownership.owner
    crosscheck = {c.tract for c in plan.crosschecks}
    chosen: set[int] = set()
    per: dict[str, list[int]] = {}

    def borders(t: int) -> bool:
        return any(owner.get(n) not in (None, owner.get(t))
                   for n in tract_neighbours(plan.skymap, t))

    for site in plan.sites:
        mine = set(site.processing_tracts)
        near = sorted(n for t in chosen for n in tract_neighbours(plan.skymap, t)
                      if owner.get(n) == site.id and owner.get(t) != site.id)
        picked = list(dict.fromkeys(near))[:per_site]
        for t in sorted(site.owned_tracts):
            if len(picked) >= per_site:
                break
            if t not in picked and borders(t):
                picked.append(t)
        for t in [*sorted(site.owned_tracts), *sorted(mine)]:  # its own before others' tracts
            if len(picked) >= per_site:
                break
            if t not in picked:
                picked.append(t)
        per[site.id] = sorted({*picked, *(crosscheck & mine)})  # a cross-check tract is kept
        chosen |= set(per[site.id])
    pairs = sum(1 for a in chosen for b in tract_neighbours(plan.skymap, a)
                if a < b and b in chosen and owner.get(a) != owner.get(b))
    return Sample(frozenset(chosen), {k: tuple(v) for k, v in per.items()}, pairs,
                  len(plan.all_tracts))


__all__ = ["Sample", "choose_sample"]
