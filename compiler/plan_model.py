"""The value types of the plan: sites, stages, jobs, datasets and moves (CONTRACT section 2).

Frozen dataclasses with no behaviour beyond naming what they hold; `plan.py` derives them
from the spec, `schedule.py` orders them, and every renderer reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .model import SiteIngestd, SiteMonitoring

Split = Literal["visit", "tract", "none"]
Select = Literal["visits", "tracts", "all"]
Submit = Literal["local", "remote"]
# How a move's datasets are chosen at the source (by `butler/selection.py`, into a TAGGED
# collection):
#   visits-held: datasets (raws: every detector) of the visits overlapping the tracts of `site`;
#   home-visits: datasets of the visits whose home is `site` (its tract holds the visit's centre);
#   tracts: datasets of the move's tracts; everything: every dataset of the type.
SelectBy = Literal["visits-held", "home-visits", "tracts", "everything"]


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
    butler_namespace: str | None  # PostgreSQL schema of a postgresql registry (else None)
    datastore_root: str  # <rse_root>/<scope> unless the spec says otherwise: see rucio_ingestd.md
    rucio_datastore_root: str  # <rse_root>/<scope>: what the Rucio set-up assumes the root is
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
    dataset_file_limit: int  # most files per Rucio dataset of a move from here (then a container)
    ingestd: SiteIngestd | None
    monitoring: SiteMonitoring
    bps_site_config: str
    merge_queue: str
    submit: Submit  # local: its operator submits here; remote: from the central site
    raw_selection: str  # TAGGED collection of every raw of the visits it holds
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
    select: Select = "tracts"


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
    # BPS job attributes, e.g. ("requestMemory", 8000)
    overrides: tuple[tuple[str, int | float], ...]
    select: Select = "tracts"
    submit: Submit = "local"
    submitted_from: str = ""  # site whose operator runs `bps submit` (the compute site if local)
    compute_site: str = ""  # PanDA computeSite (`--compute-site` of a remote submission)
    # Per-task BPS values (`pipetask.<label>.<key>`), e.g. ("fgcmFitCycle", (("requestMemory", 1),))
    task_overrides: tuple[tuple[str, tuple[tuple[str, int | float], ...]], ...] = ()
    id_link_path: str = ""  # BPS idLinkPath: a link named by each run id, on the submit host

    @property
    def is_remote(self) -> bool:
        return self.submit == "remote"

    @property
    def path(self) -> str:
        """Its submit file in the compiled tree (`paths.bps_submit`)."""
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


MoveKind = Literal["raw", "input", "gather", "scatter", "return", "crosscheck"]
SinkKind = Literal["stage", "archive", "crosscheck", "inputs"]
InputKind = Literal["calibrations", "refcats", "ancillary"]


@dataclass(frozen=True)
class InputTypePlan:
    type: str
    dimensions: tuple[str, ...]
    storage_class: str
    is_calibration: bool
    listed: bool  # named in the spec (else one of the instrument's default calibrations)


@dataclass(frozen=True)
class InputSet:
    """One collection of the central site that every other site needs before stage 1."""

    kind: InputKind
    collection: str
    types: tuple[InputTypePlan, ...]
    position: str  # the spec field, e.g. "inputs.refcats[0]"
RAW_DATASET_TYPE = "raw"


@dataclass(frozen=True)
class Sink:
    """What waits for a move at its destination: a stage, the archival or the cross-check."""

    kind: SinkKind
    stage: str | None = None  # the consuming stage, when kind == "stage"

    @property
    def label(self) -> str:
        """The name of the incoming chain: `<output>/incoming/<label>`."""
        return self.stage if self.kind == "stage" and self.stage else self.kind


@dataclass(frozen=True)
class Move:
    """Datasets of one type going from one site to another as one Rucio dataset.

    Every transfer of the campaign is one: raws to the sites that process them, gathers,
    scatters split by ownership, returns for archival, cross-check returns. Rucio, verify,
    runbook and rehearsal all read this one object.
    """

    id: str  # <stage>.<dataset type>.<source>-to-<destination>, or raw.<central>-to-<site>
    kind: MoveKind
    stage: str | None  # the producing stage (None for raws)
    sink: Sink
    dataset_type: str
    dimensions: tuple[str, ...]
    storage_class: str | None
    source: str
    destination: str
    source_collection: str  # where the datasets are at the source
    selection_collection: str  # TAGGED collection at the source holding exactly what goes
    select_by: SelectBy
    select_site: str | None  # the site whose visits `visits-held`/`home-visits` mean
    find_first: bool  # resolve the source collection as a consumer would (not for raws)
    tracts: tuple[int, ...]  # the tracts whose datasets (or overlapping visits) it carries
    selection: str  # human words for scripts and runbooks
    rucio_scope: str
    rucio_name: str
    source_rse: str
    destination_rse: str
    incoming_collection: str | None  # CHAINED collection at the destination (None for raws)
    arrived_collections: str  # collection expression holding what arrived at the destination
    # More CHAINED collections the arrived RUNs join: a gathered type that is also archived
    # (`archive: true`) is one move (one id) into its stage's chain and `incoming/archive`.
    also_into: tuple[str, ...] = ()
    is_calibration: bool = False  # a calibration type (registered with --is-calibration)
    may_be_empty: bool = False  # nothing sent is no error (a default calibration type)

    @property
    def rucio_did(self) -> str:
        return f"{self.rucio_scope}:{self.rucio_name}"

    @property
    def is_raw(self) -> bool:
        return self.kind == "raw"

    @property
    def is_input(self) -> bool:
        return self.kind == "input"

    @property
    def chains(self) -> tuple[str, ...]:
        """Every CHAINED collection its arrived RUNs are chained into at the destination."""
        return (self.incoming_collection, *self.also_into) if self.incoming_collection else ()

    @property
    def archived_into(self) -> str | None:
        """The chain where the archival (or cross-check) finds it, if it is archived at all."""
        if self.sink.kind in ("archive", "crosscheck"):
            return self.into
        return self.also_into[0] if self.also_into else None

    @property
    def into(self) -> str:
        """The collection the move's datasets end up in at the destination (an input: the
        collection of the central site's name that `butler/inputs.py` makes there)."""
        if self.is_input:
            return self.source_collection
        return self.incoming_collection or self.arrived_collections


@dataclass(frozen=True)
class Arrival:
    """Files landing on one RSE of a site under one scope: what its ctrl_ingestd must listen to."""

    rse: str
    scope: str
    rucio_prefix: str  # the RSE's URL prefix, as Rucio writes it in transfer events
    fs_prefix: str  # the same place as a local file URL at the site
    moves: tuple[str, ...]  # ids of the transfers and raw distributions that land here


@dataclass(frozen=True)
class CrossCheckSide:
    site: str
    collection: str  # where the central site finds this site's result of the tract


@dataclass(frozen=True)
class CrossCheckPair:
    """One dataset type of one cross-check tract, made at two sites, compared at the central
    site (`butler/crosscheck.py`): the owner's result against the `also_at` site's."""

    tract: int
    dataset_type: str
    storage_class: str | None
    stage: str
    sides: tuple[CrossCheckSide, CrossCheckSide]  # (owner, also_at)

