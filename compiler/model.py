"""The campaign language (CONTRACT section 1) as pydantic models.

Structure only: types, ranges, required fields, unknown keys and name patterns. Rules that
relate one part of the spec to another live in `validate.py`, where they can be reported
with positions all at once.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
SiteId = Name
StageName = Name
SkyMapName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]

# Butler dimension names a campaign may use (CONTRACT 1.2).
DIMENSIONS: tuple[str, ...] = (
    "instrument", "visit", "exposure", "detector", "tract", "patch", "band",
    "physical_filter", "skymap", "day_obs",
    *(f"healpix{i}" for i in range(3, 12)),
)
Dimension = Literal[
    "instrument", "visit", "exposure", "detector", "tract", "patch", "band",
    "physical_filter", "skymap", "day_obs",
    "healpix3", "healpix4", "healpix5", "healpix6", "healpix7", "healpix8",
    "healpix9", "healpix10", "healpix11",
]
DatasetTypeName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")]
CollectionName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}$")]
StorageClass = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")]
RseName = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9_-]{0,99}$")]
RucioScope = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_\-.0-9]{1,25}$")]
K8sName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
PandaSite = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
StackVersion = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
PlainText = Annotated[str, StringConstraints(pattern=r"^[^\n\r\x00]{0,500}$")]
PathOrUri = Annotated[str, StringConstraints(pattern=r"^[^\s\x00'\"`]{1,1000}$")]
ImageRef = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._/:@-]{0,254}$")]
HostPort = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}:[0-9]{1,5}$")]
Quantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")]


class Strict(BaseModel):
    """Every spec object: unknown keys are errors, no silent type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Metadata(Strict):
    name: Name = Field(description="Campaign id; used in file names, Rucio DIDs and Kubernetes labels.")
    description: PlainText = ""
    ticket: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,39}$")] | None = Field(
        None, description="Jira ticket, e.g. DM-12345; goes into headers and BPS project labels.")


class CampaignSettings(Strict):
    instrument: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")]
    instrument_class: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.]{0,199}$")] | None = Field(
        None, description="Python class for `butler register-instrument`; default from the instrument name.")
    skymap: SkyMapName
    stack: StackVersion = Field(description="LSST_VERSION of the software stack on /cvmfs.")
    pipeline: PathOrUri
    central_site: SiteId
    input_collections: Annotated[list[CollectionName], Field(min_length=1)]
    output_collection: CollectionName
    deadline_days: Annotated[float, Field(gt=0)] | None = None
    operator: Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")] | None = Field(
        None, description="BPS operator label (service account); default: the submitting user.")
    bps_includes: list[PathOrUri] = Field(
        default_factory=list,
        description="Extra BPS includeConfigs for every submit file (drp_pipe clustering/resources).")


class CustomSkyMap(Strict):
    """A ring skymap declared in the spec (version-1 ring numbering)."""

    num_rings: Annotated[int, Field(ge=1, le=10000)]
    ra_start_deg: Annotated[float, Field(ge=0, lt=360)] = 0.0
    tract_overlap_arcmin: Annotated[float, Field(ge=0)] = 1.0
    pixel_scale_arcsec: Annotated[float, Field(gt=0)] = 0.2
    patch_inner_dimensions: Annotated[int, Field(gt=0)] = 4000
    patch_border: Annotated[int, Field(ge=0)] = 100


class SiteButler(Strict):
    repo: PathOrUri = Field(description="Path, URI or repository-index label used at the site.")
    registry: PathOrUri | None = Field(None, description="Registry database URI (no password).")
    datastore_root: PathOrUri | None = Field(
        None, description="Datastore root for a new repo; default: the repo path.")


class SiteRucio(Strict):
    rse: RseName
    raw_rse: RseName
    scope: RucioScope | None = None
    rucio_prefix: PathOrUri
    fs_prefix: PathOrUri
    rse_root: PathOrUri | None = Field(
        None, description="Local path of the RSE root; default: fs_prefix without file://.")
    raw_rucio_prefix: PathOrUri | None = Field(
        None, description="URL prefix of the raw RSE; default: rucio_prefix.")
    raw_fs_prefix: PathOrUri | None = Field(
        None, description="Local file URL prefix of the raw RSE; default: fs_prefix.")
    raw_rse_root: PathOrUri | None = Field(
        None, description="Local path of the raw RSE root; default: raw_fs_prefix without file://, else rse_root.")
    account: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,25}$")] | None = None


class Resources(Strict):
    cpu_request: Quantity = "500m"
    cpu_limit: Quantity = "2"
    memory_request: Quantity = "2Gi"
    memory_limit: Quantity = "4Gi"


class SiteIngestd(Strict):
    namespace: K8sName
    image: ImageRef
    kafka_brokers: Annotated[list[HostPort], Field(min_length=1)]
    butler_secret: K8sName = Field(description="Name of an existing Kubernetes Secret with Butler credentials.")
    group_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,100}$")] | None = None
    replicas: Annotated[int, Field(ge=1, le=10)] = 1
    resources: Resources = Resources()


