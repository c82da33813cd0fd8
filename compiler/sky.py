"""Who owns which tract: the campaign's footprint and ring (or explicit) assignment on its skymap.

The one place that decides tract ownership; the plan stores the result and every renderer
reads it from there.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import Campaign, Footprint
from .skymap import BUILTIN_SKYMAPS, RingSkyMap


def resolve_skymap(spec: Campaign) -> RingSkyMap | None:
    """The campaign's skymap: one declared under `skymaps:` wins over a built-in of that name."""
    name = spec.campaign.skymap
    custom = spec.skymaps.get(name)
    if custom is not None:
        return RingSkyMap(
            name=name,
            num_rings=custom.num_rings,
            ra_start_deg=custom.ra_start_deg,
            tract_overlap_arcmin=custom.tract_overlap_arcmin,
            pixel_scale_arcsec=custom.pixel_scale_arcsec,
        )
    return BUILTIN_SKYMAPS.get(name)


def known_skymaps(spec: Campaign) -> list[str]:
    return sorted(set(BUILTIN_SKYMAPS) | set(spec.skymaps))


@dataclass(frozen=True)
class RingBand:
    """A declination band [dec_min, dec_max) owned by one site (the northmost band is closed)."""

    dec_min: float
    dec_max: float
    site: str
    closed: bool = False

    def contains(self, dec: float) -> bool:
        return self.dec_min <= dec < self.dec_max or (self.closed and dec == self.dec_max)


def footprint_of(spec: Campaign) -> Footprint:
    return spec.sky.footprint or Footprint()


def ring_bands(spec: Campaign) -> list[RingBand]:
    """The rings as explicit bands (a ring without dec_min starts where the previous one ends)."""
    rings = spec.sky.assignment.rings or []
    fp = footprint_of(spec)
    bands: list[RingBand] = []
    prev_max = fp.dec_min
    for i, ring in enumerate(rings):
        lo = ring.dec_min if ring.dec_min is not None else prev_max
        bands.append(RingBand(lo, ring.dec_max, ring.site, closed=(i == len(rings) - 1)))
        prev_max = ring.dec_max
    return bands


@dataclass(frozen=True)
class Ownership:
    """Tract -> owning site, with the reason, for the campaign's tracts."""

    owner: dict[int, str]
    reason: dict[int, str]

    def tracts_of(self, site: str) -> list[int]:
        return sorted(t for t, s in self.owner.items() if s == site)


def assign_tracts(spec: Campaign, skymap: RingSkyMap) -> Ownership:
    """Apply the rings (by centre declination) or the explicit lists.

    Assumes the spec passed validation; an explicit tract listed twice keeps its first owner.
    """
    owner: dict[int, str] = {}
    reason: dict[int, str] = {}
    assignment = spec.sky.assignment
    if assignment.tracts is not None:
        for site in sorted(assignment.tracts):
            for t in assignment.tracts[site]:
                if t not in owner:
                    owner[t] = site
                    reason[t] = f"listed under sky.assignment.tracts.{site}"
        return Ownership(owner, reason)
    bands = ring_bands(spec)
    fp = footprint_of(spec)
    # Every tract of a skymap ring shares one centre declination: assign ring by ring.
    for ring in range(-1, skymap.num_rings + 1):
        dec = skymap.ring_center_dec(ring)
        if not (fp.dec_min <= dec <= fp.dec_max):
            continue
        for idx, band in enumerate(bands):
            if band.contains(dec):
                first, last = skymap.ring_tract_range(ring)
                why = (f"centre dec {dec:.4f} lies in ring {idx + 1} of sky.assignment.rings "
                       f"[{band.dec_min:g}, {band.dec_max:g}{']' if band.closed else ')'} "
                       f"-> {band.site}")
                for t in range(first, last + 1):
                    owner[t] = band.site
                    reason[t] = why
                break
    return Ownership(owner, reason)
