#!/usr/bin/env bash
# shellcheck disable=SC2016  # a '$' in a spec value is kept literally, on purpose
# Rucio replication rules of the transfers leaving frdf of campaign 'dr1'
# generated - do not edit: drpc 0.1.0 from dr1.yaml
#
# Environment (the defaults are the campaign's values; override them to point elsewhere):
#   RUCIO_ACCOUNT: Rucio account that owns the rules (empty: the rule's `account` in its rules.json, else the account of your Rucio config) (default: empty)
#   BUTLER_PYTHON: a Python with the Rucio client (the stack's), to read the rules' JSON and apply them (default: python3)
#   RULES_DIR: where the <transfer>.rules.json files are (empty: beside this script) (default: empty)
#   DRY_RUN: 1 prints every command instead of running it (default: 0)
set -euo pipefail

if [ -z "${RUCIO_ACCOUNT+x}" ]; then RUCIO_ACCOUNT=''; fi
if [ -z "${BUTLER_PYTHON+x}" ]; then BUTLER_PYTHON=python3; fi
if [ -z "${RULES_DIR+x}" ]; then RULES_DIR=''; fi
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
# Usage: apply-rules.sh [TRANSFER_ID...]   (default: every transfer leaving frdf)
# Each rule is read from <transfer>.rules.json beside this script (or in RULES_DIR), its one
# source: a list of rules in Rucio's `rule` schema; a key `rucio rule add` cannot set is an
# error, never skipped. For each DID of each rule of each transfer:
#   1. create the container unless it exists (the register script fills it with datasets of
#      at most the site's dataset_file_limit files each);
#   2. create the rule unless a rule of the same account on the same DID with the same RSE
#      expression exists (what Rucio itself calls a duplicate), and print
#      `<transfer id>: <DID> rule <rule id> (created|exists)`.
# Applying twice creates nothing. The rule's account: RUCIO_ACCOUNT if set, else the rule's
# `account` in the JSON, else the account of your Rucio config.
# All of it runs in rucio-rules.py beside this script: one Python with the Rucio client
# (BUTLER_PYTHON, configured by RUCIO_CONFIG as the `rucio` CLI is) for every rule, not three
# `rucio` CLI start-ups per rule.
# Run it before or after the register scripts: a rule on a container also replicates the
# datasets and files attached to it later (Rucio re-evaluates the rule; wait-<transfer>.sh
# waits for that).
# The accounts need quota on the destination RSEs (setup-rucio.sh of the Rucio admin).
# DRY_RUN=1 still reads Rucio (datasets, rules) and prints the `rucio did add` and
# `rucio rule add` command lines that would make what is missing (when Rucio cannot be read,
# it says so and prints them all).

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -z "$RULES_DIR" ]; then RULES_DIR="$HERE"; fi
KNOWN=(
  step1ab.preliminary_visit_summary.frdf-to-usdf
  step1c.single_visit_star_association_metrics.frdf-to-usdf
  crosscheck.step1c.single_visit_star_association_metrics.frdf-to-usdf
  step2c.visit_summary.frdf-to-usdf
  step2d.recalibrated_star_association_metrics.frdf-to-usdf
  crosscheck.step2d.recalibrated_star_association_metrics.frdf-to-usdf
  step3a.deepCoadd_dcr_ddec_map_weighted_mean.frdf-to-usdf
  crosscheck.step3a.deepCoadd_dcr_ddec_map_weighted_mean.frdf-to-usdf
  step3a.deepCoadd_dcr_dra_map_weighted_mean.frdf-to-usdf
  crosscheck.step3a.deepCoadd_dcr_dra_map_weighted_mean.frdf-to-usdf
  step3a.deepCoadd_dcr_e1_map_weighted_mean.frdf-to-usdf
  crosscheck.step3a.deepCoadd_dcr_e1_map_weighted_mean.frdf-to-usdf
  step3a.deepCoadd_dcr_e2_map_weighted_mean.frdf-to-usdf
  crosscheck.step3a.deepCoadd_dcr_e2_map_weighted_mean.frdf-to-usdf
  step3a.deepCoadd_epoch_map_max.frdf-to-usdf
  crosscheck.step3a.deepCoadd_epoch_map_max.frdf-to-usdf
  step3a.deepCoadd_epoch_map_mean.frdf-to-usdf
  crosscheck.step3a.deepCoadd_epoch_map_mean.frdf-to-usdf
  step3a.deepCoadd_epoch_map_min.frdf-to-usdf
  crosscheck.step3a.deepCoadd_epoch_map_min.frdf-to-usdf
  step3a.deepCoadd_exposure_time_map_sum.frdf-to-usdf
  crosscheck.step3a.deepCoadd_exposure_time_map_sum.frdf-to-usdf
  step3a.deepCoadd_psf_e1_map_weighted_mean.frdf-to-usdf
  crosscheck.step3a.deepCoadd_psf_e1_map_weighted_mean.frdf-to-usdf
  step3a.deepCoadd_psf_e2_map_weighted_mean.frdf-to-usdf
  crosscheck.step3a.deepCoadd_psf_e2_map_weighted_mean.frdf-to-usdf
  step3a.deepCoadd_psf_maglim_map_weighted_mean.frdf-to-usdf
  crosscheck.step3a.deepCoadd_psf_maglim_map_weighted_mean.frdf-to-usdf
  step3a.deepCoadd_psf_size_map_weighted_mean.frdf-to-usdf
  crosscheck.step3a.deepCoadd_psf_size_map_weighted_mean.frdf-to-usdf
  step3a.deepCoadd_sky_background_map_weighted_mean.frdf-to-usdf
  crosscheck.step3a.deepCoadd_sky_background_map_weighted_mean.frdf-to-usdf
  step3a.deepCoadd_sky_noise_map_weighted_mean.frdf-to-usdf
  crosscheck.step3a.deepCoadd_sky_noise_map_weighted_mean.frdf-to-usdf
  step3a.object.frdf-to-usdf
  crosscheck.step3a.object.frdf-to-usdf
  step3a.object_all.frdf-to-usdf
  crosscheck.step3a.object_all.frdf-to-usdf
  step3a.object_metrics.frdf-to-usdf
  crosscheck.step3a.object_metrics.frdf-to-usdf
  step3a.object_ref_match_astrom_metrics.frdf-to-usdf
  crosscheck.step3a.object_ref_match_astrom_metrics.frdf-to-usdf
  step4b.analysis_source_association_metrics.frdf-to-usdf
  crosscheck.step4b.analysis_source_association_metrics.frdf-to-usdf
  step4b.dia_object.frdf-to-usdf
  crosscheck.step4b.dia_object.frdf-to-usdf
  step4b.ss_source_associated.frdf-to-usdf
  crosscheck.step4b.ss_source_associated.frdf-to-usdf
)
for want in "$@"; do
  ok=0
  for id in "${KNOWN[@]}"; do
    if [ "$id" = "$want" ]; then ok=1; fi
  done
  if [ "$ok" != 1 ]; then
    printf 'error: no transfer %s leaves frdf; known:\n' "$want" >&2
    printf '  %s\n' "${KNOWN[@]}" >&2
    exit 2
  fi
done

selected() {
  if [ "$#" -eq 1 ]; then return 0; fi
  local id="$1" want
  shift
  for want in "$@"; do
    if [ "$want" = "$id" ]; then return 0; fi
  done
  return 1
}

CHOSEN=()
for id in "${KNOWN[@]}"; do
  if selected "$id" "$@"; then CHOSEN+=("$id"); fi
done
APPLY_ARGS=(--rules-dir "$RULES_DIR" --account "$RUCIO_ACCOUNT")
if [ "$DRY_RUN" = 1 ]; then APPLY_ARGS+=(--dry-run); fi
step "datasets and rules of ${#CHOSEN[@]} transfer(s)"
"$BUTLER_PYTHON" "$HERE"/rucio-rules.py apply "${APPLY_ARGS[@]}" -- "${CHOSEN[@]}"
