#!/usr/bin/env bash
# shellcheck disable=SC2016  # a '$' in a spec value is kept literally, on purpose
# Visits and whole-visit raw selection at usdf of campaign 'drp-3x2'
# generated - do not edit: drpc 0.1.0 from 3x2.yaml
#
# Environment (the defaults are the campaign's values; override them to point elsewhere):
#   BUTLER_REPO: the Butler repository at usdf (default: /sdf/group/rubin/repo/drp)
#   BUTLER_PYTHON: a Python with lsst.daf.butler (the stack's) (default: python3)
#   SKIP_STEPS: steps not to run, space- or comma-separated, out of: raws define-visits select check (default: empty)
#   DRY_RUN: 1 prints every command instead of running it (default: 0)
set -euo pipefail

if [ -z "${BUTLER_REPO+x}" ]; then BUTLER_REPO=/sdf/group/rubin/repo/drp; fi
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
# Whole visits at usdf, before stage 1 (CONTRACT section 2, Visits), step by step:
#   raws           checks that HSC/raw/all holds raws (the central site holds every raw;
#                  ingest them first, or name butler.raws.ingest_from in the spec)
#   define-visits  butler define-visits of the raws in HSC/raw/all (LSST stack: the
#                  instrument's obs package and its visit system); ctrl_ingestd ingests raws
#                  and never defines visits
#   select         selection.py raws usdf: every raw of the visits overlapping
#                  usdf's 2 tract(s) -> TAGGED HSC/raw/drp-3x2/usdf
#   check          selection.py check usdf: those visits are whole and no other raw is
#                  visible through the campaign's input collections
# SKIP_STEPS skips steps (a rehearsal without the stack provides define-visits itself). Run it
# again at will: the selection is made equal to what it should hold ("0 changes").

STEPS='raws define-visits select check'
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

if begin raws; then
  RAW_COLLECTION=HSC/raw/all
  # How many raws the repository holds (exit 3: none, or no raw dataset type yet).
  count_raws() {
    "$BUTLER_PYTHON" - "$BUTLER_REPO" "$RAW_COLLECTION" <<'PY'
import sys

from lsst.daf.butler import Butler, MissingCollectionError, MissingDatasetTypeError

with Butler.from_config(sys.argv[1]) as butler:
    try:
        n = len(butler.query_datasets("raw", collections=sys.argv[2], find_first=False,
                                      limit=None, explain=False))
    except (MissingCollectionError, MissingDatasetTypeError):
        n = 0
print(n)
sys.exit(0 if n else 3)
PY
  }
  held=0
  held="$(count_raws)" || held=0
  if [ "$held" -eq 0 ] && [ "$DRY_RUN" = 1 ]; then
    say "  DRY_RUN: no raw in $RAW_COLLECTION (a real run stops here)"
  elif [ "$held" -eq 0 ]; then
    die 'no raw in HSC/raw/all: the central site holds every raw of the campaign; ingest them (butler ingest-raws /sdf/group/rubin/repo/drp LOCATION --output-run HSC/raw/all) or name butler.raws.ingest_from in the spec'
  fi
  say "  $held raw(s) in $RAW_COLLECTION"
fi
if begin define-visits; then
  run butler define-visits "$BUTLER_REPO" HSC --collections HSC/raw/all
fi
if begin select; then
  run "$BUTLER_PYTHON" "$HERE"/selection.py raws usdf
fi
if begin check; then
  run "$BUTLER_PYTHON" "$HERE"/selection.py check usdf
fi
