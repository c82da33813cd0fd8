#!/usr/bin/env bash
# shellcheck disable=SC2016  # a '$' in a spec value is kept literally, on purpose
# wait for the Rucio rule of transfer inputs.camera.usdf-to-frdf of campaign 'dr1'
# generated - do not edit: drpc 0.1.0 from dr1.yaml
#
# Environment (the defaults are the campaign's values; override them to point elsewhere):
#   RUCIO_ACCOUNT: Rucio account that owns the rules (empty: the account of your Rucio config) (default: empty)
#   RULE_ID: the rule to wait for (empty: the rule apply-rules.sh made) (default: empty)
#   WAIT_INTERVAL: seconds between two polls (default: 60)
#   WAIT_TIMEOUT: seconds until giving up (exit 1) (default: 172800)
#   BUTLER_PYTHON: a Python with the Rucio client (the stack's), to poll the rule (default: python3)
#   DRY_RUN: 1 prints every command instead of running it (default: 0)
set -euo pipefail

if [ -z "${RUCIO_ACCOUNT+x}" ]; then RUCIO_ACCOUNT=''; fi
if [ -z "${RULE_ID+x}" ]; then RULE_ID=''; fi
if [ -z "${WAIT_INTERVAL+x}" ]; then WAIT_INTERVAL=60; fi
if [ -z "${WAIT_TIMEOUT+x}" ]; then WAIT_TIMEOUT=172800; fi
if [ -z "${BUTLER_PYTHON+x}" ]; then BUTLER_PYTHON=python3; fi
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
# Waits for the replication rule of transfer inputs.camera.usdf-to-frdf: drp:dr1.inputs.camera.usdf-to-frdf to
# IN2P3_BUTLER_DISK (the rule apply-rules.sh made, of RUCIO_ACCOUNT, or RULE_ID).
# Polls the rule every WAIT_INTERVAL seconds, in rucio-rules.py beside this script (one
# Python with the Rucio client, BUTLER_PYTHON, configured by RUCIO_CONFIG as the `rucio` CLI is):
#   OK, with a lock for every file of the container's datasets, all closed -> exit 0
#     (the file count is the sum of the datasets' lengths, which Rucio keeps for a closed
#     dataset: no file is listed, however many there are; an open dataset means its
#     registration has not finished: keep waiting)
#   STUCK or SUSPENDED -> exit 1 at once, printing the rule and its stuck locks
#                         (`rucio rule show --examine`, the rucio 41.5 CLI on PATH)
#   anything else      -> a line per poll on stderr; after WAIT_TIMEOUT seconds, exit 1
# DRY_RUN=1 finds the rule, checks its state once and prints the poll command, without waiting.

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DID=drp:dr1.inputs.camera.usdf-to-frdf
RSES=IN2P3_BUTLER_DISK
for var in WAIT_INTERVAL WAIT_TIMEOUT; do
  if ! [[ "${!var}" =~ ^[0-9]+$ ]]; then
    printf 'error: %s must be a number of seconds, not "%s"\n' "$var" "${!var}" >&2
    exit 2
  fi
done

step "find the rule of $DID to $RSES, and wait for it"
WAIT_ARGS=(--did "$DID" --rses "$RSES" --account "$RUCIO_ACCOUNT" --rule-id "$RULE_ID"
  --interval "$WAIT_INTERVAL" --timeout "$WAIT_TIMEOUT" --transfer inputs.camera.usdf-to-frdf)
if [ "$DRY_RUN" = 1 ]; then WAIT_ARGS+=(--dry-run); fi
rc=0
out="$("$BUTLER_PYTHON" "$HERE"/rucio-rules.py wait "${WAIT_ARGS[@]}")" || rc=$?
if [ "$rc" -eq 3 ]; then  # STUCK or SUSPENDED (stdout: the rule's id): its stuck locks
  RUCIO=(rucio)
  if [ -n "$RUCIO_ACCOUNT" ]; then RUCIO+=(--account "$RUCIO_ACCOUNT"); fi
  printf 'stuck locks (rucio rule show --examine %s):\n' "$out" >&2
  "${RUCIO[@]}" rule show --examine "$out" >&2 || true
  exit 1
fi
if [ -n "$out" ]; then printf '%s\n' "$out"; fi
if [ "$rc" -ne 0 ]; then exit "$rc"; fi
