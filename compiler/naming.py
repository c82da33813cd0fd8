"""Names the plan gives things: collections, Rucio names, Butler queries, topics, labels.

Pure string functions, each name written once, so that every renderer, the rehearsal and the
tests spell a name the same way.
"""

from __future__ import annotations

import bisect
import hashlib
import re

from .defaults import RUCIO_CONTAINER_MAX

# lsst.skymap.BaseSkyMap.SKYMAP_RUN_COLLECTION_NAME: where register-skymap puts the skyMap dataset.
SKYMAPS_COLLECTION = "skymaps"


def file_path(url: str) -> str:
    """A local path from a file URL prefix (`file:///data/` -> `/data/`)."""
    return url[len("file://"):] if url.startswith("file://") else url


def datastore_root(rse_root: str, scope: str) -> str:
    """`<rse_root>/<scope>`: only then are rucio-register's DID names Rucio's own paths."""
    return f"{rse_root.rstrip('/')}/{scope}"


def raw_collection(instrument: str) -> str:
    """Where raws live at every site (RUN collection of `butler ingest-raws`)."""
    return f"{instrument}/raw/all"


def raw_selection(instrument: str, campaign: str, site: str) -> str:
    """The TAGGED collection of every raw of the visits a site holds (CONTRACT section 2)."""
    return f"{instrument}/raw/{campaign}/{site}"


def move_selection(output_collection: str, move_id: str) -> str:
    """The TAGGED collection, at a move's source, of exactly the datasets it sends."""
    return f"{output_collection}/outgoing/{move_id}"


def stage_output(output_collection: str, stage: str) -> str:
    """The CHAINED collection a stage's job writes (BPS `output`)."""
    return f"{output_collection}/{stage}"


def incoming_collection(output_collection: str, sink: str) -> str:
    """The CHAINED collection the arrived RUNs of a move are chained into at its destination."""
    return f"{output_collection}/incoming/{sink}"


def inputs_manifest_run(output_collection: str) -> str:
    """The RUN collection of the inputs' manifest (what the central site sent, see
    defaults.INPUTS_MANIFEST_TYPE)."""
    return f"{output_collection}/inputs/manifest"


# What arrived of an input: it keeps its RUN collections of the central site, whose names the
# compile cannot know, so the destination looks in every RUN collection.
EVERY_RUN = "*"


def input_move_id(dataset_type: str, source: str, destination: str) -> str:
    return f"inputs.{dataset_type}.{source}-to-{destination}"


def crosscheck_move_id(transfer_id: str) -> str:
    """A cross-check return has an id of its own: a gather or return of the same type from the
    same site (`<stage>.<type>.<source>-to-<central>`) carries the site's own tracts."""
    return f"crosscheck.{transfer_id}"


def crosscheck_collection(output_collection: str, site: str) -> str:
    """The CHAINED collection at the central site of what `site` returned for the cross-check."""
    return f"{output_collection}/incoming/crosscheck/{site}"


def arrived_runs(source_collection: str) -> str:
    """The RUN collections BPS writes under a stage's output (`<output>/<timestamp>`, outputRun).

    ctrl_ingestd keeps each dataset's RUN, so what arrived is in the RUNs under the producer's
    output at the destination too.
    """
    return f"{source_collection}/*"


def repository_name(repo: str) -> str:
    """The last path component of a Butler repository (`/repo/main` -> `main`, also for a URI or
    a `butler.yaml` path): rucio-register's convention for the Rucio scope."""
    parts = [p for p in repo.split("?")[0].split("/") if p]
    if parts and parts[-1].endswith((".yaml", ".json")):
        parts = parts[:-1]
    return parts[-1] if parts else repo


def pg_schema(name: str) -> str:
    """A PostgreSQL schema name made of a repository's name (`main`, `repo_drp_2025`)."""
    schema = re.sub(r"[^a-z0-9_]", "_", name.lower())[:63] or "butler"
    return schema if re.match(r"[a-z_]", schema) else f"_{schema[:62]}"


def id_link_path(campaign: str, stage_index: int, stage: str, site: str) -> str:
    """BPS idLinkPath of a job: ctrl_bps links `<idLinkPath>/<run id>` to the submit folder, so
    the run ids of one campaign's stage at one site are the names in this folder."""
    return f"${{HOME}}/drpc-runs/{campaign}/{stage_index:02d}-{stage}-{site}"


