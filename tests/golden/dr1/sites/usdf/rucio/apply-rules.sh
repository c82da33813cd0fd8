#!/usr/bin/env bash
# shellcheck disable=SC2016  # a '$' in a spec value is kept literally, on purpose
# Rucio replication rules of the transfers leaving usdf of campaign 'dr1'
# generated - do not edit: drpc 0.1.0 from dr1.yaml
#
# Environment (the defaults are the campaign's values; override them to point elsewhere):
#   RUCIO_ACCOUNT: Rucio account that owns the rules (empty: the rule's `account` in its rules.json, else the account of your Rucio config) (default: empty)
#   BUTLER_PYTHON: a Python 3 (standard library only), to read the rules' JSON (default: python3)
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
# Usage: apply-rules.sh [TRANSFER_ID...]   (default: every transfer leaving usdf)
# Each rule is read from <transfer>.rules.json beside this script (or in RULES_DIR), its one
# source: a list of rules in Rucio's `rule` schema. The file is read with Python 3 (BUTLER_PYTHON,
# standard library only, Python 3.6 or later; jq is not used), and a key that `rucio rule add`
# cannot set is an error, never skipped. For each DID of each rule of each transfer:
#   1. create the container unless it exists (the register script fills it with datasets of
#      at most the site's dataset_file_limit files each);
#   2. create the rule unless a rule of the same account on the same DID with the same RSE
#      expression exists (what Rucio itself calls a duplicate), and print
#      `<transfer id>: <DID> rule <rule id> (created|exists)`.
# Applying twice creates nothing. The rule's account: RUCIO_ACCOUNT if set, else the rule's
# `account` in the JSON, else the account of your Rucio config (`rucio whoami`).
# Run it before or after the register scripts: a rule on a container also replicates the
# datasets and files attached to it later (Rucio re-evaluates the rule; wait-<transfer>.sh
# waits for that).
# The accounts need quota on the destination RSEs (setup-rucio.sh of the Rucio admin).
# Needs the rucio 41.5 noun-verb CLI (`rucio did|rule ...`; not the legacy `add-rule`/`rule-info` verbs), found on PATH, configured by RUCIO_CONFIG as usual.
# DRY_RUN=1 still reads Rucio (datasets, rules) and prints the `rucio did add` and
# `rucio rule add` it would run.

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -z "$RULES_DIR" ]; then RULES_DIR="$HERE"; fi
KNOWN=(
  raw.usdf-to-frdf
  raw.usdf-to-ukdf-lancs
  raw.usdf-to-ukdf-ral
  inputs.camera.usdf-to-frdf
  inputs.bias.usdf-to-frdf
  inputs.dark.usdf-to-frdf
  inputs.flat.usdf-to-frdf
  inputs.defects.usdf-to-frdf
  inputs.linearizer.usdf-to-frdf
  inputs.crosstalk.usdf-to-frdf
  inputs.ptc.usdf-to-frdf
  inputs.bfk.usdf-to-frdf
  inputs.cti.usdf-to-frdf
  inputs.sky.usdf-to-frdf
  inputs.the_monster_20250219.usdf-to-frdf
  inputs.ps1_pv3_3pi_20170110.usdf-to-frdf
  inputs.drpc_inputs_manifest.usdf-to-frdf
  inputs.camera.usdf-to-ukdf-lancs
  inputs.bias.usdf-to-ukdf-lancs
  inputs.dark.usdf-to-ukdf-lancs
  inputs.flat.usdf-to-ukdf-lancs
  inputs.defects.usdf-to-ukdf-lancs
  inputs.linearizer.usdf-to-ukdf-lancs
  inputs.crosstalk.usdf-to-ukdf-lancs
  inputs.ptc.usdf-to-ukdf-lancs
  inputs.bfk.usdf-to-ukdf-lancs
  inputs.cti.usdf-to-ukdf-lancs
  inputs.sky.usdf-to-ukdf-lancs
  inputs.the_monster_20250219.usdf-to-ukdf-lancs
  inputs.ps1_pv3_3pi_20170110.usdf-to-ukdf-lancs
  inputs.drpc_inputs_manifest.usdf-to-ukdf-lancs
  inputs.camera.usdf-to-ukdf-ral
  inputs.bias.usdf-to-ukdf-ral
  inputs.dark.usdf-to-ukdf-ral
  inputs.flat.usdf-to-ukdf-ral
  inputs.defects.usdf-to-ukdf-ral
  inputs.linearizer.usdf-to-ukdf-ral
  inputs.crosstalk.usdf-to-ukdf-ral
  inputs.ptc.usdf-to-ukdf-ral
  inputs.bfk.usdf-to-ukdf-ral
  inputs.cti.usdf-to-ukdf-ral
  inputs.sky.usdf-to-ukdf-ral
  inputs.the_monster_20250219.usdf-to-ukdf-ral
  inputs.ps1_pv3_3pi_20170110.usdf-to-ukdf-ral
  inputs.drpc_inputs_manifest.usdf-to-ukdf-ral
  step1d.preliminary_visit_table.usdf-to-frdf
  step1d.preliminary_visit_table.usdf-to-ukdf-lancs
  step1d.preliminary_visit_table.usdf-to-ukdf-ral
  step2e.visit_table.usdf-to-frdf
  step2e.visit_table.usdf-to-ukdf-lancs
  step2e.visit_table.usdf-to-ukdf-ral
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

# The reader of the rules' JSON. `count FILE`: how many (rule, DID) pairs FILE holds;
# `entry FILE K`: the K-th pair as lines: DID, RSE expression, account (may be empty), the
# `rucio rule add` options after the DID, then "."; `existing DID RSES ACCOUNT`: the id of the
# first rule in `rucio rule list --csv` (stdin) of ACCOUNT on DID to exactly RSES.
RULES_PY="$(cat <<'PY'
import json
import re
import sys

CONTROL = re.compile("[\x00-\x1f\x7f]")
RULE_ID = re.compile("^[0-9a-f]{32}$")
# rule key -> `rucio rule add` option (rucio 41.5), in this order (rucio.rule_add_args' order)
OPTIONS = (("copies", "--copies"), ("rse_expression", "--rses"),
           ("grouping", "--grouping"), ("activity", "--activity"),
           ("source_replica_expression", "--source-rses"), ("lifetime", "--lifetime"),
           ("weight", "--weight"), ("locked", "--locked"), ("notify", "--notify"),
           ("delay_injection", "--delay-injection"), ("comment", "--comment"))
FLAGS = (("ask_approval", "--ask-approval"), ("asynchronous", "--asynchronous"))
KNOWN = {"dids", "account"} | {k for k, _ in OPTIONS} | {k for k, _ in FLAGS}


def fail(message):
    sys.stderr.write("error: %s\n" % message)
    sys.exit(1)


def text(where, key, value):
    if key == "locked" and isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        fail("%s: %s must be a string or an integer, not %s" % (where, key, json.dumps(value)))
    value = str(value)
    if CONTROL.search(value):
        fail("%s: %s holds a control character" % (where, key))
    return value


def entries(path):
    try:
        with open(path, encoding="utf-8") as f:
            rules = json.load(f)
    except (OSError, ValueError) as exc:
        fail("cannot read the rules of %s: %s" % (path, exc))
    if not isinstance(rules, list) or not rules:
        fail("%s: not a non-empty list of rules" % path)
    out = []
    for i, rule in enumerate(rules, 1):
        where = "%s: rule %d" % (path, i)
        if not isinstance(rule, dict):
            fail("%s: not an object" % where)
        unknown = sorted(set(rule) - KNOWN)
        if unknown:
            fail("%s: `rucio rule add` cannot set %s" % (where, ", ".join(unknown)))
        for key in ("dids", "rse_expression", "copies"):
            if rule.get(key) is None:
                fail("%s: no %s" % (where, key))
        args = []
        for key, option in OPTIONS:
            if rule.get(key) is not None:
                args += [option, text(where, key, rule[key])]
        for key, option in FLAGS:
            if rule.get(key) is True:
                args.append(option)
            elif rule.get(key) not in (None, False):
                fail("%s: %s must be true or false" % (where, key))
        account = text(where, "account", rule["account"]) if rule.get("account") else ""
        dids = rule["dids"]
        if not isinstance(dids, list) or not dids:
            fail("%s: dids must be a non-empty list" % where)
        for did in dids:
            if not isinstance(did, dict) or set(did) != {"scope", "name"}:
                fail("%s: each DID must be {\"scope\": ..., \"name\": ...}" % where)
            name = text(where, "dids", did["scope"]) + ":" + text(where, "dids", did["name"])
            out.append([name, str(rule["rse_expression"]), account] + args)
    return out


def main(argv):
    if argv[:1] == ["count"] and len(argv) == 2:
        print(len(entries(argv[1])))
    elif argv[:1] == ["entry"] and len(argv) == 3:
        for word in entries(argv[1])[int(argv[2])] + ["."]:
            print(word)
    elif argv[:1] == ["existing"] and len(argv) == 4:
        did, rses, account = argv[1:]
        found = []
        for line in sys.stdin:  # all of it: the writer must not die of a closed pipe
            f = line.rstrip("\n").split(",")
            # id, account, DID, state, RSE expression (may hold commas), copies, size, expires, created
            if (len(f) >= 9 and RULE_ID.match(f[0]) and f[1] == account and f[2] == did
                    and ",".join(f[4:-4]) == rses):
                found.append(f[0])
        if found:
            print(found[0])
    else:
        fail("usage: count FILE | entry FILE K | existing DID RSES ACCOUNT")


main(sys.argv[1:])
PY
)"
rules_py() {
  "$BUTLER_PYTHON" -c "$RULES_PY" "$@"
}

