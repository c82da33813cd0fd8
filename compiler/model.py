"""The campaign language (CONTRACT section 1) as pydantic models.

Structure only: types, ranges, required fields, unknown keys and name patterns. Rules that
relate one part of the spec to another live in `validate.py`, where they can be reported
with positions all at once.

Every field has a description (it becomes the JSON Schema's, shown by editors), every number
is finite and bounded, and every string pattern is written so that it means the same in
pydantic-core's Rust `regex` engine, Python's `re` and ECMA-262 with the `u` flag (the dialect
of JSON Schema `pattern`, used by editors' validators and check-jsonschema): characters are
named as `\\uXXXX` escapes, never `\\xXX` or `\\s`, and no character is escaped that ECMA-262
would refuse to see escaped.
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

# -- free text and paths --------------------------------------------------------------------------
# Character-class bodies (regex escapes, not the characters themselves).
# Every control character: C0 (tab, LF, CR, NUL ...), DEL and C1 (which holds U+0085 NEL).
CONTROL = r"\u0000-\u001F\u007F-\u009F"
# The line breaks YAML 1.1 adds to LF and CR (NEL is C1, above): PyYAML and libyaml end a `#`
# comment at them, so one in a value that drpc writes into a comment header would start a
# new YAML line in the generated BPS or Kubernetes file.
LINE_SEPARATORS = r"\u2028\u2029"
# Every Unicode white space character (Python's and ECMA-262's `\s`) that CONTROL leaves out.
SPACE = r"\u0020\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000\uFEFF"
# One character of a path or URI: no control, no white space, no quote or backtick.
PATH_CHAR = "[^" + CONTROL + LINE_SEPARATORS + SPACE + "'\"`]"
TEXT_CHAR = "[^" + CONTROL + LINE_SEPARATORS + "]"

PLAIN_TEXT_PATTERN = "^" + TEXT_CHAR + "{0,500}$"
PATH_PATTERN = "^" + PATH_CHAR + "{1,1000}$"
FILE_URL_PATTERN = "^file://" + PATH_CHAR + "{1,993}$"
QUERY_PATTERN = "^[^" + CONTROL + LINE_SEPARATORS + "\"]{1,500}$"


def _pattern(pattern: str) -> StringConstraints:
    return StringConstraints(pattern=pattern)


DatasetTypeName = Annotated[str, _pattern(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")]
CollectionName = Annotated[str, _pattern(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}$")]
StorageClass = Annotated[str, _pattern(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")]
RSE_PATTERN = r"^[A-Z0-9][A-Z0-9_-]{0,99}$"
RseName = Annotated[str, _pattern(RSE_PATTERN)]
RucioScope = Annotated[str, _pattern(r"^[a-zA-Z_\-.0-9]{1,25}$")]  # Rucio's own scope pattern
RucioAccount = Annotated[str, _pattern(r"^[a-z0-9_-]{1,25}$")]
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
K8sName = Annotated[str, _pattern(K8S_NAME_PATTERN)]
PandaSite = Annotated[str, _pattern(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
PandaQueue = Annotated[str, _pattern(r"^[A-Za-z0-9_-]{1,100}$")]
StackVersion = Annotated[str, _pattern(r"^[A-Za-z0-9_.-]{1,64}$")]
Ticket = Annotated[str, _pattern(r"^[A-Za-z][A-Za-z0-9_.-]{0,39}$")]
InstrumentName = Annotated[str, _pattern(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")]
PythonClass = Annotated[str, _pattern(r"^[A-Za-z_][A-Za-z0-9_.]{0,199}$")]
UnixUser = Annotated[str, _pattern(r"^[a-z_][a-z0-9_-]{0,31}$")]
SubsetLabel = Annotated[str, _pattern(r"^[A-Za-z0-9_.,-]{1,200}$")]
InputName = Annotated[str, _pattern(r"^[A-Za-z0-9_.-]{1,100}$")]
KafkaGroupId = Annotated[str, _pattern(r"^[A-Za-z0-9._-]{1,100}$")]
CalibLabel = Annotated[str, _pattern(r"^[A-Za-z0-9_-]{1,64}$")]
# One line of text for people (labels, descriptions): no line break of YAML 1.1 or 1.2, no tab,
# no other control character, at most 500 characters.
PlainText = Annotated[str, _pattern(PLAIN_TEXT_PATTERN)]
# A path, URI or label: no control character, white space, quote or backtick (so it is one
# shell word and one YAML scalar wherever drpc writes it); `${VAR}` references are allowed.
PathOrUri = Annotated[str, _pattern(PATH_PATTERN)]
FileUrlPrefix = Annotated[str, _pattern(FILE_URL_PATTERN)]
ButlerPredicate = Annotated[str, _pattern(QUERY_PATTERN)]
ImageRef = Annotated[str, _pattern(r"^[a-z0-9][a-z0-9._/:@-]{0,254}$")]
HostPort = Annotated[str, _pattern(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}:[0-9]{1,5}$")]
Quantity = Annotated[str, _pattern(r"^[0-9]{1,9}(\.[0-9]{1,6})?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")]
PG_SCHEMA_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"
PgSchema = Annotated[str, _pattern(PG_SCHEMA_PATTERN)]
TransferMode = Literal[
    "auto", "link", "symlink", "hardlink", "copy", "move", "relsymlink", "direct"]
Degrees = Annotated[float, Field(ge=-90, le=90)]

# -- bounds ---------------------------------------------------------------------------------------
# Sane upper limits, far above any real campaign, so that no value overflows a float or
# stalls the planner. Floats are also finite (`allow_inf_nan=False` below).
MAX_CORES = 10_000_000
MAX_GB_PER_CORE = 1024
MAX_STORAGE_TB = 10_000_000  # 10 EB
MAX_DEADLINE_DAYS = 3650
MAX_TRACT_ID = 1_000_000
# Real ring skymaps have 120 rings (hsc_rings_v1, lsst_cells_v1: 18,938 tracts). The tract
# geometry is built at validation time and grows with the square of num_rings: 300 rings
# (116,104 tracts) validate in about 0.25 s, 1000 in 3 s, 3000 in 30 s and 1.9 GB.
MAX_NUM_RINGS = 300
MAX_TRACT_OVERLAP_ARCMIN = 60
MAX_PIXEL_SCALE_ARCSEC = 10
MAX_PATCH_INNER_DIMENSIONS = 100_000
MAX_PATCH_BORDER = 10_000
MAX_WEIGHT = 1_000_000
MAX_REQUEST_MEMORY_MB = 10_000_000
MAX_REQUEST_CPUS = 1024
MAX_MEMORY_MULTIPLIER = 100
MAX_RETRIES = 100
MAX_WALLTIME_S = 30 * 24 * 3600
MAX_VISITS = 100_000_000
MAX_CORE_HOURS = 10_000_000_000



class Strict(BaseModel):
    """Every spec object: unknown keys are errors, no silent type coercion, finite numbers only."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False,
                              regex_engine="rust-regex")


