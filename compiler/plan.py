"""The plan: everything the compiler derives from a valid spec (CONTRACT section 2).

One typed, immutable object that every renderer and the rehearsal read: sites, stages, jobs,
every move of data between sites, the schedule of steps and the capacity estimates. Nothing
here does I/O, and no renderer re-derives who owns a tract, where a job runs, where a dataset
goes or in which order things happen.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from . import __version__
from .defaults import (
    DEFAULT_CALIBRATIONS,
    DEFAULT_MONITORING_NAMESPACE,
    INPUT_TYPE_TABLES,
    INPUTS_MANIFEST_STORAGE_CLASS,
    INPUTS_MANIFEST_TYPE,
    INSTRUMENT_CLASSES,
    PANDA_GENERIC_CONFIG,
    PANDA_REMOTE_BUILD_CONFIG,
    PANDA_SITE_CONFIGS,
    STORAGE_CLASSES,
)
from .estimates import (
    Estimates,
    JobInput,
    SiteCapacityInput,
    SiteEstimate,
    boundary_visit_fraction,
    estimate,
)
from .loader import LoadedCampaign
from .model import (
    ButlerInputs,
    Campaign,
    CollectionInput,
    CrossCheckTolerance,
    CustomSkyMap,
    Footprint,
    InputType,
    InputTypeRef,
    JobResources,
    Workload,
)
from .naming import (
    EVERY_RUN,
    SKYMAPS_COLLECTION,
    arrived_runs,
    crosscheck_collection,
    crosscheck_move_id,
    datastore_root,
    file_path,
    id_link_path,
    incoming_collection,
    input_move_id,
    inputs_manifest_run,
    instrument_query,
    move_selection,
    pg_schema,
    raw_collection,
    raw_selection,
    repository_name,
    rucio_dataset_name,
    stage_output,
    tract_predicate,
    tract_query,
)
from .plan_model import (
    RAW_DATASET_TYPE,
    Arrival,
    CrossCheckPair,
    CrossCheckSide,
    DatasetPlan,
    InputKind,
    InputSet,
    InputTypePlan,
    Job,
    Move,
    MoveKind,
    SelectBy,
    Sink,
    SitePlan,
    StagePlan,
)
from .schedule import Schedule, build_schedule
from .sky import Ownership, RingBand, assign_tracts, footprint_of, resolve_skymap, ring_bands
from .skymap import RingSkyMap


@dataclass(frozen=True)
class Plan:
    campaign: str
    description: str
    ticket: str | None
    instrument: str
    instrument_class: str | None
    skymap: RingSkyMap
    custom_skymap: CustomSkyMap | None  # the `skymaps:` entry the skymap comes from, if any
    stack: str
    pipeline: str
    central_site: str
    input_collections: tuple[str, ...]
    output_collection: str
    defaults_collection: str
    defaults_children: tuple[str, ...]  # what the defaults chain holds, in search order
    calib_collection: str
    butler_inputs: ButlerInputs
    input_sets: tuple[InputSet, ...]  # what the central site sends every other site first
    inputs_manifest_run: str | None  # RUN of the inputs' manifest (None: no inputs)
    deadline_days: float | None
    operator: str | None
    bps_includes: tuple[str, ...]
    spec: Campaign  # for `drpc plan --balance`, which proposes a new spec; renderers never read it
    spec_file: str
    spec_sha256: str
    inputs: tuple[tuple[str, str], ...]
    drpc_version: str
    footprint: Footprint
    assigned_by: Literal["rings", "tracts"]
    bands: tuple[RingBand, ...]  # the rings as explicit bands (none for tract lists)
    sites: tuple[SitePlan, ...]
    stages: tuple[StagePlan, ...]
    datasets: tuple[DatasetPlan, ...]
    jobs: tuple[Job, ...]
    moves: tuple[Move, ...]  # raws, inputs, then the stages' moves in stage order
    crosschecks: tuple[CrossCheckPair, ...]  # compared at the central site after the returns
    crosscheck_tolerance: CrossCheckTolerance
    schedule: Schedule = field(repr=False)
    footprint_tract_count: int
    ownership: Ownership = field(repr=False)
    workload: Workload | None
    capacity: Estimates | None  # None without a workload

    # -- views ------------------------------------------------------------------------------------
    @property
    def estimates(self) -> tuple[SiteEstimate, ...]:
        return self.capacity.sites if self.capacity else ()

    @property
    def raws(self) -> tuple[Move, ...]:
        return tuple(m for m in self.moves if m.is_raw)

    @property
    def transfers(self) -> tuple[Move, ...]:
        """The moves of processing outputs and inputs (every move but the raws)."""
        return tuple(m for m in self.moves if not m.is_raw)

    @property
    def input_moves(self) -> tuple[Move, ...]:
        return tuple(m for m in self.moves if m.is_input)

    @property
    def all_tracts(self) -> tuple[int, ...]:
        return tuple(sorted(self.ownership.owner))

    def stage_days(self, stage: str, site_id: str) -> float | None:
        """Wall-clock days of one stage's job at one site (None without a workload)."""
        return self.capacity.job(stage, site_id).days if self.capacity else None

    def sites_to_render(self, only: str | None) -> tuple[SitePlan, ...]:
        """Every site, or the one `--site` names: what a renderer writes files for."""
        return tuple(s for s in self.sites if only is None or s.id == only)

    def site(self, site_id: str) -> SitePlan:
        return next(s for s in self.sites if s.id == site_id)

    def stage(self, name: str) -> StagePlan:
        return next(s for s in self.stages if s.name == name)

    def jobs_at(self, site_id: str) -> tuple[Job, ...]:
        return tuple(j for j in self.jobs if j.site == site_id)

    def outgoing(self, site_id: str) -> tuple[Move, ...]:
        """Every move leaving the site (raws included)."""
        return tuple(m for m in self.moves if m.source == site_id)

    def incoming(self, site_id: str) -> tuple[Move, ...]:
        """Every move arriving at the site (raws included)."""
        return tuple(m for m in self.moves if m.destination == site_id)

    def incoming_chains(self, site_id: str) -> tuple[str, ...]:
        """The CHAINED collections arrivals are chained into at the site, in move order."""
        return tuple(dict.fromkeys(c for m in self.incoming(site_id) for c in m.chains))

    def arrivals(self, site_id: str) -> tuple[Arrival, ...]:
        """Every (RSE, scope) where moves land at this site, sorted: what ctrl_ingestd listens
        to."""
        site = self.site(site_id)
        found: dict[tuple[str, str], tuple[str, str, list[str]]] = {}
        for m in self.incoming(site_id):
            prefixes = ((site.raw_rucio_prefix, site.raw_fs_prefix) if m.is_raw
                        else (site.rucio_prefix, site.fs_prefix))
            found.setdefault((m.destination_rse, m.rucio_scope), (*prefixes, []))[2].append(m.id)
        return tuple(Arrival(rse, scope, rp, fp, tuple(ids))
                     for (rse, scope), (rp, fp, ids) in sorted(found.items()))


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
    footprint = footprint_of(spec)
    bands = tuple(ring_bands(spec))

    cross: dict[str, list[int]] = {}
    for cc in spec.sky.cross_check:
        cross.setdefault(cc.also_at, []).append(cc.tract)

    sites = tuple(_site(spec, sid, central, ownership, cross, n_footprint) for sid in spec.sites)
    by_id = {s.id: s for s in sites}
    site_order = [s.id for s in sites]

    stages = tuple(
        StagePlan(st.name, i + 1, st.subset, st.runs_at,
                  tuple(site_order) if st.runs_at == "every-site" else (central,), st.weight,
                  st.select or ("tracts" if st.runs_at == "every-site" else "all"))
        for i, st in enumerate(spec.stages)
    )
    stage_by_name = {st.name: st for st in stages}

    datasets = tuple(
        DatasetPlan(d.type, tuple(d.dimensions), d.storage_class or STORAGE_CLASSES.get(d.type),
                    d.produced_by, tuple(d.consumed_by), d.archive)
        for d in spec.datasets
    )

    raws = tuple(_raw_move(name, instrument, by_id[central], s, stages[0].name)
                 for s in sites if not s.is_central)
    input_sets = _input_sets(spec)
    manifest = inputs_manifest_run(out_coll) if input_sets else None
    inputs = _input_moves(name, input_sets, manifest, by_id[central],
                          [s for s in sites if not s.is_central], out_coll)
    transfers = _transfers(name, datasets, stage_by_name, by_id, site_order, central, out_coll,
                           instrument, skymap.name, cross, ownership)
    moves = (*raws, *inputs, *transfers)
    defaults = spec.butler.defaults_collection or spec.campaign.input_collections[0]
    jobs = _jobs(spec, stages, by_id, moves, out_coll, instrument, skymap.name, ownership)
    schedule = build_schedule(sites, stages, jobs, moves, central)
    capacity = estimate(
        spec.workload,
        [SiteCapacityInput(s.id, s.cores, len(s.owned_tracts), s.fraction) for s in sites],
        [JobInput(j.stage, j.site, stage_by_name[j.stage].runs_at == "central",
                  stage_by_name[j.stage].weight,
                  tuple(dict.fromkeys((m.stage, m.source) for m in moves
                                      if m.stage is not None and m.destination == j.site
                                      and m.sink == Sink("stage", j.stage))))
         for j in jobs],
        boundary_visit_fraction(site_order, bands, footprint, instrument),
    )

    return Plan(
        campaign=name, description=spec.metadata.description, ticket=spec.metadata.ticket,
        instrument=instrument,
        instrument_class=spec.campaign.instrument_class or INSTRUMENT_CLASSES.get(instrument),
        skymap=skymap, custom_skymap=spec.skymaps.get(skymap.name), stack=spec.campaign.stack,
        pipeline=spec.campaign.pipeline, central_site=central,
        input_collections=tuple(spec.campaign.input_collections), output_collection=out_coll,
        defaults_collection=defaults,
        defaults_children=_defaults_children(spec, stages, input_sets, defaults),
        calib_collection=spec.butler.calibrations.collection or f"{instrument}/calib",
        butler_inputs=spec.butler, input_sets=input_sets, inputs_manifest_run=manifest,
        deadline_days=spec.campaign.deadline_days,
        operator=spec.campaign.operator, bps_includes=tuple(spec.campaign.bps_includes),
        spec=spec, spec_file=loaded.name, spec_sha256=loaded.sha256,
        inputs=tuple(loaded.inputs.items()), drpc_version=__version__,
        footprint=footprint, assigned_by="rings" if spec.sky.assignment.rings else "tracts",
        bands=bands, sites=sites, stages=stages, datasets=datasets, jobs=jobs, moves=moves,
        crosschecks=_crosschecks(spec, datasets, stage_by_name, ownership, out_coll),
        crosscheck_tolerance=spec.sky.cross_check_tolerance,
        schedule=schedule, footprint_tract_count=n_footprint, ownership=ownership,
        workload=spec.workload, capacity=capacity,
    )


