"""The Rucio administrator's one-off setup of a campaign: `sites/<central>/rucio/setup-rucio.sh`.

Before any site runs its `apply-rules.sh` and register scripts, the Rucio instance must hold
every scope the campaign's moves register into, and every account that owns a rule must have
quota on the rule's destination RSE (else `rucio rule add` fails with InsufficientAccountLimit).
Both are admin-only operations under Rucio's generic permission policy, on the one Rucio
instance every site talks to; so there is one script, written into the central site's folder
(the site that hosts Rubin's Rucio), run once by the Rucio admin, idempotent, and not one per
site: a per-site split would only make the admin run the same kind of script several times.

What it does (see the script header):
- every scope of `plan.moves` (`Move.rucio_scope`) is created, owned by the account of the
  move's source site (the site that registers into it), unless it exists;
- every (rule account, destination RSE) pair of `plan.moves` gets the local account limit
  LIMIT_BYTES (default `infinity`, which the CLI stores as -1 and Rucio reads back as
  unlimited), unless the account's limit there is that already.

Accounts: a site's rules and registrations run as `sites.<id>.rucio.account`; a site without
one runs them as whatever account its operator's Rucio config names, which only the admin can
tell: `RUCIO_ACCOUNT_<SITE>` overrides every site's account, and empty means the account of
the admin's own config (`rucio whoami`): right when one account runs the whole campaign (as in
the rehearsal), and said in the script's output whenever it is used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .. import paths
from ..plan import Plan
from ..text import json_text
from .common import EnvVar, comment_header, render_template, shell_prelude

__all__ = ["ScopeUse", "SiteAccount", "account_variable", "render", "setup_rucio_path",
           "scopes_of", "limits_of", "site_accounts"]

LIMIT_DEFAULT = "infinity"


def setup_rucio_path(plan: Plan) -> str:
    """Where the script lives: the central site's rucio folder."""
    return paths.setup_rucio(plan.central_site)


def account_variable(site_id: str) -> str:
    """`RUCIO_ACCOUNT_<SITE>`: site ids are `[a-z][a-z0-9-]*`, so this is an identifier and two
    sites never share one."""
    return "RUCIO_ACCOUNT_" + site_id.upper().replace("-", "_")


@dataclass(frozen=True)
class SiteAccount:
    """The account a site's rules and registrations run as (empty: ask at run time)."""

    site: str
    variable: str
    default: str


@dataclass(frozen=True)
class ScopeUse:
    """A scope and the sites that register into it (the first one's account owns it)."""

    scope: str
    sites: tuple[str, ...]


def _source_sites(plan: Plan) -> list[str]:
    used = {m.source for m in plan.moves}
    return [s.id for s in plan.sites if s.id in used]  # in the spec's site order


def site_accounts(plan: Plan) -> list[SiteAccount]:
    """Every site a move leaves from: they own the scopes and the rules."""
    return [SiteAccount(sid, account_variable(sid), plan.site(sid).rucio_account or "")
            for sid in _source_sites(plan)]


def scopes_of(plan: Plan) -> list[ScopeUse]:
    """Every scope of the campaign's moves, sorted, with the sites that register into it: the
    central site first (it sends the raws, the inputs and the scatters), then in site order."""
    order = {sid: i for i, sid in enumerate(_source_sites(plan))}
    users: dict[str, set[str]] = {}
    for m in plan.moves:
        users.setdefault(m.rucio_scope, set()).add(m.source)
    return [ScopeUse(scope, tuple(sorted(sites, key=lambda s: (s != plan.central_site,
                                                                 order[s]))))
            for scope, sites in sorted(users.items())]


def limits_of(plan: Plan) -> list[tuple[str, str]]:
    """(source site, destination RSE) of every move, sorted: the rule's account needs quota
    there. Source RSEs need none (registering replicas is not quota-checked)."""
    return sorted({(m.source, m.destination_rse) for m in plan.moves})


def setup_env(accounts: list[SiteAccount]) -> list[EnvVar]:
    return [
        *(EnvVar(a.variable, a.default,
                 f"the Rucio account {a.site}'s rules and registrations run as (empty: the "
                 "account of this Rucio config)") for a in accounts),
        EnvVar("LIMIT_BYTES", LIMIT_DEFAULT,
               "the local account limit to set on each destination RSE: `infinity` or a "
               "number of bytes"),
        EnvVar("RUCIO_PYTHON", "python3", "a Python with the Rucio client (your `rucio` "
               "CLI's)"),
    ]


def render_setup(plan: Plan) -> bytes:
    accounts = site_accounts(plan)
    what = "Rucio scopes and account limits (run once by the Rucio admin)"
    return render_template(
        "rucio/setup-rucio.sh.j2",
        prelude=shell_prelude(plan, what, setup_env(accounts)),
        plan=plan, accounts=accounts, scopes=scopes_of(plan), limits=limits_of(plan),
        helper=paths.beside(paths.rucio_setup_helper(plan.central_site)),
    )


def setup_data(plan: Plan) -> dict[str, object]:
    """What rucio-setup.py checks: the sites whose accounts send, the scopes (with the sites
    that register into them, the owner's first) and the (site, destination RSE) pairs."""
    return {"sites": [a.site for a in site_accounts(plan)],
            "scopes": [[use.scope, list(use.sites)] for use in scopes_of(plan)],
            "limits": [list(pair) for pair in limits_of(plan)]}


def render_setup_helper(plan: Plan) -> bytes:
    return render_template(
        "rucio/rucio-setup.py.j2",
        header=comment_header(plan, "Rucio scopes and account limits helper of setup-rucio.sh"),
        data=json.dumps(json_text(setup_data(plan)), ensure_ascii=True),
    )


def render(plan: Plan, site: str | None = None) -> dict[str, bytes]:
    """`{sites/<central>/rucio/setup-rucio.sh: ...}` when anything moves (and `site` is None
    or the central site), else nothing."""
    if not plan.moves or site not in (None, plan.central_site):
        return {}
    return {setup_rucio_path(plan): render_setup(plan),
            paths.rucio_setup_helper(plan.central_site): render_setup_helper(plan)}
