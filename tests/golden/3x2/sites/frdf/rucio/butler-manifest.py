# Butler manifest helper of the register scripts at frdf of campaign 'drp-3x2'
# generated - do not edit: drpc 0.1.0 from 3x2.yaml
#
# Used by the <transfer>.register.sh scripts beside it; runs with a Python that has
# lsst.daf.butler (BUTLER_PYTHON, default python3: the stack's). It reads the transfer's TAGGED
# selection (the collection rucio-register registered from), reads the Rucio dataset's file list
# (`rucio did content list --short`) on stdin, and writes the manifest: how many datasets the
# selection holds, in which RUN collections, their dataset ids, and how many files the Rucio
# dataset holds. It exits 1 if the Rucio dataset holds fewer files than the selection has
# datasets (something was not registered).
"""Write a transfer's source manifest (see the header)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--dataset-type", required=True)
    parser.add_argument("--collections", required=True)
    parser.add_argument("--transfer", required=True)
    parser.add_argument("--rucio-did", required=True)
    parser.add_argument("--rucio-files", default="-", help="file list, one scope:name a line; - = stdin")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    from lsst.daf.butler import Butler, MissingCollectionError, MissingDatasetTypeError

    if args.rucio_files == "-":
        lines = sys.stdin.read().splitlines()
    else:
        with open(args.rucio_files) as fh:
            lines = fh.read().splitlines()
    files = sorted({line.strip().split(":", 1)[-1] for line in lines if line.strip()})

    with Butler.from_config(args.repo, without_datastore=True) as butler:
        try:
            refs = butler.query_datasets(args.dataset_type, collections=args.collections,
                                         find_first=False, limit=None, explain=False)
        except (MissingDatasetTypeError, MissingCollectionError):
            refs = []
    runs = Counter(ref.run for ref in refs)
    manifest = {
        "transfer": args.transfer,
        "rucio_did": args.rucio_did,
        "dataset_type": args.dataset_type,
        "collections": args.collections,
        "butler_datasets": len(refs),
        "runs": dict(sorted(runs.items())),
        "dataset_ids": sorted(str(ref.id) for ref in refs),
        "rucio_files": len(files),
    }
    tmp = f"{args.output}.tmp"
    with open(tmp, "w") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, args.output)
    print(f"{args.rucio_did}: {len(files)} file(s) registered for {len(refs)} dataset(s) of "
          f"{args.dataset_type} in {len(runs)} RUN collection(s); manifest: {args.output}")
    if len(files) < len(refs):
        print(f"error: {args.rucio_did} holds {len(files)} file(s) but the Butler selection has "
              f"{len(refs)} dataset(s): run the registration again and check its log",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
