"""Validation of a loaded campaign: secrets, structure (pydantic), then semantics.

Every problem is collected and reported at once, each at the file, line and column that
holds it, with a hint where one helps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import Diagnostic, SpecError, did_you_mean
from .loader import FieldPath, LoadedCampaign
from .defaults import RUCIO_SCOPE_MAX
from .model import Campaign
from .naming import ingestd_topic
from .plan import Plan
from .sky import assign_tracts, footprint_of, known_skymaps, ring_bands, resolve_skymap

SECRET_KEY = re.compile(r"(pass(word|wd)?|token|secret|api[_-]?key|credentials?)$", re.IGNORECASE)
# Keys that name a secret (by reference) rather than hold one.
SECRET_REFERENCE_KEYS = frozenset({"butler_secret"})
URI_WITH_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@")
ENV_REFERENCE = re.compile(r"^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$")
SHARE_TOLERANCE = 0.001


def dotted(path: FieldPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class Collector:
    """Gathers diagnostics with positions from the campaign's source map."""

    def __init__(self, loaded: LoadedCampaign) -> None:
        self.loaded = loaded
        self.items: list[Diagnostic] = []

    def error(self, path: FieldPath, message: str, hint: str | None = None, *, key: bool = False) -> None:
        self.items.append(Diagnostic("error", dotted(path), message,
                                     self.loaded.source.locate(path, key=key), hint))

    def warning(self, path: FieldPath, message: str, hint: str | None = None) -> None:
        self.items.append(Diagnostic("warning", dotted(path), message, self.loaded.source.locate(path), hint))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]


# -- secrets --------------------------------------------------------------------------------------

def _walk(node: Any, path: FieldPath = ()) -> Iterator[tuple[FieldPath, Any]]:
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, path + (i,))


def check_secrets(data: dict[str, Any], out: Collector) -> set[FieldPath]:
    """Reject literal secrets; return the paths reported, so no 'unknown key' repeats them."""
    reported: set[FieldPath] = set()
    for path, value in _walk(data):
        if isinstance(value, str) and URI_WITH_PASSWORD.match(value):
            out.error(path, "a URI with a password; specs hold no secrets",
                      "drop the password: PostgreSQL credentials come from ~/.lsst/db-auth.yaml or "
                      "PGPASSWORD at the site, mounted from a Kubernetes Secret for ctrl_ingestd")
            reported.add(path)
        key = path[-1] if path and isinstance(path[-1], str) else None
        if key and key not in SECRET_REFERENCE_KEYS and SECRET_KEY.search(key):
            if value is not None and not (isinstance(value, str) and ENV_REFERENCE.match(value)) \
                    and not isinstance(value, (dict, list)):
                out.error(path, f"'{key}' holds a literal secret; specs hold no secrets",
                          "store it in a Kubernetes Secret (name it with ingestd.butler_secret) "
                          "or an environment variable, and refer to it by name", key=True)
                reported.add(path)
    return reported


# -- structure --------------------------------------------------------------------------------------

def _inner_model(annotation: Any) -> Any:
    """Unwrap Optional/list/dict/Annotated to the model inside, if any."""
    from typing import get_args, get_origin
    stack = [annotation]
    while stack:
        a = stack.pop()
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
        origin = get_origin(a)
        args = get_args(a)
        if origin is dict and len(args) == 2:
            return _DictOf(_inner_model(args[1]))
        stack.extend(reversed(args))
    return None


class _DictOf:
    def __init__(self, inner: Any) -> None:
        self.inner = inner


