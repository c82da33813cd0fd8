"""Rucio names of a move split into bounded datasets, and their length limits.

A move's DID (`Move.rucio_did`) is a Rucio *container*; its files go into datasets
`<container>.<NNNN>` (1-based, 4 digits or more) of at most the source site's
`dataset_file_limit` files each, made by the register script as it finds the files. The
compiled files name only the container, which exists whatever the count.

Rucio refuses a DID name over 250 characters. Container and dataset names are shortened with a
hash when needed (`chunk_base`), so they never fail; file DID names are the files' paths under
the datastore root, which daf_butler's default file template builds from the RUN collection and
the data ID. `name_errors` estimates the longest such path of every moved dataset type and
reports, at the spec value that makes it too long, by how much.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

from .defaults import RUCIO_CONTAINER_MAX, RUCIO_NAME_MAX
from .errors import Diagnostic
from .loader import LoadedCampaign
from .naming import stage_output
from .plan import Plan
from .text import shown

__all__ = [
    "BPS_TIMESTAMP", "CHUNK_DIGITS", "CONTAINER_NAME_MAX", "DEFAULT_TEMPLATE", "RAW_TEMPLATE",
    "chunk_base", "chunk_name", "file_extension", "file_path", "longest_file_name",
    "longest_values", "name_errors",
]

#: Digits of a chunk's number; more only past 999999 chunks (never with a limit >= 1 and
#: Rucio's own limits on a container's size).
CHUNK_DIGITS = 4
#: The longest container name whose datasets keep its name as their prefix.
CONTAINER_NAME_MAX = RUCIO_CONTAINER_MAX
#: `{timestamp}` as BPS writes it in `outputRun: "{output}/{timestamp}"`.
BPS_TIMESTAMP = "20250730T123456Z"


def chunk_base(container: str) -> str:
    """The prefix of the container's dataset names: the container's name when it leaves room
    for the suffix, else its start and a 16-hex-digit sha256 of it, so the datasets of two
    containers never share names."""
    if len(container) <= CONTAINER_NAME_MAX:
        return container
    digest = hashlib.sha256(container.encode()).hexdigest()[:16]
    return f"{container[: CONTAINER_NAME_MAX - len(digest) - 1]}-{digest}"


def chunk_name(container: str, index: int) -> str:
    """The name of the container's `index`-th dataset (1-based)."""
    if index < 1:
        raise ValueError(f"chunk numbers start at 1, not {index}")
    return f"{chunk_base(container)}.{index:0{CHUNK_DIGITS}d}"


# -- file DID names: daf_butler's default file templates ----------------------------------------

#: daf_butler's `datastore.templates.default` (configs/datastores/fileDatastore.yaml).
DEFAULT_TEMPLATE = (
    "{run:/}/{datasetType}.{component:?}/{tract:?}/{patch:?}/"
    "{day_obs|visit.day_obs|exposure.day_obs:?}/{band:?}/{subfilter:?}/{physical_filter:?}/"
    "{visit:?}/{exposure.obs_id|group:?}/{datasetType}_{component:?}_{instrument:?}_{tract:?}_"
    "{patch:?}_{band:?}_{physical_filter:?}_{visit:?}_{exposure.obs_id|group:?}_"
    "{detector.full_name:?}_{skymap:?}_{skypix:?}_{ssp_hypothesis_table:?}_"
    "{ssp_hypothesis_bundle:?}_{ssp_balanced_index:?}_{run}"
)
#: Its entry for `physical_filter+detector+exposure` (raws).
RAW_TEMPLATE = (
    "{run:/}/{datasetType}.{component:?}/{day_obs|exposure.day_obs}/{exposure.obs_id}/"
    "{datasetType}_{component:?}_{instrument:?}_{physical_filter}_{exposure.obs_id}_"
    "{detector.full_name}_{run}"
)
_RAW_KEY = frozenset({"physical_filter", "detector", "exposure"})
# The dimensions each dimension implies in daf_butler's default universe (version 8).
_IMPLIED: Mapping[str, tuple[str, ...]] = {
    "visit": ("day_obs", "physical_filter"),
    "exposure": ("day_obs", "group", "physical_filter"),
    "physical_filter": ("band",),
}
# Record fields the templates read (`visit.day_obs`, ...): the value of a data ID key.
_RECORD_FIELDS = ("day_obs", "obs_id", "full_name")
_SKYPIX = re.compile(r"^(htm|healpix)([0-9]+)$")
_FILESYSTEM_SPECIALS = str.maketrans({c: "_" for c in " #&%<>?*|\\\"'"})

