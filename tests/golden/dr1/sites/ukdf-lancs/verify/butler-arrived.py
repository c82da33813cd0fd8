# Butler arrival check of the verify scripts at ukdf-lancs of campaign 'dr1'
# generated - do not edit: drpc 0.1.0 from dr1.yaml
#
# Used by the verify/<transfer>.sh scripts beside it; runs with a Python that has
# lsst.daf.butler and the Rucio client (BUTLER_PYTHON, default python3: the stack's). Lists what
# was sent with --sent-from-rucio (the files of the Rucio container's datasets, as `rucio did
# content list` of the container and then of its datasets would; RUCIO_CONFIG as for the CLI,
# --rucio-account), or reads it on stdin (one `scope:name` a line), and looks for each file
# among the datasets of the dataset type in the RUN
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
import os
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
    parser.add_argument("--sent-from-rucio", action="store_true",
                        help="list what --rucio-did sent with the Rucio client (else: stdin)")
    parser.add_argument("--rucio-account", default="",
                        help="the account to read Rucio with (empty: the config's)")
    args = parser.parse_args()
    if args.sent_from_rucio:
        listed = sent_by_rucio(args.rucio_did, args.rucio_account)
        if listed is None:
            return 1
        lines, datasets = listed
        print(f"{args.rucio_did}: {datasets} dataset(s)")
    else:
        lines = sys.stdin.read().splitlines()

    from lsst.daf.butler import (
        Butler,
        CollectionType,
        MissingCollectionError,
        MissingDatasetTypeError,
    )

    sent = sorted({line.strip().split(":", 1)[-1] for line in lines if line.strip()})
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


def sent_by_rucio(did: str, account: str) -> tuple[list[str], int] | None:
    """The files of the container's datasets (what its rule replicates) and how many datasets;
    None, said on stderr, when Rucio cannot tell."""
    scope, sep, name = did.partition(":")
    if not os.environ.get("RUCIO_ACCOUNT", "x"):
        del os.environ["RUCIO_ACCOUNT"]  # empty: the config's account (the client would take "")
    try:
        from rucio.client import Client

        client = Client(account=account or None)
        datasets = [(d["scope"], d["name"]) for d in client.list_content(scope, name)]
        files = [f"{f['scope']}:{f['name']}" for ds_scope, ds_name in datasets
                 for f in client.list_content(ds_scope, ds_name)]
    except Exception as exc:  # no client, no config, no such container, a refusal
        text = " ".join(str(exc).split())[:500]
        print(f"error: cannot list what {did} sent: {type(exc).__name__}: {text}",
              file=sys.stderr)
        return None
    return files, len(datasets)


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
