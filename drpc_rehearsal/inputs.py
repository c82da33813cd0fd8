"""The central site's inputs in the rehearsal: what `inputs:` names, as small stand-in datasets.

A real central site holds its certified calibrations, reference catalogs and ancillary inputs
before the campaign starts; the rehearsal's central repository is new, so this writes a few
datasets of every input type into the collections the spec names (calibrations certified with
validity ranges, a refcat collection CHAINED over a RUN, an ancillary RUN of the collection's
own name). The generated `butler/inputs.py`, moves and verify scripts then run on them for real.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import product
from pathlib import Path
from typing import Any

from compiler.plan import Plan
from compiler.plan_model import InputSet, InputTypePlan

# Stand-in values of the dimensions an input type may have (detectors and filters are the
# rehearsal's own records, see butlers.insert_stack_records).
HTM7_PIXELS = (131072, 131073)
DETECTORS = (0, 1)
VALID_FROM = "2020-01-01T00:00:00"


def _data_ids(plan: Plan, t: InputTypePlan) -> Iterator[dict[str, Any]]:
    from . import butlers

    values: dict[str, tuple[Any, ...]] = {
        "instrument": (plan.instrument,),
        "detector": DETECTORS,
        "physical_filter": (butlers.filters_of(plan.instrument)[0][0],),
        "htm7": HTM7_PIXELS,
    }
    dims = [d for d in t.dimensions if d in values]
    for combo in product(*(values[d] for d in dims)):
        yield dict(zip(dims, combo, strict=True))


def make_inputs(repo: str | Path, plan: Plan) -> dict[str, int]:
    """Write the stand-in inputs into the central repository; idempotent. Returns the number
    of datasets per input type."""
    import astropy.time
    from lsst.daf.butler import (  # type: ignore[attr-defined]
        CollectionType,
        DatasetRef,
        DatasetType,
        Timespan,
    )

    from . import butlers

    counts: dict[str, int] = {}
    with butlers._butler(repo) as butler:  # noqa: SLF001 - the rehearsal's own helper
        registry = butler.registry
        for input_set in plan.input_sets:
            run = _run_of(input_set)
            butler.collections.register(run, CollectionType.RUN)
            refs = []
            for t in input_set.types:
                dataset_type = DatasetType(t.type, t.dimensions, t.storage_class,
                                           universe=butler.dimensions,
                                           isCalibration=t.is_calibration)
                registry.registerDatasetType(dataset_type)
                existing = {ref.dataId.required_values for ref in butler.query_datasets(
                    dataset_type, collections=run, find_first=False, explain=False)}
                new = [DatasetRef(dataset_type, registry.expandDataId(data_id, dimensions=(
                           dataset_type.dimensions)), run=run)
                       for data_id in _data_ids(plan, t)]
                new = [ref for ref in new if ref.dataId.required_values not in existing]
                butlers._ingest_stand_in_files(butler, new, {"stand_in": "input"})  # noqa: SLF001
                refs += list(butler.query_datasets(dataset_type, collections=run,
                                                   find_first=False, explain=False))
                counts[t.type] = len(list(_data_ids(plan, t)))
            _collect(butler, input_set, run, refs, Timespan(
                astropy.time.Time(VALID_FROM, scale="tai"), None))
    return counts


def stand_in_count(plan: Plan, dataset_type: str) -> int:
    """How many datasets of an input type make_inputs writes (the inputs' manifest: one)."""
    for input_set in plan.input_sets:
        for t in input_set.types:
            if t.type == dataset_type:
                return len(list(_data_ids(plan, t)))
    return 1


def _run_of(input_set: InputSet) -> str:
    """The RUN holding the stand-ins: the ancillary collection itself (as FGCM's look-up table
    usually is), else a RUN under the collection's name."""
    return input_set.collection if input_set.kind == "ancillary" \
        else f"{input_set.collection}/stand-in"


def _collect(butler: Any, input_set: InputSet, run: str, refs: list[Any], valid: Any) -> None:
    """Make the spec's collection hold the stand-ins: certified, chained, or the RUN itself."""
    from lsst.daf.butler import CollectionType  # type: ignore[attr-defined]

    if input_set.kind == "ancillary":
        return
    if input_set.kind == "calibrations":
        butler.collections.register(input_set.collection, CollectionType.CALIBRATION)
        certified = {a.ref.id for t in input_set.types
                     for a in butler.registry.queryDatasetAssociations(
                         t.type, collections=input_set.collection)}
        todo = [ref for ref in refs if ref.id not in certified]
        if todo:
            butler.registry.certify(input_set.collection, todo, valid)
        return
    butler.collections.register(input_set.collection, CollectionType.CHAINED)
    butler.collections.redefine_chain(input_set.collection, [run])


__all__ = ["make_inputs", "stand_in_count"]
