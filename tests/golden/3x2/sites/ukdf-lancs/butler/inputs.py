# Inputs and defaults chain at ukdf-lancs of campaign 'drp-3x2'
# generated - do not edit: drpc 0.1.0 from 3x2.yaml
#
# What every site needs before stage 1 and that it cannot make itself: the certified
# calibrations (with their validity ranges), the reference catalogs and the ancillary inputs
# of the central site (CONTRACT section 1 `inputs:`), then the defaults chain over all of it.
#
# At ukdf-lancs, once the inputs and their manifest arrived (verify/inputs.*.sh passed):
# certifies every arrived calibration into the CALIBRATION collection of the same name with the
# validity range the manifest gives it, makes each refcat and ancillary collection of the same
# name (the arrived RUN collection itself, or a CHAINED collection over the arrived RUNs), and
# checks that every dataset the manifest lists is here.
# Then the defaults chain HSC/defaults over HSC/calib/RC2/DM-48353, HSC/calib, refcats, skymaps, HSC/fgcmcal/lut/RC2/DM-48353.
#
# Each step compares what the repository holds with what it should hold and changes only the
# difference: a second run reports "0 changes". A collection of the wrong type, a calibration
# certified with another validity range, or a manifest that differs from the one already
# written is an error, never silently skipped.
#
# Runs with a Python that has lsst.daf.butler (BUTLER_PYTHON: the stack's). Environment:
#   BUTLER_REPO   the repository (default /cephfs/pool/rubin/repo/drp)
#   DRY_RUN=1     compare and print what would change; change nothing
"""Check, install and chain the campaign's inputs at this site (see the header)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from typing import Any

PLAN: dict[str, Any] = json.loads("{\"campaign\": \"drp-3x2\", \"central\": false, \"defaults\": {\"children\": [\"HSC/calib/RC2/DM-48353\", \"HSC/calib\", \"refcats\", \"skymaps\", \"HSC/fgcmcal/lut/RC2/DM-48353\"], \"name\": \"HSC/defaults\"}, \"inputs\": [{\"collection\": \"HSC/calib/RC2/DM-48353\", \"kind\": \"calibrations\", \"position\": \"inputs.calibrations\", \"types\": [{\"listed\": false, \"storage_class\": \"Camera\", \"type\": \"camera\"}, {\"listed\": false, \"storage_class\": \"ExposureF\", \"type\": \"bias\"}, {\"listed\": false, \"storage_class\": \"ExposureF\", \"type\": \"dark\"}, {\"listed\": false, \"storage_class\": \"ExposureF\", \"type\": \"flat\"}, {\"listed\": false, \"storage_class\": \"Defects\", \"type\": \"defects\"}, {\"listed\": false, \"storage_class\": \"ExposureF\", \"type\": \"fringe\"}, {\"listed\": false, \"storage_class\": \"ExposureF\", \"type\": \"sky\"}, {\"listed\": false, \"storage_class\": \"NumpyArray\", \"type\": \"bfKernel\"}, {\"listed\": false, \"storage_class\": \"StrayLightData\", \"type\": \"yBackground\"}, {\"listed\": false, \"storage_class\": \"TransmissionCurve\", \"type\": \"transmission_optics\"}, {\"listed\": false, \"storage_class\": \"TransmissionCurve\", \"type\": \"transmission_sensor\"}, {\"listed\": false, \"storage_class\": \"TransmissionCurve\", \"type\": \"transmission_filter\"}, {\"listed\": false, \"storage_class\": \"TransmissionCurve\", \"type\": \"transmission_atmosphere\"}]}, {\"collection\": \"refcats\", \"kind\": \"refcats\", \"position\": \"inputs.refcats[0]\", \"types\": [{\"listed\": true, \"storage_class\": \"SimpleCatalog\", \"type\": \"ps1_pv3_3pi_20170110\"}, {\"listed\": true, \"storage_class\": \"SimpleCatalog\", \"type\": \"gaia_dr3_20230707\"}]}, {\"collection\": \"HSC/fgcmcal/lut/RC2/DM-48353\", \"kind\": \"ancillary\", \"position\": \"inputs.ancillary[0]\", \"types\": [{\"listed\": true, \"storage_class\": \"Catalog\", \"type\": \"fgcmLookUpTable\"}]}], \"instrument\": \"HSC\", \"manifest\": {\"dimensions\": [\"instrument\"], \"move\": \"inputs.drpc_inputs_manifest.usdf-to-ukdf-lancs\", \"run\": \"HSC/runs/drp-3x2/DM-48353/inputs/manifest\", \"storage_class\": \"StructuredDataDict\", \"type\": \"drpc_inputs_manifest\"}, \"repo\": \"/cephfs/pool/rubin/repo/drp\", \"site\": \"ukdf-lancs\"}")
MAX_LISTED = 20


class Problem(Exception):
    """A state of the repository this script will not change by itself."""


class Inputs:
    def __init__(self, repo: str, dry_run: bool) -> None:
        from lsst.daf.butler import Butler

        self.dry_run = dry_run
        self.butler = Butler.from_config(repo, writeable=not dry_run)
        self.changes = 0
        self.made: set[str] = set()  # collections this run makes (or, DRY_RUN=1, would make)

    def change(self, what: str) -> None:
        self.changes += 1
        print(f"  {'would ' if self.dry_run else ''}{what}")

    def collection_type(self, name: str) -> Any:
        from lsst.daf.butler import MissingCollectionError

        try:
            return self.butler.collections.get_info(name).type
        except MissingCollectionError:
            return None

    def refs(self, dataset_type: str, collection: str, find_first: bool) -> list[Any]:
        from lsst.daf.butler import MissingCollectionError, MissingDatasetTypeError

        try:
            return list(self.butler.query_datasets(dataset_type, collections=collection,
                                                   find_first=find_first, limit=None,
                                                   explain=False))
        except (MissingDatasetTypeError, MissingCollectionError):
            return []

    def associations(self, dataset_type: str, collection: str) -> list[Any]:
        """(ref, timespan) of every dataset certified in (or chained under) `collection`."""
        from lsst.daf.butler import MissingCollectionError, MissingDatasetTypeError

        try:
            return list(self.butler.registry.queryDatasetAssociations(
                dataset_type, collections=collection, flattenChains=True))
        except (MissingDatasetTypeError, MissingCollectionError):
            return []

    # -- central site ---------------------------------------------------------------------------
    def check_types(self, input_set: dict[str, Any]) -> list[dict[str, Any]]:
        """The input's types as this repository has them; a listed type it lacks is a problem."""
        from lsst.daf.butler import MissingDatasetTypeError

        name = input_set["collection"]
        if self.collection_type(name) is None:
            raise Problem(f"{input_set['position']}: collection {name} does not exist in this "
                          "repository; the central site sends it to every other site")
        present = []
        for t in input_set["types"]:
            try:
                registered = self.butler.get_dataset_type(t["type"])
            except MissingDatasetTypeError:
                registered = None
            if registered is not None and registered.storageClass_name != t["storage_class"]:
                raise Problem(f"{input_set['position']}: {t['type']} is registered here with "
                              f"storage class {registered.storageClass_name}, the campaign "
                              f"registers it elsewhere as {t['storage_class']}: fix the type's "
                              "storage_class in the spec")
            found = self.sent_refs(input_set, t["type"]) if registered is not None else []
            if found:
                print(f"  {name}: {len(found)} {t['type']} to send")
                present.append(t)
            elif t["listed"]:
                raise Problem(f"{input_set['position']}: {name} holds no {t['type']}; remove it "
                              "from the input's types or fix the collection")
            else:
                print(f"  {name}: no {t['type']} (one of the instrument's usual calibrations); "
                      "nothing of it is sent")
        return present

    def sent_refs(self, input_set: dict[str, Any], dataset_type: str) -> list[Any]:
        if input_set["kind"] == "calibrations":
            return [a.ref for a in self.associations(dataset_type, input_set["collection"])]
        return self.refs(dataset_type, input_set["collection"], True)

    def manifest(self) -> dict[str, Any]:
        """What the central site sends: each input's RUN collections and counts, and the
        validity range of every calibration (Timespan as TAI nanoseconds [begin, end))."""
        content: dict[str, Any] = {"campaign": PLAN["campaign"], "inputs": []}
        for input_set in PLAN["inputs"]:
            entry: dict[str, Any] = {"kind": input_set["kind"],
                                     "collection": input_set["collection"], "types": {}}
            for t in self.check_types(input_set):
                if input_set["kind"] == "calibrations":
                    found = self.associations(t["type"], input_set["collection"])
                    rows = sorted([str(a.ref.id), a.ref.run,
                                   (a.timespan.model_dump(mode="json")
                                    if a.timespan is not None else None)] for a in found)
                else:
                    rows = sorted([str(r.id), r.run, None]
                                  for r in self.refs(t["type"], input_set["collection"], True))
                entry["types"][t["type"]] = rows
            content["inputs"].append(entry)
        return content

    def write_manifest(self) -> None:
        from lsst.daf.butler import DatasetType

        spec = PLAN["manifest"]
        content = self.manifest()
        run = spec["run"]
        dataset_type = DatasetType(spec["type"], spec["dimensions"], spec["storage_class"],
                                   universe=self.butler.dimensions)
        existing = self.refs(spec["type"], run, True) if self.collection_type(run) else []
        if existing:
            if self.butler.get(existing[0]) == content:
                print(f"  manifest in {run}: unchanged")
                return
            raise Problem(f"the inputs changed since their manifest was written to {run} (and "
                          "perhaps sent): remove it (butler remove-runs REPO "
                          f"{run}), run this again, then the inputs' register scripts")
        self.change(f"write the inputs' manifest into {run}")
        if not self.dry_run:
            self.butler.registry.registerDatasetType(dataset_type)
            self.butler.collections.register(run)
            self.butler.put(content, dataset_type, run=run, instrument=PLAN["instrument"])

    # -- other sites ----------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any]:
        spec = PLAN["manifest"]
        refs = self.refs(spec["type"], spec["run"], True)
        if not refs:
            raise Problem(f"the inputs' manifest ({spec['type']} in {spec['run']}) has not "
                          f"arrived: run verify/{spec['move']}.sh first")
        return dict(self.butler.get(refs[0]))

    def arrived(self, ids: Iterable[str]) -> dict[str, Any]:
        """The refs of these dataset ids that this repository holds."""
        import uuid

        found: dict[str, Any] = {}
        for key in ids:
            ref = self.butler.get_dataset(uuid.UUID(key))
            if ref is not None:
                found[key] = ref
        return found

    def install(self, manifest: dict[str, Any]) -> None:
        sent = {(e["kind"], e["collection"]): e for e in manifest["inputs"]}
        for input_set in PLAN["inputs"]:
            entry = sent.get((input_set["kind"], input_set["collection"]))
            if entry is None:
                raise Problem(f"{input_set['position']}: the manifest of the central site has no "
                              f"{input_set['collection']}: run butler/inputs.py there, then the "
                              "inputs' moves again")
            rows = [row for t in input_set["types"] for row in entry["types"].get(t["type"], [])]
            refs = self.arrived(row[0] for row in rows)
            missing = [row for row in rows if row[0] not in refs]
            if missing:
                listed = ", ".join(f"{row[1]}:{row[0]}" for row in missing[:MAX_LISTED])
                raise Problem(f"{input_set['collection']}: {len(missing)} of {len(rows)} sent "
                              f"dataset(s) are not in this repository ({listed}"
                              f"{', ...' if len(missing) > MAX_LISTED else ''}): wait for the "
                              "inputs' verify scripts")
            if input_set["kind"] == "calibrations":
                self.certify(input_set["collection"], rows, refs)
            else:
                self.chain(input_set["collection"], sorted({row[1] for row in rows}))
            print(f"  {input_set['collection']}: {len(rows)} dataset(s) here")

    def certify(self, collection: str, rows: list[list[Any]], refs: dict[str, Any]) -> None:
        from lsst.daf.butler import CollectionType, Timespan

        kind = self.collection_type(collection)
        if kind is not None and kind != CollectionType.CALIBRATION:
            raise Problem(f"{collection} exists here as a {kind.name} collection; the sent "
                          "calibrations are certified into a CALIBRATION collection of that name")
        done: set[tuple[str, Any]] = set()
        if kind is not None:
            for dataset_type in sorted({refs[row[0]].datasetType.name for row in rows}):
                for a in self.associations(dataset_type, collection):
                    span = a.timespan.model_dump(mode="json") if a.timespan is not None else None
                    done.add((str(a.ref.id), json.dumps(span)))
        todo: dict[str, list[Any]] = {}
        for key, _run, span in rows:
            if (key, json.dumps(span)) not in done:
                todo.setdefault(json.dumps(span), []).append(refs[key])
        if kind is None:
            self.change(f"create the CALIBRATION collection {collection}")
            self.made.add(collection)
            if not self.dry_run:
                self.butler.collections.register(collection, CollectionType.CALIBRATION)
        for span, group in sorted(todo.items()):
            value = json.loads(span)
            timespan = Timespan.model_validate(value) if value is not None else Timespan(None, None)
            self.change(f"certify {len(group)} dataset(s) into {collection} for {timespan}")
            if not self.dry_run:
                try:
                    self.butler.registry.certify(collection, group, timespan)
                except Exception as exc:  # ConflictingDefinitionError and kin: say which
                    raise Problem(f"{collection}: cannot certify {len(group)} dataset(s) for "
                                  f"{timespan}: {exc}") from exc

    def chain(self, collection: str, runs: list[str]) -> None:
        """The input collection as at the central site: its RUN, or a chain over its RUNs."""
        from lsst.daf.butler import CollectionType

        if runs == [collection]:
            return  # it arrived as the RUN collection of that name
        kind = self.collection_type(collection)
        if kind is None:
            self.change(f"create the CHAINED collection {collection} over {', '.join(runs)}")
            self.made.add(collection)
            if not self.dry_run:
                self.butler.collections.register(collection, CollectionType.CHAINED)
                self.butler.collections.redefine_chain(collection, runs)
            return
        if kind != CollectionType.CHAINED:
            raise Problem(f"{collection} exists here as a {kind.name} collection; the arrived "
                          f"RUN collections {', '.join(runs)} cannot be chained into it")
        children = list(self.butler.collections.get_info(collection).children)
        new = [run for run in runs if run not in children]
        if new:
            self.change(f"chain {', '.join(new)} into {collection}")
            if not self.dry_run:
                self.butler.collections.extend_chain(collection, new)

    # -- every site -----------------------------------------------------------------------------
    def defaults_chain(self) -> None:
        from lsst.daf.butler import CollectionType

        name, children = PLAN["defaults"]["name"], PLAN["defaults"]["children"]
        missing = [child for child in children
                   if child not in self.made and self.collection_type(child) is None]
        if missing:
            raise Problem(f"defaults chain {name}: {', '.join(missing)} do(es) not exist here "
                          "yet; run butler/setup-repo.sh (and, at a destination, wait for the "
                          "inputs) first")
        kind = self.collection_type(name)
        if kind is None:
            self.change(f"create the defaults chain {name} over {', '.join(children)}")
            if not self.dry_run:
                self.butler.collections.register(name, CollectionType.CHAINED)
                self.butler.collections.redefine_chain(name, children)
            return
        if kind != CollectionType.CHAINED:
            raise Problem(f"defaults chain {name} exists here as a {kind.name} collection")
        found = list(self.butler.collections.get_info(name).children)
        if found != children:
            raise Problem(f"defaults chain {name} holds [{', '.join(found)}], the campaign needs "
                          f"[{', '.join(children)}]: fix it (butler collection-chain --mode "
                          f"redefine REPO {name} {' '.join(children)}) or name another defaults "
                          "collection in the spec (butler.defaults_collection)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", default=os.environ.get("BUTLER_REPO") or PLAN["repo"])
    args = parser.parse_args(argv)
    dry_run = os.environ.get("DRY_RUN") == "1"
    inputs = Inputs(args.repo, dry_run)
    try:
        if PLAN["inputs"]:
            if PLAN["central"]:
                print(f"inputs sent from {PLAN['site']}:")
                inputs.write_manifest()
            else:
                print(f"inputs arrived at {PLAN['site']}:")
                inputs.install(inputs.read_manifest())
        inputs.defaults_chain()
    except Problem as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    verb = "would change" if dry_run else "changed"
    print(f"{PLAN['site']}: inputs and defaults chain; {verb}: {inputs.changes}"
          f"{'' if inputs.changes else ' - 0 changes'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
