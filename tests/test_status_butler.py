"""Arrival counts in a real (SQLite) Butler: two sources gather the same dataset type into the
same incoming chain, so only Rucio's list of the files sent tells their moves apart."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from compiler.pipeline import compile_campaign
from compiler.plan_model import Move
from compiler.status.butler_counts import collect_site, count_arrived
from tests.helpers import MINIMAL, replace_line, write

SKYMAP = "hsc_rings_v1"


def put_arrivals(repo: Path, move: Move, runs: dict[str, int]) -> dict[str, list[str]]:
    """A repository whose `move.into` chain holds `runs` (RUN -> dataset count) of the move's
    type; each RUN's files as paths under the datastore root."""
    from lsst.daf.butler import Butler, CollectionType, DatasetType
    from lsst.resources import ResourcePath

    Butler.makeRepo(str(repo))
    root = ResourcePath(str(repo), forceDirectory=True)
    out: dict[str, list[str]] = {}
    with Butler.from_config(str(repo), writeable=True) as butler:
        butler.registry.insertDimensionData("skymap", {
            "name": SKYMAP, "hash": b"h", "tract_max": 100, "patch_nx_max": 1,
            "patch_ny_max": 1})
        butler.registry.insertDimensionData("tract", *[{"skymap": SKYMAP, "id": t}
                                                       for t in range(1, 20)])
        dtype = DatasetType(move.dataset_type, ("skymap", "tract"), "StructuredDataDict",
                            universe=butler.dimensions)
        butler.registry.registerDatasetType(dtype)
        butler.collections.register(move.into, CollectionType.CHAINED)
        first = 1
        for run, count in runs.items():
            butler.collections.register(run)
            out[run] = []
            for tract in range(first, first + count):
                ref = butler.put({"t": tract}, dtype, {"skymap": SKYMAP, "tract": tract}, run=run)
                out[run].append(str(butler.getURI(ref).relative_to(root)))
            first += count
            butler.collections.extend_chain(move.into, [run])
    return out


def test_shared_chain_is_told_apart_by_the_files_sent(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "butler: {repo: /repo/usdf}",
                        f"butler: {{repo: {tmp_path / 'usdf'}}}")
    plan = compile_campaign(write(tmp_path, text), render=False).plan
    frdf = next(m for m in plan.moves if m.kind == "gather")
    ukdf = dataclasses.replace(frdf, id=frdf.id.replace("frdf", "ukdf"), source="ukdf")
    files = put_arrivals(tmp_path / "usdf", frdf, {"from/frdf": 3, "from/ukdf": 2})
    from lsst.daf.butler import Butler

    with Butler.from_config(str(tmp_path / "usdf")) as butler:
        sent = [*files["from/frdf"], "from/frdf/lost.json"]
        got = count_arrived(butler, frdf, sent, shared=True)
        assert (got.known, got.ingested, got.counted_by) == (True, 3, "files")
        assert count_arrived(butler, ukdf, files["from/ukdf"], shared=True).ingested == 2
        blind = count_arrived(butler, frdf, None, shared=True)
        assert not blind.known and "needs Rucio's list of the files sent" in (blind.reason or "")
        alone = count_arrived(butler, frdf, None, shared=False)
        assert (alone.ingested, alone.counted_by) == (5, "type")
        raw = next(m for m in plan.moves if m.kind == "scatter")  # its type is not registered
        nothing = count_arrived(butler, raw, [], shared=False)
        assert (nothing.known, nothing.ingested) == (True, 0)
        assert "nothing yet (MissingDatasetTypeError" in (nothing.reason or "")

    arrivals, repo, source = collect_site(plan, "usdf", [frdf], {frdf.id: sent})
    assert arrivals[frdf.id].ingested == 3 and source.up
    assert (repo.known, repo.ready) == (True, False)  # no incoming/archive chain: not set up
    assert "lacks its incoming chains" in (repo.reason or "")
    gone, repo, source = collect_site(plan, "frdf", [frdf], {})  # /repo/frdf does not exist
    assert not gone[frdf.id].known and not source.up and not repo.known
    assert (source.reason or "").startswith("Butler /repo/frdf: FileNotFoundError")
