# Rucio dataset helper of the register scripts at usdf of campaign 'drp-3x2'
# generated - do not edit: drpc 0.1.0 from 3x2.yaml
#
# Used by the <transfer>.register.sh scripts beside it: the Rucio bookkeeping of a transfer's
# chunks, each command one Python with the Rucio client (BUTLER_PYTHON: the stack's, whose
# rucio-register needs the client too; RUCIO_CONFIG and RUCIO_ACCOUNT as for the `rucio` CLI).
# One process does what took one `rucio` CLI start-up (~0.7 s of CPU) per call, eight or more
# per transfer. Three commands:
#
#   open --container SCOPE:NAME   reads the chunks (collection, Rucio dataset name, datasets; one
#       a line, tab-separated, as selection.py --split prints them) on stdin; creates the
#       container unless it exists, each chunk's dataset in its scope unless it exists
#       (monotonic: files can be added, never removed), and attaches to the container those not
#       attached yet. Prints each chunk again with two more fields: open or closed, and the
#       files its dataset holds.
#   close --dataset SCOPE:NAME --expect N --collection C   closes the dataset when it holds at
#       least N files (one per dataset of chunk C): Rucio then keeps its file count and size.
#       Exits 1, leaving it open, when it holds fewer.
#   files SCOPE:NAME...   prints every file of the datasets, scope:name, one a line.
#
# A Rucio error is one line on stderr and exit 1.
"""The Rucio datasets of a transfer's chunks: open, close, list (see the header)."""

from __future__ import annotations

import argparse
import os
import sys


def did_of(text):
    scope, sep, name = text.partition(":")
    if not sep or not scope or not name:
        raise SystemExit(f"error: {text!r} is not SCOPE:NAME")
    return scope, name


def client():
    from rucio.client import Client

    if not os.environ.get("RUCIO_ACCOUNT", "x"):
        del os.environ["RUCIO_ACCOUNT"]  # empty: the config's account (the client would take "")
    return Client()


def open_chunks(args):
    from rucio.common.exception import DataIdentifierNotFound

    scope, container = did_of(args.container)
    rucio = client()
    try:
        rucio.get_did(scope, container)
        print(f"{args.container} exists", file=sys.stderr)
    except DataIdentifierNotFound:
        rucio.add_container(scope, container)
        print(f"Added {args.container}", file=sys.stderr)
    attached = {(d["scope"], d["name"]) for d in rucio.list_content(scope, container)}
    rows, attach = [], []
    for line in sys.stdin.read().splitlines():
        if not line.strip():
            continue
        collection, name, count = line.split("\t")
        try:
            did = rucio.get_did(scope, name)
            state, length = ("open" if did["open"] else "closed"), int(did.get("length") or 0)
        except DataIdentifierNotFound:
            rucio.add_dataset(scope, name, statuses={"monotonic": True})
            print(f"Added {scope}:{name}", file=sys.stderr)
            state, length = "open", 0
        if (scope, name) not in attached:
            attach.append({"scope": scope, "name": name})
        rows.append((collection, name, count, state, length))
    if attach:
        rucio.attach_dids(scope, container, attach)
        print(f"{len(attach)} dataset(s) attached to {args.container}", file=sys.stderr)
    for row in rows:
        print("\t".join(str(field) for field in row))
    return 0


def close(args):
    scope, name = did_of(args.dataset)
    rucio = client()
    files = sum(1 for _ in rucio.list_files(scope, name))
    if files < args.expect:
        print(f"error: {args.dataset} holds {files} file(s) for the {args.expect} dataset(s) of "
              f"{args.collection}: left open; run this script again and check the registration "
              "log", file=sys.stderr)
        return 1
    rucio.set_status(scope, name, open=False)
    print(f"{args.dataset} has been closed: {files} file(s)")
    return 0


def files(args):
    rucio = client()
    for text in args.datasets:
        scope, name = did_of(text)
        for f in sorted(rucio.list_files(scope, name), key=lambda f: f["name"]):
            print(f"{f['scope']}:{f['name']}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("open")
    sub.add_argument("--container", required=True)
    sub = commands.add_parser("close")
    sub.add_argument("--dataset", required=True)
    sub.add_argument("--expect", type=int, required=True)
    sub.add_argument("--collection", required=True)
    sub = commands.add_parser("files")
    sub.add_argument("datasets", nargs="*")
    args = parser.parse_args()
    from rucio.common.exception import RucioException

    try:
        return {"open": open_chunks, "close": close, "files": files}[args.command](args)
    except RucioException as exc:
        print(f"error: Rucio refused {args.command}: {type(exc).__name__}: "
              f"{str(exc).strip()[:500]}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