CONFIG_ACCOUNT=""
# Sets CONFIG_ACCOUNT to the account of the Rucio config (asked once).
need_config_account() {
  if [ -n "$CONFIG_ACCOUNT" ]; then return 0; fi
  CONFIG_ACCOUNT="$(rucio whoami | awk -F: '$1 ~ /^account *$/ { gsub(/ /, "", $2); print $2 }')"
  if [ -z "$CONFIG_ACCOUNT" ]; then
    printf 'error: cannot tell the Rucio account (set RUCIO_ACCOUNT)\n' >&2
    exit 1
  fi
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

# apply TRANSFER_ID: every rule of RULES_DIR/<TRANSFER_ID>.rules.json
apply() {
  local id="$1" file n k out did rses account rule_id
  local -a entry rucio_as
  file="$RULES_DIR/$id.rules.json"
  step "datasets and rules of $id ($file)"
  n="$(rules_py count "$file")"
  for ((k = 0; k < n; k++)); do
    out="$(rules_py entry "$file" "$k")"
    mapfile -t entry <<<"$out"
    if [ "${entry[-1]}" != . ]; then
      printf 'error: cannot read rule %s of %s\n' "$k" "$file" >&2
      exit 1
    fi
    unset 'entry[-1]'
    did="${entry[0]}"
    rses="${entry[1]}"
    account="${entry[2]}"
    if [ -n "$RUCIO_ACCOUNT" ]; then
      account="$RUCIO_ACCOUNT"
    elif [ -z "$account" ]; then
      need_config_account
      account="$CONFIG_ACCOUNT"
    fi
    rucio_as=(rucio --account "$account")
    rule_id=""
    if ! "${rucio_as[@]}" did show "$did" >/dev/null 2>&1; then
      run "${rucio_as[@]}" did add --type container "$did"
    else
      rule_id="$("${rucio_as[@]}" rule list --did "$did" --csv | rules_py existing "$did" "$rses" "$account")"
    fi
    if [ -n "$rule_id" ]; then
      printf '%s: %s rule %s (exists)\n' "$id" "$did" "$rule_id"
    elif [ "$DRY_RUN" = 1 ]; then
      run "${rucio_as[@]}" rule add "$did" "${entry[@]:3}"
    else
      rule_id="$("${rucio_as[@]}" rule add "$did" "${entry[@]:3}")"
      printf '%s: %s rule %s (created)\n' "$id" "$did" "$rule_id"
    fi
  done
}

for id in "${KNOWN[@]}"; do
  if selected "$id" "$@"; then apply "$id"; fi
done