#: File extension of daf_butler's formatter per storage class; anything else gets the longest.
_EXTENSIONS: Mapping[str, str] = {
    "StructuredDataDict": ".yaml", "StructuredDataList": ".yaml", "Config": ".yaml",
    "DataFrame": ".parq", "ArrowAstropy": ".parq", "ArrowTable": ".parq",
    "ArrowNumpy": ".parq", "ArrowNumpyDict": ".parq", "ArrowSchema": ".parq",
    "DataFrameIndex": ".parq", "AstropyTable": ".parq",
    "Exposure": ".fits", "ExposureF": ".fits", "ExposureI": ".fits", "MaskedImageF": ".fits",
    "ImageF": ".fits", "SourceCatalog": ".fits", "Catalog": ".fits", "Background": ".fits",
    "SimpleCatalog": ".fits", "ExposureCatalog": ".fits", "Camera": ".fits",
    "ButlerLogRecords": ".json", "TaskMetadata": ".json", "Plot": ".png",
}
_LONGEST_EXTENSION = ".pickle"


def _skypix_max(system: str, level: int) -> int:
    """The largest pixel id of a sky pixelization level (HTM: [8 4^L, 16 4^L); HEALPix nested:
    12 4^L pixels)."""
    pixels: int = (16 if system == "htm" else 12) * 4 ** level
    return pixels - 1


def file_extension(storage_class: str | None) -> str:
    return _EXTENSIONS.get(storage_class or "", _LONGEST_EXTENSION)


def _template_for(dimensions: frozenset[str]) -> str:
    return RAW_TEMPLATE if _RAW_KEY <= _with_implied(dimensions) and "visit" not in dimensions \
        and "tract" not in dimensions else DEFAULT_TEMPLATE


def _with_implied(dimensions: frozenset[str] | set[str] | tuple[str, ...]) -> frozenset[str]:
    out = set(dimensions)
    todo = list(dimensions)
    while todo:
        for implied in _IMPLIED.get(todo.pop(), ()):
            if implied not in out:
                out.add(implied)
                todo.append(implied)
    return frozenset(out)


def file_path(dataset_type: str, dimensions: tuple[str, ...] | frozenset[str], run: str,
              values: Mapping[str, str | int], extension: str) -> str:
    """The path daf_butler's default file template gives a dataset, relative to the datastore
    root: the dataset's DID name. `values` holds a value for every dimension of the data ID
    (implied ones included) and for the record fields the template reads (`day_obs`,
    `obs_id`, `full_name`)."""
    present = _with_implied(frozenset(dimensions))
    fields: dict[str, str | int] = {}
    for key in present:
        level = _SKYPIX.match(key)
        if level:  # the template's `skypix` is the data ID's sky pixel, of whichever system
            fields["skypix"] = values.get(key, _skypix_max(level.group(1), int(level.group(2))))
        else:
            fields[key] = values[key]
    fields.update(datasetType=dataset_type, run=run)
    records = {"visit": values.get("day_obs"), "exposure": values.get("obs_id"),
               "detector": values.get("full_name")}
    out = ""
    for literal, name, spec, _conversion in string.Formatter().parse(_template_for(present)):
        if spec is None or name is None:
            out += literal
            continue
        optional, keep_slash = "?" in spec, "/" in spec
        value: str | int | None = None
        for alternative in name.split("|"):
            primary = alternative.split(".", 1)[0]
            if primary not in fields:
                continue
            if "." in alternative:
                value = records.get(primary)
                if value is None:
                    raise KeyError(f"no record value for {alternative}")
            else:
                value = fields[primary]
            break
        if value is None:
            if not optional:
                raise KeyError(f"{name} is needed by the template but not in the data ID")
            out += literal if "/" in literal else ""
            continue
        text = str(value)
        if isinstance(value, str):
            text = text.translate(_FILESYSTEM_SPECIALS)
            if not keep_slash:
                text = text.replace("/", "_")
        out += literal + text
    head, tail = os.path.split(out)
    out = os.path.join(head, tail.replace(".", "_").replace("#", "HASH"))
    return os.path.normpath(out).lstrip("/") + extension


# -- the longest data ID values -------------------------------------------------------------------

@dataclass(frozen=True)
class _InstrumentValues:
    visit: int  # the largest visit (and exposure) id
    obs_id: str  # a longest exposure obs_id
    physical_filter: str
    band: str
    full_name: str  # a longest detector full name
    group: str


