#!/usr/bin/env bash
# shellcheck disable=SC2016  # a '$' in a spec value is kept literally, on purpose
# wait for the Rucio rule of transfer inputs.dark.usdf-to-ukdf-lancs of campaign 'dr1'
# generated - do not edit: drpc 0.1.0 from dr1.yaml
#
# Environment (the defaults are the campaign's values; override them to point elsewhere):
#   RUCIO_ACCOUNT: Rucio account that owns the rules (empty: the account of your Rucio config) (default: empty)
#   RULE_ID: the rule to wait for (empty: the rule apply-rules.sh made) (default: empty)
#   WAIT_INTERVAL: seconds between two polls (default: 60)
#   WAIT_TIMEOUT: seconds until giving up (exit 1) (default: 172800)
#   DRY_RUN: 1 prints every command instead of running it (default: 0)
set -euo pipefail

if [ -z "${RUCIO_ACCOUNT+x}" ]; then RUCIO_ACCOUNT=''; fi
if [ -z "${RULE_ID+x}" ]; then RULE_ID=''; fi
if [ -z "${WAIT_INTERVAL+x}" ]; then WAIT_INTERVAL=60; fi
if [ -z "${WAIT_TIMEOUT+x}" ]; then WAIT_TIMEOUT=172800; fi
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
# Waits for the replication rule of transfer inputs.dark.usdf-to-ukdf-lancs: drp:dr1.inputs.dark.usdf-to-ukdf-lancs to
# LANCS_BUTLER_DISK (the rule apply-rules.sh made, of RUCIO_ACCOUNT, or RULE_ID).
# Polls `rucio rule show` every WAIT_INTERVAL seconds:
#   OK, with a lock for every file of the container's datasets, all closed -> exit 0
#     (the file count is the sum of the datasets' lengths, which Rucio keeps for a closed
#     dataset: `rucio did content list` of the container, then one `rucio did show` of its
#     datasets; no file is listed, however many there are; an open dataset means its
#     registration has not finished: keep waiting)
#   STUCK or SUSPENDED -> exit 1 at once, printing the rule and its stuck locks
#                         (`rucio rule show --examine`)
#   anything else      -> keep waiting; after WAIT_TIMEOUT seconds, exit 1
# Needs the rucio 41.5 noun-verb CLI (`rucio did|rule ...`; not the legacy `add-rule`/`rule-info` verbs), found on PATH, configured by RUCIO_CONFIG as usual.
# DRY_RUN=1 finds the rule, checks its state once and prints the poll command, without waiting.

RUCIO=(rucio)
if [ -n "$RUCIO_ACCOUNT" ]; then RUCIO+=(--account "$RUCIO_ACCOUNT"); fi
DID=drp:dr1.inputs.dark.usdf-to-ukdf-lancs
RSES=LANCS_BUTLER_DISK
for var in WAIT_INTERVAL WAIT_TIMEOUT; do
  if ! [[ "${!var}" =~ ^[0-9]+$ ]]; then
    printf 'error: %s must be a number of seconds, not "%s"\n' "$var" "${!var}" >&2
    exit 2
  fi
done

step "find the rule of $DID to $RSES"
if [ -z "$RULE_ID" ]; then
  ACCOUNT="$RUCIO_ACCOUNT"
  if [ -z "$ACCOUNT" ]; then
    ACCOUNT="$("${RUCIO[@]}" whoami | awk -F: '$1 ~ /^account *$/ { gsub(/ /, "", $2); print $2 }')"
  fi
  # A dataset that does not exist yet has no rule either (rucio's error stays on stderr).
  RULE_ID="$({ "${RUCIO[@]}" rule list --did "$DID" --csv || true; } |
    awk -F, -v did="$DID" -v rses="$RSES" -v account="$ACCOUNT" \
      '$3 == did && $5 == rses && $2 == account { print $1; exit }')"
  if [ -z "$RULE_ID" ]; then
    printf 'error: no rule of account %s on %s to %s: register the datasets and run apply-rules.sh %s first\n' \
      "$ACCOUNT" "$DID" "$RSES" inputs.dark.usdf-to-ukdf-lancs >&2
    exit 1
  fi
fi

