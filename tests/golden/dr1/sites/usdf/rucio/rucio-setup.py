# Rucio scopes and account limits helper of setup-rucio.sh of campaign 'dr1'
# generated - do not edit: drpc 0.1.0 from dr1.yaml
#
# Used by setup-rucio.sh beside it: the Rucio admin's scopes and account limits of the campaign,
# in one Python with the Rucio client (RUCIO_PYTHON; RUCIO_CONFIG as for the `rucio` CLI), where
# each check and change took a `rucio` CLI start-up (~0.7 s of CPU each, a dozen per run).
#
#   --limit inf|BYTES --site-account SITE=ACCOUNT... [--dry-run]
#       1. each site's account exists (empty: the account of this Rucio config, said on
#          stderr); prints `account of SITE: ACCOUNT`;
#       2. each scope of the campaign exists, owned by the account of the first site that
#          registers into it (a scope owned by another account is left as it is, with a
#          warning); prints `scope SCOPE (owner ACCOUNT): exists|created|to be created`;
#       3. each (site account, destination RSE) has the local account limit --limit (`inf`:
#          unlimited, stored as -1); prints `limit of ACCOUNT on RSE: LIMIT (exists|set; was
#          OLD|to be set; now OLD)`;
#       then `N changes` (with --dry-run: `N changes to make (DRY_RUN=1: none made)`, after the
#       `rucio scope add` and `rucio account limit set` command lines that would make them).
#
# Exit 1 on a missing account or a Rucio error (one line on stderr).
"""The Rucio scopes and account limits of a campaign (see the header)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

# The scopes (each with the sites that register into it, the owner's first) and the
# (site, destination RSE) pairs whose rules need quota, from the campaign's plan.
PLAN = json.loads("{\"limits\": [[\"frdf\", \"SLAC_BUTLER_DISK\"], [\"ukdf-lancs\", \"SLAC_BUTLER_DISK\"], [\"ukdf-ral\", \"SLAC_BUTLER_DISK\"], [\"usdf\", \"IN2P3_BUTLER_DISK\"], [\"usdf\", \"IN2P3_RAW_DISK\"], [\"usdf\", \"LANCS_BUTLER_DISK\"], [\"usdf\", \"LANCS_RAW_DISK\"], [\"usdf\", \"RAL_BUTLER_DISK\"], [\"usdf\", \"RAL_RAW_DISK\"]], \"scopes\": [[\"drp\", [\"usdf\", \"frdf\", \"ukdf-lancs\", \"ukdf-ral\"]]], \"sites\": [\"usdf\", \"frdf\", \"ukdf-lancs\", \"ukdf-ral\"]}")


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


OUTSIDE = "an account outside the campaign"


def step(what):
    print("==> %s" % what, file=sys.stderr)


def shown(limit):
    """A limit as the script's lines show it: `unlimited`, `none` or `N bytes`."""
    if limit is None:
        return "none"
    if limit == float("inf") or limit == -1:
        return "unlimited"
    return "%d bytes" % limit


def read_limit(client, account, rse):
    """The local limit of the account on the RSE: inf, a number of bytes, or None (no limit)."""
    value = client.get_local_account_limit(account, rse).get(rse)
    if value is None:
        return None
    value = float(value)
    return float("inf") if value == float("inf") or value < 0 else int(value)


def site_accounts(client, given):
    """{site: account}: the given one, else this config's (said on stderr); each must exist."""
    step("the accounts of the sites")
    accounts = {}
    mine = None
    for site in PLAN["sites"]:
        account = given.get(site, "")
        if not account:
            if mine is None:
                mine = client.whoami()["account"]
            account = mine
            print("note: no account given for %s: its rules and registrations are taken to run "
                  "as %s (this config's account)" % (site, account), file=sys.stderr)
        try:
            client.get_account(account)
        except Exception as exc:
            if not is_rucio_error(exc):
                raise
            raise Failure("Rucio account %s (of %s) does not exist or cannot be read: create "
                          "it, or name another one (%s)" % (account, site, one_line(exc))
                          ) from None
        print("account of %s: %s" % (site, account))
        accounts[site] = account
    return accounts