def _allowed_keys(path: FieldPath) -> list[str]:
    model: Any = Campaign
    for part in path:
        if isinstance(part, int):
            continue
        if isinstance(model, _DictOf):
            model = model.inner
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = _inner_model(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _literal_hint(err: dict[str, Any]) -> str | None:
    expected = (err.get("ctx") or {}).get("expected")
    return f"allowed: {expected}" if expected else None


def structural(loaded: LoadedCampaign, out: Collector, skip: set[FieldPath]) -> Campaign | None:
    try:
        return Campaign.model_validate(loaded.data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc: FieldPath = tuple(err["loc"])
            if loc and loc[-1] == "[key]":
                loc = loc[:-1]
                out.error(loc, f"invalid name '{loc[-1]}': {_pattern_message(err)}",
                          "names are lowercase letters, digits and '-', starting with a letter, "
                          "at most 40 characters", key=True)
                continue
            if loc in skip:
                continue
            etype = err["type"]
            if etype == "extra_forbidden":
                key = str(loc[-1])
                out.error(loc, f"unknown key '{key}'", did_you_mean(key, _allowed_keys(loc[:-1])), key=True)
            elif etype == "missing":
                out.error(loc[:-1], f"required field '{loc[-1]}' is missing", key=True)
                out.items[-1] = Diagnostic("error", dotted(loc), out.items[-1].message,
                                           out.items[-1].position, None)
            elif etype == "literal_error":
                value = err.get("input")
                hint = None
                expected = (err.get("ctx") or {}).get("expected", "")
                allowed = re.findall(r"'([^']*)'", expected)
                if isinstance(value, str) and allowed:
                    hint = did_you_mean(value, allowed)
                out.error(loc, f"{value!r} is not allowed; expected {expected}", hint)
            elif etype == "string_pattern_mismatch":
                out.error(loc, f"{err.get('input')!r} {_pattern_message(err)}")
            else:
                out.error(loc, _clean(err["msg"]), _literal_hint(err) if etype.startswith("enum") else None)
        return None


def _pattern_message(err: dict[str, Any]) -> str:
    pattern = (err.get("ctx") or {}).get("pattern")
    return f"does not match the pattern {pattern}" if pattern else _clean(err["msg"])


def _clean(msg: str) -> str:
    return msg[0].lower() + msg[1:] if msg else msg


# -- semantics --------------------------------------------------------------------------------------

def semantic(spec: Campaign, out: Collector) -> None:
    sites = sorted(spec.sites)
    site_hint = lambda name: did_you_mean(name, sites)  # noqa: E731

    def site_ref(path: FieldPath, name: str) -> bool:
        if name in spec.sites:
            return True
        out.error(path, f"unknown site '{name}'", site_hint(name))
        return False

    site_ref(("campaign", "central_site"), spec.campaign.central_site)
    for sid, site in spec.sites.items():
        if site.rucio.scope is None and len(spec.metadata.name) > RUCIO_SCOPE_MAX:
            out.error(("sites", sid, "rucio"), f"no rucio.scope, and the campaign name '{spec.metadata.name}' "
                      f"is longer than a Rucio scope may be ({RUCIO_SCOPE_MAX} characters)",
                      "set sites.<site>.rucio.scope")

    # stages
    stage_index: dict[str, int] = {}
    for i, stage in enumerate(spec.stages):
        if stage.name in stage_index:
            out.error(("stages", i, "name"), f"duplicate stage name '{stage.name}'",
                      f"first declared as stages[{stage_index[stage.name]}]")
        else:
            stage_index[stage.name] = i
    stage_names = list(stage_index)

    # datasets
    seen_types: dict[str, int] = {}
    for i, ds in enumerate(spec.datasets):
        base = ("datasets", i)
        if ds.type in seen_types:
            out.error(base + ("type",), f"dataset type '{ds.type}' is declared twice",
                      f"first declared as datasets[{seen_types[ds.type]}]")
        seen_types.setdefault(ds.type, i)
        if len(set(ds.dimensions)) != len(ds.dimensions):
            out.error(base + ("dimensions",), "a dimension is listed twice")
        producer = stage_index.get(ds.produced_by)
        if producer is None:
            out.error(base + ("produced_by",), f"unknown stage '{ds.produced_by}'",
                      did_you_mean(ds.produced_by, stage_names))
        for j, consumer in enumerate(ds.consumed_by):
            cpath = base + ("consumed_by", j)
            ci = stage_index.get(consumer)
            if ci is None:
                out.error(cpath, f"unknown stage '{consumer}'", did_you_mean(consumer, stage_names))
            elif producer is not None and ci <= producer:
                out.error(cpath, f"stage '{consumer}' does not run after the producer '{ds.produced_by}'",
                          "a dataset is consumed only by stages listed after its producer")

    # skymap and sky
    skymap = resolve_skymap(spec)
    if skymap is None:
        out.error(("campaign", "skymap"), f"unknown skymap '{spec.campaign.skymap}'",
                  did_you_mean(spec.campaign.skymap, known_skymaps(spec)) or
                  "declare a ring skymap under `skymaps:`")
    fp = footprint_of(spec)
    if fp.dec_min >= fp.dec_max:
        out.error(("sky", "footprint"), f"dec_min ({fp.dec_min:g}) must be below dec_max ({fp.dec_max:g})")
    assignment = spec.sky.assignment
    apath: FieldPath = ("sky", "assignment")
    if (assignment.rings is None) == (assignment.tracts is None):
        out.error(apath, "give exactly one of `rings` or `tracts`",
                  "rings assign declination bands; tracts list each site's tract ids")
        return
    n_before = len(out.errors)
    if assignment.rings is not None:
        _check_rings(spec, out)
    else:
        _check_tract_lists(spec, out, skymap)
    if len(out.errors) > n_before or skymap is None:
        return
    ownership = assign_tracts(spec, skymap)
    for site in sites:
        if not any(s == site for s in ownership.owner.values()):
            out.error(("sites", site), f"site '{site}' owns no tract of the footprint",
                      "give it a ring or a tract list, or remove the site", key=True)
    total_share = sum(s.share for s in spec.sites.values())
    if abs(total_share - 1.0) > SHARE_TOLERANCE:
        out.error(("sites",), f"site shares sum to {total_share:.4f}, not 1",
                  "shares are fractions of the whole campaign; make them add up to 1 (within 0.001)", key=True)
    for i, cc in enumerate(spec.sky.cross_check):
        path = ("sky", "cross_check", i)
        if not site_ref(path + ("also_at",), cc.also_at):
            continue
        if not skymap.is_valid_tract(cc.tract):
            out.error(path + ("tract",), f"tract {cc.tract} is not in skymap '{skymap.name}'",
                      f"valid ids: 0..{skymap.tract_count() - 1}")
            continue
        owner = ownership.owner.get(cc.tract)
        if owner is None:
            out.error(path + ("tract",), f"tract {cc.tract} is not one of the campaign's tracts",
                      "a cross-check tract must be owned by a site")
        elif owner == cc.also_at:
            out.error(path + ("also_at",), f"tract {cc.tract} is already owned by '{owner}'",
                      "also_at names a second site, other than the owner")


def _check_rings(spec: Campaign, out: Collector) -> None:
    rings = spec.sky.assignment.rings or []
    fp = footprint_of(spec)
    if not rings:
        out.error(("sky", "assignment", "rings"), "no rings given")
        return
    for i, ring in enumerate(rings):
        if ring.site not in spec.sites:
            out.error(("sky", "assignment", "rings", i, "site"), f"unknown site '{ring.site}'",
                      did_you_mean(ring.site, spec.sites))
    bands = ring_bands(spec)
    prev_max: float | None = None
    for i, (ring, band) in enumerate(zip(rings, bands)):
        path = ("sky", "assignment", "rings", i)
        if band.dec_min >= band.dec_max:
            out.error(path + ("dec_max",), f"ring {i + 1} is empty or reversed: dec {band.dec_min:g} .. {band.dec_max:g}",
                      "rings are listed south to north with increasing dec_max")
        if prev_max is not None and ring.dec_min is not None:
            if ring.dec_min < prev_max:
                out.error(path + ("dec_min",), f"ring {i + 1} overlaps ring {i}: it starts at {ring.dec_min:g}, "
                          f"below the previous dec_max {prev_max:g}")
            elif ring.dec_min > prev_max:
                out.error(path + ("dec_min",), f"gap between ring {i} and ring {i + 1}: "
                          f"dec {prev_max:g} .. {ring.dec_min:g} is in no ring")
        prev_max = band.dec_max
    if bands[0].dec_min > fp.dec_min:
        out.error(("sky", "assignment", "rings", 0, "dec_min"),
                  f"the rings start at dec {bands[0].dec_min:g}, north of the footprint's dec_min {fp.dec_min:g}",
                  "the rings must cover the footprint with no gap")
    if bands[-1].dec_max < fp.dec_max:
        out.error(("sky", "assignment", "rings", len(rings) - 1, "dec_max"),
                  f"the rings end at dec {bands[-1].dec_max:g}, south of the footprint's dec_max {fp.dec_max:g}",
                  "the rings must cover the footprint with no gap")


def _check_tract_lists(spec: Campaign, out: Collector, skymap: Any) -> None:
    lists = spec.sky.assignment.tracts or {}
    first_owner: dict[int, tuple[str, int]] = {}
    fp = spec.sky.footprint
    for site in lists:
        base = ("sky", "assignment", "tracts", site)
        if site not in spec.sites:
            out.error(base, f"unknown site '{site}'", did_you_mean(site, spec.sites), key=True)
        for j, tract in enumerate(lists[site]):
            path = base + (j,)
            if skymap is not None and not skymap.is_valid_tract(tract):
                out.error(path, f"tract {tract} is not in skymap '{skymap.name}'",
                          f"valid ids: 0..{skymap.tract_count() - 1}")
                continue
            if tract in first_owner:
                other, k = first_owner[tract]
                where = f"sky.assignment.tracts.{other}[{k}]"
                out.error(path, f"tract {tract} is assigned to two sites ('{other}' and '{site}')",
                          f"already listed at {where}")
                continue
            first_owner[tract] = (site, j)
            if skymap is not None and fp is not None:
                dec = skymap.tract_center(tract)[1]
                if not (fp.dec_min <= dec <= fp.dec_max):
                    out.error(path, f"tract {tract} (centre dec {dec:.4f}) lies outside the footprint "
                              f"dec {fp.dec_min:g} .. {fp.dec_max:g}")


def validate_loaded(loaded: LoadedCampaign) -> tuple[Campaign, list[Diagnostic]]:
    """Validate a loaded campaign; raise SpecError with every error, else return the model."""
    out = Collector(loaded)
    skip = check_secrets(loaded.data, out)
    spec = structural(loaded, out, skip)
    if spec is not None:
        semantic(spec, out)
    if out.errors or spec is None:
        raise SpecError(sorted(out.items, key=Diagnostic.sort_key))
    return spec, sorted(out.items, key=Diagnostic.sort_key)



# -- warnings that need the plan ------------------------------------------------------------------

SHARE_WARNING = 0.05


def plan_errors(plan: Plan, loaded: LoadedCampaign) -> list[Diagnostic]:
    """Errors only the plan reveals: files would arrive at a site that runs no ctrl_ingestd."""
    out = Collector(loaded)
    for site in plan.sites:
        arrivals = plan.arrivals(site.id)
        if arrivals and site.ingestd is None:
            topics = sorted(ingestd_topic(a.rse, a.scope) for a in arrivals)
            moves = sum(len(a.moves) for a in arrivals)
            rses = ", ".join(sorted({a.rse for a in arrivals}))
            out.error(("sites", site.id),
                      f"{moves} transfer(s) arrive at {site.id} ({rses}) but the site has no "
                      "'ingestd' section, so nothing would ingest them into its Butler",
                      f"add sites.{site.id}.ingestd with namespace, image, kafka_brokers and "
                      f"butler_secret; ctrl_ingestd will listen on {', '.join(topics)}", key=True)
    return out.items


def plan_warnings(plan: Plan, loaded: LoadedCampaign) -> list[Diagnostic]:
    """A site's fraction far from its share; a site that cannot finish in time or has no room."""
    out = Collector(loaded)
    for site in plan.sites:
        if abs(site.fraction - site.share) > SHARE_WARNING:
            out.warning(("sites", site.id, "share"),
                        f"site '{site.id}' owns {site.fraction:.3f} of the footprint's tracts, "
                        f"but its share is {site.share:g}",
                        "move a ring boundary (`drpc plan --balance` proposes some) or change the share")
    for est in plan.estimates:
        if plan.deadline_days is not None and est.days > plan.deadline_days:
            out.warning(("sites", est.site, "cores"),
                        f"site '{est.site}' needs {est.days:.0f} days at its {plan.site(est.site).cores} "
                        f"cores ({est.core_hours:,.0f} core-hours), over deadline_days {plan.deadline_days:g}",
                        "add cores, move tracts to another site, or extend the deadline")
        site = plan.site(est.site)
        if est.storage_tb > site.storage_tb:
            out.warning(("sites", est.site, "storage_tb"),
                        f"site '{est.site}' needs about {est.storage_tb:,.0f} TB, over its storage_tb "
                        f"{site.storage_tb:g}", "add storage or move tracts to another site")
    for i, ds in enumerate(plan.datasets):
        moves = any(t.dataset_type == ds.type for t in plan.transfers)
        if moves and ds.storage_class is None:
            out.warning(("datasets", i, "type"),
                        f"storage class of '{ds.type}' is unknown, so destinations cannot pre-register it",
                        "set datasets[].storage_class")
    return out.items
