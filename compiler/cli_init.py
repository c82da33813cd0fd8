"""`drpc init`: write a commented starter campaign that validates and compiles as written.

The campaign (templates/init/campaign.yaml.j2) is LSSTCam's DRP at the sites asked for, with the
stage subsets and moved dataset types of campaigns/dr1.yaml, equal shares and one declination
ring per site cut so that each site owns its share of the footprint's tracts. Each site's
infrastructure (Butler, Rucio, ctrl_ingestd, PanDA) goes into the shared fragment
`sites/<site>.yaml` beside the campaign, which it includes: a fragment already there is kept
(it is shared by other campaigns), a missing one is written from drpc's presets of the Rubin
data facilities, or as placeholders of the right form for a site drpc does not know.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from . import __version__
from .errors import ExitCode, SpecError, UsageError, did_you_mean
from .guard import emit_diagnostics, guarded
from .model import NAME_PATTERN

SKYMAP = "lsst_cells_v1"
FOOTPRINT = (-90.0, 30.0)  # LSSTCam's survey, as campaigns/dr1.yaml
STACK = "w_2025_30"
DEFAULT_SITES = ("usdf", "frdf", "ukdf-lancs")
CENTRAL = "usdf"  # the central site of every Rubin DRP campaign, when it takes part


@dataclass(frozen=True)
class Capacity:
    cores: int
    gb_per_core: int
    storage_tb: int


# Each Rubin data facility's fragment is drpc's own campaigns/sites/<id>.yaml (shipped in the
# wheel as compiler/presets/sites/, see site_preset); what it gives a campaign is
# campaigns/dr1.yaml's.
PRESETS = {
    "usdf": Capacity(6000, 4, 10000),
    "frdf": Capacity(3000, 8, 5000),
    "ukdf-lancs": Capacity(1000, 4, 300),
    "ukdf-ral": Capacity(3000, 4, 5000),
}
UNKNOWN_SITE = Capacity(1000, 4, 1000)


@dataclass(frozen=True)
class Ring:
    dec_max: float
    site: str
    tracts: int


def parse_sites(values: Iterable[str]) -> list[str]:
    """`--sites usdf,frdf --sites ukdf-lancs` -> the site ids, in order, each checked."""
    sites: list[str] = []
    for value in values:
        for site in (s.strip() for s in value.split(",")):
            if not site:
                continue
            if not re.fullmatch(NAME_PATTERN, site):
                hint = did_you_mean(site.lower(), PRESETS) if site.lower() != site else None
                raise UsageError(
                    f"--sites: {site!r} is not a site id: lowercase letters, digits and '-', "
                    "starting with a letter, at most 40 characters"
                    + (f" ({hint})" if hint else ""))
            if site in sites:
                raise UsageError(f"--sites: {site!r} is given twice")
            sites.append(site)
    if not sites:
        raise UsageError("--sites: name at least one site, e.g. --sites usdf,frdf,ukdf-lancs")
    return sites


def equal_shares(count: int) -> list[float]:
    """Shares of 3 decimals summing to exactly 1, the first taking the rounding."""
    rest = [round(1.0 / count, 3)] * (count - 1)
    return [round(1.0 - sum(rest), 3), *rest]


def share_rings(sites: Sequence[str], shares: Sequence[float]) -> list[Ring]:
    """One ring per site, south to north in the order given, each boundary between two rings of
    tract centres where the tracts south of it come closest to the shares so far."""
    from .balance import boundary_between
    from .skymap import BUILTIN_SKYMAPS

    skymap = BUILTIN_SKYMAPS[SKYMAP]
    lo, hi = FOOTPRINT
    sky = [(skymap.ring_center_dec(r), last - first + 1)
           for r in range(-1, skymap.num_rings + 1)
           for first, last in [skymap.ring_tract_range(r)]
           if lo <= skymap.ring_center_dec(r) <= hi]
    if len(sites) > len(sky):
        raise UsageError(f"--sites: {len(sites)} sites, but the footprint holds {len(sky)} rings "
                         "of tracts: at most one site per ring")
    total = sum(tracts for _, tracts in sky)
    rings: list[Ring] = []
    start = 0  # first sky ring of the next site
    wanted = 0.0
    for i, site in enumerate(sites):
        wanted += shares[i] * total
        if i == len(sites) - 1:
            end = len(sky)
        else:
            # leave at least one sky ring for each site still to come
            last = len(sky) - (len(sites) - i - 1)
            cumulative = [sum(t for _, t in sky[:k]) for k in range(start + 1, last + 1)]
            end = start + 1 + min(range(len(cumulative)),
                                  key=lambda k: abs(cumulative[k] - wanted))
        dec_max = hi if end == len(sky) else boundary_between(sky[end - 1][0], sky[end][0])
        rings.append(Ring(dec_max, site, sum(t for _, t in sky[start:end])))
        start = end
    return rings


def schema_reference(folder: Path) -> str | None:
    """The relative path from `folder` to the nearest schema/campaign-fragment.schema.json
    above it (a checkout of drpc, or a campaign repository that keeps a copy), if any."""
    from .schema import FRAGMENT_SCHEMA_FILE

    here = folder.resolve()
    for parent in (here, *here.parents):
        candidate = parent / "schema" / FRAGMENT_SCHEMA_FILE
        if candidate.is_file():
            return Path(os.path.relpath(candidate, here)).as_posix()
    return None


def shipped_schema() -> Path:
    """The fragment schema drpc ships (inside the wheel, or in the checkout's schema/)."""
    from importlib import resources

    from .schema import FRAGMENT_SCHEMA_FILE

    packaged = Path(str(resources.files("compiler"))) / "schema" / FRAGMENT_SCHEMA_FILE
    return packaged if packaged.is_file() else Path(__file__).resolve().parents[1] / "schema" \
        / FRAGMENT_SCHEMA_FILE


def _write_atomic(path: Path, text: str) -> None:
    """The whole file or nothing: written beside `path`, then renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def campaign_name(path: Path, name: str | None) -> str:
    chosen = name if name is not None else path.stem.lower().replace("_", "-")
    if not re.fullmatch(NAME_PATTERN, chosen):
        where = "--name" if name is not None else f"the file name {path.name!r}"
        raise UsageError(f"{where} gives the campaign id {chosen!r}, which is not a name "
                         "(lowercase letters, digits and '-', starting with a letter, at most 40 "
                         "characters); pass --name, e.g. --name dr2")
    return chosen


def central_site(sites: Sequence[str]) -> str:
    return CENTRAL if CENTRAL in sites else sites[0]


@dataclass(frozen=True)
class Fragment:
    include: str  # the include path, relative to the campaign
    text: str
    preset: bool  # drpc's preset of a Rubin data facility, not placeholders


MODELINE = "# yaml-language-server: $schema="


def presets_dir() -> Path:
    """The site fragments drpc ships: compiler/presets/sites in the wheel, campaigns/sites of a
    source checkout (one copy: the examples' own fragments)."""
    here = Path(__file__).resolve().parent
    packaged = here / "presets" / "sites"
    return packaged if packaged.is_dir() else here.parent / "campaigns" / "sites"


def site_preset(site: str, schema: str) -> str:
    """A preset fragment with its modeline pointing at `schema` (as seen from where it goes)."""
    text = (presets_dir() / f"{site}.yaml").read_text(encoding="utf-8")
    first, _, rest = text.partition("\n")
    if first.startswith(MODELINE):
        text = rest
    return f"{MODELINE}{schema}\n{text}"


def render_starter(path: Path, name: str, sites: Sequence[str]) -> tuple[str, list[Fragment]]:
    """The campaign's text and each site fragment's."""
    from .render.common import render_template
    from .schema import FRAGMENT_SCHEMA_ID

    shares = equal_shares(len(sites))
    folder = path.parent
    fragment_schema = schema_reference(folder / "sites") or FRAGMENT_SCHEMA_ID
    fragments = []
    for site in sites:
        if site in PRESETS:
            text = site_preset(site, fragment_schema).encode()
        else:
            text = render_template("init/sites/generic.yaml.j2", schema=fragment_schema, id=site,
                                   facility=site.upper(), panda_site=site.upper(),
                                   rse=site.upper().replace("-", "_"))
        fragments.append(Fragment(f"sites/{site}.yaml", text.decode(), site in PRESETS))
    rows = [{"id": site, "share": share, **vars(PRESETS.get(site, UNKNOWN_SITE))}
            for site, share in zip(sites, shares, strict=True)]
    campaign = render_template(
        "init/campaign.yaml.j2", schema=schema_reference(folder) or FRAGMENT_SCHEMA_ID,
        version=__version__, file=path.as_posix(), campaign_id=name,
        description=f"LSSTCam data release processing at {', '.join(sites)}",
        includes=[f.include for f in fragments], stack=STACK, central=central_site(sites),
        sites=rows, footprint={"dec_min": FOOTPRINT[0], "dec_max": FOOTPRINT[1]},
        rings=share_rings(sites, shares))
    return campaign.decode(), fragments


def complete_sites(ctx: click.Context, param: click.Parameter,
                   incomplete: str) -> list[click.shell_completion.CompletionItem]:
    """`--sites usdf,f<TAB>` -> `usdf,frdf`: the presets not listed yet."""
    done, _, word = incomplete.rpartition(",")
    listed = set(done.split(","))
    prefix = f"{done}," if done else ""
    return [click.shell_completion.CompletionItem(prefix + site) for site in PRESETS
            if site.startswith(word) and site not in listed]


@click.command("init")
@click.argument("path", required=False, default="campaign.yaml",
                type=click.Path(path_type=Path))
@click.option("--sites", "site_args", multiple=True, metavar="ID,ID,...",
              default=[",".join(DEFAULT_SITES)], show_default=True,
              shell_complete=complete_sites,
              help="Site ids, south to north; presets: " + ", ".join(PRESETS) + ". Others get "
                   "placeholders to fill in.")
@click.option("--name", help="Campaign id (default: the file name without .yaml).")
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@guarded
def init_command(path: Path, site_args: tuple[str, ...], name: str | None, force: bool) -> None:
    """Write a commented starter campaign at PATH (default campaign.yaml) and the site
    fragments it includes (sites/<id>.yaml beside it; one already there is kept). It validates
    and compiles as written. The central site is usdf where it takes part, else the first."""
    from .pipeline import compile_campaign

    sites = parse_sites(site_args)
    campaign_id = campaign_name(path, name)
    if path.is_dir():
        raise UsageError(f"{path} is a directory; give the campaign's file name, e.g. "
                         f"{path / (campaign_id + '.yaml')}")
    if path.exists() and not force:
        raise UsageError(f"{path} exists; drpc init does not overwrite it (--force replaces it)")
    text, fragments = render_starter(path, campaign_id, sites)
    for fragment in fragments:
        target = path.parent / fragment.include
        if target.exists() and not target.is_file():
            raise UsageError(f"{target} exists and is not a file")
    path.parent.mkdir(parents=True, exist_ok=True)
    for fragment in fragments:
        target = path.parent / fragment.include
        if target.exists():
            click.echo(f"drpc: kept {target} (already there; shared by other campaigns)",
                       err=True)
            continue
        target.parent.mkdir(exist_ok=True)
        _write_atomic(target, fragment.text)
        how = ("drpc's preset of the site: check it with the site" if fragment.preset
               else "placeholders: fill in the site's values")
        click.echo(f"drpc: wrote {target} ({how})", err=True)
    _write_atomic(path, text)
    click.echo(f"drpc: wrote {path} ({len(sites)} site(s), central site {central_site(sites)})",
               err=True)
    if schema_reference(path.parent) is None:
        click.echo("drpc: note: the `$schema=` lines name drpc's fragment schema by its id; if "
                   f"your editor cannot fetch it, point them at a copy of {shipped_schema()}",
                   err=True)
    try:
        compiled = compile_campaign(path, render=False)
    except SpecError as exc:
        emit_diagnostics(list(exc.diagnostics), "text")
        click.echo(f"drpc: {path} was written but does not validate: fix the problems above",
                   err=True)
        raise click.exceptions.Exit(int(ExitCode.INVALID)) from None
    emit_diagnostics(list(compiled.warnings), "text")
    click.echo(f"drpc: {path} is valid; next: drpc plan {path}, then "
               f"drpc compile {path} -o out/{campaign_id}", err=True)
