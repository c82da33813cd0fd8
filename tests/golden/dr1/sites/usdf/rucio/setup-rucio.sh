#!/usr/bin/env bash
# shellcheck disable=SC2016  # a '$' in a spec value is kept literally, on purpose
# Rucio scopes and account limits (run once by the Rucio admin) of campaign 'dr1'
# generated - do not edit: drpc 0.1.0 from dr1.yaml
#
# Environment (the defaults are the campaign's values; override them to point elsewhere):
#   RUCIO_ACCOUNT_USDF: the Rucio account usdf's rules and registrations run as (empty: the account of this Rucio config) (default: empty)
#   RUCIO_ACCOUNT_FRDF: the Rucio account frdf's rules and registrations run as (empty: the account of this Rucio config) (default: empty)
#   RUCIO_ACCOUNT_UKDF_LANCS: the Rucio account ukdf-lancs's rules and registrations run as (empty: the account of this Rucio config) (default: empty)
#   RUCIO_ACCOUNT_UKDF_RAL: the Rucio account ukdf-ral's rules and registrations run as (empty: the account of this Rucio config) (default: empty)
#   LIMIT_BYTES: the local account limit to set on each destination RSE: `infinity` or a number of bytes (default: infinity)
#   RUCIO_PYTHON: a Python with the Rucio client (your `rucio` CLI's) (default: python3)
#   DRY_RUN: 1 prints every command instead of running it (default: 0)
set -euo pipefail

if [ -z "${RUCIO_ACCOUNT_USDF+x}" ]; then RUCIO_ACCOUNT_USDF=''; fi
if [ -z "${RUCIO_ACCOUNT_FRDF+x}" ]; then RUCIO_ACCOUNT_FRDF=''; fi
if [ -z "${RUCIO_ACCOUNT_UKDF_LANCS+x}" ]; then RUCIO_ACCOUNT_UKDF_LANCS=''; fi
if [ -z "${RUCIO_ACCOUNT_UKDF_RAL+x}" ]; then RUCIO_ACCOUNT_UKDF_RAL=''; fi
if [ -z "${LIMIT_BYTES+x}" ]; then LIMIT_BYTES=infinity; fi
if [ -z "${RUCIO_PYTHON+x}" ]; then RUCIO_PYTHON=python3; fi
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
# Run ONCE by the Rucio administrator of the Rucio instance that every site of the campaign
# uses (as root or an account with the `admin` attribute: adding scopes and setting account
# limits are admin-only in Rucio's generic permission policy), before any site runs its
# apply-rules.sh or a register script. Idempotent: run it again at will; its last line says how
# many changes it made (`0 changes` once everything is in place).
#   1. every scope the campaign's moves register into exists, owned by the account of the
#      site that registers into it (the first site listed):
#        drp <- usdf, frdf, ukdf-lancs, ukdf-ral
#   2. the account of each site that sends data has the local account limit LIMIT_BYTES on
#      each RSE its rules replicate to (without quota `rucio rule add` fails with
#      InsufficientAccountLimit):
#        account of frdf on SLAC_BUTLER_DISK
#        account of ukdf-lancs on SLAC_BUTLER_DISK
#        account of ukdf-ral on SLAC_BUTLER_DISK
#        account of usdf on IN2P3_BUTLER_DISK
#        account of usdf on IN2P3_RAW_DISK
#        account of usdf on LANCS_BUTLER_DISK
#        account of usdf on LANCS_RAW_DISK
#        account of usdf on RAL_BUTLER_DISK
#        account of usdf on RAL_RAW_DISK
# `infinity` is stored as -1 and read back as unlimited; an existing limit that differs from
# LIMIT_BYTES is set to it, and the old value printed. Source RSEs need no quota.
# Not done here: the accounts themselves (`rucio account add`, with their identities), RSEs,
# protocols and distances. The script stops if an account does not exist.
# Note: under the generic policy, registering replicas (rucio-register at the source site)
# also needs root or the `admin` attribute (and an admin account ignores account limits);
# check what the Rucio instance's policy package allows the sites' accounts.
# All of it runs in rucio-setup.py beside this script: one Python with the Rucio client
# (RUCIO_PYTHON, the Python of your `rucio` CLI: `head -1 "$(command -v rucio)"` names it;
# configured by RUCIO_CONFIG as usual), not a `rucio` CLI start-up per check.
# DRY_RUN=1 still reads Rucio (accounts, scopes, limits) and prints the rucio 41.5 CLI commands
# that would make the same changes (`rucio scope add`, `rucio account limit set`; the legacy
# forms are `rucio-admin scope add --account ACCOUNT --scope SCOPE` and
# `rucio-admin account set-limits ACCOUNT RSE BYTES`).

case "${LIMIT_BYTES,,}" in
  inf | infinity) WANT=inf ;;
  '' | *[!0-9]*) WANT="" ;;
  *) WANT="$((10#$LIMIT_BYTES))" ;;
esac
if [ -z "$WANT" ] || [ "$WANT" = 0 ]; then
  printf 'error: LIMIT_BYTES=%s: not `infinity` or a positive number of bytes\n' "$LIMIT_BYTES" >&2
  exit 2
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SETUP_ARGS=(--limit "$WANT")
SETUP_ARGS+=(--site-account usdf="$RUCIO_ACCOUNT_USDF")
SETUP_ARGS+=(--site-account frdf="$RUCIO_ACCOUNT_FRDF")
SETUP_ARGS+=(--site-account ukdf-lancs="$RUCIO_ACCOUNT_UKDF_LANCS")
SETUP_ARGS+=(--site-account ukdf-ral="$RUCIO_ACCOUNT_UKDF_RAL")
if [ "$DRY_RUN" = 1 ]; then SETUP_ARGS+=(--dry-run); fi
step "scopes and account limits"
"$RUCIO_PYTHON" "$HERE"/rucio-setup.py "${SETUP_ARGS[@]}"
