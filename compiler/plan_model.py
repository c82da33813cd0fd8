"""The value types of the plan: sites, stages, jobs, datasets and moves (CONTRACT section 2).

Frozen dataclasses with no behaviour beyond naming what they hold; `plan.py` derives them
from the spec, `schedule.py` orders them, and every renderer reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .model import SiteIngestd

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
    # BPS job attributes, e.g. ("requestMemory", 8000)
    overrides: tuple[tuple[str, int | float], ...]

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


MoveKind = Literal["raw", "gather", "scatter", "return", "crosscheck"]
SinkKind = Literal["stage", "archive", "crosscheck"]
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
    where: str | None  # Butler query selecting what goes (None: everything of the type)
    find_first: bool  # resolve the source collection as a consumer would (not for raws)
    tracts: tuple[int, ...]  # the tracts whose datasets (or overlapping visits) it carries
    selection: str  # human words for scripts and runbooks
    rucio_scope: str
    rucio_name: str
    source_rse: str
    destination_rse: str
    incoming_collection: str | None  # CHAINED collection at the destination (None for raws)
    arrived_collections: str  # collection expression holding what arrived at the destination

    @property
    def rucio_did(self) -> str:
        return f"{self.rucio_scope}:{self.rucio_name}"

    @property
    def is_raw(self) -> bool:
        return self.kind == "raw"

    @property
    def into(self) -> str:
        """The collection the move's datasets end up in at the destination."""
        return self.incoming_collection or self.arrived_collections


@dataclass(frozen=True)
class Arrival:
    """Files landing on one RSE of a site under one scope: what its ctrl_ingestd must listen to."""

    rse: str
    scope: str
    rucio_prefix: str  # the RSE's URL prefix, as Rucio writes it in transfer events
    fs_prefix: str  # the same place as a local file URL at the site
    moves: tuple[str, ...]  # ids of the transfers and raw distributions that land here
