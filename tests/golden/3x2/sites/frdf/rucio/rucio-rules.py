# Rucio rules helper of apply-rules.sh at frdf of campaign 'drp-3x2'
# generated - do not edit: drpc 0.1.0 from 3x2.yaml
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
# Exit 1 on a bad rules file or a Rucio error (one line on stderr).
"""The replication rules of a site's transfers: apply (see the header)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys

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
    """A rules file that cannot be applied as it stands, or no Rucio to apply it to."""


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


def one_line(exc):
    """An exception as one short line (Rucio's messages may span several)."""
    return ("%s: %s" % (type(exc).__name__, " ".join(str(exc).split())))[:500]


def command(*argv):
    return " ".join(shlex.quote(a) for a in argv)


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
                from rucio.client import Client

                self.clients[account] = Client(account=account or None)
            except Exception as exc:  # no client library, no config, no server
                if not self.dry_run:
                    raise Failure("cannot use the Rucio client of %s: %s"
                                  % (sys.executable, one_line(exc))) from None
                self.unreadable = one_line(exc)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("apply")
    sub.add_argument("--account", default="")
    sub.add_argument("--dry-run", action="store_true")
    sub.add_argument("--rules-dir", required=True)
    sub.add_argument("transfers", nargs="*")
    args = parser.parse_args()
    if not os.environ.get("RUCIO_ACCOUNT", "x"):
        del os.environ["RUCIO_ACCOUNT"]  # empty: the config's account (the client would take "")
    try:
        return apply(args)
    except Failure as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1
    except Exception as exc:  # the Rucio client's errors: one line, not a traceback
        if type(exc).__module__.split(".")[0] != "rucio":
            raise
        print("error: Rucio refused %s: %s" % (args.command, one_line(exc)), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
