"""`drpc validate` of an include fragment on its own (a `campaigns/sites/<site>.yaml`).

A fragment is a file that is merged under a campaign (CONTRACT 1.1), so on its own it lacks
what the including file supplies. It is recognised by what it does not hold: none of the keys
that make a file a campaign (`apiVersion`, `kind`, `metadata`, `campaign`, `stages`), after its
own includes are merged. A campaign that forgot one of them still holds the others, so it is
validated as a campaign and its missing keys are reported.

A fragment is checked by the same models, secret checks and BPS value checks as a whole
campaign: every value it holds must be valid where it stands, at its line and column. What is
left out is what only the including file can settle: a required key the merge may fill in
(one reached from the top through mappings only; an object inside a list, such as a stage or
a ring, is never merged and keeps its required keys, as in `schema/campaign-fragment.schema.json`)
and the relations between parts (site references, shares, rings), checked where it is included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .errors import Diagnostic, SpecError
from .loader import FieldPath, LoadedCampaign
from .model import Campaign
from .validate import Collector, _scrub, check_bps_values, check_secrets, structural

CAMPAIGN_KEYS = ("apiVersion", "kind", "metadata", "campaign", "stages")
NOT_CHECKED_HERE = "required keys are checked where it is included"


def is_fragment(data: dict[str, Any]) -> bool:
    """True for a file that holds none of the keys that make a file a campaign."""
    return not any(key in data for key in CAMPAIGN_KEYS)


@dataclass(frozen=True)
class FragmentReport:
    sites: int

    @property
    def summary(self) -> str:
        return f"fragment: {self.sites} site(s) valid; {NOT_CHECKED_HERE}"


def _merge_fillable(data: dict[str, Any]) -> set[FieldPath]:
    """Where the models miss a required key that an including file's merge could supply:
    every missing key whose path crosses no list."""
    try:
        Campaign.model_validate(data)
    except ValidationError as exc:
        return {tuple(err["loc"]) for err in exc.errors(include_url=False)
                if err["type"] == "missing"
                and not any(isinstance(part, int) for part in err["loc"])}
    return set()


def validate_fragment(loaded: LoadedCampaign) -> FragmentReport:
    """Check every value of a fragment; raise SpecError with every problem found."""
    out = Collector(loaded)
    secrets = check_secrets(loaded.data, out)
    skip = secrets | check_bps_values(loaded.data, out, secrets)
    structural(loaded, out, skip | _merge_fillable(loaded.data))
    if out.errors:
        raise SpecError(_scrub(sorted(out.items, key=Diagnostic.sort_key), loaded.data, secrets))
    sites = loaded.data.get("sites")
    return FragmentReport(sites=len(sites) if isinstance(sites, dict) else 0)
