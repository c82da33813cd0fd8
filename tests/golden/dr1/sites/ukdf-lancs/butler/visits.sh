#!/usr/bin/env bash
# shellcheck disable=SC2016  # a '$' in a spec value is kept literally, on purpose
# Visits and whole-visit raw selection at ukdf-lancs of campaign 'dr1'
# generated - do not edit: drpc 0.1.0 from dr1.yaml
#
# Environment (the defaults are the campaign's values; override them to point elsewhere):
#   BUTLER_REPO: the Butler repository at ukdf-lancs (default: /cephfs/pool/rubin/repo/drp)
#   BUTLER_PYTHON: a Python with lsst.daf.butler (the stack's) (default: python3)
#   SKIP_STEPS: steps not to run, space- or comma-separated, out of: define-visits select check (default: empty)
#   DRY_RUN: 1 prints every command instead of running it (default: 0)
set -euo pipefail

if [ -z "${BUTLER_REPO+x}" ]; then BUTLER_REPO=/cephfs/pool/rubin/repo/drp; fi
if [ -z "${BUTLER_PYTHON+x}" ]; then BUTLER_PYTHON=python3; fi
if [ -z "${SKIP_STEPS+x}" ]; then SKIP_STEPS=''; fi
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
# Whole visits at ukdf-lancs, before stage 1 (CONTRACT section 2, Visits), step by step:
#   define-visits  butler define-visits of the raws in LSSTCam/raw/all (LSST stack: the
#                  instrument's obs package and its visit system); ctrl_ingestd ingests raws
#                  and never defines visits
#   select         selection.py raws ukdf-lancs: every raw of the visits overlapping
#                  ukdf-lancs's 1410 tract(s) -> TAGGED LSSTCam/raw/dr1/ukdf-lancs
#   check          selection.py check ukdf-lancs: those visits are whole and no other raw is
#                  visible through the campaign's input collections
# SKIP_STEPS skips steps (a rehearsal without the stack provides define-visits itself). Run it
# again at will: the selection is made equal to what it should hold ("0 changes").

STEPS='define-visits select check'
read -r -a skip_words <<< "${SKIP_STEPS//,/ }"
SKIP_LIST=" ${skip_words[*]} "
for name in "${skip_words[@]}"; do
  case " $STEPS " in
    *" $name "*) ;;
    *) printf '%s: SKIP_STEPS names an unknown step "%s" (steps: %s)\n' "$(basename "$0")" "$name" "$STEPS" >&2
       exit 2 ;;
  esac
done

say() { printf '%s\n' "$*" >&2; }
skipped() { case "$SKIP_LIST" in *" $1 "*) return 0 ;; esac; return 1; }

# begin STEP: name the step (for the failure message) unless SKIP_STEPS holds it.
begin() {
  if skipped "$1"; then
    say "==> $1: skipped (SKIP_STEPS)"
    return 1
  fi
  step "$1"
}
die() { say "$(basename "$0"): $*"; exit 1; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if begin define-visits; then
  run butler define-visits "$BUTLER_REPO" LSSTCam --collections LSSTCam/raw/all
fi
if begin select; then
  run "$BUTLER_PYTHON" "$HERE"/selection.py raws ukdf-lancs
fi
if begin check; then
  run "$BUTLER_PYTHON" "$HERE"/selection.py check ukdf-lancs
fi
