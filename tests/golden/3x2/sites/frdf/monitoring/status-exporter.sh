#!/usr/bin/env bash
# shellcheck disable=SC2016  # a '$' in a spec value is kept literally, on purpose
# drpc status exporter for frdf (FRDF (CC-IN2P3)) of campaign 'drp-3x2'
# generated - do not edit: drpc 0.1.0 from 3x2.yaml
#
# Environment (the defaults are the campaign's values; override them to point elsewhere):
#   CAMPAIGN_FILE: the campaign file this tree was compiled from, as drpc status reads it (default: 3x2.yaml)
#   DRPC: the drpc command (default: drpc)
#   TEXTFILE_DIR: node_exporter's textfile collector folder (default: /var/lib/node_exporter/textfile_collector)
#   DRY_RUN: 1 prints every command instead of running it (default: 0)
set -euo pipefail

if [ -z "${CAMPAIGN_FILE+x}" ]; then CAMPAIGN_FILE=3x2.yaml; fi
if [ -z "${DRPC+x}" ]; then DRPC=drpc; fi
if [ -z "${TEXTFILE_DIR+x}" ]; then TEXTFILE_DIR=/var/lib/node_exporter/textfile_collector; fi
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

# Writes what `drpc status` sees of campaign 'drp-3x2' at frdf as Prometheus
# metrics for node_exporter's textfile collector: into a temporary file of TEXTFILE_DIR (a name
# node_exporter ignores), then renamed to
#   drpc-status-drp-3x2-frdf.prom
# there, so that node_exporter never reads half a file. On failure the previous file stays and
# its drpc_status_timestamp_seconds ages: the alert StatusExporterStale fires. Run every
# 5 minutes by drpc-status-drp-3x2-frdf.timer.
# drpc status exits 5 when something needs attention: its metrics say what, so that is success
# here.

SITE=frdf
TARGET="$TEXTFILE_DIR"/drpc-status-drp-3x2-frdf.prom
ARGS=(--site "$SITE" --format prometheus)

step "drpc status --site $SITE"
if [ "$DRY_RUN" = 1 ]; then
  run "$DRPC" status "$CAMPAIGN_FILE" "${ARGS[@]}"
  printf 'then: rename the output into %s\n' "$TARGET"
  exit 0
fi
[ -d "$TEXTFILE_DIR" ] || { printf '%s: no folder %s (TEXTFILE_DIR)\n' "$0" "$TEXTFILE_DIR" >&2; exit 1; }
TMP=$(mktemp "$TEXTFILE_DIR"/.drpc-status-drp-3x2-frdf.prom.XXXXXX)
cleanup() {
  local rc=$?
  rm -f -- "$TMP"
  (exit "$rc")
  on_exit
}
trap cleanup EXIT

rc=0
"$DRPC" status "$CAMPAIGN_FILE" "${ARGS[@]}" >"$TMP" || rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then
  printf '%s: drpc status exited %s; %s left as it was\n' "$0" "$rc" "$TARGET" >&2
  exit "$rc"
fi
grep -q '^drpc_status_timestamp_seconds{' "$TMP" || {
  printf '%s: drpc status printed no drpc_status_timestamp_seconds; %s left as it was\n' "$0" "$TARGET" >&2
  exit 1
}

step "rename into $TARGET"
chmod 0644 "$TMP"
mv -f -- "$TMP" "$TARGET"
printf '%s: wrote %s\n' "$(basename "$0")" "$TARGET" >&2