def manifest_name(move_id: str) -> str:
    """The manifest a register script writes at run time (beside it, or in MANIFEST_DIR)."""
    return f"{move_id}.manifest.json"


def selection_summary_name(move_id: str) -> str:
    """What a register script's selection held when it ran (beside its manifest): the manifest
    is written from it, so that the Butler is opened once per run."""
    return f"{move_id}.selection.json"


def rucio_dataset_name(campaign: str, transfer_id: str, limit: int = RUCIO_CONTAINER_MAX) -> str:
    """`<campaign>.<transfer id>`, the move's container, shortened deterministically with a hash
    suffix if too long (leaving room for its datasets' suffixes under Rucio's 250)."""
    name = f"{campaign}.{transfer_id}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{name[: limit - len(digest) - 1]}-{digest}"


def tract_predicate(tracts: tuple[int, ...] | list[int]) -> str:
    """The shorter of an `IN` list and compact id ranges, as one parenthesised predicate.

    The ids are sorted once; the `IN` list's length is counted from their digits (it is
    written only when it is the shorter form, which for a site's tracts it rarely is).
    """
    ids = sorted(set(tracts))
    if len(ids) == 1:
        return f"tract = {ids[0]}"
    parts = [f"tract = {a}" if a == b else f"tract >= {a} AND tract <= {b}"
             for a, b in _runs(ids)]
    ranges = (parts[0] if len(parts) == 1
              else "(" + " OR ".join(f"({p})" if " AND " in p else p for p in parts) + ")")
    if len(ranges) < _in_list_length(ids):
        return ranges
    return f"tract IN ({', '.join(str(t) for t in ids)})"


def _runs(ids: list[int]) -> list[tuple[int, int]]:
    """Inclusive (first, last) runs of consecutive ids, from ids sorted without duplicates."""
    runs: list[tuple[int, int]] = []
    start = prev = ids[0] if ids else 0
    for value in ids[1:]:
        if value != prev + 1:
            runs.append((start, prev))
            start = value
        prev = value
    if ids:
        runs.append((start, prev))
    return runs


def _in_list_length(ids: list[int]) -> int:
    """len(f"tract IN ({', '.join(map(str, ids))})") for sorted ids, without writing it: the
    ids of each number of digits are found by bisection."""
    negatives = bisect.bisect_left(ids, 0)
    digits = sum(len(str(t)) for t in ids[:negatives])  # rare: only the rehearsal's [-1]
    width, low = 1, negatives
    while low < len(ids):
        high = bisect.bisect_left(ids, 10 ** width, low)
        digits += (high - low) * width
        width, low = width + 1, high
    return len("tract IN ()") + digits + 2 * max(len(ids) - 1, 0)


def instrument_query(instrument: str, skymap: str) -> str:
    """A dataQuery with no spatial constraint (`select: visits` and `all` jobs)."""
    return f"instrument='{instrument}' AND skymap='{skymap}'"


def tract_query(instrument: str, skymap: str, tracts: tuple[int, ...] | list[int], *,
                with_instrument: bool = True) -> str:
    head = f"instrument='{instrument}' AND " if with_instrument else ""
    return f"{head}skymap='{skymap}' AND {tract_predicate(tracts)}"


def ingestd_labels(campaign: str, site: str) -> dict[str, str]:
    """On every ctrl_ingestd object and the Deployment's selector: `kubectl -l` finds them all."""
    return dict(sorted({
        "app.kubernetes.io/name": "ctrl-ingestd",
        "app.kubernetes.io/part-of": "drpc",
        "app.kubernetes.io/managed-by": "drpc",
        "drpc.lsst.io/campaign": campaign,
        "drpc.lsst.io/site": site,
    }.items()))


def ingestd_selector(campaign: str, site: str | None = None) -> str:
    """The label selector of a campaign's ctrl_ingestd (at one site), for `kubectl -l`."""
    labels = ingestd_labels(campaign, site or "")
    keys = ["drpc.lsst.io/campaign", *(["drpc.lsst.io/site"] if site else [])]
    return ",".join(f"{k}={labels[k]}" for k in keys)


def ingestd_resource(campaign: str) -> str:
    """Per campaign, so that two campaigns' ctrl_ingestd can share a site's namespace."""
    return f"ingestd-{campaign}"


def ingestd_topic(rse: str, scope: str) -> str:
    """The Kafka topic Hermes writes for files arriving on `rse` in `scope`.

    The ONE place the pairing is named: every topic drpc writes comes from here.
    """
    return f"{rse}-{scope}"
