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
#   DRY_RUN: 1 prints every command instead of running it (default: 0)
set -euo pipefail

if [ -z "${RUCIO_ACCOUNT_USDF+x}" ]; then RUCIO_ACCOUNT_USDF=''; fi
if [ -z "${RUCIO_ACCOUNT_FRDF+x}" ]; then RUCIO_ACCOUNT_FRDF=''; fi
if [ -z "${RUCIO_ACCOUNT_UKDF_LANCS+x}" ]; then RUCIO_ACCOUNT_UKDF_LANCS=''; fi
if [ -z "${RUCIO_ACCOUNT_UKDF_RAL+x}" ]; then RUCIO_ACCOUNT_UKDF_RAL=''; fi
if [ -z "${LIMIT_BYTES+x}" ]; then LIMIT_BYTES=infinity; fi
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
# Needs the rucio 41.5 noun-verb CLI (`rucio scope|account ...`), with its default table output
# (not `[experimental] cli = rich`), configured by RUCIO_CONFIG as usual. The legacy forms are
# `rucio-admin scope add --account ACCOUNT --scope SCOPE` and
# `rucio-admin account set-limits ACCOUNT RSE BYTES`.
# DRY_RUN=1 still reads Rucio (accounts, scopes, limits) and prints the `rucio scope add` and
# `rucio account limit set` it would run.

case "${LIMIT_BYTES,,}" in
  inf | infinity) WANT=inf ;;
  '' | *[!0-9]*) WANT="" ;;
  *) WANT="$((10#$LIMIT_BYTES))" ;;
esac
if [ -z "$WANT" ] || [ "$WANT" = 0 ]; then
  printf 'error: LIMIT_BYTES=%s: not `infinity` or a positive number of bytes\n' "$LIMIT_BYTES" >&2
  exit 2
fi
if [ "$WANT" = inf ]; then BYTES=infinity; else BYTES="$WANT"; fi

shown() {
  if [ "$1" = inf ]; then printf 'unlimited'; elif [ -z "$1" ]; then printf 'none'; else printf '%s bytes' "$1"; fi
}

ADMIN_ACCOUNT=""
# Sets ADMIN_ACCOUNT to the account of this Rucio config (asked once).
need_admin_account() {
  if [ -n "$ADMIN_ACCOUNT" ]; then return 0; fi
  ADMIN_ACCOUNT="$(rucio whoami | awk -F: '$1 ~ /^account *$/ { gsub(/ /, "", $2); print $2 }')"
  if [ -z "$ADMIN_ACCOUNT" ]; then
    printf 'error: cannot tell the account of this Rucio config (rucio whoami)\n' >&2
    exit 1
  fi
}

declare -A SITE_ACCOUNT=()
step "the accounts of the sites"
SITE_ACCOUNT[usdf]="$RUCIO_ACCOUNT_USDF"
SITE_ACCOUNT[frdf]="$RUCIO_ACCOUNT_FRDF"
SITE_ACCOUNT[ukdf-lancs]="$RUCIO_ACCOUNT_UKDF_LANCS"
SITE_ACCOUNT[ukdf-ral]="$RUCIO_ACCOUNT_UKDF_RAL"
for site in usdf frdf ukdf-lancs ukdf-ral; do
  if [ -z "${SITE_ACCOUNT[$site]}" ]; then
    need_admin_account
    SITE_ACCOUNT[$site]="$ADMIN_ACCOUNT"
    printf 'note: no account given for %s: its rules and registrations are taken to run as %s (this config'"'"'s account)\n' \
      "$site" "$ADMIN_ACCOUNT" >&2
  fi
  if ! rucio account show "${SITE_ACCOUNT[$site]}" >/dev/null 2>&1; then
    printf 'error: Rucio account %s (of %s) does not exist or cannot be read: create it, or name another one\n' \
      "${SITE_ACCOUNT[$site]}" "$site" >&2
    exit 1
  fi
  printf 'account of %s: %s\n' "$site" "${SITE_ACCOUNT[$site]}"
done

CHANGES=0
SCOPES_CSV=""
# The owner of SCOPE in SCOPES_CSV (empty: no such scope).
scope_owner() {
  awk -F, -v scope="$1" '$1 == scope && !found { print $2; found = 1 }' <<<"$SCOPES_CSV"
}