def _site(spec: Campaign, sid: str, central: str, ownership: Ownership,
          cross: dict[str, list[int]], n_footprint: int) -> SitePlan:
    s = spec.sites[sid]
    owned = tuple(ownership.tracts_of(sid))
    processing = tuple(sorted(set(owned) | set(cross.get(sid, []))))
    fs_prefix = s.rucio.fs_prefix
    rse_root = s.rucio.rse_root or file_path(fs_prefix)
    scope = s.rucio.scope or repository_name(s.butler.repo)
    return SitePlan(
        id=sid, facility=s.facility, panda_site=s.panda_site, cloud=s.cloud, cores=s.cores,
        gb_per_core=s.gb_per_core, storage_tb=s.storage_tb, share=s.share,
        is_central=sid == central, butler_repo=s.butler.repo, butler_registry=s.butler.registry,
        butler_namespace=(s.butler.namespace or pg_schema(repository_name(s.butler.repo))
                          if (s.butler.registry or "").startswith("postgresql") else None),
        datastore_root=s.butler.datastore_root or datastore_root(rse_root, scope),
        rucio_datastore_root=datastore_root(rse_root, scope),
        rse=s.rucio.rse, raw_rse=s.rucio.raw_rse, scope=scope,
        rucio_prefix=s.rucio.rucio_prefix, fs_prefix=fs_prefix, rse_root=rse_root,
        raw_rucio_prefix=s.rucio.raw_rucio_prefix or s.rucio.rucio_prefix,
        raw_fs_prefix=s.rucio.raw_fs_prefix or fs_prefix,
        raw_rse_root=s.rucio.raw_rse_root or (file_path(s.rucio.raw_fs_prefix)
                                              if s.rucio.raw_fs_prefix else rse_root),
        rucio_account=s.rucio.account, dataset_file_limit=s.rucio.dataset_file_limit,
        ingestd=s.ingestd,
        monitoring=s.monitoring.model_copy(update={"namespace": s.monitoring.namespace or (
            s.ingestd.namespace if s.ingestd is not None else DEFAULT_MONITORING_NAMESPACE)}),
        bps_site_config=s.bps.site_config or PANDA_SITE_CONFIGS.get(s.panda_site,
                                                                    PANDA_GENERIC_CONFIG),
        merge_queue=s.bps.merge_queue or f"{s.panda_site}_Rubin_Merge",
        submit=s.bps.submit,
        raw_selection=raw_selection(spec.campaign.instrument, spec.metadata.name, sid),
        owned_tracts=owned, processing_tracts=processing,
        fraction=len(owned) / n_footprint if n_footprint else 0.0,
    )