class Metadata(Strict):
    """Who the campaign is: its id, a description and the Jira ticket."""

    name: Name = Field(description=(
        "Campaign id: lowercase letters, digits and '-', starting with a letter, at most 40 "
        "characters. Used in file names, Rucio dataset names, Kubernetes names and BPS labels, "
        "and as the Rucio scope of a site without rucio.scope."))
    description: PlainText = Field("", description=(
        "One line describing the campaign, shown at the top of the campaign runbook. Plain "
        "text: no line break, tab or other control character, at most 500 characters. "
        "Default: empty."))
    ticket: Ticket | None = Field(None, description=(
        "Jira ticket, e.g. DM-12345; goes into file headers and the BPS project label. "
        "Default: none (BPS project = the campaign name)."))


class CampaignSettings(Strict):
    """What is run: instrument, skymap, software stack, pipeline and Butler collections."""

    instrument: InstrumentName = Field(description=(
        "Butler instrument name, e.g. LSSTCam or HSC; used in every dataQuery and collection "
        "name."))
    instrument_class: PythonClass | None = Field(None, description=(
        "Python class for `butler register-instrument`, e.g. lsst.obs.lsst.LsstCam. "
        "Default: from a table of known instruments."))
    skymap: SkyMapName = Field(description=(
        "Ring skymap the tracts belong to: a built-in one (hsc_rings_v1, lsst_cells_v1) or one "
        "declared under `skymaps:`."))
    stack: StackVersion = Field(description=(
        "LSST_VERSION of the software stack on /cvmfs, e.g. w_2025_30."))
    pipeline: PathOrUri = Field(description=(
        "Pipeline YAML every stage's subset is taken from (BPS pipelineYaml), e.g. "
        "${DRP_PIPE_DIR}/pipelines/LSSTCam/DRP.yaml."))
    central_site: SiteId = Field(description=(
        "Site id where `central` (fan-in) stages run, where gathered and archived outputs go, "
        "and which holds every raw."))
    input_collections: Annotated[list[CollectionName], Field(min_length=1)] = Field(description=(
        "Butler collections every job reads (BPS inCollection), before the outputs of earlier "
        "stages; at least one."))
    output_collection: CollectionName = Field(description=(
        "Prefix of every output collection: stage S writes the CHAINED collection "
        "<output_collection>/<S>, arrivals are chained into <output_collection>/incoming/<S>."))
    deadline_days: Annotated[float, Field(gt=0, le=MAX_DEADLINE_DAYS)] | None = Field(
        None, description=(
            f"Target duration of the campaign in days (at most {MAX_DEADLINE_DAYS}); the "
            "planner warns when a site's estimate exceeds it. Default: no deadline."))
    operator: UnixUser | None = Field(None, description=(
        "BPS operator label (service account). Default: the submitting user."))
    bps_includes: list[PathOrUri] = Field(default_factory=list, description=(
        "Extra BPS includeConfigs for every submit file, e.g. drp_pipe's clustering and "
        "resource files. Default: none."))


