#!/usr/bin/env bash
# shellcheck disable=SC2016  # a '$' in a spec value is kept literally, on purpose
# Rucio registration of transfer step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf at ukdf-lancs of campaign 'drp-3x2'
# generated - do not edit: drpc 0.1.0 from 3x2.yaml
#
# Environment (the defaults are the campaign's values; override them to point elsewhere):
#   BUTLER_REPO: the Butler repository at ukdf-lancs (default: /cephfs/pool/rubin/repo/drp)
#   RUCIO_REGISTER_CONFIG: rucio-register config (empty: rucio-register.yaml beside this script) (default: empty)
#   RUCIO_REGISTER: the rucio-register command (lsst-rucio-register) (default: rucio-register)
#   RUCIO_ACCOUNT: Rucio account that owns the rules (empty: the account of your Rucio config) (default: empty)
#   BUTLER_PYTHON: a Python with lsst.daf.butler and the Rucio client (the stack's), for the selection, the Rucio datasets and the manifest (default: python3)
#   MANIFEST_DIR: where step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf.manifest.json and step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf.selection.json are written (empty: beside this script) (default: empty)
#   DATASET_FILE_LIMIT: most files per Rucio dataset of the container (new chunks only) (default: 100000)
#   RUCIO_REGISTER_LIMIT: yes or no: whether rucio-register data-products takes --limit (then given 0, no limit); empty: ask its --help once, which costs a stack start-up per move (default: empty)
#   DRY_RUN: 1 prints every command instead of running it (default: 0)
set -euo pipefail

if [ -z "${BUTLER_REPO+x}" ]; then BUTLER_REPO=/cephfs/pool/rubin/repo/drp; fi
if [ -z "${RUCIO_REGISTER_CONFIG+x}" ]; then RUCIO_REGISTER_CONFIG=''; fi
if [ -z "${RUCIO_REGISTER+x}" ]; then RUCIO_REGISTER=rucio-register; fi
if [ -z "${RUCIO_ACCOUNT+x}" ]; then RUCIO_ACCOUNT=''; fi
if [ -z "${BUTLER_PYTHON+x}" ]; then BUTLER_PYTHON=python3; fi
if [ -z "${MANIFEST_DIR+x}" ]; then MANIFEST_DIR=''; fi
if [ -z "${DATASET_FILE_LIMIT+x}" ]; then DATASET_FILE_LIMIT=100000; fi
if [ -z "${RUCIO_REGISTER_LIMIT+x}" ]; then RUCIO_REGISTER_LIMIT=''; fi
DRY_RUN="${DRY_RUN:-0}"
CURRENT_STEP="start"

# Print the exact command (shell-quoted) under DRY_RUN=1, run it otherwise.
run() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '%q ' "$@" | sed 's/ $//'
    printf '\n'
  else
    "$@"
  fi
}

step() {
  CURRENT_STEP="$1"
  printf '==> %s\n' "$1" >&2
}

on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    printf '%s: FAILED at step "%s" (exit %s)\n' "$(basename "$0")" "$CURRENT_STEP" "$rc" >&2
  fi
}
trap on_exit EXIT

#
# Transfer step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf (gather, ukdf-lancs -> usdf):
#   deepCoadd_exposure_time_map_sum of the tracts ukdf-lancs owns.
# 1. Make the TAGGED collection HSC/runs/drp-3x2/DM-48353/outgoing/step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf hold exactly what goes
#    (`../butler/selection.py move step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf`): whole visits, never a tract cut;
# 2. and, in the same Python (the stack starts once), split it into TAGGED chunks
#    `<selection>/<NNNN>` of at most 100000 datasets (DATASET_FILE_LIMIT; the spec's
#    sites.ukdf-lancs.rucio.dataset_file_limit), one per Rucio dataset
#    drp:drp-3x2.step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf.<NNNN> of the container, and write what the selection
#    holds to step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf.selection.json beside the manifest: a chunk never changes once made, so a second
#    run makes no new one for the same selection.
# 3. Create the Rucio container drp:drp-3x2.step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf unless it exists (the DID its rule
#    replicates, made by apply-rules.sh too), each chunk's dataset (monotonic) unless it exists,
#    and attach to the container those not attached yet: `rucio-datasets.py open`, one Python
#    with the Rucio client for all of them.
# 4. For each chunk whose Rucio dataset is still open: register every deepCoadd_exposure_time_map_sum of the chunk into it with
#    `rucio-register data-products --repo --collections --dataset-type --rucio-dataset`: the
#    options every release has (w.2025.30's `-d` is the Rucio dataset, later ones' the dataset
#    type, so only long options are used); `--limit 0` is added where the release has it
#    (later releases cap a query at 20000 results unless told otherwise),
#    check that it holds a file for each dataset of the chunk, and close it (`rucio-datasets.py
#    close`): Rucio then keeps its file count and size, which wait-step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf.sh reads
#    instead of listing files. A closed dataset is complete and is skipped by a second run.
#    The scope (drp) comes from the rucio-register config.
# 5. Write step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf.manifest.json (beside this script, or in MANIFEST_DIR) with butler-manifest.py
#    (standard library only): the selection's dataset count, RUN collections and dataset ids
#    (from step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf.selection.json), and how many files the container's datasets hold (`rucio-datasets.py
#    files`); exit 1 if they hold fewer files than the selection has datasets.
# Run it again at will: a re-run adds only what is missing, never a file twice. The rule was
# created by apply-rules.sh in the site setup (it replicates the files as they are attached);
# next: wait-step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf.sh.
# Rucio is reached through the Rucio client library of BUTLER_PYTHON (the stack's, as
# rucio-register's), configured by RUCIO_CONFIG and RUCIO_ACCOUNT as the `rucio` CLI is.
# DRY_RUN=1 prints the commands and contacts neither Rucio nor the Butler.

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -z "$RUCIO_REGISTER_CONFIG" ]; then RUCIO_REGISTER_CONFIG="$HERE"/rucio-register.yaml; fi
if [ -z "$MANIFEST_DIR" ]; then MANIFEST_DIR="$HERE"; fi
# rucio-register prefers the environment variable RUCIO_REGISTER_CONFIG to its option: keep them equal.
export RUCIO_REGISTER_CONFIG
if [ -n "$RUCIO_ACCOUNT" ]; then export RUCIO_ACCOUNT; fi

