"""Per-site Butler stand-ins of the local rehearsal: what the LSST stack would have put there.

Every site's repository is made by the compiled tree's own ``butler/setup-repo.sh`` (real
``butler`` CLI, SQLite registry, datastore root where the script puts it). Three of its steps
need packages that are not on PyPI (obs_* for ``register-instrument`` and
``write-curated-calibrations``, skymap/pipe_tasks for ``register-skymap``): the rehearsal runs
the script with ``SKIP_STEPS`` = :func:`replaced_setup_steps`, then :func:`insert_stack_records`
writes what those steps would have produced with the daf_butler API, then the script runs
again and finishes the defaults chain. Past the setup, this module stands in for the rest of
the stack:

* :func:`synthesize_visits` makes a deterministic set of visits (pure, no I/O): some centred on
  every campaign tract, and some centred on the common edge of two neighbouring tracts owned by
  different sites (boundary visits, held by both). :func:`visits_held_by` says which visits a
  site holds (those overlapping its processing tracts; the central site holds all), computed
  with the same sphgeom regions and the same overlap test as the Butler's spatial joins, so it
  equals ``butler.query_data_ids(["visit"], where="skymap=... AND tract IN (...)")``.
* :func:`define_visits` is ``butler define-visits``: exposure, visit and region records.
* :func:`simulate_job` is one BPS workflow: one small file per data ID of every dataset type
  the stage produces, ingested into a new RUN ``<output>/<timestamp>`` chained into the CHAINED
  ``<output>`` as pipetask does; it first checks that the job's inputs are there.

Files are written at the datastore's own templated path (the path ``butler.put`` would use) and
ingested in place. A storage class whose default formatter daf_butler cannot import here
(``ExposureCatalog`` -> obs_base's ``FitsGenericFormatter``, ``Exposure*``, ...) gets a small
valid FITS file recorded with :data:`STAND_IN_FORMATTER` instead; Parquet types get real
Parquet files (pyarrow). Nothing is ever read back, so the formatter only has to exist.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lsst.sphgeom as sphgeom

from compiler.naming import raw_collection
from compiler.plan import Job, Plan, tract_predicate, tract_query
from compiler.skymap import RingSkyMap

from .visits import (
    N_DETECTORS,
    SiteVisitCounts,
    Visit,
    _tract_box,
    _unit,
    filters_of,
    home_sites,
    synthesize_visits,
    tract_neighbours,
    tract_region,
    visit_counts,
    visits_held_by,
    visits_overlapping,
)

if TYPE_CHECKING:
    from lsst.daf.butler import Butler, DatasetRef, DatasetType

__all__ = [
    "STACK_STEPS", "STAND_IN_FORMATTER", "JobInputError", "JobResult", "SiteVisitCounts", "Visit",
    "data_ids_per_unit", "define_visits", "filters_of", "home_sites", "ingest_raws",
    "insert_stack_records", "replaced_setup_steps", "run_name",
    "simulate_job", "synthesize_visits", "tract_neighbours", "tract_region", "visit_counts",
    "visits_held_by", "visits_overlapping",
]

#: setup-repo.sh steps that need the LSST stack (obs_*, skymap, pipe_tasks; not on PyPI).
STACK_STEPS: tuple[str, ...] = ("instrument", "calibrations", "skymap")

#: The formatter recorded for files whose storage class's default formatter is not importable
#: without the stack (e.g. ExposureCatalog's obs_base FitsGenericFormatter). It exists in
#: daf_butler; the rehearsal never reads these files back.
STAND_IN_FORMATTER = "lsst.daf.butler.formatters.file.FileFormatter"

_EXPOSURE_TIME = 30.0  # seconds, of every synthesised exposure
_RUN_DATE = "20260101"  # of the deterministic RUN timestamps, <output>/<date>T<HHMMSS>Z


def replaced_setup_steps(plan: Plan) -> list[str]:
    """setup-repo.sh steps the rehearsal skips (``SKIP_STEPS``) and :func:`insert_stack_records`
    replaces: ``instrument``, ``calibrations``, ``skymap``."""
    del plan  # the same three for every campaign: they are the script's stack-only steps
    return list(STACK_STEPS)


# -- repository records -------------------------------------------------------------------------

def _butler(repo: str | Path, writeable: bool = True) -> Butler:
    from lsst.daf.butler import Butler

    return Butler.from_config(str(repo), writeable=writeable)


def _patch_grid(plan: Plan) -> int:
    """Patches per tract side: hsc/lsst ring tracts with 4000-pixel patches (as setup-repo's
    skymap config)."""
    skymap = plan.skymap
    width_deg = skymap.ring_size_deg + 2 * skymap.tract_overlap_arcmin / 60.0
    return max(1, math.ceil(width_deg * 3600.0 / skymap.pixel_scale_arcsec / 4000.0))


def data_ids_per_unit(plan: Plan, dimensions: Collection[str]) -> int:
    """How many data IDs of a type with `dimensions` the stand-in world has per tract (a
    tract-level type), per visit (a visit-level one) or in all (neither): one per patch of the
    tract (:func:`insert_stack_records`' grid), per detector, and, without a visit, per physical
    filter or band of the instrument (a visit has one). What the rehearsal expects a move to
    carry besides the plan's tracts and visits."""
    dims = set(dimensions)
    count = 1
    if "patch" in dims:
        count *= _patch_grid(plan) ** 2
    if "detector" in dims:
        count *= N_DETECTORS
    if not dims & {"visit", "exposure"}:
        filters = filters_of(plan.instrument)
        if "physical_filter" in dims:
            count *= len(filters)
        elif "band" in dims:
            count *= len({band for _, band in filters})
    return count


def _needs_patches(plan: Plan) -> bool:
    return any("patch" in d.dimensions for d in plan.datasets)


def insert_stack_records(repo: str | Path, plan: Plan, site_id: str, *,
                         n_detectors: int = N_DETECTORS,
                         tracts: Sequence[int] | None = None) -> dict[str, int]:
    """What setup-repo.sh's stack steps would have produced, written with the daf_butler API:

    * instrument: the instrument record (class name from the plan), its physical_filter/band
      records and ``n_detectors`` detector records;
    * calibrations: the calibration collection (``plan.calib_collection``), an empty
      CALIBRATION collection;
    * skymap: the ``skymaps`` RUN collection, the skymap record and a tract record with its
      region for every campaign tract (of ``tracts`` only, a sample: the Butler then knows no
      other tract, so every query of the generated scripts selects the sample's data alone),
      and patch records when a campaign dataset has a patch dimension, plus the ``skyMap``
      dataset register-skymap puts there (a stand-in file).

    Idempotent. Returns counts of what it inserted or found, by kind."""
    from lsst.daf.butler import CollectionType, DatasetRef, DatasetType  # type: ignore[attr-defined]

    del site_id  # every site gets every campaign tract: the central site needs all of them
    skymap = plan.skymap
    filters = filters_of(plan.instrument)
    grid = _patch_grid(plan)
    with _butler(repo) as butler:
        reg = butler.registry
        reg.syncDimensionData("instrument", {
            "name": plan.instrument, "visit_max": 2**30, "visit_system": 0,
            "exposure_max": 2**30, "detector_max": 1000,
            "class_name": plan.instrument_class or f"drpc.standin.{plan.instrument}"})
        reg.insertDimensionData("physical_filter", *[
            {"instrument": plan.instrument, "name": pf, "band": band} for pf, band in filters],
            skip_existing=True)
        reg.insertDimensionData("detector", *[
            {"instrument": plan.instrument, "id": d, "full_name": f"R0{d // 2}_S{d % 2}",
             "name_in_raft": f"S{d % 2}", "raft": f"R0{d // 2}", "purpose": "SCIENCE"}
            for d in range(n_detectors)], skip_existing=True)
        butler.collections.register(plan.calib_collection, CollectionType.CALIBRATION)
        butler.collections.register("skymaps", CollectionType.RUN)
        digest = hashlib.sha1(
            f"rings numRings={skymap.num_rings} raStart={skymap.ra_start_deg} "
            f"tractOverlap={skymap.tract_overlap_arcmin} "
            f"pixelScale={skymap.pixel_scale_arcsec}".encode()
        ).digest()
        reg.syncDimensionData("skymap", {
            "name": skymap.name, "hash": digest, "tract_max": skymap.tract_count(),
            "patch_nx_max": grid, "patch_ny_max": grid})
        tracts = sorted(tracts) if tracts is not None else plan.all_tracts
        reg.insertDimensionData("tract", *[
            {"skymap": skymap.name, "id": t, "region": tract_region(skymap, t)} for t in tracts],
            skip_existing=True)
        n_patches = 0
        if _needs_patches(plan):
            rows = []
            for t in tracts:
                rows += _patch_rows(skymap, t, grid)
            reg.insertDimensionData("patch", *rows, skip_existing=True)
            n_patches = len(rows)
        # register-skymap also puts the skyMap dataset into the skymaps RUN.
        sky_type = DatasetType("skyMap", ["skymap"], "SkyMap", universe=butler.dimensions)
        reg.registerDatasetType(sky_type)
        if not butler.query_datasets(sky_type, collections="skymaps", explain=False, limit=None):
            data_id = butler.registry.expandDataId(skymap=skymap.name)
            ref = DatasetRef(sky_type, data_id, run="skymaps")
            _ingest_stand_in_files(butler, [ref],
                                   {"skymap": skymap.name, "numRings": skymap.num_rings})
    return {"filters": len(filters), "detectors": n_detectors, "tracts": len(tracts),
            "patches": n_patches}


def _patch_rows(skymap: RingSkyMap, tract: int, grid: int) -> list[dict[str, Any]]:
    """A grid x grid division of the tract's box (caps: the tract region for every patch)."""
    box = _tract_box(skymap, tract)
    rows = []
    for y in range(grid):
        for x in range(grid):
            if box is None:
                region = tract_region(skymap, tract)
            else:
                ra, half, lo, hi = box
                r0 = ra - half + 2 * half * x / grid
                r1 = ra - half + 2 * half * (x + 1) / grid
                d0 = lo + (hi - lo) * y / grid
                d1 = lo + (hi - lo) * (y + 1) / grid
                region = sphgeom.ConvexPolygon.convexHull(
                    [_unit(r0, d0), _unit(r1, d0), _unit(r1, d1), _unit(r0, d1)])
            rows.append({"skymap": skymap.name, "tract": tract, "id": y * grid + x,
                         "cell_x": x, "cell_y": y, "region": region})
    return rows


def _timespan(day_obs: int, seq: int, seconds: float) -> Any:
    import astropy.time
    from lsst.daf.butler import Timespan

    night = datetime.datetime.strptime(str(day_obs), "%Y%m%d").replace(tzinfo=datetime.UTC)
    begin = night + datetime.timedelta(hours=12, seconds=60 * seq)
    end = begin + datetime.timedelta(seconds=seconds)
    return Timespan(astropy.time.Time(begin, scale="tai"), astropy.time.Time(end, scale="tai"))


def define_visits(repo: str | Path, plan: Plan, site_id: str, visits: Sequence[Visit], *,
                  n_detectors: int = N_DETECTORS) -> list[Visit]:
    """``butler define-visits`` for the visits the site holds (:func:`visits_held_by`; the
    others are left out, as the site never receives their raws): day_obs, group, exposure,
    visit (with region), visit_definition, visit_system (one-to-one) and its membership, and
    visit_detector_region records. Idempotent; returns the visits defined."""
    held = visits_held_by(plan, site_id, visits)
    inst = plan.instrument
    with _butler(repo) as butler:
        reg = butler.registry
        reg.insertDimensionData("visit_system", {"instrument": inst, "id": 0, "name": "one-to-one"},
                                skip_existing=True)
        nights = sorted({v.day_obs for v in held})
        reg.insertDimensionData("day_obs", *[
            {"instrument": inst, "id": d, "timespan": _timespan(d, 0, 86400.0)} for d in nights],
            skip_existing=True)
        reg.insertDimensionData("group", *[
            {"instrument": inst, "name": v.obs_id(inst)} for v in held], skip_existing=True)
        exposures, visit_rows, definitions, members, detector_rows = [], [], [], [], []
        for v in held:
            span = _timespan(v.day_obs, v.seq_num, _EXPOSURE_TIME)
            exposures.append({
                "instrument": inst, "id": v.id, "obs_id": v.obs_id(inst),
                "physical_filter": v.physical_filter, "group": v.obs_id(inst), "day_obs": v.day_obs,
                "exposure_time": _EXPOSURE_TIME, "dark_time": _EXPOSURE_TIME,
                "observation_type": "science", "observation_reason": "science",
                "seq_num": v.seq_num, "seq_start": v.seq_num, "seq_end": v.seq_num,
                "target_name": f"tract{v.centred_on[0]}", "science_program": plan.campaign,
                "tracking_ra": v.ra, "tracking_dec": v.dec, "sky_angle": 0.0, "azimuth": 0.0,
                "zenith_angle": 30.0, "has_simulated": True, "can_see_sky": True, "timespan": span})
            visit_rows.append({
                "instrument": inst, "id": v.id, "name": v.name,
                "physical_filter": v.physical_filter,
                "day_obs": v.day_obs, "seq_num": v.seq_num, "exposure_time": _EXPOSURE_TIME,
                "target_name": f"tract{v.centred_on[0]}", "observation_reason": "science",
                "science_program": plan.campaign, "azimuth": 0.0, "zenith_angle": 30.0,
                "region": v.region, "timespan": span})
            definitions.append({"instrument": inst, "exposure": v.id, "visit": v.id})
            members.append({"instrument": inst, "visit": v.id, "visit_system": 0})
            detector_rows += [{"instrument": inst, "visit": v.id, "detector": d, "region": r}
                              for d, r in v.detector_regions(n_detectors).items()]
        reg.insertDimensionData("exposure", *exposures, skip_existing=True)
        reg.insertDimensionData("visit", *visit_rows, skip_existing=True)
        reg.insertDimensionData("visit_definition", *definitions, skip_existing=True)
        reg.insertDimensionData("visit_system_membership", *members, skip_existing=True)
        reg.insertDimensionData("visit_detector_region", *detector_rows, skip_existing=True)
    return held


def ingest_raws(repo: str | Path, plan: Plan, visits: Sequence[Visit], *,
                n_detectors: int = N_DETECTORS) -> int:
    """``butler ingest-raws`` at the central site: one raw (a small stand-in file) per detector
    of every visit, in ``<instrument>/raw/all``; the visits must be defined (their exposures
    exist). Idempotent; returns how many raws the collection holds."""
    from lsst.daf.butler import DatasetRef, DatasetType

    collection = raw_collection(plan.instrument)
    with _butler(repo) as butler:
        raw = DatasetType("raw", ["instrument", "exposure", "detector"], "Exposure",
                          universe=butler.dimensions)
        butler.registry.registerDatasetType(raw)
        butler.collections.register(collection)
        have = {(int(r.dataId["exposure"]), int(r.dataId["detector"]))
                for r in butler.query_datasets(raw, collections=collection, find_first=False,
                                               explain=False, limit=None)}
        refs = [DatasetRef(raw, butler.registry.expandDataId(
                    instrument=plan.instrument, exposure=v.id, detector=d), run=collection)
                for v in visits for d in range(n_detectors) if (v.id, d) not in have]
        _ingest_stand_in_files(butler, refs)
        return len(have) + len(refs)


# -- files --------------------------------------------------------------------------------------

def _fits_bytes(cards: dict[str, Any]) -> bytes:
    """A minimal valid FITS file: a primary HDU without data, with the given header cards."""
    lines = ["SIMPLE  =                    T", "BITPIX  =                    8",
             "NAXIS   =                    0", "EXTEND  =                    T"]
    for key, value in cards.items():
        text = str(value).replace("'", "''")[:60]
        lines.append(f"{key.upper()[:8]:<8}= '{text}'")
    lines.append("END")
    header = "".join(f"{line:<80}"[:80] for line in lines)
    header += " " * (-len(header) % 2880)
    return header.encode("ascii", errors="replace")


def _formatter_for(butler: Butler, ref: DatasetRef) -> tuple[str | type, str]:
    """(formatter, file extension) to record: the datastore's default formatter if it can be
    imported here, else STAND_IN_FORMATTER with a FITS file."""
    try:
        cls = butler._datastore.formatterFactory.getFormatterClass(ref)  # type: ignore[attr-defined]  # noqa: SLF001 (FileDatastore's)
    except Exception:  # noqa: BLE001 - ImportError of a stack-only formatter, or none configured
        return STAND_IN_FORMATTER, ".fits"
    ext = getattr(cls, "default_extension", None) or getattr(cls, "extension", None)
    if not isinstance(ext, str) or not ext:
        supported = sorted(getattr(cls, "supported_extensions", ())
                           or getattr(cls, "supportedExtensions", ()))
        ext = supported[0] if supported else ".dat"
    return cls, ext


def _file_bytes(ext: str, content: dict[str, Any]) -> bytes:
    if ext in (".parq", ".parquet"):
        import io

        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        # Written from pandas, as a stage's DataFrame outputs are: the schema then carries the
        # pandas metadata daf_butler's DataFrame reader (and its `columns` component) needs;
        # the Arrow storage classes read it as well.
        table = pa.Table.from_pandas(
            pd.DataFrame({key: [str(value)] for key, value in content.items()}),
            preserve_index=False)
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue()
    if ext == ".fits":
        return _fits_bytes(content)
    if ext in (".pickle", ".pkl"):
        import pickle

        return pickle.dumps(content)
    if ext == ".yaml":
        return "".join(f"{k}: {json.dumps(str(v))}\n" for k, v in content.items()).encode()
    return (json.dumps(content, sort_keys=True, default=str) + "\n").encode()


def _ingest_stand_in_files(butler: Butler, refs: Sequence[DatasetRef],
                           extra: dict[str, Any] | None = None) -> list[Path]:
    """Write one small file per ref at the datastore's templated path and ingest it in place
    (what ``butler.put`` leaves behind). The refs need expanded data IDs."""
    from lsst.daf.butler import FileDataset

    if not refs:
        return []
    datastore = butler._datastore  # noqa: SLF001 - the file template and formatter lookup
    root = Path(datastore.root.ospath)  # type: ignore[attr-defined]  # FileDatastore's
    datasets, paths = [], []
    formatters: dict[str, tuple[str | type, str]] = {}
    for ref in refs:
        key = ref.datasetType.storageClass_name
        if key not in formatters:
            formatters[key] = _formatter_for(butler, ref)
        formatter, ext = formatters[key]
        rel = datastore.templates.getTemplate(ref).format(ref) + ext  # type: ignore[attr-defined]  # FileDatastore's
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        content = {"dataset_type": ref.datasetType.name, "dataset_id": str(ref.id),
                   "run": ref.run, "data_id": json.dumps(dict(ref.dataId.required), default=str),
                   **(extra or {})}
        path.write_bytes(_file_bytes(ext, content))
        datasets.append(FileDataset(path=str(path), refs=[ref], formatter=formatter))
        paths.append(path)
    butler.ingest(*datasets, transfer="auto")
    return paths


# -- jobs ---------------------------------------------------------------------------------------

class JobInputError(RuntimeError):
    """A simulated job's inputs are not all there (what the real job would have failed on)."""

    def __init__(self, job: Job, problems: list[str]) -> None:
        self.job, self.problems = job, problems
        super().__init__(f"{job.stage} at {job.site}: " + "; ".join(problems))


@dataclass
class JobResult:
    job: Job
    run: str  # the new RUN collection
    produced: dict[str, int]  # dataset type -> datasets ingested
    inputs: dict[str, tuple[int, int]]  # consumed dataset type -> (found, expected)
    problems: list[str]  # missing inputs or visits (empty when all is well)
    files: list[Path] = field(default_factory=list, repr=False)


def run_name(plan: Plan, job: Job, attempt: int = 0) -> str:
    """The RUN collection of a job's ``attempt``-th run: ``<output>/<date>T<HHMMSS>Z`` with
    HH = the stage's index, MM = the site's index in the plan, SS = the attempt. Timestamp-like
    (BPS's ``{timestamp}``) and deterministic, and different at every site: outputs gathered
    from two sites must not land in one RUN (ctrl_ingestd keeps the source's RUN)."""
    site_index = [s.id for s in plan.sites].index(job.site)
    return f"{job.output}/{_RUN_DATE}T{job.stage_index:02d}{site_index:02d}{attempt:02d}Z"


def _next_run(butler: Butler, plan: Plan, job: Job) -> str:
    existing = {info.name for info in butler.collections.query_info(f"{job.output}/*")}
    attempt = 0
    while run_name(plan, job, attempt) in existing:
        attempt += 1
    return run_name(plan, job, attempt)


def _dataset_type(butler: Butler, plan: Plan, name: str) -> DatasetType:
    """The registered dataset type, registered first (as ``--register-dataset-types``) if new."""
    from lsst.daf.butler import DatasetType, MissingDatasetTypeError

    try:
        return butler.get_dataset_type(name)
    except MissingDatasetTypeError:
        pass
    ds = next(d for d in plan.datasets if d.type == name)
    if ds.storage_class is None:
        raise ValueError(f"dataset type {name} is not registered in {butler} and the campaign "
                         "gives no storage class (datasets[].storage_class)")
    dtype = DatasetType(name, ds.dimensions, ds.storage_class, universe=butler.dimensions)
    butler.registry.registerDatasetType(dtype)
    return dtype


def _data_ids(butler: Butler, dtype: DatasetType, where: str) -> list[Any]:
    return list(butler.query_data_ids(dtype.dimensions, where=where, with_dimension_records=True,
                                      limit=None, explain=False))


def simulate_job(repo: str | Path, plan: Plan, job: Job, visits: Sequence[Visit] | None = None, *,
                 require_inputs: bool = True, sample: Collection[int] | None = None
                 ) -> JobResult:
    """Run one stage at one site, as far as the Butler can tell: for every dataset type the spec
    says ``job.stage`` produces, one small file per data ID of the type's dimensions matching
    ``job.data_query`` (the Butler's own query, as quantum-graph generation does: per visit
    overlapping the job's tracts, per tract, per instrument, ...), ingested into a new RUN
    (:func:`run_name`) that is chained into the CHAINED ``job.output`` ahead of
    the job's input collections (pipetask ``--output``/``--output-run``).

    First the inputs: every input collection must exist, and every dataset type the stage
    consumes (``consumed_by``) must be found (find-first in ``job.in_collections``) for every
    data ID of the job; with ``visits``, the visits the site defines must include every visit
    overlapping the job's tracts. A problem raises :class:`JobInputError` (``require_inputs``)
    or is listed in the result. ``sample``: the tracts the rehearsal samples (only theirs are
    in the Butler); the job's other tracts are left out."""
    from lsst.daf.butler import CollectionType, DatasetRef, MissingCollectionError  # type: ignore[attr-defined]

    job_tracts = [t for t in job.tracts if sample is None or t in sample]

    problems: list[str] = []
    inputs: dict[str, tuple[int, int]] = {}
    produced: dict[str, int] = {}
    files: list[Path] = []
    # the site's TAGGED raw selection: the visits overlapping the job's tracts (also at the
    # central site, which holds every raw but selects its own visits)
    held = ([v.id for v in visits_overlapping(plan, job_tracts, visits)]
            if visits is not None and job.select == "visits" else None)

    def where_for(dtype: DatasetType) -> str:
        """The data IDs the job makes of a type: a `select: visits` job's query has no tract (its
        input collection restricts it), so here its visits are the site's held ones and its
        tract-level data IDs its tracts."""
        if job.select != "visits":
            return job.data_query
        if "visit" in dtype.dimensions.names and held is not None:
            ids = ", ".join(str(v) for v in held) or "-1"
            return f"{job.data_query} AND visit IN ({ids})"
        if "tract" in dtype.dimensions.names:
            return f"{job.data_query} AND {tract_predicate(job_tracts or [-1])}"
        return job.data_query

    with _butler(repo) as butler:
        missing_collections = []
        for name in job.in_collections:
            try:
                butler.collections.get_info(name)
            except MissingCollectionError:
                missing_collections.append(name)
        if missing_collections:
            problems.append(f"input collection(s) missing: {', '.join(missing_collections)}")
        if visits is not None:
            expected = {v.id for v in visits_overlapping(plan, job_tracts, visits)}
            where = tract_query(plan.instrument, plan.skymap.name, job.tracts)  # no extra_query
            found = {d["visit"] for d in butler.query_data_ids(
                ["instrument", "visit"], where=where, limit=None, explain=False)}
            if expected - found:
                problems.append(f"{len(expected - found)} visit(s) overlapping the job's tracts "
                                f"are not defined here (e.g. {sorted(expected - found)[:5]})")
        if not missing_collections:
            for ds in plan.datasets:
                if job.stage not in ds.consumed_by:
                    continue
                dtype = _dataset_type(butler, plan, ds.type)
                want = {d.required_values for d in _data_ids(butler, dtype, where_for(dtype))}
                refs = butler.query_datasets(dtype, collections=job.in_collections,
                                             where=where_for(dtype), find_first=True,
                                             limit=None, explain=False)
                have = {r.dataId.required_values for r in refs}
                inputs[ds.type] = (len(want & have), len(want))
                if want - have:
                    problems.append(f"{len(want - have)} of {len(want)} {ds.type} input(s) missing "
                                    "from the job's input collections")
        if problems and require_inputs:
            raise JobInputError(job, problems)

        run = _next_run(butler, plan, job)
        butler.collections.register(run, CollectionType.RUN)
        for ds in plan.datasets:
            if ds.produced_by != job.stage:
                continue
            dtype = _dataset_type(butler, plan, ds.type)
            refs = [DatasetRef(dtype, d, run=run)
                    for d in _data_ids(butler, dtype, where_for(dtype))]
            files += _ingest_stand_in_files(butler, refs, {"stage": job.stage, "site": job.site})
            produced[ds.type] = len(refs)
        if butler.collections.register(job.output, CollectionType.CHAINED):
            present = [c for c in job.in_collections if c not in missing_collections]
            butler.collections.redefine_chain(job.output, [run, *present])
        else:
            butler.collections.prepend_chain(job.output, run)
    return JobResult(job, run, produced, inputs, problems, files)
