# Source manifest helper of the register scripts at usdf of campaign 'drp-3x2'
# generated - do not edit: drpc 0.1.0 from 3x2.yaml
#
# Used by the <transfer>.register.sh scripts beside it; needs only the Python standard library
# (the scripts run it with BUTLER_PYTHON). Reads the files of the container's datasets
# (`rucio did content list --short`, one scope:name a line) on stdin and what the selection holds
# (--selection-summary: the JSON that `selection.py ... --summary` wrote in the same run, from
# the Butler) and writes the transfer's source manifest: how many datasets the selection holds,
# in which RUN collections, their dataset ids, and how many files Rucio holds. It exits 1 if
# Rucio holds fewer files than the selection has datasets (something was not registered).
"""Write a transfer's source manifest (see the header)."""

from __future__ import annotations

import argparse
import json
import os
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--selection-summary", required=True,
                        help="what the selection holds (selection.py --summary)")
    parser.add_argument("--transfer", required=True)
    parser.add_argument("--rucio-did", required=True)
    parser.add_argument("--rucio-datasets", type=int, default=0)
    parser.add_argument("--rucio-files", default="-", help="file list, one scope:name a line; - = stdin")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    try:
        with open(args.selection_summary) as fh:
            selection = json.load(fh)
        count, runs = int(selection["butler_datasets"]), dict(selection["runs"])
        ids, collections = list(selection["dataset_ids"]), str(selection["collections"])
        dataset_type = str(selection["dataset_type"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: cannot read the selection summary {args.selection_summary}: {exc}",
              file=sys.stderr)
        return 2
    if args.rucio_files == "-":
        lines = sys.stdin.read().splitlines()
    else:
        with open(args.rucio_files) as fh:
            lines = fh.read().splitlines()
    files = sorted({line.strip().split(":", 1)[-1] for line in lines if line.strip()})

    out = {
        "transfer": args.transfer,
        "rucio_did": args.rucio_did,
        "rucio_datasets": args.rucio_datasets,
        "dataset_type": dataset_type,
        "collections": collections,
        "butler_datasets": count,
        "runs": dict(sorted(runs.items())),
        "dataset_ids": sorted(ids),
        "rucio_files": len(files),
    }
    tmp = f"{args.output}.tmp"
    with open(tmp, "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, args.output)
    print(f"{args.rucio_did}: {len(files)} file(s) in {args.rucio_datasets} Rucio dataset(s) "
          f"registered for {count} dataset(s) of {dataset_type} in {len(runs)} RUN "
          f"collection(s); manifest: {args.output}")
    if len(files) < count:
        print(f"error: {args.rucio_did} holds {len(files)} file(s) but the Butler selection has "
              f"{count} dataset(s): run the registration again and check its log",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