def _raw_move(campaign: str, instrument: str, central: SitePlan, site: SitePlan,
              first_stage: str) -> Move:
    """Raws of the visits a site holds, from the central site's raw RSE to the site's.

    The central site receives every raw from the summit, so it holds every visit; each other
    site gets every raw (every detector) of the visits overlapping its processing tracts,
    boundary visits included, selected at the central site into the site's TAGGED collection.
    """
    move_id = f"raw.{central.id}-to-{site.id}"
    tracts = site.processing_tracts
    return Move(
        id=move_id, kind="raw", stage=None, sink=Sink("stage", first_stage),
        dataset_type=RAW_DATASET_TYPE, dimensions=("instrument", "exposure", "detector"),
        storage_class=None, source=central.id, destination=site.id,
        source_collection=raw_collection(instrument), selection_collection=site.raw_selection,
        select_by="visits-held", select_site=site.id, find_first=False, tracts=tracts,
        selection=(f"every raw of the visits overlapping {site.id}'s {len(tracts):,} tract(s), "
                   "whole visits"),
        rucio_scope=central.scope, rucio_name=rucio_dataset_name(campaign, move_id),
        source_rse=central.raw_rse, destination_rse=site.raw_rse, incoming_collection=None,
        arrived_collections=raw_collection(instrument),
    )