SCOPE=drp
DID=drp:drp-3x2.step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf
SELECTION=HSC/runs/drp-3x2/DM-48353/outgoing/step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf
MANIFEST="$MANIFEST_DIR"/step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf.manifest.json
SUMMARY="$MANIFEST_DIR"/step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf.selection.json
if ! [[ "$DATASET_FILE_LIMIT" =~ ^[1-9][0-9]*$ ]]; then
  printf 'error: DATASET_FILE_LIMIT must be a positive number of files, not "%s"\n' "$DATASET_FILE_LIMIT" >&2
  exit 2
fi
case "$RUCIO_REGISTER_LIMIT" in
  yes | no | "") ;;
  *)
    printf 'error: RUCIO_REGISTER_LIMIT must be yes, no or empty, not "%s"\n' "$RUCIO_REGISTER_LIMIT" >&2
    exit 2
    ;;
esac
step "select what step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf sends into $SELECTION, split it into chunks of at most $DATASET_FILE_LIMIT"
select_args=(move step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf --split "$DATASET_FILE_LIMIT" --rucio-base drp-3x2.step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf
  --summary "$SUMMARY")
if [ "$DRY_RUN" = 1 ]; then
  run "$BUTLER_PYTHON" "$HERE"/../butler/selection.py "${select_args[@]}"
  CHUNKS="$SELECTION/0001"$'\t'drp-3x2.step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf.0001$'\t'1
else
  CHUNKS="$("$BUTLER_PYTHON" "$HERE"/../butler/selection.py "${select_args[@]}")"
fi

step "create the Rucio container $DID and the datasets of the chunks"
if [ "$DRY_RUN" = 1 ]; then
  run "$BUTLER_PYTHON" "$HERE"/rucio-datasets.py open --container "$DID"
  printf 'with the chunk lines on stdin; then, for each chunk (here the first):\n' >&2
  STATES="$CHUNKS"$'\t'open$'\t'0
else
  STATES="$(printf '%s\n' "$CHUNKS" | "$BUTLER_PYTHON" "$HERE"/rucio-datasets.py open --container "$DID")"
fi
limit=()
limit_known=0

DATASETS=()
N_DATASETS=0
while IFS=$'\t' read -r collection name count state length; do
  if [ -z "$collection" ]; then continue; fi
  dataset="$SCOPE:$name"
  DATASETS+=("$dataset")
  N_DATASETS=$((N_DATASETS + 1))
  step "register the deepCoadd_exposure_time_map_sum datasets of $collection into $dataset"
  if [ "$state" = closed ]; then
    printf '%s is closed: %s file(s), registered before\n' "$dataset" "$length"
    continue
  fi
  if [ "$limit_known" = 0 ]; then
    if [ "$RUCIO_REGISTER_LIMIT" = yes ]; then
      limit=(--limit 0)
    elif [ -z "$RUCIO_REGISTER_LIMIT" ] && [ "$DRY_RUN" != 1 ] &&
      "$RUCIO_REGISTER" data-products --help 2>/dev/null | grep -q -- '--limit'; then
      limit=(--limit 0)
    fi
  fi
  limit_known=1
  run "$RUCIO_REGISTER" data-products --repo "$BUTLER_REPO" \
    --rucio-register-config "$RUCIO_REGISTER_CONFIG" --rucio-dataset "$name" \
    --collections "$collection" --dataset-type deepCoadd_exposure_time_map_sum "${limit[@]}"
  run "$BUTLER_PYTHON" "$HERE"/rucio-datasets.py close --dataset "$dataset" \
    --expect "$count" --collection "$collection"
done <<<"$STATES"

step "write the manifest $MANIFEST"
manifest_args=(--selection-summary "$SUMMARY" --transfer step3.deepCoadd_exposure_time_map_sum.ukdf-lancs-to-usdf --rucio-did "$DID"
  --rucio-datasets "$N_DATASETS" --rucio-files - --output "$MANIFEST")
if [ "$DRY_RUN" = 1 ]; then
  run "$BUTLER_PYTHON" "$HERE"/rucio-datasets.py files "${DATASETS[@]}"
  run "$BUTLER_PYTHON" "$HERE"/butler-manifest.py "${manifest_args[@]}"
else
  rucio_files="$("$BUTLER_PYTHON" "$HERE"/rucio-datasets.py files "${DATASETS[@]}")"
  printf '%s\n' "$rucio_files" | "$BUTLER_PYTHON" "$HERE"/butler-manifest.py "${manifest_args[@]}"
fi