def scope_owners(client, accounts):
    """{scope: owner} of every scope. A Rucio server or client older than 40 cannot list the
    owners: then each existing scope's owner is looked for among the campaign's accounts."""
    try:
        return {s["scope"]: s["account"] for s in client.list_scope_owners()}
    except Exception as exc:  # no such call in this client, or not on this server
        if not isinstance(exc, AttributeError) and not is_rucio_error(exc):
            raise
    from rucio.common.exception import ScopeNotFound

    owners = dict.fromkeys(client.list_scopes(), OUTSIDE)
    for account in sorted(set(accounts.values())):
        try:
            owned = client.list_scopes_for_account(account)
        except ScopeNotFound:  # the account owns none
            owned = []
        for scope in owned:
            owners[scope] = account
    return owners


def ensure_scopes(client, accounts, dry_run):
    step("list the scopes")
    owners = scope_owners(client, accounts)
    changes = 0
    for scope, sites in PLAN["scopes"]:
        step("scope %s" % scope)
        owner = accounts[sites[0]]
        for site in sites:
            if accounts[site] != owner:
                print("warning: scope %s is registered into by %s (account %s) but owned by %s: "
                      "only its owner and admin accounts may add DIDs to it"
                      % (scope, site, accounts[site], owner), file=sys.stderr)
        current = owners.get(scope)
        if current is not None:
            if current != owner:
                print("warning: scope %s exists, owned by %s, not %s: left as it is (rucio scope "
                      "update %s --account %s to change it)"
                      % (scope, current, owner, scope, owner), file=sys.stderr)
            print("scope %s (owner %s): exists" % (scope, current))
            continue
        changes += 1
        if dry_run:
            print(command("rucio", "scope", "add", scope, "--account", owner))
            print("scope %s (owner %s): to be created" % (scope, owner))
            continue
        try:
            client.add_scope(owner, scope)
        except Exception as exc:
            if not is_rucio_error(exc):
                raise
            raise Failure("scope %s was not created: %s" % (scope, one_line(exc))) from None
        print("scope %s (owner %s): created" % (scope, owner))
    return changes


def ensure_limits(client, accounts, want, dry_run):
    changes = 0
    done = set()
    for site, rse in PLAN["limits"]:
        account = accounts[site]
        if (account, rse) in done:
            continue
        done.add((account, rse))
        step("limit of %s on %s" % (account, rse))
        current = read_limit(client, account, rse)
        if current == want:
            print("limit of %s on %s: %s (exists)" % (account, rse, shown(want)))
            continue
        changes += 1
        if dry_run:
            print(command("rucio", "account", "limit", "set", account, "--rse", rse, "--bytes",
                          "infinity" if want == float("inf") else str(want)))
            print("limit of %s on %s: %s (to be set; now %s)"
                  % (account, rse, shown(want), shown(current)))
            continue
        client.set_local_account_limit(account, rse, -1 if want == float("inf") else want)
        now = read_limit(client, account, rse)
        if now != want:
            raise Failure("the limit of %s on %s reads %s after setting it to %s"
                          % (account, rse, shown(now), shown(want)))
        print("limit of %s on %s: %s (set; was %s)" % (account, rse, shown(want), shown(current)))
    return changes


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", required=True)
    parser.add_argument("--site-account", action="append", default=[])
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    want = float("inf") if args.limit == "inf" else int(args.limit)
    given = dict(pair.split("=", 1) for pair in args.site_account)
    drop_empty_account()
    try:
        client = make_client("")
        accounts = site_accounts(client, given)
        changes = ensure_scopes(client, accounts, args.dry_run)
        changes += ensure_limits(client, accounts, want, args.dry_run)
    except Failure as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1
    except Exception as exc:  # the Rucio client's errors: one line, not a traceback
        if not is_rucio_error(exc):
            raise
        print("error: Rucio refused the setup: %s" % one_line(exc), file=sys.stderr)
        return 1
    if args.dry_run:
        print("%d changes to make (DRY_RUN=1: none made)" % changes)
    else:
        print("%d changes" % changes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
