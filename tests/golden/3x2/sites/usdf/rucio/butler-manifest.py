# Butler manifest helper of the register scripts at usdf of campaign 'drp-3x2'
# generated - do not edit: drpc 0.1.0 from 3x2.yaml
#
# Used by the <transfer>.register.sh scripts beside it; runs with a Python that has
# lsst.daf.butler (BUTLER_PYTHON, default python3: the stack's). Two commands:
#
#   split: cuts the transfer's TAGGED selection (the collection that goes) into TAGGED chunk
#     collections `<selection>/<NNNN>` of at most --limit datasets each, one per Rucio dataset
#     `<base>.<NNNN>` of the transfer's container. A chunk, once made, never changes (its Rucio
#     dataset may be closed already): datasets of the selection that are in no chunk yet go into
#     new chunks, numbered after the last, so a second run over the same selection makes none.
#     Prints one line per chunk: collection, Rucio dataset name, datasets (tab-separated).
#   manifest: reads the files of the container's datasets (`rucio did content list --short`,
#     one scope:name a line) on stdin and writes the manifest: how many datasets the selection
#     holds, in which RUN collections, their dataset ids, and how many files Rucio holds. It
#     exits 1 if Rucio holds fewer files than the selection has datasets (something was not
#     registered).
"""Split a transfer's selection into chunks, or write its source manifest (see the header)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter


def selection_refs(butler, dataset_type, collection):
    from lsst.daf.butler import MissingCollectionError, MissingDatasetTypeError

    try:
        return list(butler.query_datasets(dataset_type, collections=collection,
                                          find_first=False, limit=None, explain=False))
    except (MissingDatasetTypeError, MissingCollectionError):
        return []


def split(args):
    from lsst.daf.butler import Butler, CollectionType

    if args.limit < 1:
        print(f"error: --limit must be at least 1, not {args.limit}", file=sys.stderr)
        return 2
    chunk_re = re.compile(re.escape(args.collections) + r"/([0-9]{4,})$")
    with Butler.from_config(args.repo, writeable=True) as butler:
        selected = {ref.id: ref for ref in selection_refs(butler, args.dataset_type,
                                                          args.collections)}
        chunks = {}  # number -> collection
        for name in butler.collections.query(args.collections + "/*",
                                             collection_types=CollectionType.TAGGED):
            match = chunk_re.match(name)
            if match:
                chunks[int(match.group(1))] = name
        counts = {}
        assigned = set()
        for number, name in sorted(chunks.items()):
            ids = {ref.id for ref in selection_refs(butler, args.dataset_type, name)}
            counts[number] = len(ids)
            assigned |= ids
        new = sorted((ref for key, ref in selected.items() if key not in assigned),
                     key=lambda ref: (ref.run, str(ref.dataId), str(ref.id)))
        number = max(chunks, default=0)
        made = 0
        for start in range(0, len(new), args.limit):
            number += 1
            name = f"{args.collections}/{number:04d}"
            butler.collections.register(name, CollectionType.TAGGED)
            butler.registry.associate(name, new[start: start + args.limit])
            chunks[number] = name
            counts[number] = len(new[start: start + args.limit])
            made += 1
    for number, name in sorted(chunks.items()):
        print(f"{name}\t{args.rucio_base}.{number:04d}\t{counts[number]}")
    print(f"{args.collections}: {len(selected)} dataset(s) of {args.dataset_type} in "
          f"{len(chunks)} chunk(s) of at most {args.limit} ({made} new, "
          f"{len(new)} dataset(s) added)", file=sys.stderr)
    return 0


def manifest(args):
    from lsst.daf.butler import Butler

    if args.rucio_files == "-":
        lines = sys.stdin.read().splitlines()
    else:
        with open(args.rucio_files) as fh:
            lines = fh.read().splitlines()
    files = sorted({line.strip().split(":", 1)[-1] for line in lines if line.strip()})

    with Butler.from_config(args.repo, without_datastore=True) as butler:
        refs = selection_refs(butler, args.dataset_type, args.collections)
    runs = Counter(ref.run for ref in refs)
    out = {
        "transfer": args.transfer,
        "rucio_did": args.rucio_did,
        "rucio_datasets": args.rucio_datasets,
        "dataset_type": args.dataset_type,
        "collections": args.collections,
        "butler_datasets": len(refs),
        "runs": dict(sorted(runs.items())),
        "dataset_ids": sorted(str(ref.id) for ref in refs),
        "rucio_files": len(files),
    }
    tmp = f"{args.output}.tmp"
    with open(tmp, "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, args.output)
    print(f"{args.rucio_did}: {len(files)} file(s) in {args.rucio_datasets} Rucio dataset(s) "
          f"registered for {len(refs)} dataset(s) of {args.dataset_type} in {len(runs)} RUN "
          f"collection(s); manifest: {args.output}")
    if len(files) < len(refs):
        print(f"error: {args.rucio_did} holds {len(files)} file(s) but the Butler selection has "
              f"{len(refs)} dataset(s): run the registration again and check its log",
              file=sys.stderr)
        return 1
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("split", "manifest"):
        sub = commands.add_parser(name)
        sub.add_argument("--repo", required=True)
        sub.add_argument("--dataset-type", required=True)
        sub.add_argument("--collections", required=True)
    commands.choices["split"].add_argument("--limit", type=int, required=True)
    commands.choices["split"].add_argument("--rucio-base", required=True)
    sub = commands.choices["manifest"]
    sub.add_argument("--transfer", required=True)
    sub.add_argument("--rucio-did", required=True)
    sub.add_argument("--rucio-datasets", type=int, default=0)
    sub.add_argument("--rucio-files", default="-", help="file list, one scope:name a line; - = stdin")
    sub.add_argument("--output", required=True)
    args = parser.parse_args()
    return split(args) if args.command == "split" else manifest(args)


if __name__ == "__main__":
    sys.exit(main())