class CustomSkyMap(Strict):
    """A ring skymap declared in the spec (lsst.skymap RingsSkyMap, version-1 tract numbering)."""

    num_rings: Annotated[int, Field(ge=1, le=MAX_NUM_RINGS)] = Field(description=(
        f"Number of declination rings between the two polar caps (RingsSkyMap numRings), 1 to "
        f"{MAX_NUM_RINGS}. Real ring skymaps have 120 (hsc_rings_v1, lsst_cells_v1); drpc "
        "builds every tract's geometry when it validates, and the bound keeps that well under "
        "a second."))
    ra_start_deg: Annotated[float, Field(ge=0, lt=360)] = Field(0.0, description=(
        "Right ascension of the first tract of each ring, degrees in [0, 360) (raStart). "
        "Default 0."))
    tract_overlap_arcmin: Annotated[float, Field(ge=0, le=MAX_TRACT_OVERLAP_ARCMIN)] = Field(
        1.0, description=(
            f"Overlap between neighbouring tracts, arcminutes, 0 to {MAX_TRACT_OVERLAP_ARCMIN} "
            "(tractOverlap). Default 1."))
    pixel_scale_arcsec: Annotated[float, Field(gt=0, le=MAX_PIXEL_SCALE_ARCSEC)] = Field(
        0.2, description=(
            f"Coadd pixel scale, arcseconds per pixel, at most {MAX_PIXEL_SCALE_ARCSEC} "
            "(pixelScale). Default 0.2."))
    patch_inner_dimensions: Annotated[int, Field(gt=0, le=MAX_PATCH_INNER_DIMENSIONS)] = Field(
        4000, description=(
            f"Width and height of a patch without its border, pixels, at most "
            f"{MAX_PATCH_INNER_DIMENSIONS:,} (patchInnerDimensions). Default 4000."))
    patch_border: Annotated[int, Field(ge=0, le=MAX_PATCH_BORDER)] = Field(100, description=(
        f"Border around each patch, pixels, 0 to {MAX_PATCH_BORDER:,} (patchBorder). "
        "Default 100."))


class SiteButler(Strict):
    """The site's Butler repository."""

    repo: PathOrUri = Field(description=(
        "Path, URI or repository-index label of the site's Butler repo."))
    registry: PathOrUri | None = Field(None, description=(
        "Registry database URI for a new repo, e.g. postgresql://host:5432/db, never with a "
        "password (credentials come from db-auth.yaml or PGPASSWORD). Default: SQLite in the "
        "repo."))
    datastore_root: PathOrUri | None = Field(None, description=(
        "Datastore root for a new repo. Default: <rse_root>/<scope>, so that rucio-register's "
        "dataset names equal Rucio's paths."))
    namespace: PgSchema | None = Field(None, description=(
        "PostgreSQL schema of the registry tables (the seed config's registry.namespace). "
        "Default, for a postgresql registry: the repository's name, lowercase with '_' for "
        "other characters."))


class SiteRucio(Strict):
    """The site's Rucio storage elements and how their files are reached."""

    rse: RseName = Field(description=(
        "Rucio RSE where processing outputs land (and are sent from), e.g. SLAC_BUTLER_DISK."))
    raw_rse: RseName = Field(description="Rucio RSE where raws land, e.g. SLAC_RAW_DISK.")
    scope: RucioScope | None = Field(None, description=(
        "Rucio scope of the site's datasets (at most 25 characters). Default: the repository's "
        "name (the last path component of butler.repo), as rucio-register expects: DID names "
        "are paths inside the datastore root <rse_root>/<scope>."))
    rucio_prefix: PathOrUri = Field(description=(
        "URL prefix of the RSE as Rucio reaches it (its protocol prefix), e.g. "
        "davs://host:2094/rubin/; written into rucio-register's and ctrl_ingestd's configs."))
    fs_prefix: FileUrlPrefix = Field(description=(
        "The same RSE root as a local file URL prefix (file://...), as ctrl_ingestd and the "
        "site's Butler see it, e.g. file:///sdf/data/rubin/rucio/."))
    rse_root: PathOrUri | None = Field(None, description=(
        "Local path of the RSE root. Default: fs_prefix without file://."))
    raw_rucio_prefix: PathOrUri | None = Field(None, description=(
        "URL prefix of the raw RSE as Rucio reaches it. Default: rucio_prefix."))
    raw_fs_prefix: FileUrlPrefix | None = Field(None, description=(
        "Local file URL prefix (file://...) of the raw RSE. Default: fs_prefix."))
    raw_rse_root: PathOrUri | None = Field(None, description=(
        "Local path of the raw RSE root. Default: raw_fs_prefix without file://, else "
        "rse_root."))
    account: RucioAccount | None = Field(None, description=(
        "Rucio account that owns the site's rules. Default: the account of the operator's "
        "Rucio config."))
    dataset_file_limit: Annotated[int, Field(ge=1, le=10_000_000)] = Field(100_000, description=(
        "Most files in one Rucio dataset registered at this site: a move with more is split "
        "into datasets of at most this many files, attached to one container that the rule "
        "replicates. Default 100000."))


