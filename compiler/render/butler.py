"""`sites/<site>/butler/setup-repo.sh`: one idempotent script that readies a site's Butler repo.

The script creates the repository (with a seed config naming the registry database and the
datastore root), registers the instrument, writes the curated calibrations, registers the
campaign's skymap, imports the reference catalogs and ancillary inputs, registers the dataset
types that move to or from the site, creates the collections the campaign relies on (the empty
`<output>/incoming/<stage>` chains ctrl_ingestd's arrivals are chained into, and the defaults
chain), and prints a summary. Every step looks first and skips what already exists, so running
it again changes nothing.

Steps that need LSST stack packages that are not on PyPI (register-instrument with an obs_*
class, write-curated-calibrations, register-skymap) can be skipped with `SKIP_STEPS`, so a local
rehearsal can stand in for them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..model import AncillaryInput
from ..naming import SKYMAPS_COLLECTION, raw_collection
from ..plan import Plan, SitePlan
from .common import EnvVar, render_template, shell_prelude

SCRIPT = "setup-repo.sh"

# Step names, in order: what `step` reports on failure and what SKIP_STEPS takes.
STEPS: tuple[str, ...] = (
    "repo", "instrument", "calibrations", "skymap", "inputs", "dataset-types", "collections",
    "summary",
)


# How the built-in skymaps lay out patches, as Rubin registers them (obs_subaru's hsc_rings_v1
# config: legacy 4000x4000-pixel patches with a 100-pixel border; obs_lsst's lsst_cells_v1: the
# "cells" tract builder with its defaults). Both use TAN projection; a skymap declared under
# `skymaps:` gets legacy patches of its own size and TAN as well.
CELL_BUILDER: tuple[tuple[str, object], ...] = (
    ("cellInnerDimensions", [150, 150]),
    ("cellBorder", 50),
    ("numCellsPerPatchInner", 20),
    ("numCellsInPatchBorder", 1),
)
LEGACY_DEFAULT: tuple[tuple[str, object], ...] = (
    ("patchInnerDimensions", [4000, 4000]),
    ("patchBorder", 100),
)
BUILTIN_TRACT_BUILDERS: dict[str, tuple[str, tuple[tuple[str, object], ...]]] = {
    "hsc_rings_v1": ("legacy", LEGACY_DEFAULT),
    "lsst_cells_v1": ("cells", CELL_BUILDER),
}
PROJECTION = "TAN"


@dataclass(frozen=True)
class ImportInput:
    """A refcat or ancillary export for `butler import`; its paths come from the environment."""

    kind: str  # "refcat" or "ancillary"
    name: str
    collection: str
    dir_var: str
    export_var: str
    transfer_var: str


@dataclass(frozen=True)
class DatasetTypeReg:
    name: str
    storage_class: str | None
    dimensions: tuple[str, ...]
    why: str  # e.g. "gather from frdf, gather from ukdf-lancs"
    is_calibration: bool = False


def _env_name(prefix: str, name: str, taken: set[str]) -> str:
    """`REFCAT_THE_MONSTER` for a refcat named `the_monster`, unique among the script's vars."""
    base = f"{prefix}_{re.sub(r'[^A-Z0-9]+', '_', name.upper()).strip('_') or 'INPUT'}"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def skymap_config(plan: Plan) -> str:
    """A `butler register-skymap -C` config (pipe_tasks MakeGen3SkyMapConfig) for the plan's skymap.

    Field names are lsst.skymap's: `RingsSkyMapConfig` (numRings, raStart) on top of
    `BaseSkyMapConfig` (tractOverlap in degrees, pixelScale in arcsec/pixel, projection,
    tractBuilder). The values decide the skymap's hash, which must be the same at every site.
    """
    sm = plan.skymap
    custom = plan.custom_skymap
    fields: tuple[tuple[str, object], ...]
    if custom is not None:
        builder, fields = "legacy", (("patchInnerDimensions", [custom.patch_inner_dimensions] * 2),
                                     ("patchBorder", custom.patch_border))
    else:
        builder, fields = BUILTIN_TRACT_BUILDERS.get(sm.name, ("legacy", LEGACY_DEFAULT))
    rings = 'config.skyMap["rings"]'
    lines = [
        "# butler register-skymap config (lsst.pipe.tasks.makeGen3SkyMap.MakeGen3SkyMapConfig)",
        f"# for the campaign's skymap {sm.name!r}: version-1 ring numbering, "
        f"{sm.tract_count()} tracts.",
        f"config.name = {json.dumps(sm.name)}",
        'config.skyMap.name = "rings"',
        f"{rings}.numRings = {sm.num_rings}",
        f"{rings}.raStart = {float(sm.ra_start_deg)!r}  # degrees",
        f"{rings}.projection = {json.dumps(PROJECTION)}",
        f"{rings}.tractOverlap = {float(sm.tract_overlap_arcmin)!r} / 60  # degrees "
        f"({sm.tract_overlap_arcmin:g} arcmin)",
        f"{rings}.pixelScale = {float(sm.pixel_scale_arcsec)!r}  # arcsec/pixel",
        f"{rings}.tractBuilder.name = {json.dumps(builder)}",
    ]
    lines += [f'{rings}.tractBuilder["{builder}"].{key} = {json.dumps(value)}'
              for key, value in fields]
    return "\n".join(lines) + "\n"