# Sets DATASETS, OPEN and FILES: the container's datasets, how many are open, and the sum of
# the lengths of the closed ones.
count_files() {
  local listing shown counts
  local -a names
  listing="$("${RUCIO[@]}" did content list --short "$DID")"
  mapfile -t names < <(grep . <<<"$listing" || true)
  DATASETS="$(grep -c . <<<"$listing" || true)"
  OPEN=0
  FILES=0
  if [ "$DATASETS" -eq 0 ]; then return 0; fi
  shown="$("${RUCIO[@]}" did show "${names[@]}")"
  counts="$(awk '$1 == "open:" && $2 != "False" { open++ }
                 $1 == "length:" && $2 ~ /^[0-9]+$/ { files += $2 }
                 END { print open + 0, files + 0 }' <<<"$shown")"
  OPEN="${counts%% *}"
  FILES="${counts##* }"
}

step "wait for rule $RULE_ID"
START="$SECONDS"
while true; do
  SHOW="$("${RUCIO[@]}" rule show "$RULE_ID")"
  STATE="$(printf '%s\n' "$SHOW" | awk '$1 == "State:" { print $2 }')"
  LOCKS="$(printf '%s\n' "$SHOW" | awk '/^Locks OK\/REPLICATING\/STUCK:/ { print $NF }')"
  LOCKED="${LOCKS%%/*}"
  if ! [[ "$LOCKED" =~ ^[0-9]+$ ]]; then
    printf 'error: cannot read the locks of rule %s ("%s")\n' "$RULE_ID" "$LOCKS" >&2
    exit 1
  fi
  ELAPSED=$((SECONDS - START))
  case "$STATE" in
    OK)
      # Files attached after the rule was made get their locks only when Rucio re-evaluates the
      # rule: until then it says OK with fewer locks than the dataset has files.
      count_files
      if [ "$OPEN" -gt 0 ]; then
        STATE="OK for $LOCKED file(s), but $OPEN of $DATASETS dataset(s) still open (registration not finished)"
      elif [ "$LOCKED" -ge "$FILES" ]; then
        printf 'rule %s of %s: OK, %s of %s file(s) in %s dataset(s) at %s, after %ss\n' \
          "$RULE_ID" "$DID" "$LOCKED" "$FILES" "$DATASETS" "$RSES" "$ELAPSED"
        exit 0
      else
        STATE="OK for $LOCKED of $FILES file(s) (Rucio has not re-evaluated the rule yet)"
      fi
      ;;
    STUCK | SUSPENDED)
      printf 'error: rule %s of %s to %s is %s (locks OK/REPLICATING/STUCK %s)\n' \
        "$RULE_ID" "$DID" "$RSES" "$STATE" "$LOCKS" >&2
      printf '%s\n' "$SHOW" >&2
      printf 'stuck locks (rucio rule show --examine %s):\n' "$RULE_ID" >&2
      "${RUCIO[@]}" rule show --examine "$RULE_ID" >&2 || true
      exit 1
      ;;
  esac
  if [ "$DRY_RUN" = 1 ]; then
    printf 'rule %s of %s: %s (locks OK/REPLICATING/STUCK %s); would poll every %ss for up to %ss:\n' \
      "$RULE_ID" "$DID" "${STATE:-unknown}" "$LOCKS" "$WAIT_INTERVAL" "$WAIT_TIMEOUT"
    run "${RUCIO[@]}" rule show "$RULE_ID"
    exit 0
  fi
  if [ "$ELAPSED" -ge "$WAIT_TIMEOUT" ]; then
    printf 'error: timed out after %ss (WAIT_TIMEOUT=%s): rule %s of %s to %s is still %s (locks OK/REPLICATING/STUCK %s)\n' \
      "$ELAPSED" "$WAIT_TIMEOUT" "$RULE_ID" "$DID" "$RSES" "${STATE:-unknown}" "$LOCKS" >&2
    exit 1
  fi
  printf 'rule %s: %s (locks OK/REPLICATING/STUCK %s), %ss elapsed\n' \
    "$RULE_ID" "${STATE:-unknown}" "$LOCKS" "$ELAPSED" >&2
  sleep "$WAIT_INTERVAL"
done