class SiteBps(Strict):
    site_config: PathOrUri | None = Field(
        None, description="The PanDA site config to include; default from panda_site.")
    merge_queue: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,100}$")] | None = None


class Site(Strict):
    facility: PlainText
    panda_site: PandaSite
    cloud: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2,10}$")]
    cores: Annotated[int, Field(gt=0)]
    gb_per_core: Annotated[float, Field(gt=0)]
    storage_tb: Annotated[float, Field(gt=0)]
    share: Annotated[float, Field(ge=0, le=1)]
    butler: SiteButler
    rucio: SiteRucio
    ingestd: SiteIngestd | None = None
    bps: SiteBps = SiteBps()


class Footprint(Strict):
    dec_min: Annotated[float, Field(ge=-90, le=90)] = -90.0
    dec_max: Annotated[float, Field(ge=-90, le=90)] = 90.0


class Ring(Strict):
    dec_min: Annotated[float, Field(ge=-90, le=90)] | None = Field(
        None, description="Default: the previous ring's dec_max (the footprint's dec_min for the first).")
    dec_max: Annotated[float, Field(ge=-90, le=90)]
    site: SiteId


class Assignment(Strict):
    rings: list[Ring] | None = None
    tracts: dict[SiteId, list[Annotated[int, Field(ge=0)]]] | None = None


class CrossCheck(Strict):
    tract: Annotated[int, Field(ge=0)]
    also_at: SiteId


class Sky(Strict):
    footprint: Footprint | None = None
    assignment: Assignment
    cross_check: list[CrossCheck] = Field(default_factory=list)


class Stage(Strict):
    name: StageName
    subset: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.,-]{1,200}$")]
    runs_at: Literal["every-site", "central"]
    weight: Annotated[float, Field(gt=0)] = Field(
        1.0, description="Relative share of the workload's core-hours, for per-phase estimates in runbooks.")
    request_memory_mb: Annotated[int, Field(gt=0)] | None = None
    request_cpus: Annotated[int, Field(gt=0)] | None = None
    memory_multiplier: Annotated[float, Field(ge=1)] | None = None
    number_of_retries: Annotated[int, Field(ge=0)] | None = None
    request_walltime_s: Annotated[int, Field(gt=0)] | None = None
    bps_includes: list[PathOrUri] = Field(default_factory=list)
    extra_query: Annotated[str, StringConstraints(pattern=r"^[^\n\r\x00\"]{1,500}$")] | None = Field(
        None, description="Extra Butler query predicate AND-ed to the job's dataQuery.")


class DatasetSpec(Strict):
    type: DatasetTypeName
    dimensions: list[Dimension]
    storage_class: StorageClass | None = Field(
        None, description="Butler storage class, to register the type at destinations; default from a table of DRP types.")
    produced_by: StageName
    consumed_by: list[StageName] = Field(default_factory=list)
    archive: bool = False


class Workload(Strict):
    visits: Annotated[int, Field(gt=0)]
    core_hours: Annotated[float, Field(gt=0)]
    storage_tb: Annotated[float, Field(gt=0)]


class AncillaryInput(Strict):
    """Data a Butler export describes (refcats, ancillary files), imported into each site's repo."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]
    collection: CollectionName
    export_file: PathOrUri = Field(description="`butler export` YAML describing the datasets.")
    directory: PathOrUri = Field(description="Folder the export's file paths are relative to.")
    transfer: Literal["auto", "link", "symlink", "hardlink", "copy", "move", "relsymlink", "direct"] = "direct"


class Calibrations(Strict):
    collection: CollectionName | None = Field(None, description="Default: <instrument>/calib.")
    curated: bool = True
    label: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None


class ButlerInputs(Strict):
    """What each site's repository needs before the campaign starts."""

    calibrations: Calibrations = Calibrations()
    refcats: list[AncillaryInput] = Field(default_factory=list)
    ancillary: list[AncillaryInput] = Field(default_factory=list)
    skymap_config: PathOrUri | None = Field(
        None, description="register-skymap config; default: one drpc writes from the skymap definition.")
    defaults_collection: CollectionName | None = Field(
        None, description="CHAINED defaults collection to create; default: the first input collection.")


class Campaign(Strict):
    """A drpc campaign: sites, sky assignment, stages and the datasets that move."""

    apiVersion: Literal["drpc/v1"]
    kind: Literal["Campaign"]
    include: list[PathOrUri] | None = Field(
        None, description="Files deep-merged underneath this one (the including file wins; lists are replaced).")
    metadata: Metadata
    campaign: CampaignSettings
    skymaps: dict[SkyMapName, CustomSkyMap] = Field(default_factory=dict)
    sites: Annotated[dict[SiteId, Site], Field(min_length=1)]
    sky: Sky
    stages: Annotated[list[Stage], Field(min_length=1)]
    datasets: list[DatasetSpec] = Field(default_factory=list)
    butler: ButlerInputs = ButlerInputs()
    workload: Workload | None = None
