#!/usr/bin/env bash
# shellcheck disable=SC2016  # a '$' in a spec value is kept literally, on purpose
# Rucio registration of transfer raw.usdf-to-ukdf-lancs at usdf of campaign 'drp-3x2'
# generated - do not edit: drpc 0.1.0 from 3x2.yaml
#
# Environment (the defaults are the campaign's values; override them to point elsewhere):
#   BUTLER_REPO: the Butler repository at usdf (default: /sdf/group/rubin/repo/drp)
#   RUCIO_REGISTER_RAW_CONFIG: rucio-register config (empty: rucio-register-raw.yaml beside this script) (default: empty)
#   RUCIO_REGISTER: the rucio-register command (lsst-rucio-register) (default: rucio-register)
#   RUCIO_ACCOUNT: Rucio account that owns the rules (empty: the account of your Rucio config) (default: empty)
#   BUTLER_PYTHON: a Python with lsst.daf.butler (the stack's), for the selection and the manifest (default: python3)
#   MANIFEST_DIR: where raw.usdf-to-ukdf-lancs.manifest.json is written (empty: beside this script) (default: empty)
#   DRY_RUN: 1 prints every command instead of running it (default: 0)
set -euo pipefail

if [ -z "${BUTLER_REPO+x}" ]; then BUTLER_REPO=/sdf/group/rubin/repo/drp; fi
if [ -z "${RUCIO_REGISTER_RAW_CONFIG+x}" ]; then RUCIO_REGISTER_RAW_CONFIG=''; fi
if [ -z "${RUCIO_REGISTER+x}" ]; then RUCIO_REGISTER=rucio-register; fi
if [ -z "${RUCIO_ACCOUNT+x}" ]; then RUCIO_ACCOUNT=''; fi
if [ -z "${BUTLER_PYTHON+x}" ]; then BUTLER_PYTHON=python3; fi
if [ -z "${MANIFEST_DIR+x}" ]; then MANIFEST_DIR=''; fi
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
# Transfer raw.usdf-to-ukdf-lancs (raw, usdf -> ukdf-lancs):
#   every raw of the visits overlapping ukdf-lancs's 2 tract(s), whole visits.
# 1. Create the Rucio dataset drp:drp-3x2.raw.usdf-to-ukdf-lancs (monotonic) unless it exists.
# 2. Make the TAGGED collection HSC/raw/drp-3x2/ukdf-lancs hold exactly what goes
#    (`../butler/selection.py raws ukdf-lancs`): whole visits, never a tract cut.
# 3. Register every raw of that collection into the Rucio dataset with
#    rucio-register's own library (RucioInterface, as `rucio-register raws` does, with the raw
#    file type ctrl_ingestd ingests as raws): register-raws.py beside this script. Its `raws`
#    command cannot be used: lsst-rucio-register 30.2026.4300 (PyPI) dies in it with
#    KeyError: 'backoff-factor'; the library call works with w.2025.30's release and that one.
#    The scope (drp) comes from the rucio-register config.
# 4. Write raw.usdf-to-ukdf-lancs.manifest.json (beside this script, or in MANIFEST_DIR): the selection's dataset
#    count, RUN collections and dataset ids, and how many files drp:drp-3x2.raw.usdf-to-ukdf-lancs holds;
#    exit 1 if it holds fewer files than the selection has datasets.
# Run it again at will: existing files are skipped. The rule was created by apply-rules.sh in
# the site setup (it replicates files as they are attached); next: wait-raw.usdf-to-ukdf-lancs.sh.
# Needs the rucio 41.5 noun-verb CLI (`rucio did|rule ...`; not the legacy `add-rule`/`rule-info` verbs), found on PATH, configured by RUCIO_CONFIG as usual.
# DRY_RUN=1 prints the commands and contacts neither Rucio nor the Butler.

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -z "$RUCIO_REGISTER_RAW_CONFIG" ]; then RUCIO_REGISTER_RAW_CONFIG="$HERE"/rucio-register-raw.yaml; fi
if [ -z "$MANIFEST_DIR" ]; then MANIFEST_DIR="$HERE"; fi
# rucio-register prefers the environment variable RUCIO_REGISTER_CONFIG to its option: keep them equal.
export RUCIO_REGISTER_CONFIG="$RUCIO_REGISTER_RAW_CONFIG"
if [ -n "$RUCIO_ACCOUNT" ]; then export RUCIO_ACCOUNT; fi

DID=drp:drp-3x2.raw.usdf-to-ukdf-lancs
MANIFEST="$MANIFEST_DIR"/raw.usdf-to-ukdf-lancs.manifest.json
RUCIO=(rucio)
if [ -n "$RUCIO_ACCOUNT" ]; then RUCIO+=(--account "$RUCIO_ACCOUNT"); fi

step "create the Rucio dataset $DID"
if [ "$DRY_RUN" != 1 ] && "${RUCIO[@]}" did show "$DID" >/dev/null 2>&1; then
  printf '%s exists\n' "$DID"
else
  run "${RUCIO[@]}" did add --type dataset --monotonic "$DID"
fi

step "select what raw.usdf-to-ukdf-lancs sends into HSC/raw/drp-3x2/ukdf-lancs"
run "$BUTLER_PYTHON" "$HERE"/../butler/selection.py raws ukdf-lancs

step "register the raw datasets of HSC/raw/drp-3x2/ukdf-lancs into $DID"
run "$BUTLER_PYTHON" "$HERE"/register-raws.py --repo "$BUTLER_REPO" \
  --rucio-register-config "$RUCIO_REGISTER_CONFIG" --rucio-dataset drp-3x2.raw.usdf-to-ukdf-lancs \
  --collections HSC/raw/drp-3x2/ukdf-lancs

step "write the manifest $MANIFEST"
manifest_args=(--repo "$BUTLER_REPO" --dataset-type raw
  --collections HSC/raw/drp-3x2/ukdf-lancs
  --transfer raw.usdf-to-ukdf-lancs --rucio-did "$DID" --rucio-files - --output "$MANIFEST")
if [ "$DRY_RUN" = 1 ]; then
  run "${RUCIO[@]}" did content list --short "$DID"
  run "$BUTLER_PYTHON" "$HERE"/butler-manifest.py "${manifest_args[@]}"
else
  rucio_files="$("${RUCIO[@]}" did content list --short "$DID")"
  printf '%s\n' "$rucio_files" | "$BUTLER_PYTHON" "$HERE"/butler-manifest.py "${manifest_args[@]}"
fi