class Resources(Strict):
    """Kubernetes resources of the ctrl_ingestd container (Kubernetes quantities)."""

    cpu_request: Quantity = Field("500m", description="CPU request. Default 500m.")
    cpu_limit: Quantity = Field("2", description="CPU limit. Default 2.")
    memory_request: Quantity = Field("2Gi", description="Memory request. Default 2Gi.")
    memory_limit: Quantity = Field("4Gi", description="Memory limit. Default 4Gi.")


class IngestdVolume(Strict):
    """A volume the ctrl_ingestd pod mounts: a PersistentVolumeClaim or a host path."""

    name: K8sName = Field(description="Volume name in the pod (a Kubernetes name).")
    mount_path: PathOrUri = Field(description=(
        "Absolute path the volume is mounted at in the container; the Butler repository and "
        "the RSE root must lie under a mount for the pod to ingest."))
    claim: K8sName | None = Field(None, description=(
        "Name of an existing PersistentVolumeClaim to mount (exactly one of claim, host_path)."))
    host_path: PathOrUri | None = Field(None, description=(
        "Absolute path on the node to mount (a hostPath volume; exactly one of claim, "
        "host_path)."))
    read_only: bool = Field(False, description="Mount read-only. Default false.")


class SiteIngestd(Strict):
    """ctrl_ingestd at the site: ingests the files Rucio delivers into the site's Butler."""

    namespace: K8sName = Field(description="Kubernetes namespace ctrl_ingestd is deployed into.")
    image: ImageRef = Field(description=(
        "ctrl_ingestd container image with a tag that exists (never `latest`)."))
    kafka_brokers: Annotated[list[HostPort], Field(min_length=1)] = Field(description=(
        "Kafka bootstrap servers (host:port) carrying Rucio's transfer-done events to the "
        "site; at least one."))
    butler_secret: K8sName = Field(description=(
        "Name of an existing Kubernetes Secret with the Butler credentials."))
    group_id: KafkaGroupId | None = Field(None, description=(
        "Kafka consumer group id. Default: ingestd-<campaign>-<site>."))
    replicas: Annotated[int, Field(ge=1, le=10)] = Field(1, description=(
        "Number of ctrl_ingestd pods, 1 to 10. Default 1."))
    volumes: list[IngestdVolume] = Field(default_factory=list, description=(
        "Volumes the pod mounts so that it sees the Butler repository and the RSE root (a "
        "PVC or a host path each). Default: none, which only works for a repository reached "
        "over the network and files it does not need to read."))
    resources: Resources = Field(default=Resources(), description=(
        "CPU and memory requests and limits of the container. Default: 500m/2 CPU, 2Gi/4Gi "
        "memory."))