def _inputs(plan: Plan, taken: set[str]) -> tuple[list[ImportInput], list[EnvVar]]:
    inputs: list[ImportInput] = []
    env: list[EnvVar] = []
    groups: tuple[tuple[str, list[AncillaryInput]], ...] = (
        ("refcat", plan.butler_inputs.refcats), ("ancillary", plan.butler_inputs.ancillary))
    for kind, items in groups:
        for item in items:
            var = _env_name(kind.upper(), item.name, taken)
            inputs.append(ImportInput(kind, item.name, item.collection, f"{var}_DIR",
                                      f"{var}_EXPORT_FILE", f"{var}_TRANSFER"))
            env += [
                EnvVar(f"{var}_DIR", item.directory,
                       f"folder the {kind} '{item.name}' export's paths are relative to"),
                EnvVar(f"{var}_EXPORT_FILE", item.export_file,
                       f"`butler export` file of the {kind} '{item.name}'"),
                EnvVar(f"{var}_TRANSFER", item.transfer,
                       f"`butler import --transfer` mode for '{item.name}'"),
            ]
    return inputs, env


def _dataset_types(plan: Plan, site: SitePlan) -> list[DatasetTypeReg]:
    """Every dataset type a transfer brings to or takes from the site, once, in transfer order."""
    found: dict[str, tuple[DatasetTypeReg, list[str]]] = {}
    for t in plan.transfers:
        if site.id not in (t.source, t.destination):
            continue
        if t.is_input and t.source == site.id:
            continue  # the central site holds the inputs already; inputs.py checks their types
        arrives = t.destination == site.id
        move = f"{t.kind} from {t.source}" if arrives else f"{t.kind} to {t.destination}"
        if t.dataset_type not in found:
            reg = DatasetTypeReg(t.dataset_type, t.storage_class, t.dimensions, "",
                                 t.is_calibration)
            found[t.dataset_type] = (reg, [])
        found[t.dataset_type][1].append(move)
    return [DatasetTypeReg(reg.name, reg.storage_class, reg.dimensions, ", ".join(moves),
                           reg.is_calibration)
            for reg, moves in found.values()]


def render_site(plan: Plan, site: SitePlan) -> dict[str, bytes]:
    spec_butler = plan.butler_inputs
    taken = {"BUTLER_REPO", "BUTLER_REGISTRY", "BUTLER_NAMESPACE", "BUTLER_DATASTORE_ROOT",
             "INSTRUMENT_CLASS",
             "SKYMAP_CONFIG", "SKIP_STEPS"}
    inputs, input_env = _inputs(plan, taken)
    env_vars = [
        EnvVar("BUTLER_REPO", site.butler_repo,
               "the site's Butler repository (path, URI or repository-index label)"),
        EnvVar("BUTLER_REGISTRY", site.butler_registry or "",
               "registry database URL for a new repository, without a password (credentials "
               "come from ~/.lsst/db-auth.yaml or PGPASSWORD); empty: SQLite inside the "
               "repository"),
        EnvVar("BUTLER_NAMESPACE", site.butler_namespace or "",
               "PostgreSQL schema of a new repository's registry tables (seed config "
               "registry.namespace); empty: the database's default schema"),
        EnvVar("BUTLER_DATASTORE_ROOT", site.datastore_root,
               "datastore root for a new repository; empty: the repository itself"),
        EnvVar("INSTRUMENT_CLASS", plan.instrument_class or "",
               f"Python class that `butler register-instrument` adds ({plan.instrument})"),
        EnvVar("SKYMAP_CONFIG", spec_butler.skymap_config or "",
               "`butler register-skymap` config file; empty: the one this script writes for "
               f"{plan.skymap.name}"),
        *input_env,
        EnvVar("SKIP_STEPS", "",
               f"steps not to run, space- or comma-separated, out of: {' '.join(STEPS)}; e.g. "
               "'instrument calibrations skymap' where the LSST stack (obs_*, skymap, pipe_tasks) "
               "is not set up"),
    ]
    incoming = list(plan.incoming_chains(site.id))
    raws = raw_collection(plan.instrument)
    children = list(plan.defaults_children)
    inputs_collections = [i.collection for i in inputs]
    probe_collections = list(dict.fromkeys([
        plan.calib_collection, *inputs_collections, raws, *incoming,
        plan.defaults_collection, *children]))
    what = f"Butler repository setup for {site.id} ({site.facility})"
    text = shell_prelude(plan, what, env_vars) + render_template(
        "butler/setup-repo.sh.j2",
        plan=plan,
        site=site,
        steps=STEPS,
        calibrations=spec_butler.calibrations,
        skymap_name=plan.skymap.name,
        skymap_config=skymap_config(plan),
        inputs=inputs,
        dataset_types=_dataset_types(plan, site),
        raw_collection=raws,
        incoming=incoming,
        defaults_children=children,
        probe_collections=probe_collections,
        skymaps_collection=SKYMAPS_COLLECTION,
    ).decode()
    return {f"sites/{site.id}/butler/{SCRIPT}": text.encode()}


def render(plan: Plan, site: str | None = None) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for s in plan.sites_to_render(site):
        files.update(render_site(plan, s))
    return files


__all__ = ["render", "skymap_config", "STEPS"]
