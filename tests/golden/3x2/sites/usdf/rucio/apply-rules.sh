#!/usr/bin/env bash
# shellcheck disable=SC2016  # a '$' in a spec value is kept literally, on purpose
# Rucio replication rules of the transfers leaving usdf of campaign 'drp-3x2'
# generated - do not edit: drpc 0.1.0 from 3x2.yaml
#
# Environment (the defaults are the campaign's values; override them to point elsewhere):
#   RUCIO_ACCOUNT: Rucio account that owns the rules (empty: the account of your Rucio config) (default: empty)
#   DRY_RUN: 1 prints every command instead of running it (default: 0)
set -euo pipefail

if [ -z "${RUCIO_ACCOUNT+x}" ]; then RUCIO_ACCOUNT=''; fi
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
# Usage: apply-rules.sh [TRANSFER_ID...]   (default: every transfer leaving usdf)
# For each transfer: creates its Rucio dataset (open, monotonic) unless it exists, then its
# replication rule (the rule in <transfer>.rules.json beside this script) unless a rule of the
# same account on the same dataset and RSE expression exists, and prints
# `<transfer id>: <dataset> rule <rule id> (created|exists)`. Applying twice creates nothing.
# Run it before or after the register scripts: a rule on an open dataset also replicates the
# files attached to it later (Rucio re-evaluates the rule; wait-<transfer>.sh waits for that).
# Needs the rucio 41.5 noun-verb CLI (`rucio did|rule ...`; not the legacy `add-rule`/`rule-info` verbs), found on PATH, configured by RUCIO_CONFIG as usual.
# DRY_RUN=1 still reads Rucio (datasets, rules) and prints the `rucio did add` and
# `rucio rule add` it would run.

RUCIO=(rucio)
if [ -n "$RUCIO_ACCOUNT" ]; then RUCIO+=(--account "$RUCIO_ACCOUNT"); fi
KNOWN=(
  raw.usdf-to-frdf
  raw.usdf-to-ukdf-lancs
  fgcm.fgcm_photoCalibCatalog.usdf-to-frdf
  fgcm.fgcm_photoCalibCatalog.usdf-to-ukdf-lancs
)
for want in "$@"; do
  ok=0
  for id in "${KNOWN[@]}"; do
    if [ "$id" = "$want" ]; then ok=1; fi
  done
  if [ "$ok" != 1 ]; then
    printf 'error: no transfer %s leaves usdf; known:\n' "$want" >&2
    printf '  %s\n' "${KNOWN[@]}" >&2
    exit 2
  fi
done

step "find the Rucio account"
ACCOUNT="$RUCIO_ACCOUNT"
if [ -z "$ACCOUNT" ]; then
  ACCOUNT="$("${RUCIO[@]}" whoami | awk -F: '$1 ~ /^account *$/ { gsub(/ /, "", $2); print $2 }')"
fi
if [ -z "$ACCOUNT" ]; then
  printf 'error: cannot tell the Rucio account (set RUCIO_ACCOUNT)\n' >&2
  exit 1
fi

# The id of a rule of $ACCOUNT on DID with RSE expression RSES, if there is one.
existing_rule() {
  "${RUCIO[@]}" rule list --did "$1" --csv |
    awk -F, -v did="$1" -v rses="$2" -v account="$ACCOUNT" \
      '$3 == did && $5 == rses && $2 == account { print $1; exit }'
}

selected() {
  if [ "$#" -eq 1 ]; then return 0; fi
  local id="$1" want
  shift
  for want in "$@"; do
    if [ "$want" = "$id" ]; then return 0; fi
  done
  return 1
}

# apply TRANSFER_ID DID RSE_EXPRESSION RULE_ADD_OPTION...
apply() {
  local id="$1" did="$2" rses="$3" rule_id=""
  shift 3
  step "dataset and rule of $id"
  if ! "${RUCIO[@]}" did show "$did" >/dev/null 2>&1; then
    run "${RUCIO[@]}" did add --type dataset --monotonic "$did"
  else
    rule_id="$(existing_rule "$did" "$rses")"
  fi
  if [ -n "$rule_id" ]; then
    printf '%s: %s rule %s (exists)\n' "$id" "$did" "$rule_id"
  elif [ "$DRY_RUN" = 1 ]; then
    run "${RUCIO[@]}" rule add "$did" --rses "$rses" "$@"
  else
    rule_id="$("${RUCIO[@]}" rule add "$did" --rses "$rses" "$@")"
    printf '%s: %s rule %s (created)\n' "$id" "$did" "$rule_id"
  fi
}

if selected raw.usdf-to-frdf "$@"; then
  apply raw.usdf-to-frdf drp-3x2:drp-3x2.raw.usdf-to-frdf IN2P3_RAW_DISK \
    --copies 1 --grouping DATASET --activity 'Data Consolidation' --source-rses SLAC_RAW_DISK --comment 'drpc campaign drp-3x2: raw raw.usdf-to-frdf'
fi
if selected raw.usdf-to-ukdf-lancs "$@"; then
  apply raw.usdf-to-ukdf-lancs drp-3x2:drp-3x2.raw.usdf-to-ukdf-lancs LANCS_RAW_DISK \
    --copies 1 --grouping DATASET --activity 'Data Consolidation' --source-rses SLAC_RAW_DISK --comment 'drpc campaign drp-3x2: raw raw.usdf-to-ukdf-lancs'
fi
if selected fgcm.fgcm_photoCalibCatalog.usdf-to-frdf "$@"; then
  apply fgcm.fgcm_photoCalibCatalog.usdf-to-frdf drp-3x2:drp-3x2.fgcm.fgcm_photoCalibCatalog.usdf-to-frdf IN2P3_BUTLER_DISK \
    --copies 1 --grouping DATASET --activity 'Data Consolidation' --source-rses SLAC_BUTLER_DISK --comment 'drpc campaign drp-3x2: scatter fgcm.fgcm_photoCalibCatalog.usdf-to-frdf'
fi
if selected fgcm.fgcm_photoCalibCatalog.usdf-to-ukdf-lancs "$@"; then
  apply fgcm.fgcm_photoCalibCatalog.usdf-to-ukdf-lancs drp-3x2:drp-3x2.fgcm.fgcm_photoCalibCatalog.usdf-to-ukdf-lancs LANCS_BUTLER_DISK \
    --copies 1 --grouping DATASET --activity 'Data Consolidation' --source-rses SLAC_BUTLER_DISK --comment 'drpc campaign drp-3x2: scatter fgcm.fgcm_photoCalibCatalog.usdf-to-ukdf-lancs'
fi

