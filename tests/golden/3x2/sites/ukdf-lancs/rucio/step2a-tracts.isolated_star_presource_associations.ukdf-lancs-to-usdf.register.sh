#!/usr/bin/env bash
# shellcheck disable=SC2016  # a '$' in a spec value is kept literally, on purpose
# Rucio registration of transfer step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf at ukdf-lancs of campaign 'drp-3x2'
# generated - do not edit: drpc 0.1.0 from 3x2.yaml
#
# Environment (the defaults are the campaign's values; override them to point elsewhere):
#   BUTLER_REPO: the Butler repository at ukdf-lancs (default: /cephfs/pool/rubin/repo/drp)
#   RUCIO_REGISTER_CONFIG: rucio-register config (empty: rucio-register.yaml beside this script) (default: empty)
#   RUCIO_REGISTER: the rucio-register command (lsst-rucio-register) (default: rucio-register)
#   RUCIO_ACCOUNT: Rucio account that owns the rules (empty: the account of your Rucio config) (default: empty)
#   BUTLER_PYTHON: a Python with lsst.daf.butler (the stack's), for the selection and the manifest (default: python3)
#   MANIFEST_DIR: where step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf.manifest.json is written (empty: beside this script) (default: empty)
#   DRY_RUN: 1 prints every command instead of running it (default: 0)
set -euo pipefail

if [ -z "${BUTLER_REPO+x}" ]; then BUTLER_REPO=/cephfs/pool/rubin/repo/drp; fi
if [ -z "${RUCIO_REGISTER_CONFIG+x}" ]; then RUCIO_REGISTER_CONFIG=''; fi
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
# Transfer step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf (gather, ukdf-lancs -> usdf):
#   isolated_star_presource_associations of the tracts ukdf-lancs owns.
# 1. Create the Rucio dataset drp:drp-3x2.step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf (monotonic) unless it exists.
# 2. Make the TAGGED collection HSC/runs/drp-3x2/DM-48353/outgoing/step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf hold exactly what goes
#    (`../butler/selection.py move step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf`): whole visits, never a tract cut.
# 3. Register every isolated_star_presource_associations of that collection into the Rucio dataset with
#    `rucio-register data-products --repo --collections --dataset-type --rucio-dataset`: the
#    options every release has (w.2025.30's `-d` is the Rucio dataset, later ones' the dataset
#    type, so only long options are used); `--limit 0` is added where the release has it
#    (later releases cap a query at 20000 results unless told otherwise).
#    The scope (drp) comes from the rucio-register config.
# 4. Write step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf.manifest.json (beside this script, or in MANIFEST_DIR): the selection's dataset
#    count, RUN collections and dataset ids, and how many files drp:drp-3x2.step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf holds;
#    exit 1 if it holds fewer files than the selection has datasets.
# Run it again at will: existing files are skipped. The rule was created by apply-rules.sh in
# the site setup (it replicates files as they are attached); next: wait-step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf.sh.
# Needs the rucio 41.5 noun-verb CLI (`rucio did|rule ...`; not the legacy `add-rule`/`rule-info` verbs), found on PATH, configured by RUCIO_CONFIG as usual.
# DRY_RUN=1 prints the commands and contacts neither Rucio nor the Butler.

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -z "$RUCIO_REGISTER_CONFIG" ]; then RUCIO_REGISTER_CONFIG="$HERE"/rucio-register.yaml; fi
if [ -z "$MANIFEST_DIR" ]; then MANIFEST_DIR="$HERE"; fi
# rucio-register prefers the environment variable RUCIO_REGISTER_CONFIG to its option: keep them equal.
export RUCIO_REGISTER_CONFIG
if [ -n "$RUCIO_ACCOUNT" ]; then export RUCIO_ACCOUNT; fi

DID=drp:drp-3x2.step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf
MANIFEST="$MANIFEST_DIR"/step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf.manifest.json
RUCIO=(rucio)
if [ -n "$RUCIO_ACCOUNT" ]; then RUCIO+=(--account "$RUCIO_ACCOUNT"); fi

step "create the Rucio dataset $DID"
if [ "$DRY_RUN" != 1 ] && "${RUCIO[@]}" did show "$DID" >/dev/null 2>&1; then
  printf '%s exists\n' "$DID"
else
  run "${RUCIO[@]}" did add --type dataset --monotonic "$DID"
fi

step "select what step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf sends into HSC/runs/drp-3x2/DM-48353/outgoing/step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf"
run "$BUTLER_PYTHON" "$HERE"/../butler/selection.py move step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf

step "register the isolated_star_presource_associations datasets of HSC/runs/drp-3x2/DM-48353/outgoing/step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf into $DID"
limit=()
if [ "$DRY_RUN" != 1 ] && "$RUCIO_REGISTER" data-products --help 2>/dev/null | grep -q -- '--limit'; then
  limit=(--limit 0)
fi
run "$RUCIO_REGISTER" data-products --repo "$BUTLER_REPO" \
  --rucio-register-config "$RUCIO_REGISTER_CONFIG" --rucio-dataset drp-3x2.step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf \
  --collections HSC/runs/drp-3x2/DM-48353/outgoing/step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf --dataset-type isolated_star_presource_associations \
  "${limit[@]}"

step "write the manifest $MANIFEST"
manifest_args=(--repo "$BUTLER_REPO" --dataset-type isolated_star_presource_associations
  --collections HSC/runs/drp-3x2/DM-48353/outgoing/step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf
  --transfer step2a-tracts.isolated_star_presource_associations.ukdf-lancs-to-usdf --rucio-did "$DID" --rucio-files - --output "$MANIFEST")
if [ "$DRY_RUN" = 1 ]; then
  run "${RUCIO[@]}" did content list --short "$DID"
  run "$BUTLER_PYTHON" "$HERE"/butler-manifest.py "${manifest_args[@]}"
else
  rucio_files="$("${RUCIO[@]}" did content list --short "$DID")"
  printf '%s\n' "$rucio_files" | "$BUTLER_PYTHON" "$HERE"/butler-manifest.py "${manifest_args[@]}"
fi