def _defaults_children(spec: Campaign, stages: tuple[StagePlan, ...],
                       input_sets: tuple[InputSet, ...], defaults: str) -> tuple[str, ...]:
    """What the defaults chain searches: raws, calibrations (sent, then curated), refcats (sent,
    then imported), skymaps, ancillary inputs (sent, then imported).

    No raws when a stage selects visits: such a job finds raws only through the site's TAGGED
    selection of whole visits, which it reads first; a chain holding every raw would hand the
    graph builder the raws of every visit in the repository (all of them, at the central site).
    """
    instrument = spec.campaign.instrument
    visits = any(st.select == "visits" for st in stages)
    sent = {kind: [s.collection for s in input_sets if s.kind == kind]
            for kind in ("calibrations", "refcats", "ancillary")}
    butler = spec.butler
    children = [*([] if visits else [raw_collection(instrument)]),
                *sent["calibrations"], butler.calibrations.collection or f"{instrument}/calib",
                *sent["refcats"], *(r.collection for r in butler.refcats), SKYMAPS_COLLECTION,
                *sent["ancillary"], *(a.collection for a in butler.ancillary)]
    return tuple(c for c in dict.fromkeys(children) if c != defaults)


def input_type(ref: InputTypeRef, kind: InputKind, listed: bool) -> InputTypePlan | None:
    """An input's dataset type as the destinations register it (None: a name drpc does not
    know, which validation reports)."""
    if isinstance(ref, InputType):
        return InputTypePlan(ref.type, tuple(ref.dimensions), ref.storage_class,
                             kind == "calibrations", listed)
    known = INPUT_TYPE_TABLES[kind].get(ref)
    if known is None:
        return None
    return InputTypePlan(ref, known[0], known[1], kind == "calibrations", listed)