# ensure_scope SCOPE SITE...: the scope exists; the first site's account owns it.
ensure_scope() {
  local scope="$1" owner site current
  shift
  step "scope $scope"
  owner="${SITE_ACCOUNT[$1]}"
  for site in "$@"; do
    if [ "${SITE_ACCOUNT[$site]}" != "$owner" ]; then
      printf 'warning: scope %s is registered into by %s (account %s) but owned by %s: only its owner and admin accounts may add DIDs to it\n' \
        "$scope" "$site" "${SITE_ACCOUNT[$site]}" "$owner" >&2
    fi
  done
  current="$(scope_owner "$scope")"
  if [ -n "$current" ]; then
    if [ "$current" != "$owner" ]; then
      printf 'warning: scope %s exists, owned by %s, not %s: left as it is (rucio scope update %s --account %s to change it)\n' \
        "$scope" "$current" "$owner" "$scope" "$owner" >&2
    fi
    printf 'scope %s (owner %s): exists\n' "$scope" "$current"
    return 0
  fi
  CHANGES=$((CHANGES + 1))
  run rucio scope add "$scope" --account "$owner"
  if [ "$DRY_RUN" = 1 ]; then
    printf 'scope %s (owner %s): to be created\n' "$scope" "$owner"
    return 0
  fi
  # `rucio scope add` exits 0 even when it fails: look again
  SCOPES_CSV="$(rucio scope list --csv)"
  current="$(scope_owner "$scope")"
  if [ "$current" != "$owner" ]; then
    printf 'error: scope %s was not created (see the message of rucio scope add above)\n' "$scope" >&2
    exit 1
  fi
  printf 'scope %s (owner %s): created\n' "$scope" "$owner"
}

step "list the scopes"
SCOPES_CSV="$(rucio scope list --csv)"
ensure_scope drp usdf frdf ukdf-lancs ukdf-ral

# The local limit of ACCOUNT on RSE: `inf`, a number of bytes, or empty (no limit).
limit_of() {
  rucio -R account limit list "$1" --rse "$2" |
    awk -F'|' -v rse="$2" '{ r = $2; l = $4; gsub(/ /, "", r); gsub(/ /, "", l) }
      r == rse && !found { print tolower(l); found = 1 }'
}

declare -A LIMIT_DONE=()
# ensure_limit SITE RSE: the account of SITE has the limit WANT on RSE.
ensure_limit() {
  local account="${SITE_ACCOUNT[$1]}" rse="$2" current
  if [ -n "${LIMIT_DONE["$account $rse"]+x}" ]; then return 0; fi
  step "limit of $account on $rse"
  LIMIT_DONE["$account $rse"]=1
  current="$(limit_of "$account" "$rse")"
  if [ "$current" = "$WANT" ]; then
    printf 'limit of %s on %s: %s (exists)\n' "$account" "$rse" "$(shown "$WANT")"
    return 0
  fi
  CHANGES=$((CHANGES + 1))
  run rucio account limit set "$account" --rse "$rse" --bytes "$BYTES"
  if [ "$DRY_RUN" = 1 ]; then
    printf 'limit of %s on %s: %s (to be set; now %s)\n' "$account" "$rse" "$(shown "$WANT")" "$(shown "$current")"
    return 0
  fi
  local now
  now="$(limit_of "$account" "$rse")"
  if [ "$now" != "$WANT" ]; then
    printf 'error: the limit of %s on %s reads %s after setting it to %s\n' "$account" "$rse" "$(shown "$now")" "$(shown "$WANT")" >&2
    exit 1
  fi
  printf 'limit of %s on %s: %s (set; was %s)\n' "$account" "$rse" "$(shown "$WANT")" "$(shown "$current")"
}

ensure_limit frdf SLAC_BUTLER_DISK
ensure_limit ukdf-lancs SLAC_BUTLER_DISK
ensure_limit ukdf-ral SLAC_BUTLER_DISK
ensure_limit usdf IN2P3_BUTLER_DISK
ensure_limit usdf IN2P3_RAW_DISK
ensure_limit usdf LANCS_BUTLER_DISK
ensure_limit usdf LANCS_RAW_DISK
ensure_limit usdf RAL_BUTLER_DISK
ensure_limit usdf RAL_RAW_DISK

if [ "$DRY_RUN" = 1 ]; then
  printf '%s changes to make (DRY_RUN=1: none made)\n' "$CHANGES"
else
  printf '%s changes\n' "$CHANGES"
fi
