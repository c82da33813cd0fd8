"""The plan: everything the compiler derives from a valid spec (CONTRACT section 2).

One typed, immutable object that every renderer reads. Nothing here does I/O, and no
renderer re-derives who owns a tract, where a job runs or where a dataset goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from . import __version__
from .defaults import INSTRUMENT_CLASSES, PANDA_GENERIC_CONFIG, PANDA_SITE_CONFIGS, STORAGE_CLASSES
from .loader import LoadedCampaign
from .model import Campaign, SiteIngestd
from .naming import (
    _file_path, incoming_collection, rucio_dataset_name, stage_output, tract_predicate, tract_query,
)
from .sky import Ownership, assign_tracts, footprint_tracts, resolve_skymap
from .skymap import RingSkyMap

TransferKind = Literal["gather", "scatter", "return", "crosscheck"]
Split = Literal["visit", "tract", "none"]


@dataclass(frozen=True)
class SitePlan:
    id: str
    facility: str
    panda_site: str
    cloud: str
    cores: int
    gb_per_core: float
    storage_tb: float
    share: float
    is_central: bool
    butler_repo: str
    butler_registry: str | None
    datastore_root: str  # <rse_root>/<scope> unless the spec says otherwise: see rucio_ingestd.md
    rse: str
    raw_rse: str
    scope: str
    rucio_prefix: str
    fs_prefix: str
    rse_root: str
    raw_rucio_prefix: str
    raw_fs_prefix: str
    raw_rse_root: str
    rucio_account: str | None
    ingestd: SiteIngestd | None
    bps_site_config: str
    merge_queue: str
    owned_tracts: tuple[int, ...]
    processing_tracts: tuple[int, ...]  # owned plus cross-check tracts run here
    fraction: float  # of the footprint's tracts owned


@dataclass(frozen=True)
class StagePlan:
    name: str
    index: int  # 1-based order; NN in file names
    subset: str
    runs_at: Literal["every-site", "central"]
    sites: tuple[str, ...]
    weight: float = 1.0  # relative share of the workload's core-hours


@dataclass(frozen=True)
class Job:
    """One BPS workflow: a stage at a site."""

    stage: str
    stage_index: int
    site: str
    pipeline_yaml: str
    payload_name: str
    butler_config: str
    in_collections: tuple[str, ...]
    output: str
    data_query: str
    tracts: tuple[int, ...]
    includes: tuple[str, ...]
    overrides: tuple[tuple[str, int | float], ...]  # BPS job attributes, e.g. ("requestMemory", 8000)

    @property
    def path(self) -> str:
        return f"sites/{self.site}/bps/{self.stage_index:02d}-{self.stage}.yaml"


@dataclass(frozen=True)
class DatasetPlan:
    type: str
    dimensions: tuple[str, ...]
    storage_class: str | None
    produced_by: str
    consumed_by: tuple[str, ...]
    archive: bool

    @property
    def split(self) -> Split:
        if "visit" in self.dimensions:
            return "visit"
        if "tract" in self.dimensions:
            return "tract"
        return "none"


@dataclass(frozen=True)
class Transfer:
    """Datasets of one type moving from one site to another, as one Rucio dataset."""

    id: str  # <stage>.<dataset type>.<source>-to-<destination>
    kind: TransferKind
    stage: str  # producer
    consumer: str  # consuming stage at the destination, "archive" or "crosscheck"
    dataset_type: str
    dimensions: tuple[str, ...]
    storage_class: str | None
    source: str
    destination: str
    source_collection: str  # the producer's CHAINED output at the source
    where: str | None  # Butler query selecting what goes (None: everything of the type)
    selection: str  # human words for runbooks
    rucio_scope: str
    rucio_name: str
    source_rse: str
    destination_rse: str
    incoming_collection: str  # CHAINED collection at the destination

    @property
    def rucio_did(self) -> str:
        return f"{self.rucio_scope}:{self.rucio_name}"


@dataclass(frozen=True)
class RawDistribution:
    """Raws of the visits a site holds, from the central site's raw RSE to the site's.

    The central site receives every raw from the summit, so it holds every visit; each other
    site gets the raws of the visits overlapping its (processing) tracts, boundary visits included.
    """

    id: str  # raw.<central>-to-<site>
    source: str
    destination: str
    source_rse: str
    destination_rse: str
    where: str  # Butler query selecting the visits
    tracts: tuple[int, ...]
    rucio_scope: str
    rucio_name: str
    collection: str  # where raws live at both ends: <instrument>/raw/all

    @property
    def rucio_did(self) -> str:
        return f"{self.rucio_scope}:{self.rucio_name}"


@dataclass(frozen=True)
class Arrival:
    """Files landing on one RSE of a site under one scope: what its ctrl_ingestd must listen to."""

    rse: str
    scope: str
    rucio_prefix: str  # the RSE's URL prefix, as Rucio writes it in transfer events
    fs_prefix: str  # the same place as a local file URL at the site
    moves: tuple[str, ...]  # ids of the transfers and raw distributions that land here


@dataclass(frozen=True)
class SiteEstimate:
    site: str
    tracts: int
    fraction: float
    visits: int  # the site's fraction of the workload plus the boundary visits it also holds
    boundary_visits: int
    boundary_storage_tb: float  # what holding the boundary visits twice costs
    core_hours: float  # the site's fraction of the workload
    storage_tb: float
    days: float  # wall-clock at the site's cores


@dataclass(frozen=True)
class Plan:
    campaign: str
    description: str
    ticket: str | None
    instrument: str
    instrument_class: str | None
    skymap: RingSkyMap
    stack: str
    pipeline: str
    central_site: str
    input_collections: tuple[str, ...]
    output_collection: str
    defaults_collection: str
    calib_collection: str
    deadline_days: float | None
    operator: str | None
    spec: Campaign
    spec_file: str
    spec_sha256: str
    inputs: tuple[tuple[str, str], ...]
    drpc_version: str
    sites: tuple[SitePlan, ...]
    stages: tuple[StagePlan, ...]
    datasets: tuple[DatasetPlan, ...]
    jobs: tuple[Job, ...]
    transfers: tuple[Transfer, ...]
    raws: tuple[RawDistribution, ...]
    footprint_tract_count: int
    ownership: Ownership = field(repr=False)
    estimates: tuple[SiteEstimate, ...] = ()

    def stage_days(self, stage: str, site_id: str) -> float | None:
        """Wall-clock days of one stage at one site: its weight's share of the site's estimate.

        A central stage does the work of every site's tracts on the central site's cores.
        """
        if not self.estimates:
            return None
        st = self.stage(stage)
        share = st.weight / sum(s.weight for s in self.stages)
        if st.runs_at == "central":
            core_hours = sum(e.core_hours for e in self.estimates)
            return core_hours * share / self.site(site_id).cores / 24.0
        est = next(e for e in self.estimates if e.site == site_id)
        return est.days * share

    def sites_to_render(self, only: str | None) -> tuple[SitePlan, ...]:
        """Every site, or the one `--site` names: what a renderer writes files for."""
        return tuple(s for s in self.sites if only is None or s.id == only)

    def site(self, site_id: str) -> SitePlan:
        return next(s for s in self.sites if s.id == site_id)

    def stage(self, name: str) -> StagePlan:
        return next(s for s in self.stages if s.name == name)

    def jobs_at(self, site_id: str) -> tuple[Job, ...]:
        return tuple(j for j in self.jobs if j.site == site_id)

    def outgoing(self, site_id: str) -> tuple[Transfer, ...]:
        return tuple(t for t in self.transfers if t.source == site_id)

    def incoming(self, site_id: str) -> tuple[Transfer, ...]:
        return tuple(t for t in self.transfers if t.destination == site_id)

    def raws_to(self, site_id: str) -> tuple[RawDistribution, ...]:
        return tuple(r for r in self.raws if r.destination == site_id)

    def arrivals(self, site_id: str) -> tuple[Arrival, ...]:
        """Every (RSE, scope) where transfers or raws land at this site, sorted."""
        site = self.site(site_id)
        found: dict[tuple[str, str], tuple[str, str, list[str]]] = {}
        for t in self.incoming(site_id):
            found.setdefault((t.destination_rse, t.rucio_scope), (site.rucio_prefix, site.fs_prefix, []))[2].append(t.id)
        for r in self.raws_to(site_id):
            found.setdefault((r.destination_rse, r.rucio_scope), (site.raw_rucio_prefix, site.raw_fs_prefix, []))[2].append(r.id)
        return tuple(Arrival(rse, scope, rp, fp, tuple(ids)) for (rse, scope), (rp, fp, ids) in sorted(found.items()))

    @property
    def all_tracts(self) -> tuple[int, ...]:
        return tuple(sorted(self.ownership.owner))


# -- derivation -----------------------------------------------------------------------------------

def build_plan(spec: Campaign, loaded: LoadedCampaign) -> Plan:
    skymap = resolve_skymap(spec)
    assert skymap is not None, "validation guarantees a known skymap"
    ownership = assign_tracts(spec, skymap)
    name = spec.metadata.name
    central = spec.campaign.central_site
    out_coll = spec.campaign.output_collection
    instrument = spec.campaign.instrument
    n_footprint = len(ownership.owner)

    cross: dict[str, list[int]] = {}
    for cc in spec.sky.cross_check:
        cross.setdefault(cc.also_at, []).append(cc.tract)

    sites: list[SitePlan] = []
    for sid, s in spec.sites.items():
        owned = tuple(ownership.tracts_of(sid))
        processing = tuple(sorted(set(owned) | set(cross.get(sid, []))))
        fs_prefix = s.rucio.fs_prefix
        rse_root = s.rucio.rse_root or _file_path(fs_prefix)
        sites.append(SitePlan(
            id=sid, facility=s.facility, panda_site=s.panda_site, cloud=s.cloud, cores=s.cores,
            gb_per_core=s.gb_per_core, storage_tb=s.storage_tb, share=s.share, is_central=sid == central,
            butler_repo=s.butler.repo, butler_registry=s.butler.registry,
            datastore_root=s.butler.datastore_root or f"{rse_root.rstrip('/')}/{s.rucio.scope or name}",
            rse=s.rucio.rse, raw_rse=s.rucio.raw_rse, scope=s.rucio.scope or name,
            rucio_prefix=s.rucio.rucio_prefix, fs_prefix=fs_prefix, rse_root=rse_root,
            raw_rucio_prefix=s.rucio.raw_rucio_prefix or s.rucio.rucio_prefix,
            raw_fs_prefix=s.rucio.raw_fs_prefix or fs_prefix,
            raw_rse_root=s.rucio.raw_rse_root or (_file_path(s.rucio.raw_fs_prefix) if s.rucio.raw_fs_prefix else rse_root),
            rucio_account=s.rucio.account, ingestd=s.ingestd,
            bps_site_config=s.bps.site_config or PANDA_SITE_CONFIGS.get(s.panda_site, PANDA_GENERIC_CONFIG),
            merge_queue=s.bps.merge_queue or f"{s.panda_site}_Rubin_Merge",
            owned_tracts=owned, processing_tracts=processing,
            fraction=len(owned) / n_footprint if n_footprint else 0.0,
        ))
    by_id = {s.id: s for s in sites}
    site_order = [s.id for s in sites]

    stages = tuple(
        StagePlan(st.name, i + 1, st.subset, st.runs_at,
                  tuple(site_order) if st.runs_at == "every-site" else (central,), st.weight)
        for i, st in enumerate(spec.stages)
    )
    stage_by_name = {st.name: st for st in stages}

    datasets = tuple(
        DatasetPlan(d.type, tuple(d.dimensions), d.storage_class or STORAGE_CLASSES.get(d.type),
                    d.produced_by, tuple(d.consumed_by), d.archive)
        for d in spec.datasets
    )

    transfers = _transfers(spec, datasets, stage_by_name, by_id, site_order, central, out_coll,
                           instrument, skymap.name, cross, ownership)

    jobs = _jobs(spec, stages, by_id, transfers, central, out_coll, instrument, skymap.name, ownership)

    raws = tuple(
        RawDistribution(
            id=f"raw.{central}-to-{s.id}", source=central, destination=s.id,
            source_rse=by_id[central].raw_rse, destination_rse=s.raw_rse,
            where=tract_query(instrument, skymap.name, s.processing_tracts), tracts=s.processing_tracts,
            rucio_scope=by_id[central].scope,
            rucio_name=rucio_dataset_name(name, f"raw.{central}-to-{s.id}"),
            collection=f"{instrument}/raw/all",
        )
        for s in sites if not s.is_central
    )

    plan = Plan(
        campaign=name, description=spec.metadata.description, ticket=spec.metadata.ticket,
        instrument=instrument,
        instrument_class=spec.campaign.instrument_class or INSTRUMENT_CLASSES.get(instrument),
        skymap=skymap, stack=spec.campaign.stack, pipeline=spec.campaign.pipeline,
        central_site=central, input_collections=tuple(spec.campaign.input_collections),
        output_collection=out_coll,
        defaults_collection=spec.butler.defaults_collection or spec.campaign.input_collections[0],
        calib_collection=spec.butler.calibrations.collection or f"{instrument}/calib",
        deadline_days=spec.campaign.deadline_days, operator=spec.campaign.operator,
        spec=spec, spec_file=loaded.name, spec_sha256=loaded.sha256,
        inputs=tuple(loaded.inputs.items()), drpc_version=__version__,
        sites=tuple(sites), stages=stages, datasets=datasets, jobs=jobs, transfers=transfers,
        raws=raws, footprint_tract_count=n_footprint, ownership=ownership,
    )
    from .estimates import with_estimates

    return with_estimates(plan)


def _transfers(spec: Campaign, datasets: tuple[DatasetPlan, ...], stages: dict[str, StagePlan],
               sites: dict[str, SitePlan], site_order: list[str], central: str, out_coll: str,
               instrument: str, skymap: str, cross: dict[str, list[int]],
               ownership: Ownership) -> tuple[Transfer, ...]:
    result: dict[str, Transfer] = {}
    others = [s for s in site_order if s != central]

    def add(kind: TransferKind, ds: DatasetPlan, src: str, dst: str, consumer: str,
            where: str | None, selection: str) -> None:
        tid = f"{ds.produced_by}.{ds.type}.{src}-to-{dst}"
        if tid in result:
            return
        result[tid] = Transfer(
            id=tid, kind=kind, stage=ds.produced_by, consumer=consumer, dataset_type=ds.type,
            dimensions=ds.dimensions, storage_class=ds.storage_class, source=src, destination=dst,
            source_collection=stage_output(out_coll, ds.produced_by), where=where, selection=selection,
            rucio_scope=sites[src].scope, rucio_name=rucio_dataset_name(spec.metadata.name, tid),
            source_rse=sites[src].rse, destination_rse=sites[dst].rse,
            incoming_collection=incoming_collection(out_coll, consumer),
        )

    for ds in datasets:
        producer = stages[ds.produced_by]
        consumers = [stages[c] for c in ds.consumed_by]
        if producer.runs_at == "every-site":
            central_consumers = [c for c in consumers if c.runs_at == "central"]
            if central_consumers:
                for src in others:
                    add("gather", ds, src, central, central_consumers[0].name, None,
                        f"every {ds.type} that {src} produced")
            if ds.archive:
                for src in others:
                    add("return", ds, src, central, "archive", None,
                        f"every {ds.type} that {src} produced, for archival")
        else:
            site_consumers = [c for c in consumers if c.runs_at == "every-site"]
            if site_consumers:
                for dst in others:
                    where, selection = _scatter_selection(ds, sites[dst], instrument, skymap)
                    add("scatter", ds, central, dst, site_consumers[0].name, where, selection)

    # Cross-checks: tract-level outputs of a cross-check tract come back from both sites.
    if cross:
        for ds in datasets:
            if stages[ds.produced_by].runs_at != "every-site" or "tract" not in ds.dimensions:
                continue
            for also_at in sorted(cross):
                tracts = sorted(cross[also_at])
                owners = sorted({ownership.owner[t] for t in tracts})
                for src in [also_at, *owners]:
                    if src == central:
                        continue
                    picked = tracts if src == also_at else sorted(t for t in tracts if ownership.owner[t] == src)
                    add("crosscheck", ds, src, central, "crosscheck",
                        tract_query(instrument, skymap, picked, with_instrument=False),
                        f"{ds.type} of cross-check tract(s) {', '.join(map(str, picked))}")
    return tuple(sorted(result.values(), key=lambda t: (stages[t.stage].index, t.dataset_type,
                                                        site_order.index(t.source),
                                                        site_order.index(t.destination))))


def _scatter_selection(ds: DatasetPlan, dst: SitePlan, instrument: str, skymap: str) -> tuple[str | None, str]:
    """Split by ownership: per-visit data only to the site holding the visit, per-tract to the owner."""
    if ds.split == "none":
        return None, f"every {ds.type} (no visit or tract dimension: every site gets all)"
    where = tract_query(instrument, skymap, dst.processing_tracts, with_instrument="instrument" in ds.dimensions)
    what = "visits overlapping" if ds.split == "visit" else "tracts among"
    return where, f"{ds.type} of {what} {dst.id}'s {len(dst.processing_tracts)} tract(s)"


def _jobs(spec: Campaign, stages: tuple[StagePlan, ...], sites: dict[str, SitePlan],
          transfers: tuple[Transfer, ...], central: str, out_coll: str, instrument: str,
          skymap: str, ownership: Ownership) -> tuple[Job, ...]:
    jobs: list[Job] = []
    all_tracts = tuple(sorted(ownership.owner))
    for st, spec_stage in zip(stages, spec.stages):
        for sid in st.sites:
            site = sites[sid]
            earlier = [stage_output(out_coll, e.name) for e in stages[: st.index - 1] if sid in e.sites]
            incoming: list[str] = []
            for t in transfers:
                if t.destination == sid and t.consumer in {e.name for e in stages[: st.index]} \
                        and t.incoming_collection not in incoming:
                    incoming.append(t.incoming_collection)
            tracts = site.processing_tracts if st.runs_at == "every-site" else all_tracts
            query = tract_query(instrument, skymap, tracts)
            if spec_stage.extra_query:
                query = f"{query} AND ({spec_stage.extra_query})"
            overrides: list[tuple[str, int | float]] = []
            for key, value in (("requestMemory", spec_stage.request_memory_mb),
                               ("requestCpus", spec_stage.request_cpus),
                               ("memoryMultiplier", spec_stage.memory_multiplier),
                               ("numberOfRetries", spec_stage.number_of_retries),
                               ("requestWalltime", spec_stage.request_walltime_s)):
                if value is not None:
                    overrides.append((key, value))
            jobs.append(Job(
                stage=st.name, stage_index=st.index, site=sid,
                pipeline_yaml=f"{spec.campaign.pipeline}#{st.subset}",
                payload_name=f"{spec.metadata.name}_{st.name}_{sid}".replace("-", "_"),
                butler_config=site.butler_repo,
                in_collections=tuple(dict.fromkeys([*spec.campaign.input_collections, *earlier, *incoming])),
                output=stage_output(out_coll, st.name), data_query=query, tracts=tuple(tracts),
                includes=tuple(dict.fromkeys([site.bps_site_config, *spec.campaign.bps_includes,
                                              *spec_stage.bps_includes])),
                overrides=tuple(overrides),
            ))
    return tuple(jobs)


__all__ = ["Plan", "SitePlan", "StagePlan", "Job", "Transfer", "DatasetPlan", "RawDistribution",
           "SiteEstimate", "build_plan", "tract_query", "tract_predicate", "rucio_dataset_name",
           "footprint_tracts"]