def _input_sets(spec: Campaign) -> tuple[InputSet, ...]:
    found: list[InputSet] = []
    calibs = spec.inputs.calibrations
    if calibs is not None:
        listed = calibs.types is not None
        refs = calibs.types if calibs.types is not None else list(
            DEFAULT_CALIBRATIONS.get(spec.campaign.instrument, ()))
        types = [input_type(r, "calibrations", listed) for r in refs]
        found.append(InputSet("calibrations", calibs.collection,
                              tuple(t for t in types if t is not None), "inputs.calibrations"))
    groups: tuple[tuple[InputKind, list[CollectionInput]], ...] = (
        ("refcats", spec.inputs.refcats), ("ancillary", spec.inputs.ancillary))
    for kind, items in groups:
        for i, item in enumerate(items):
            types = [input_type(r, kind, True) for r in item.types]
            found.append(InputSet(kind, item.collection,
                                  tuple(t for t in types if t is not None), f"inputs.{kind}[{i}]"))
    return tuple(found)


def _input_moves(campaign: str, input_sets: tuple[InputSet, ...], manifest: str | None,
                 central: SitePlan, others: list[SitePlan], out_coll: str) -> tuple[Move, ...]:
    """Each input dataset type from the central site to every other site, one move each, and
    the inputs' manifest (their RUN collections, the calibrations' validity ranges) as one more
    (CONTRACT section 2, inputs)."""
    sent: list[tuple[InputSet | None, InputTypePlan]] = [
        (s, t) for s in input_sets for t in s.types]
    if manifest is not None:
        sent.append((None, InputTypePlan(INPUTS_MANIFEST_TYPE, ("instrument",),
                                         INPUTS_MANIFEST_STORAGE_CLASS, False, True)))
    moves: list[Move] = []
    for dst in others:
        for input_set, t in sent:
            move_id = input_move_id(t.type, central.id, dst.id)
            calibrations = input_set is not None and input_set.kind == "calibrations"
            source = input_set.collection if input_set is not None else manifest
            assert source is not None
            words = (f"every {t.type} of {source} (validity ranges kept)" if calibrations
                     else f"every {t.type} of {source}" if input_set is not None
                     else "the inputs' manifest (RUN collections, validity ranges)")
            moves.append(Move(
                id=move_id, kind="input", stage=None, sink=Sink("inputs"), dataset_type=t.type,
                dimensions=t.dimensions, storage_class=t.storage_class, source=central.id,
                destination=dst.id, source_collection=source,
                selection_collection=move_selection(out_coll, move_id),
                select_by="everything", select_site=None,
                # a calibration collection holds several datasets per data ID (validity ranges)
                find_first=not calibrations, tracts=(), selection=words,
                rucio_scope=central.scope, rucio_name=rucio_dataset_name(campaign, move_id),
                source_rse=central.rse, destination_rse=dst.rse, incoming_collection=None,
                arrived_collections=EVERY_RUN if input_set is not None else source,
                is_calibration=t.is_calibration, may_be_empty=not t.listed,
            ))
    return tuple(moves)