# The longest values each instrument really has (obs_lsst, obs_subaru); others get wide ones.
_INSTRUMENTS: Mapping[str, _InstrumentValues] = {
    "LSSTCam": _InstrumentValues(9999123199999, "MC_O_99991231_999999", "ph_5", "y", "R44_SW1",
                                 "9999-12-31T23:59:59.999999"),
    "LSSTComCam": _InstrumentValues(9999123199999, "CC_O_99991231_999999", "ph_5", "y",
                                    "R22_S22", "9999-12-31T23:59:59.999999"),
    "LATISS": _InstrumentValues(9999123199999, "AT_O_99991231_999999", "SDSSi_65mm~empty",
                                "white", "RXX_S00", "9999-12-31T23:59:59.999999"),
    "HSC": _InstrumentValues(9999999, "HSCA99999999", "HSC-I2", "N1010", "1_53",
                             "9999-12-31T23:59:59.999999"),
}
_WIDE = _InstrumentValues(9999123199999, "XX_O_99991231_999999", "filter_0000", "band0",
                          "R00_S00_X", "9999-12-31T23:59:59.999999")
_PATCH_MAX = 99  # 10 x 10 patches per tract (lsst_cells_v1, the ring skymaps of DRP)


def longest_values(plan: Plan) -> dict[str, str | int]:
    """The longest value of every dimension and record field the templates use."""
    inst = _INSTRUMENTS.get(plan.instrument, _WIDE)
    return {
        "instrument": plan.instrument, "skymap": plan.skymap.name,
        "tract": plan.skymap.tract_count() - 1, "patch": _PATCH_MAX,
        "visit": inst.visit, "exposure": inst.visit, "day_obs": 99991231,
        "physical_filter": inst.physical_filter, "band": inst.band, "detector": 999,
        "full_name": inst.full_name, "obs_id": inst.obs_id, "group": inst.group,
        "subfilter": 99,
    }


def longest_file_name(plan: Plan, dataset_type: str, dimensions: tuple[str, ...],
                      storage_class: str | None, output: str) -> str:
    """The longest DID name a dataset of this type written under `output` (a stage's output
    collection; BPS writes the RUN `<output>/<timestamp>`) would get."""
    return file_path(dataset_type, dimensions, f"{output}/{BPS_TIMESTAMP}", longest_values(plan),
                     file_extension(storage_class))


def name_errors(plan: Plan, loaded: LoadedCampaign) -> list[Diagnostic]:
    """Errors for moved dataset types whose files' DID names could exceed Rucio's 250
    characters: at `datasets[i].type` when the type's name alone makes them too long (even
    with a one-character output collection), else one at `campaign.output_collection` for all
    the others, naming the worst."""
    moved = {m.dataset_type for m in plan.transfers}
    by_type: list[Diagnostic] = []
    by_output: list[tuple[int, str, str]] = []  # (characters over, type, longest name)
    for i, ds in enumerate(plan.datasets):
        if ds.type not in moved:
            continue
        stages = {m.stage for m in plan.transfers if m.dataset_type == ds.type and m.stage}
        longest = max((longest_file_name(plan, ds.type, ds.dimensions, ds.storage_class,
                                         stage_output(plan.output_collection, stage))
                       for stage in sorted(stages)), key=len)
        over = len(longest) - RUCIO_NAME_MAX
        if over <= 0:
            continue
        # The output collection and the type are each in every path twice (the RUN's folders
        # and the file name): the type is to blame if a one-character output would not do.
        if len(longest) - 2 * (len(plan.output_collection) - 1) > RUCIO_NAME_MAX:
            by_type.append(Diagnostic(
                "error", f"datasets[{i}].type",
                f"the files of {shown(ds.type)} would get Rucio DID names of up to "
                f"{len(longest)} characters, {over} over Rucio's {RUCIO_NAME_MAX} (e.g. "
                f"{shown(longest, 60)}): rucio-register could not register them",
                loaded.source.locate(("datasets", i, "type")),
                f"shorten the dataset type's name by {math.ceil(over / 2)} character(s) (it is "
                "in every file's path twice)"))
        else:
            by_output.append((over, ds.type, longest))
    if not by_output:
        return by_type
    over, worst, longest = max(by_output)
    others = f" and {len(by_output) - 1} other moved type(s)" if len(by_output) > 1 else ""
    return [Diagnostic(
        "error", "campaign.output_collection",
        f"the files of {shown(worst)}{others} would get Rucio DID names of up to "
        f"{len(longest)} characters, {over} over Rucio's {RUCIO_NAME_MAX} (e.g. "
        f"{shown(longest, 60)}): rucio-register could not register them",
        loaded.source.locate(("campaign", "output_collection")),
        f"shorten campaign.output_collection by {math.ceil(over / 2)} character(s) (it is in "
        "every file's path twice: the RUN's folders and the file name)"), *by_type]
