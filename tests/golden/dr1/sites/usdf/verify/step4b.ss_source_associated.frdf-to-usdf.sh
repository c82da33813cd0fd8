#!/usr/bin/env bash
# shellcheck disable=SC2016  # a '$' in a spec value is kept literally, on purpose
# arrival check of transfer step4b.ss_source_associated.frdf-to-usdf at usdf of campaign 'dr1'
# generated - do not edit: drpc 0.1.0 from dr1.yaml
#
# Environment (the defaults are the campaign's values; override them to point elsewhere):
#   BUTLER_REPO: the Butler repository at usdf (default: /sdf/group/rubin/repo/drp)
#   BUTLER_PYTHON: a Python with lsst.daf.butler and the Rucio client (the stack's) (default: python3)
#   RUCIO_ACCOUNT: Rucio account to read with (empty: the account of your Rucio config) (default: empty)
#   ALLOW_EMPTY: 1 accepts a transfer that sent nothing (default: 0)
#   DRY_RUN: 1 prints every command instead of running it (default: 0)
set -euo pipefail

if [ -z "${BUTLER_REPO+x}" ]; then BUTLER_REPO=/sdf/group/rubin/repo/drp; fi
if [ -z "${BUTLER_PYTHON+x}" ]; then BUTLER_PYTHON=python3; fi
if [ -z "${RUCIO_ACCOUNT+x}" ]; then RUCIO_ACCOUNT=''; fi
if [ -z "${ALLOW_EMPTY+x}" ]; then ALLOW_EMPTY=0; fi
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
# Transfer step4b.ss_source_associated.frdf-to-usdf (gather, frdf -> usdf):
#   ss_source_associated of the tracts frdf owns.
# What was sent is the files of the datasets of the Rucio container drp:dr1.step4b.ss_source_associated.frdf-to-usdf (what
# the rule replicates: the same list at every site, nothing to copy), listed once by
# butler-arrived.py with the Rucio client (as `rucio did content list` of the container, then
# of its datasets, would; RUCIO_CONFIG as for the CLI). Each of those files must have arrived
# and been ingested here as a ss_source_associated dataset in a RUN collection matching
#   LSSTCam/runs/DR1/step4b/*
# (ctrl_ingestd keeps the RUN a dataset had at its source); see butler-arrived.py. Exit 1, listing
# every missing file, until all have; an empty dataset is an error unless ALLOW_EMPTY=1.
# Then the arrived RUN collections not yet in the CHAINED collection
#   LSSTCam/runs/DR1/incoming/step4c
# are appended to it by butler-arrived.py, in the Python that compared (as `butler
# collection-chain --mode extend` would, creating it if needed); running again adds nothing.

# DRY_RUN=1 still reads Rucio and the Butler, and prints the collection-chain command a run would make instead.

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DID=drp:dr1.step4b.ss_source_associated.frdf-to-usdf
INCOMING=LSSTCam/runs/DR1/incoming/step4c
CHECK=(--repo "$BUTLER_REPO" --dataset-type ss_source_associated
  --collections 'LSSTCam/runs/DR1/step4b/*' --rucio-did "$DID"
  --sent-from-rucio --rucio-account "$RUCIO_ACCOUNT")
CHECK+=(--chain "$INCOMING")
if [ "$DRY_RUN" = 1 ]; then CHECK+=(--dry-run); fi
if [ "$ALLOW_EMPTY" = 1 ]; then CHECK+=(--allow-empty); fi

step "list what $DID sent, compare with ss_source_associated in $BUTLER_REPO, then chain the arrived RUN collections into $INCOMING"
"$BUTLER_PYTHON" "$HERE"/butler-arrived.py "${CHECK[@]}"
printf '%s: verified\n' step4b.ss_source_associated.frdf-to-usdf
