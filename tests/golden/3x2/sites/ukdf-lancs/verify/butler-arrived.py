# Butler arrival check of the verify scripts at ukdf-lancs of campaign 'drp-3x2'
# generated - do not edit: drpc 0.1.0 from 3x2.yaml
#
# Used by the verify/<transfer>.sh scripts beside it; runs with a Python that has
# lsst.daf.butler (BUTLER_PYTHON, default python3: the stack's). Reads what was sent (the files
# of the Rucio container's datasets, `rucio did content list --short`, one `scope:name` a line)
# on stdin and looks for each file among the datasets of the dataset type in the RUN
# collections matching --collections in the Butler. A file arrived and was ingested when a dataset's file ends with
# `/<name>`: a DID name is the file's path under the source datastore root, and ctrl_ingestd
# ingests the file at the same relative path (the datastore root of both sites is
# <rse_root>/<scope>; a templated copy lands there too). Prints on stderr the count and every
# missing file; exits 1 if a file is missing, or if nothing was sent (unless --allow-empty).
# When every file arrived, each --chain (a CHAINED collection, made if missing) is extended with
# the RUN collections of the arrived datasets it does not hold yet, in this Python, as
# `butler collection-chain --mode extend` would (idempotent); with --dry-run that command is
# printed on stdout instead, and nothing changes.
"""Compare what a transfer sent with what the destination Butler ingested (see the header)."""

from __future__ import annotations

import argparse
import sys

MAX_LISTED = 200


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--dataset-type", required=True)
    parser.add_argument("--collections", required=True, help="RUN collections (a glob)")
    parser.add_argument("--chain", action="append", default=[],
                        help="CHAINED collection the arrived RUNs go into (repeatable)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the chain commands instead of changing the repository")
    parser.add_argument("--rucio-did", required=True)
    parser.add_argument("--allow-empty", action="store_true")
    args = parser.parse_args()

    from lsst.daf.butler import (
        Butler,
        CollectionType,
        MissingCollectionError,
        MissingDatasetTypeError,
    )

    sent = sorted({line.strip().split(":", 1)[-1] for line in sys.stdin if line.strip()})
    if not sent and not args.allow_empty:
        print(f"error: {args.rucio_did} holds no file: nothing was sent yet (run the source's "
              "register script), or set ALLOW_EMPTY=1 if this transfer is empty on purpose",
              file=sys.stderr)
        return 1

    with Butler.from_config(args.repo, writeable=bool(args.chain) and not args.dry_run) as butler:
        try:
            runs = list(butler.collections.query(args.collections, collection_types=CollectionType.RUN))
        except MissingCollectionError:
            runs = []
        refs = []
        if runs:
            try:
                refs = butler.query_datasets(args.dataset_type, collections=runs, find_first=False,
                                             limit=None, explain=False)
            except (MissingDatasetTypeError, MissingCollectionError):
                refs = []
        by_name: dict[str, list[tuple[str, str]]] = {}
        for ref, uris in butler.get_many_uris(refs).items():
            for uri in (uris.primaryURI, *uris.componentURIs.values()):
                if uri is not None:
                    path = uri.unquoted_path
                    by_name.setdefault(path.rsplit("/", 1)[-1], []).append((path, ref.run))
        missing, arrived_runs = compare(sent, by_name)
        if not missing:
            for chain in args.chain:
                extend(butler, args.repo, chain, arrived_runs, dry_run=args.dry_run)

    print(f"{args.rucio_did}: {len(sent) - len(missing)} of {len(sent)} file(s) arrived and were "
          f"ingested as {args.dataset_type} in {args.repo} ({len(arrived_runs)} RUN collection(s))",
          file=sys.stderr)
    if missing:
        print(f"error: {len(missing)} file(s) of {args.rucio_did} missing from {args.repo} "
              f"({args.dataset_type} in {args.collections}):", file=sys.stderr)
        for name in missing[:MAX_LISTED]:
            print(f"  missing: {name}", file=sys.stderr)
        if len(missing) > MAX_LISTED:
            print(f"  ... and {len(missing) - MAX_LISTED} more", file=sys.stderr)
        return 1
    return 0


def compare(sent: list[str], by_name: dict[str, list[tuple[str, str]]]
            ) -> tuple[list[str], set[str]]:
    """The sent files missing from the Butler, and the RUN collections of those that arrived."""
    missing: list[str] = []
    arrived_runs: set[str] = set()
    for name in sent:
        run = next((r for path, r in by_name.get(name.rsplit("/", 1)[-1], ())
                    if path == "/" + name or path.endswith("/" + name)), None)
        if run is None:
            missing.append(name)
        else:
            arrived_runs.add(run)
    return missing, arrived_runs


def extend(butler, repo: str, chain: str, runs: set[str], *, dry_run: bool) -> None:
    """Append to CHAINED `chain` (made if missing) the `runs` it does not hold yet."""
    import shlex

    from lsst.daf.butler import CollectionType, MissingCollectionError

    try:
        held = set(butler.collections.get_info(chain).children)
        exists = True
    except MissingCollectionError:
        held, exists = set(), False
    new = sorted(runs - held)
    if not new:
        print(f"every arrived RUN collection is already in {chain}")
        return
    if dry_run:
        print(shlex.join(["butler", "collection-chain", "--mode", "extend", repo, chain, *new]))
        return
    if not exists:
        butler.collections.register(chain, CollectionType.CHAINED)
    butler.collections.extend_chain(chain, new)
    print(f"{chain}: {len(new)} RUN collection(s) appended: {', '.join(new)}")


if __name__ == "__main__":
    sys.exit(main())