# Kubernetes label keys ([prefix/]name) and values.
LabelKey = Annotated[str, _pattern(
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")]
LabelValue = Annotated[str, _pattern(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")]


class SiteMonitoring(Strict):
    """How the site's Prometheus finds drpc's alert rules and status metrics."""

    rule_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, description=(
        "Labels of the PrometheusRule object, which prometheus-operator selects rules by "
        "(e.g. {release: kube-prometheus-stack}). Default: none."))
    namespace: K8sName | None = Field(None, description=(
        "Kubernetes namespace of the PrometheusRule and the status exporter. Default: the "
        "ingestd namespace, else drpc-monitoring."))
    runbook_url: PathOrUri | None = Field(None, description=(
        "Where operators read the compiled tree (e.g. the git web URL of its folder); alert "
        "runbook_url annotations point at the site runbook's steps under it. Default: the "
        "runbook's path in the compiled tree."))
    textfile_dir: PathOrUri = Field("/var/lib/node_exporter/textfile_collector", description=(
        "node_exporter's textfile collector folder the status exporter writes into. Default "
        "/var/lib/node_exporter/textfile_collector."))


class SiteBps(Strict):
    """How BPS submits the site's jobs to PanDA."""

    submit: Literal["local", "remote"] = Field("local", description=(
        "local: the site's operator runs `bps submit` at the site, which builds the "
        "QuantumGraph against the site's own Butler; remote: the central site's operator "
        "submits with ctrl_bps_panda's remote build (bps_remote.yaml, `bps submit "
        "--compute-site <panda_site>`) and the graph is built at the site. Default local."))

    site_config: PathOrUri | None = Field(None, description=(
        "ctrl_bps_panda site config to include. Default from panda_site: SLAC -> "
        "bps_usdf.yaml, CC-IN2P3 -> bps_frdf.yaml, LANCS -> bps_ukdf.yaml, others "
        "bps_panda_DF.yaml."))
    merge_queue: PandaQueue | None = Field(None, description=(
        "PanDA queue of the final (merge) job. Default: <panda_site>_Rubin_Merge."))


class Site(Strict):
    """One data facility: its capacity, share, Butler, Rucio, ctrl_ingestd and BPS settings."""

    facility: PlainText = Field(description=(
        "Label of the data facility shown in runbooks and file headers, e.g. USDF (SLAC). "
        "Plain text: no line break, tab or other control character, at most 500 characters."))
    panda_site: PandaSite = Field(description=(
        "PanDA site the jobs run at (BPS computeSite), e.g. SLAC, CC-IN2P3, LANCS, RAL."))
    cloud: Literal["US", "EU"] = Field(description=(
        "PanDA cloud of the site (BPS computeCloud): US or EU."))
    cores: Annotated[int, Field(gt=0, le=MAX_CORES)] = Field(description=(
        f"Cores the site gives the campaign, 1 to {MAX_CORES:,}; the planner's days = "
        "core-hours / cores / 24."))
    gb_per_core: Annotated[float, Field(gt=0, le=MAX_GB_PER_CORE)] = Field(description=(
        f"Memory per core in GB, at most {MAX_GB_PER_CORE}."))
    storage_tb: Annotated[float, Field(gt=0, le=MAX_STORAGE_TB)] = Field(description=(
        f"Disk the site gives the campaign, TB, at most {MAX_STORAGE_TB:,}; the planner warns "
        "when its estimate is larger."))
    share: Annotated[float, Field(ge=0, le=1)] = Field(description=(
        "Intended fraction of the campaign, 0 to 1; the shares of all sites sum to 1, and a "
        "warning says when the site's fraction of the tracts differs by more than 0.05."))
    butler: SiteButler = Field(description=(
        "The site's Butler repository: where it is, its registry and datastore root."))
    rucio: SiteRucio = Field(description="The site's Rucio RSEs, scope and prefixes.")
    ingestd: SiteIngestd | None = Field(None, description=(
        "ctrl_ingestd deployment; needed wherever transfers arrive. Default: none (no file may "
        "arrive at the site)."))
    bps: SiteBps = Field(default=SiteBps(), description=(
        "BPS settings of the site. Default: derived from panda_site."))
    monitoring: SiteMonitoring = Field(default=SiteMonitoring(), description=(
        "Prometheus rules and status metrics of the site. Default: no rule labels, the "
        "ingestd namespace."))


class Footprint(Strict):
    """The declination band whose tracts take part (by tract centre, both ends included)."""

    dec_min: Degrees = Field(-90.0, description="Southern limit, degrees. Default -90.")
    dec_max: Degrees = Field(90.0, description="Northern limit, degrees. Default 90.")


class Ring(Strict):
    """A declination band of tracts owned by one site; rings go south to north."""

    dec_min: Degrees | None = Field(None, description=(
        "Southern limit, degrees (included). Default: the previous ring's dec_max (the "
        "footprint's dec_min for the first)."))
    dec_max: Degrees = Field(description=(
        "Northern limit, degrees (excluded, except for the northmost ring)."))
    site: SiteId = Field(description="Site id that owns the tracts whose centre lies in the ring.")


TractId = Annotated[int, Field(ge=0, le=MAX_TRACT_ID)]


class Assignment(Strict):
    """Which site owns which tract: declination rings or explicit tract lists (exactly one)."""

    rings: list[Ring] | None = Field(None, description=(
        "Declination rings, south to north, covering the footprint with no gap or overlap."))
    tracts: dict[SiteId, list[TractId]] | None = Field(None, description=(
        "Explicit tract ids per site id (each tract at one site), instead of rings."))


class CrossCheck(Strict):
    """A tract processed at a second site as well, to compare the results."""

    tract: TractId = Field(description=(
        "Tract id of the skymap, owned by another site than also_at."))
    also_at: SiteId = Field(description=(
        "Site id that processes the tract as well, in every every-site stage."))


class CrossCheckTolerance(Strict):
    """How far the two sites' results of a cross-check tract may differ and still agree."""

    count_fraction: Annotated[float, Field(ge=0, le=1)] = Field(0.0, description=(
        "Largest relative difference of the number of datasets per data ID, or of the rows of "
        "a catalog, 0 to 1. Default 0 (the same counts)."))
    match_arcsec: Annotated[float, Field(gt=0, le=60)] = Field(0.5, description=(
        "Radius, arcsec, within which two catalogs' rows are the same object. Default 0.5."))
    mag_mad: Annotated[float, Field(ge=0, le=10)] = Field(0.02, description=(
        "Largest median absolute magnitude difference of matched objects, mag (from zero: a "
        "zero-point offset between the sites counts). Default 0.02."))
    matched_fraction: Annotated[float, Field(ge=0, le=1)] = Field(0.95, description=(
        "Smallest fraction of a catalog's rows matched in the other site's. Default 0.95."))


class Sky(Strict):
    """The part of the sky the campaign processes and how it is split between sites."""

    footprint: Footprint | None = Field(None, description=(
        "Declination band whose tracts take part. Default: the whole sky (or, with tract "
        "lists, just the listed tracts)."))
    assignment: Assignment = Field(description="Tract ownership: rings or tract lists.")
    cross_check: list[CrossCheck] = Field(default_factory=list, description=(
        "Tracts also processed at a second site. Default: none."))
    cross_check_tolerance: CrossCheckTolerance = Field(default=CrossCheckTolerance(), description=(
        "How far the two results of a cross-check tract may differ (the comparison at the "
        "central site fails beyond). Default: same counts, photometry within 0.02 mag MAD."))


class JobResources(Strict):
    """BPS job attributes a stage or one of its tasks may set (each optional)."""

    request_memory_mb: Annotated[int, Field(gt=0, le=MAX_REQUEST_MEMORY_MB)] | None = Field(
        None, description=(
            f"BPS requestMemory (MB) of the jobs it applies to, at most "
            f"{MAX_REQUEST_MEMORY_MB:,}. Default: the BPS config's (per-task resource files "
            "still win)."))
    request_cpus: Annotated[int, Field(gt=0, le=MAX_REQUEST_CPUS)] | None = Field(
        None, description=(
            f"BPS requestCpus of the jobs it applies to, 1 to {MAX_REQUEST_CPUS}. Default: the "
            "BPS config's."))
    memory_multiplier: Annotated[float, Field(ge=1, le=MAX_MEMORY_MULTIPLIER)] | None = Field(
        None, description=(
            f"BPS memoryMultiplier (memory growth on each retry after running out), 1 to "
            f"{MAX_MEMORY_MULTIPLIER}. Default: the BPS config's."))
    number_of_retries: Annotated[int, Field(ge=0, le=MAX_RETRIES)] | None = Field(
        None, description=(
            f"BPS numberOfRetries of a failed job, 0 to {MAX_RETRIES}. Default: the BPS "
            "config's."))
    request_walltime_s: Annotated[int, Field(gt=0, le=MAX_WALLTIME_S)] | None = Field(
        None, description=(
            f"BPS requestWalltime in seconds, at most {MAX_WALLTIME_S:,} (30 days). Default: "
            "the BPS config's."))


TaskLabel = Annotated[str, _pattern(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")]


class TaskOverrides(JobResources):
    """BPS values of one task label of a stage (rendered as `pipetask.<label>.*`)."""


class Stage(JobResources):
    """One step of the pipeline: a subset run as one BPS workflow per site (or once, centrally)."""

    name: StageName = Field(description=(
        "Stage name, unique in the campaign: lowercase letters, digits and '-'. Names the BPS "
        "submit file and the output collection <output_collection>/<name>."))
    subset: SubsetLabel = Field(description=(
        "Label of a subset of campaign.pipeline, or task labels a,b,c."))
    runs_at: Literal["every-site", "central"] = Field(description=(
        "every-site: one workflow per site on its own visits or tracts; central: one workflow "
        "at campaign.central_site (fan-in)."))
    select: Literal["visits", "tracts", "all"] | None = Field(None, description=(
        "How the stage's jobs are restricted. visits: by the input collection only (the site's "
        "TAGGED selection of whole visits and what earlier stages made from it), dataQuery "
        "without a tract; tracts: the site's tracts (the campaign's, at the central site); all: "
        "no spatial constraint, for global subsets such as FGCM (central stages only). "
        "Default: tracts for every-site stages, all for central stages."))
    tasks: dict[TaskLabel, TaskOverrides] = Field(default_factory=dict, description=(
        "BPS values of single task labels of the subset (pipetask.<label>.*), e.g. "
        "fgcmFitCycle: {request_memory_mb: 480000, request_cpus: 60}; they never reach "
        "pipetaskInit or the stage's other tasks. Default: none."))
    weight: Annotated[float, Field(gt=0, le=MAX_WEIGHT)] = Field(1.0, description=(
        "The stage's relative share of the workload's core-hours (its weight over the sum of "
        "all stages' weights), used to split each site's estimated days between stages in the "
        "runbooks and `drpc plan`. Default 1 for every stage: equal shares."))
    bps_includes: list[PathOrUri] = Field(default_factory=list, description=(
        "Extra BPS includeConfigs for this stage's submit files, after campaign.bps_includes. "
        "Default: none."))
    extra_query: ButlerPredicate | None = Field(None, description=(
        "Extra Butler query predicate AND-ed to the job's dataQuery, e.g. band IN ('g', 'r'); "
        "no double quote, line break or control character. Default: none."))


class DatasetSpec(Strict):
    """A dataset type whose location matters: who makes it, who reads it, if it is archived."""

    type: DatasetTypeName = Field(description=(
        "Butler dataset type name, as the pipeline writes it."))
    dimensions: list[Dimension] = Field(description=(
        "Butler dimensions of the type; a visit or tract dimension decides which site a "
        "scattered dataset goes to."))
    storage_class: StorageClass | None = Field(None, description=(
        "Butler storage class, to register the type at destinations. Default: from a table of "
        "DRP types (needed for any other type that moves)."))
    produced_by: StageName = Field(description="Stage that writes the datasets.")
    consumed_by: list[StageName] = Field(default_factory=list, description=(
        "Stages after the producer that read the datasets; where they run at another site, "
        "the datasets are transferred with Rucio. Default: none."))
    archive: bool = Field(False, description=(
        "Return the datasets from every other site to the central site after the producer, "
        "for archival. Default false."))


class Workload(Strict):
    """The size of the whole campaign, for the planner's estimates."""

    visits: Annotated[int, Field(gt=0, le=MAX_VISITS)] = Field(description=(
        f"Visits in the footprint, at most {MAX_VISITS:,}."))
    core_hours: Annotated[float, Field(gt=0, le=MAX_CORE_HOURS)] = Field(description=(
        f"Core-hours of the whole campaign, at most {MAX_CORE_HOURS:,}; split between sites "
        "by their fraction of the tracts."))
    storage_tb: Annotated[float, Field(gt=0, le=MAX_STORAGE_TB)] = Field(description=(
        f"Storage of the campaign's outputs, TB, at most {MAX_STORAGE_TB:,}; split like "
        "core_hours."))


class AncillaryInput(Strict):
    """Data a Butler export describes (refcats, ancillary files), imported into each site's repo."""

    name: InputName = Field(description=(
        "Short name of the input; names its environment variables in setup-repo.sh."))
    collection: CollectionName = Field(description=(
        "Butler collection the datasets are imported into."))
    export_file: PathOrUri = Field(description="`butler export` YAML describing the datasets.")
    directory: PathOrUri = Field(description="Folder the export's file paths are relative to.")
    transfer: TransferMode = Field("direct", description=(
        "`butler import --transfer` mode. Default direct (the files stay where they are)."))


class Calibrations(Strict):
    """The calibration collection of each site's repo."""

    collection: CollectionName | None = Field(None, description=(
        "Calibration collection. Default: <instrument>/calib."))
    curated: bool = Field(True, description=(
        "Run `butler write-curated-calibrations` into it. Default true."))
    label: CalibLabel | None = Field(None, description=(
        "--label of write-curated-calibrations. Default: none."))


class RawsSource(Strict):
    """Where the central site's raws come from, when they are not in its repository yet."""

    ingest_from: PathOrUri = Field(description=(
        "File or folder (or URI) `butler ingest-raws` reads the raws from at the central site."))
    transfer: TransferMode = Field("direct", description=(
        "`butler ingest-raws --transfer` mode. Default direct (the files stay where they are)."))


class ButlerInputs(Strict):
    """What each site's repository needs before the campaign starts."""

    calibrations: Calibrations = Field(default=Calibrations(), description=(
        "Calibrations. Default: curated ones into <instrument>/calib."))
    refcats: list[AncillaryInput] = Field(default_factory=list, description=(
        "Reference catalogs to import. Default: none."))
    ancillary: list[AncillaryInput] = Field(default_factory=list, description=(
        "Other inputs to import (e.g. the FGCM look-up table). Default: none."))
    raws: RawsSource | None = Field(None, description=(
        "Raws to ingest at the central site (into <instrument>/raw/all) before the visits are "
        "defined. Default: none, the raws are there already (the visits step checks it)."))
    skymap_config: PathOrUri | None = Field(None, description=(
        "register-skymap config. Default: one drpc writes from the skymap definition."))
    defaults_collection: CollectionName | None = Field(None, description=(
        "CHAINED defaults collection to create. Default: the first input collection."))


# Dimensions of an input's dataset type: the campaign's, plus the HTM sky pixels reference
# catalogs are sharded by.
INPUT_DIMENSION_PATTERN = (
    r"^(instrument|visit|exposure|detector|tract|patch|band|physical_filter|skymap|day_obs"
    r"|healpix([3-9]|1[01])|htm([1-9]|1[0-9]|2[0-4]))$")
InputDimension = Annotated[str, _pattern(INPUT_DIMENSION_PATTERN)]


class InputType(Strict):
    """A dataset type of an input that drpc has no table entry for."""

    type: DatasetTypeName = Field(description="Butler dataset type name.")
    dimensions: list[InputDimension] = Field(description=(
        "Its Butler dimensions (campaign dimensions, or htm1..htm24 for sky-sharded catalogs)."))
    storage_class: StorageClass = Field(description=(
        "Its Butler storage class, to register the type at every destination."))


InputTypeRef = Annotated[DatasetTypeName | InputType, Field(union_mode="left_to_right")]


class CalibrationInput(Strict):
    """The certified calibrations every site needs, sent from the central site."""

    collection: CollectionName = Field(description=(
        "Calibration collection at the central site (CALIBRATION, or CHAINED over "
        "CALIBRATION and RUN collections); every dataset associated with it is sent with its "
        "validity range, and each destination certifies them into a CALIBRATION collection "
        "of the same name."))
    types: Annotated[list[InputTypeRef], Field(min_length=1)] | None = Field(None, description=(
        "Calibration dataset types to send (a name drpc knows, or {type, dimensions, "
        "storage_class}). Default: the instrument's standard ones (LSSTCam, LSSTComCam, "
        "LATISS, HSC); a default type the collection does not hold is reported and skipped."))


class CollectionInput(Strict):
    """Datasets of one collection every site needs (reference catalogs, ancillary inputs)."""

    collection: CollectionName = Field(description=(
        "Collection at the central site; the destinations get the same name (the arrived RUN "
        "collection, or a CHAINED collection over the arrived RUNs)."))
    types: Annotated[list[InputTypeRef], Field(min_length=1)] = Field(description=(
        "Dataset types to send (a name drpc knows, e.g. the_monster_20250219 or "
        "fgcmLookUpTable, or {type, dimensions, storage_class}); at least one."))


class Inputs(Strict):
    """What every site needs before stage 1, sent from the central site like any move."""

    calibrations: CalibrationInput | None = Field(None, description=(
        "Certified calibrations, validity ranges kept. Default: none sent."))
    refcats: list[CollectionInput] = Field(default_factory=list, description=(
        "Reference catalogs. Default: none."))
    ancillary: list[CollectionInput] = Field(default_factory=list, description=(
        "Other inputs (e.g. the FGCM look-up table). Default: none."))


class Campaign(Strict):
    """A drpc campaign: sites, sky assignment, stages and the datasets that move."""

    apiVersion: Literal["drpc/v1"] = Field(description="Version of the campaign language: drpc/v1.")
    kind: Literal["Campaign"] = Field(description="Always Campaign.")
    include: list[PathOrUri] | None = Field(None, description=(
        "Files (relative to this one) deep-merged underneath it: this file wins, lists are "
        "replaced. Default: none."))
    metadata: Metadata = Field(description="Campaign id, description and ticket.")
    campaign: CampaignSettings = Field(description=(
        "Instrument, skymap, stack, pipeline and collections."))
    skymaps: dict[SkyMapName, CustomSkyMap] = Field(default_factory=dict, description=(
        "Ring skymaps declared by name, beside the built-in ones (a declared one wins). "
        "Default: none."))
    sites: Annotated[dict[SiteId, Site], Field(min_length=1)] = Field(description=(
        "The data facilities, by site id (lowercase letters, digits and '-'); at least one."))
    sky: Sky = Field(description="Footprint, tract ownership and cross-checks.")
    stages: Annotated[list[Stage], Field(min_length=1)] = Field(description=(
        "The stages, in execution order; at least one."))
    datasets: list[DatasetSpec] = Field(default_factory=list, description=(
        "Dataset types whose location matters (what moves between sites). Default: none."))
    butler: ButlerInputs = Field(default=ButlerInputs(), description=(
        "What each site's repository makes or imports itself before stage 1: curated "
        "calibrations, refcats and ancillary inputs it already has on disk."))
    inputs: Inputs = Field(default=Inputs(), description=(
        "Calibrations, reference catalogs and ancillary inputs sent from the central site to "
        "every other site before stage 1. Default: none."))
    workload: Workload | None = Field(None, description=(
        "Size of the whole campaign, for `drpc plan` and the deadline and storage warnings. "
        "Default: none (no estimates)."))