def _transfers(campaign: str, datasets: tuple[DatasetPlan, ...], stages: dict[str, StagePlan],
               sites: dict[str, SitePlan], site_order: list[str], central: str, out_coll: str,
               instrument: str, skymap: str, cross: dict[str, list[int]],
               ownership: Ownership) -> tuple[Move, ...]:
    result: dict[str, Move] = {}
    others = [s for s in site_order if s != central]

    def add(kind: MoveKind, ds: DatasetPlan, src: str, dst: str, sink: Sink,
            choose: tuple[SelectBy, str | None, tuple[int, ...]], selection: str) -> None:
        move_id = f"{ds.produced_by}.{ds.type}.{src}-to-{dst}"
        also_into: tuple[str, ...] = ()
        if kind == "crosscheck":
            # its own move (a gather or return of the type from the same site carries other
            # tracts, to other chains), and its own chain per source, which the comparison reads
            move_id = crosscheck_move_id(move_id)
            also_into = (crosscheck_collection(out_coll, src),)
        if move_id in result:  # a gather that is archived too: one move, one more chain
            if kind == "return":
                gathered = result[move_id]
                result[move_id] = replace(gathered, also_into=(
                    *gathered.also_into, incoming_collection(out_coll, sink.label)))
            return
        source_collection = stage_output(out_coll, ds.produced_by)
        select_by, select_site, tracts = choose
        result[move_id] = Move(
            id=move_id, kind=kind, stage=ds.produced_by, sink=sink, dataset_type=ds.type,
            dimensions=ds.dimensions, storage_class=ds.storage_class, source=src, destination=dst,
            source_collection=source_collection,
            selection_collection=move_selection(out_coll, move_id), select_by=select_by,
            select_site=select_site, find_first=True, tracts=tracts,
            selection=selection, rucio_scope=sites[src].scope,
            rucio_name=rucio_dataset_name(campaign, move_id),
            source_rse=sites[src].rse, destination_rse=sites[dst].rse,
            incoming_collection=incoming_collection(out_coll, sink.label),
            arrived_collections=arrived_runs(source_collection), also_into=also_into,
        )

    for ds in datasets:
        producer = stages[ds.produced_by]
        consumers = [stages[c] for c in ds.consumed_by]
        if producer.runs_at == "every-site":
            central_consumers = [c for c in consumers if c.runs_at == "central"]
            if central_consumers:
                for src in others:
                    add("gather", ds, src, central, Sink("stage", central_consumers[0].name),
                        _gather_choice(ds, sites[src]), _gather_words(ds, src))
            if ds.archive:
                for src in others:
                    add("return", ds, src, central, Sink("archive"),
                        _gather_choice(ds, sites[src]), _gather_words(ds, src) + ", for archival")
        else:
            site_consumers = [c for c in consumers if c.runs_at == "every-site"]
            if site_consumers:
                for dst in others:
                    choice, selection = _scatter_selection(ds, sites[dst])
                    add("scatter", ds, central, dst, Sink("stage", site_consumers[0].name),
                        choice, selection)

    # Cross-checks: tract-level outputs of a cross-check tract come back from both sites.
    for ds in datasets:
        if not cross or stages[ds.produced_by].runs_at != "every-site" \
                or "tract" not in ds.dimensions:
            continue
        for also_at in sorted(cross):
            tracts = sorted(cross[also_at])
            owners = sorted({ownership.owner[t] for t in tracts})
            for src in [also_at, *owners]:
                if src == central:
                    continue
                picked = tuple(tracts if src == also_at
                               else sorted(t for t in tracts if ownership.owner[t] == src))
                add("crosscheck", ds, src, central, Sink("crosscheck"), ("tracts", None, picked),
                    f"{ds.type} of cross-check tract(s) {', '.join(map(str, picked))}")
    return tuple(sorted(result.values(), key=lambda m: (
        stages[m.stage].index if m.stage else 0, m.dataset_type, site_order.index(m.source),
        site_order.index(m.destination))))


def _crosschecks(spec: Campaign, datasets: tuple[DatasetPlan, ...],
                 stages: dict[str, StagePlan], ownership: Ownership,
                 out_coll: str) -> tuple[CrossCheckPair, ...]:
    """Each tract-level output of a cross-check tract, from its owner and its `also_at` site:
    what the central site returned (its cross-check chain per site), or made itself."""
    central = spec.campaign.central_site

    def side(site: str, stage: str) -> CrossCheckSide:
        return CrossCheckSide(site, stage_output(out_coll, stage) if site == central
                              else crosscheck_collection(out_coll, site))

    return tuple(
        CrossCheckPair(cc.tract, ds.type, ds.storage_class, ds.produced_by,
                       (side(ownership.owner[cc.tract], ds.produced_by),
                        side(cc.also_at, ds.produced_by)))
        for cc in spec.sky.cross_check if cc.tract in ownership.owner
        for ds in datasets
        if stages[ds.produced_by].runs_at == "every-site" and "tract" in ds.dimensions)


def _gather_choice(ds: DatasetPlan, src: SitePlan) -> tuple[SelectBy, str | None,
                                                            tuple[int, ...]]:
    """What a site sends to the central one: each visit once (from its home site), each tract
    from its owner (a cross-check tract's second copy comes back as a cross-check move)."""
    if ds.split == "visit":
        return "home-visits", src.id, src.owned_tracts
    if ds.split == "tract":
        return "tracts", None, src.owned_tracts
    return "everything", None, src.owned_tracts


def _gather_words(ds: DatasetPlan, src: str) -> str:
    if ds.split == "visit":
        return f"{ds.type} of the visits whose home is {src}"
    if ds.split == "tract":
        return f"{ds.type} of the tracts {src} owns"
    return f"every {ds.type} that {src} produced"


