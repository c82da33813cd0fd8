# Rucio rules helper of apply-rules.sh at ukdf-lancs of campaign 'dr1'
# generated - do not edit: drpc 0.1.0 from dr1.yaml
#
# Used by apply-rules.sh beside it: the replication rules of the transfers leaving the site, in
# one Python with the Rucio client (BUTLER_PYTHON: the stack's, whose rucio-register needs the
# client too; RUCIO_CONFIG as for the `rucio` CLI), where each rule took two Python and three
# `rucio` CLI start-ups (~0.7 s of CPU each).
#
#   apply [--account A] [--dry-run] --rules-dir DIR TRANSFER_ID...
#       For each transfer, reads DIR/<id>.rules.json (a list of rules in Rucio's `rule` schema;
#       a key `rucio rule add` cannot set is an error, never skipped), and for each DID of each
#       rule: creates the container unless it exists, then the rule unless a rule of the same
#       account on the same DID to the same RSE expression exists, and prints
#       `<transfer id>: <DID> rule <rule id> (created|exists)`.
#       The account: --account if not empty, else the rule's `account`, else the account of the
#       Rucio config. With --dry-run it still reads Rucio and prints, for what is missing, the
#       `rucio did add` and `rucio rule add` command lines that would make the same (shell-quoted);
#       when Rucio cannot be read, it says so and prints every command.
#
#   wait --did SCOPE:NAME --rses EXPR [--account A] [--rule-id ID] --interval S --timeout S
#        [--dry-run] --transfer ID
#       Finds the rule (ID, else the rule of the account on the DID to exactly EXPR) and polls it
#       every S seconds: OK with a lock for every file of the container's closed datasets ->
#       exit 0 (the count is the sum of the datasets' lengths, which Rucio keeps for a closed
#       dataset: no file is listed; an open dataset means its registration has not finished);
#       STUCK or SUSPENDED -> exit 3 at once, the rule on stderr, its id on stdout; else a line
#       per poll on stderr, and exit 1 after the timeout. With --dry-run: one poll, then the
#       `rucio rule show` command that would poll.
#
# Exit 1 on a bad rules file or a Rucio error (one line on stderr).
"""The replication rules of a site's transfers: apply, wait (see the header)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import time

CONTROL = re.compile("[\x00-\x1f\x7f]")
# rule key -> `rucio rule add` option (rucio 41.5), in this order (rucio.rule_add_args' order)
OPTIONS = (("copies", "--copies"), ("rse_expression", "--rses"),
           ("grouping", "--grouping"), ("activity", "--activity"),
           ("source_replica_expression", "--source-rses"), ("lifetime", "--lifetime"),
           ("weight", "--weight"), ("locked", "--locked"), ("notify", "--notify"),
           ("delay_injection", "--delay-injection"), ("comment", "--comment"))
FLAGS = (("ask_approval", "--ask-approval"), ("asynchronous", "--asynchronous"))
KNOWN = {"dids", "account"} | {k for k, _ in OPTIONS} | {k for k, _ in FLAGS}
INTEGERS = ("copies", "lifetime", "delay_injection")  # what `rucio rule add` reads as int
CHOICES = {"grouping": ("DATASET", "ALL", "NONE"), "notify": ("Y", "N", "C")}


class Failure(Exception):
    """What stops the command: said in one line on stderr, exit 1."""


def one_line(exc):
    """An exception as one short line (Rucio's messages may span several)."""
    return ("%s: %s" % (type(exc).__name__, " ".join(str(exc).split())))[:500]


def command(*argv):
    return " ".join(shlex.quote(a) for a in argv)


def make_client(account):
    """The Rucio client of `account` (empty: the config's)."""
    try:
        from rucio.client import Client

        return Client(account=account or None)
    except Exception as exc:  # no client library, no config, no server
        raise Failure("cannot use the Rucio client of %s: %s"
                      % (sys.executable, one_line(exc))) from None


def drop_empty_account():
    """An empty RUCIO_ACCOUNT means the config's account; the client would take it as ""."""
    if not os.environ.get("RUCIO_ACCOUNT", "x"):
        del os.environ["RUCIO_ACCOUNT"]


def is_rucio_error(exc):
    return type(exc).__module__.split(".")[0] == "rucio"


def text(where, key, value):
    if key == "locked" and isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Failure("%s: %s must be a string or an integer, not %s"
                       % (where, key, json.dumps(value)))
    value = str(value)
    if CONTROL.search(value):
        raise Failure("%s: %s holds a control character" % (where, key))
    return value


def client_value(where, key, value):
    """The value the `rucio rule add` option would pass to the client for this rule key."""
    if key in INTEGERS:
        if not re.fullmatch(r"-?[0-9]+", value):
            raise Failure("%s: %s must be an integer, not %s" % (where, key, value))
        return int(value)
    if key in CHOICES and value not in CHOICES[key]:
        raise Failure("%s: %s must be one of %s, not %s"
                       % (where, key, ", ".join(CHOICES[key]), value))
    if key == "locked":
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise Failure("%s: locked must be true or false, not %s" % (where, value))
        return value.lower() in ("true", "1", "yes")
    return value


class Entry:
    """One (rule, DID) pair: what `rucio rule add DID ...` takes, as options and as arguments."""

    def __init__(self, scope, name, account, args, kwargs):
        self.scope, self.name, self.account = scope, name, account
        self.did = "%s:%s" % (scope, name)
        self.args, self.kwargs = args, kwargs
        self.rse_expression = kwargs["rse_expression"]


def entries(path):
    try:
        with open(path, encoding="utf-8") as f:
            rules = json.load(f)
    except (OSError, ValueError) as exc:
        raise Failure("cannot read the rules of %s: %s" % (path, exc)) from None
    if not isinstance(rules, list) or not rules:
        raise Failure("%s: not a non-empty list of rules" % path)
    out = []
    for i, rule in enumerate(rules, 1):
        where = "%s: rule %d" % (path, i)
        if not isinstance(rule, dict):
            raise Failure("%s: not an object" % where)
        unknown = sorted(set(rule) - KNOWN)
        if unknown:
            raise Failure("%s: `rucio rule add` cannot set %s" % (where, ", ".join(unknown)))
        for key in ("dids", "rse_expression", "copies"):
            if rule.get(key) is None:
                raise Failure("%s: no %s" % (where, key))
        args, kwargs = [], {}
        for key, option in OPTIONS:
            if rule.get(key) is not None:
                value = text(where, key, rule[key])
                args += [option, value]
                kwargs[key] = client_value(where, key, value)
        for key, option in FLAGS:
            if rule.get(key) is True:
                args.append(option)
                kwargs[key] = True
            elif rule.get(key) not in (None, False):
                raise Failure("%s: %s must be true or false" % (where, key))
        account = text(where, "account", rule["account"]) if rule.get("account") else ""
        dids = rule["dids"]
        if not isinstance(dids, list) or not dids:
            raise Failure("%s: dids must be a non-empty list" % where)
        for did in dids:
            if not isinstance(did, dict) or set(did) != {"scope", "name"}:
                raise Failure("%s: each DID must be {\"scope\": ..., \"name\": ...}" % where)
            out.append(Entry(text(where, "dids", did["scope"]), text(where, "dids", did["name"]),
                             account, args, kwargs))
    return out


class Rucio:
    """The Rucio client of each account, made when first needed; under a dry run, a Rucio that
    cannot be read is said once and taken as holding nothing."""

    def __init__(self, dry_run):
        self.dry_run = dry_run
        self.clients = {}
        self.unreadable = None

    def client(self, account):
        if self.unreadable is not None:
            return None
        if account not in self.clients:
            try:
                self.clients[account] = make_client(account)
            except Failure as exc:
                if not self.dry_run:
                    raise
                self.unreadable = str(exc)
                print("warning: cannot read Rucio (%s); DRY_RUN: every command printed as if "
                      "nothing existed" % self.unreadable, file=sys.stderr)
                return None
        return self.clients[account]

    def config_account(self):
        client = self.client("")
        account = getattr(client, "account", None) if client is not None else None
        if not account:
            raise Failure("cannot tell the Rucio account (set RUCIO_ACCOUNT)")
        return account


def apply_one(rucio, transfer, entry, account, dry_run):
    client = rucio.client(account)
    exists = False
    if client is not None:
        from rucio.common.exception import DataIdentifierNotFound

        try:
            client.get_did(entry.scope, entry.name)
            exists = True
        except DataIdentifierNotFound:
            pass
    rule_id = None
    if exists:
        rule_id = next((r["id"] for r in client.list_did_rules(entry.scope, entry.name)
                        if r["account"] == account
                        and r["rse_expression"] == entry.rse_expression), None)
    elif dry_run:
        print(command("rucio", "--account", account, "did", "add", "--type", "container",
                      entry.did))
    else:
        client.add_container(entry.scope, entry.name)
        print("Added %s" % entry.did, file=sys.stderr)
    if rule_id is not None:
        print("%s: %s rule %s (exists)" % (transfer, entry.did, rule_id))
    elif dry_run:
        print(command("rucio", "--account", account, "rule", "add", entry.did, *entry.args))
    else:
        [rule_id] = client.add_replication_rule(
            dids=[{"scope": entry.scope, "name": entry.name}], **entry.kwargs)
        print("%s: %s rule %s (created)" % (transfer, entry.did, rule_id))


def apply(args):
    rucio = Rucio(args.dry_run)
    for transfer in args.transfers:
        path = os.path.join(args.rules_dir, transfer + ".rules.json")
        print("==> datasets and rules of %s (%s)" % (transfer, path), file=sys.stderr)
        for entry in entries(path):
            account = args.account or entry.account or rucio.config_account()
            apply_one(rucio, transfer, entry, account, args.dry_run)
    return 0


def did_of(text):
    scope, sep, name = text.partition(":")
    if not sep or not scope or not name:
        raise Failure("%r is not SCOPE:NAME" % text)
    return scope, name


def find_rule(client, args, scope, name):
    """The rule's id: --rule-id, else the account's rule on the DID to exactly --rses."""
    if args.rule_id:
        return args.rule_id
    account = args.account or client.account
    from rucio.common.exception import DataIdentifierNotFound

    try:  # a DID that does not exist yet has no rule either
        rules = list(client.list_did_rules(scope, name))
    except DataIdentifierNotFound:
        rules = []
    for rule in rules:
        if rule["account"] == account and rule["rse_expression"] == args.rses:
            return rule["id"]
    raise Failure("no rule of account %s on %s to %s: register the datasets and run "
                  "apply-rules.sh %s first" % (account, args.did, args.rses, args.transfer))


def count_files(client, scope, name):
    """(datasets, open datasets, files in the closed ones) of the container."""
    datasets = opened = files = 0
    for child in client.list_content(scope, name):
        did = client.get_did(child["scope"], child["name"])
        datasets += 1
        if did.get("open"):
            opened += 1
        else:
            files += int(did.get("length") or 0)
    return datasets, opened, files


RULE_FIELDS = ("id", "account", "scope", "name", "rse_expression", "state", "error",
               "locks_ok_cnt", "locks_replicating_cnt", "locks_stuck_cnt", "created_at",
               "updated_at", "expires_at")


def wait(args):
    scope, name = did_of(args.did)
    client = make_client(args.account)
    rule_id = find_rule(client, args, scope, name)
    print("==> wait for rule %s" % rule_id, file=sys.stderr)
    start = time.monotonic()
    while True:
        rule = client.get_replication_rule(rule_id)
        state = str(rule["state"])
        locked = int(rule["locks_ok_cnt"])
        locks = "%d/%d/%d" % (locked, rule["locks_replicating_cnt"], rule["locks_stuck_cnt"])
        elapsed = int(time.monotonic() - start)
        if state == "OK":
            # Files attached after the rule was made get their locks only when Rucio
            # re-evaluates the rule: until then it says OK with fewer locks than files.
            datasets, opened, files = count_files(client, scope, name)
            if opened:
                state = ("OK for %d file(s), but %d of %d dataset(s) still open (registration "
                         "not finished)" % (locked, opened, datasets))
            elif locked >= files:
                print("rule %s of %s: OK, %d of %d file(s) in %d dataset(s) at %s, after %ds"
                      % (rule_id, args.did, locked, files, datasets, args.rses, elapsed))
                return 0
            else:
                state = ("OK for %d of %d file(s) (Rucio has not re-evaluated the rule yet)"
                         % (locked, files))
        elif state in ("STUCK", "SUSPENDED"):
            print("error: rule %s of %s to %s is %s (locks OK/REPLICATING/STUCK %s)"
                  % (rule_id, args.did, args.rses, state, locks), file=sys.stderr)
            for field in RULE_FIELDS:
                print("  %s: %s" % (field, rule.get(field)), file=sys.stderr)
            print(rule_id)  # for the caller's `rucio rule show --examine`
            return 3
        print("rule %s: %s (locks OK/REPLICATING/STUCK %s), %ds elapsed"
              % (rule_id, state, locks, elapsed), file=sys.stderr)
        if args.dry_run:
            print("rule %s of %s: %s (locks OK/REPLICATING/STUCK %s); would poll every %ds for "
                  "up to %ds:" % (rule_id, args.did, state, locks, args.interval, args.timeout))
            account = ["--account", args.account] if args.account else []
            print(command("rucio", *account, "rule", "show", rule_id))
            return 0
        if elapsed >= args.timeout:
            print("error: timed out after %ds (WAIT_TIMEOUT=%d): rule %s of %s to %s is still %s "
                  "(locks OK/REPLICATING/STUCK %s)" % (elapsed, args.timeout, rule_id, args.did,
                                                       args.rses, state, locks), file=sys.stderr)
            return 1
        time.sleep(args.interval)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("apply")
    sub.add_argument("--account", default="")
    sub.add_argument("--dry-run", action="store_true")
    sub.add_argument("--rules-dir", required=True)
    sub.add_argument("transfers", nargs="*")
    sub = commands.add_parser("wait")
    sub.add_argument("--did", required=True)
    sub.add_argument("--rses", required=True)
    sub.add_argument("--account", default="")
    sub.add_argument("--rule-id", default="")
    sub.add_argument("--interval", type=int, required=True)
    sub.add_argument("--timeout", type=int, required=True)
    sub.add_argument("--dry-run", action="store_true")
    sub.add_argument("--transfer", required=True)
    args = parser.parse_args()
    drop_empty_account()
    try:
        return {"apply": apply, "wait": wait}[args.command](args)
    except Failure as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1
    except Exception as exc:  # the Rucio client's errors: one line, not a traceback
        if not is_rucio_error(exc):
            raise
        print("error: Rucio refused %s: %s" % (args.command, one_line(exc)), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
