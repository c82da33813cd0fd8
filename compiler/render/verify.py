"""Destination-side checks of every transfer: `sites/<dst>/verify/<transfer>.sh` (CONTRACT 3).

What was sent is the files of the datasets of the move's Rucio container (listed once with the
Rucio client, as `rucio did content list` would, by the Python that compares): exactly what the
rule replicates, every site can read it, and nothing has to be copied between sites. The check
of what arrived is a Butler query at the destination (butler-arrived.py, run by BUTLER_PYTHON):
every sent file must be the file of a dataset of the transfer's type in a RUN collection under
the producer's output (ctrl_ingestd keeps each dataset's source RUN). Matching is by path: a
DID name is the file's path under the source datastore root, which ctrl_ingestd ingests at the
same relative path, so the check names each missing file and needs no copy of the source
manifest. Once everything has arrived, the arrived RUNs not yet in the transfer's incoming
CHAINED collection are appended to it, by the same Python (as `butler collection-chain --mode
extend` would; one stack start-up per check, not one per chain): idempotent.
"""

from __future__ import annotations

from .. import paths
from ..plan import Move, Plan, SitePlan
from .common import EnvVar, comment_header, render_template, shell_prelude


def verify_env(site: SitePlan, move: Move | None = None) -> list[EnvVar]:
    # A default calibration type the central site's collection lacks sends nothing on purpose.
    empty_ok = move is not None and move.may_be_empty
    return [
        EnvVar("BUTLER_REPO", site.butler_repo, f"the Butler repository at {site.id}"),
        EnvVar("BUTLER_PYTHON", "python3",
               "a Python with lsst.daf.butler and the Rucio client (the stack's)"),
        EnvVar("RUCIO_ACCOUNT", site.rucio_account or "",
               "Rucio account to read with (empty: the account of your Rucio config)"),
        EnvVar("ALLOW_EMPTY", "1" if empty_ok else "0",
               "1 accepts a transfer that sent nothing" + (
                   " (default here: one of the instrument's usual calibrations, which the "
                   "central site's collection may not hold)" if empty_ok else "")),
    ]


def render_verify(plan: Plan, move: Move) -> bytes:
    site = plan.site(move.destination)
    what = f"arrival check of transfer {move.id} at {site.id}"
    return render_template(
        "verify/verify.sh.j2",
        prelude=shell_prelude(plan, what, verify_env(site, move)),
        plan=plan, site=site, move=move,
        helper=paths.beside(paths.arrived_helper(site.id)),
    )


def render(plan: Plan, site: str | None = None) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for s in plan.sites_to_render(site):
        incoming = plan.incoming(s.id)
        if not incoming:
            continue
        files[paths.arrived_helper(s.id)] = render_template(
            "verify/butler-arrived.py.j2",
            header=comment_header(plan, f"Butler arrival check of the verify scripts at {s.id}"),
        )
        for m in incoming:
            files[paths.verify_script(m)] = render_verify(plan, m)
    return files


__all__ = ["render"]