def _scatter_selection(ds: DatasetPlan, dst: SitePlan) -> tuple[
        tuple[SelectBy, str | None, tuple[int, ...]], str]:
    """Split by ownership: per-visit data to every site holding the visit, per-tract data to the
    site processing the tract, the rest to every site."""
    tracts = dst.processing_tracts
    if ds.split == "none":
        return (("everything", None, tracts),
                f"every {ds.type} (no visit or tract dimension: every site gets all)")
    if ds.split == "visit":
        return (("visits-held", dst.id, tracts),
                f"{ds.type} of the visits {dst.id} holds (overlapping its "
                f"{len(tracts):,} tract(s))")
    return ("tracts", None, tracts), f"{ds.type} of {dst.id}'s {len(tracts):,} tract(s)"


_RESOURCE_KEYS = (("requestMemory", "request_memory_mb"), ("requestCpus", "request_cpus"),
                  ("memoryMultiplier", "memory_multiplier"),
                  ("numberOfRetries", "number_of_retries"),
                  ("requestWalltime", "request_walltime_s"))


def _bps_values(resources: JobResources) -> tuple[tuple[str, int | float], ...]:
    """The BPS keys a stage or task sets, in BPS's names."""
    return tuple((key, value) for key, field_name in _RESOURCE_KEYS
                 if (value := getattr(resources, field_name)) is not None)


def _jobs(spec: Campaign, stages: tuple[StagePlan, ...], sites: dict[str, SitePlan],
          moves: tuple[Move, ...], out_coll: str, instrument: str, skymap: str,
          ownership: Ownership) -> tuple[Job, ...]:
    jobs: list[Job] = []
    all_tracts = tuple(sorted(ownership.owner))
    central = spec.campaign.central_site
    for st, spec_stage in zip(stages, spec.stages, strict=True):
        for sid in st.sites:
            site = sites[sid]
            # The previous stage's output at the site, a CHAINED collection that holds (through
            # its own inputs) every earlier output and the campaign inputs; listing every earlier
            # chain instead nests them all in each other, and daf_butler's chain checks flatten
            # that exponentially with the number of stages.
            earlier = [stage_output(out_coll, e.name) for e in stages[: st.index - 1]
                       if sid in e.sites][-1:]
            # arrivals for this stage (an earlier stage's are inside its output already)
            incoming = [m.incoming_collection for m in moves
                        if m.destination == sid and m.incoming_collection is not None
                        and m.sink.kind == "stage" and m.sink.stage == st.name]
            tracts = site.processing_tracts if st.runs_at == "every-site" else all_tracts
            # `visits`: whole visits, chosen by the site's TAGGED raw selection (first, so it is
            # what the graph builder finds); never a tract in the query (CONTRACT section 2).
            selection = [site.raw_selection] if st.select == "visits" else []
            query = (tract_query(instrument, skymap, tracts) if st.select == "tracts"
                     else instrument_query(instrument, skymap))
            if spec_stage.extra_query:
                query = f"{query} AND ({spec_stage.extra_query})"
            remote = site.submit == "remote"
            includes = [site.bps_site_config, *([PANDA_REMOTE_BUILD_CONFIG] if remote else []),
                        *spec.campaign.bps_includes, *spec_stage.bps_includes]
            jobs.append(Job(
                stage=st.name, stage_index=st.index, site=sid,
                pipeline_yaml=f"{spec.campaign.pipeline}#{st.subset}",
                payload_name=f"{spec.metadata.name}_{st.name}_{sid}".replace("-", "_"),
                butler_config=site.butler_repo,
                in_collections=tuple(dict.fromkeys([
                    *selection, *incoming, *(earlier or spec.campaign.input_collections)])),
                output=stage_output(out_coll, st.name), data_query=query, tracts=tuple(tracts),
                includes=tuple(dict.fromkeys(includes)),
                overrides=_bps_values(spec_stage),
                select=st.select, submit=site.submit,
                submitted_from=central if remote else sid, compute_site=site.panda_site,
                task_overrides=tuple((label, _bps_values(values))
                                     for label, values in sorted(spec_stage.tasks.items())
                                     if _bps_values(values)),
                id_link_path=id_link_path(spec.metadata.name, st.index, st.name, sid),
            ))
    return tuple(jobs)


__all__ = ["Arrival", "DatasetPlan", "Job", "Move", "Plan", "SiteEstimate", "SitePlan",
           "Sink", "StagePlan", "build_plan", "tract_predicate", "tract_query"]
