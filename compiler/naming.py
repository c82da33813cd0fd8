"""Names the plan gives things: collections, Rucio dataset names, Butler tract queries.

Pure string functions, so that every renderer and test spells a name the same way.
"""

from __future__ import annotations

import hashlib

from .defaults import RUCIO_NAME_MAX
from .skymap import compress_ranges


def _file_path(url: str) -> str:
    """A local path from a file URL prefix (`file:///data/` -> `/data/`)."""
    return url[len("file://"):] if url.startswith("file://") else url


def stage_output(output_collection: str, stage: str) -> str:
    return f"{output_collection}/{stage}"


def incoming_collection(output_collection: str, consumer: str) -> str:
    return f"{output_collection}/incoming/{consumer}"


def rucio_dataset_name(campaign: str, transfer_id: str, limit: int = RUCIO_NAME_MAX) -> str:
    """`<campaign>.<transfer id>`, shortened deterministically with a hash suffix if too long."""
    name = f"{campaign}.{transfer_id}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{name[: limit - len(digest) - 1]}-{digest}"


def tract_predicate(tracts: tuple[int, ...] | list[int]) -> str:
    """The shorter of an `IN` list and compact id ranges, as one parenthesised predicate."""
    ids = sorted(set(tracts))
    in_list = f"tract IN ({', '.join(str(t) for t in ids)})"
    parts = [f"tract = {a}" if a == b else f"tract >= {a} AND tract <= {b}" for a, b in compress_ranges(ids)]
    ranges = parts[0] if len(parts) == 1 else "(" + " OR ".join(f"({p})" if " AND " in p else p for p in parts) + ")"
    if len(ids) == 1:
        return f"tract = {ids[0]}"
    return ranges if len(ranges) < len(in_list) else in_list


def tract_query(instrument: str, skymap: str, tracts: tuple[int, ...] | list[int], *,
                with_instrument: bool = True) -> str:
    head = f"instrument='{instrument}' AND " if with_instrument else ""
    return f"{head}skymap='{skymap}' AND {tract_predicate(tracts)}"


def ingestd_topic(rse: str, scope: str) -> str:
    """The Kafka topic Hermes writes for files arriving on `rse` in `scope`.

    The ONE place the pairing is named: every topic drpc writes comes from here.
    """
    return f"{rse}-{scope}"
