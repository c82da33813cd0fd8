"""What arrived at each destination, counted in its Butler with daf_butler itself.

Only these counts prove arrival: ctrl_ingestd commits its Kafka offsets even for files whose
ingest failed, so neither Rucio's OK nor a zero lag says the datasets are in the Butler. A move
is counted in the collection its datasets end up in (`Move.into`: the incoming chain its verify
script extends), with `find_first=False` so every arrived dataset counts once. A repository is
"set up" when it opens and holds every incoming chain its setup script makes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ..plan import Plan
from ..plan_model import Move
from .errors import SourceUnavailable, missing_client, reason_of
from .model import ArrivalStatus, RepoStatus, SourceStatus


def _butler(repo: str) -> Any:
    try:
        from lsst.daf.butler import Butler
    except ImportError as exc:
        raise missing_client("lsst-daf-butler", "lsst.daf.butler", exc) from None
    try:
        return Butler.from_config(repo, writeable=False)
    except Exception as exc:  # noqa: BLE001 - no repository, no credentials, no database
        raise SourceUnavailable(f"Butler {repo}: {reason_of(exc)}") from None


def _missing(exc: BaseException) -> bool:
    return type(exc).__name__ in ("MissingCollectionError", "MissingDatasetTypeError")


def _refs(butler: Any, move: Move) -> list[Any] | str:
    """The move's type's datasets in the collection it ends up in, or why there are none."""
    try:
        return list(butler.query_datasets(move.dataset_type, collections=move.into,
                                          find_first=False, limit=None, explain=False))
    except Exception as exc:  # noqa: BLE001
        if not _missing(exc):
            raise
        return f"nothing yet ({reason_of(exc)})"


def _file_paths(butler: Any, refs: Sequence[Any]) -> set[str]:
    paths = set()
    for uris in butler.get_many_uris(refs).values():
        for uri in (uris.primaryURI, *uris.componentURIs.values()):
            if uri is not None:
                paths.add(uri.unquoted_path)
    return paths


def count_arrived(butler: Any, move: Move, sent: Sequence[str] | None, shared: bool
                  ) -> ArrivalStatus:
    """How many of the files sent are datasets in the move's collection, found by their paths
    as verify finds them (a DID name is the file's path under the datastore root). Without
    Rucio's file list, the datasets of the type are counted, unless another move brings the
    same type into the same collection (`shared`), where only the names can tell them apart."""
    found = _refs(butler, move)
    if isinstance(found, str):
        return ArrivalStatus(known=True, collection=move.into, ingested=0, reason=found)
    if sent is None:
        if shared:
            return ArrivalStatus(known=False, collection=move.into, reason=(
                f"other moves bring {move.dataset_type} into {move.into} too: telling them "
                "apart needs Rucio's list of the files sent"))
        return ArrivalStatus(known=True, collection=move.into, ingested=len(found),
                             counted_by="type")
    by_base: dict[str, list[str]] = {}
    for path in _file_paths(butler, found):
        by_base.setdefault(path.rsplit("/", 1)[-1], []).append(path)
    arrived = sum(1 for name in sent if any(p.endswith("/" + name.lstrip("/"))
                                            for p in by_base.get(name.rsplit("/", 1)[-1], ())))
    return ArrivalStatus(known=True, collection=move.into, ingested=arrived, counted_by="files")


def _repo_ready(butler: Any, chains: Sequence[str]) -> bool:
    present = set()
    for chain in chains:
        try:
            butler.collections.get_info(chain)
            present.add(chain)
        except Exception as exc:  # noqa: BLE001
            if not _missing(exc):
                raise
    return len(present) == len(chains)


def collect_site(plan: Plan, site_id: str, moves: Sequence[Move],
                 sent: Mapping[str, Sequence[str]]
                 ) -> tuple[dict[str, ArrivalStatus], RepoStatus, SourceStatus]:
    """Arrivals of the moves into `site_id` (`sent`: move id -> names of the files Rucio says
    were sent, where Rucio answered), whether its repository is set up, and whether its Butler
    answered."""
    repo = plan.site(site_id).butler_repo
    chains = plan.incoming_chains(site_id)
    into = Counter((m.into, m.dataset_type) for m in plan.moves if m.destination == site_id)
    try:
        butler = _butler(repo)
        try:
            ready = _repo_ready(butler, chains)
            arrivals = {m.id: count_arrived(butler, m, sent.get(m.id),
                                            into[(m.into, m.dataset_type)] > 1) for m in moves}
        finally:
            butler.close()
    except Exception as exc:  # noqa: BLE001 - any failure of the Butler is an unknown cell
        reason = str(exc) if isinstance(exc, SourceUnavailable) else f"Butler: {reason_of(exc)}"
        return ({m.id: ArrivalStatus(known=False, collection=m.into, reason=reason)
                 for m in moves},
                RepoStatus(site=site_id, known=False, reason=reason),
                SourceStatus(source="butler", site=site_id, up=False, reason=reason))
    why = None if ready else f"{repo} lacks its incoming chains (setup-repo.sh not run)"
    return (arrivals, RepoStatus(site=site_id, known=True, ready=ready, reason=why),
            SourceStatus(source="butler", site=site_id, up=True))


__all__ = ["collect_site", "count_arrived"]
