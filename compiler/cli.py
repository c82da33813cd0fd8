"""The `drpc` command line (CONTRACT section 4).

Exit codes: 0 ok, 1 invalid campaign, 2 usage error, 3 OUT out of date, 4 internal error,
5 `drpc status`: something needs attention.
No command prints a Python traceback unless `--debug` is given.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__

if TYPE_CHECKING:
    from .errors import Diagnostic
    from .pipeline import Compiled

FORMATS = click.Choice(["text", "github", "json"])

# What `drpc --version` and `drpc --help` load is this module, click and the standard library:
# everything else (the pipeline, the diagnostics and the guard around each command, the commands
# of other modules) is imported by the command that runs.


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`compiler.guard.guarded` (every failure to its exit code, never a traceback), imported
    when the command runs."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        from .guard import guarded as guard

        return guard(fn)(*args, **kwargs)

    return run


def emit_diagnostics(diags: list[Diagnostic], fmt: str) -> None:
    """`compiler.guard.emit_diagnostics`, imported when there is something to print."""
    from .guard import emit_diagnostics as emit

    emit(diags, fmt)


def compile_campaign(path: str | Path, **options: Any) -> Compiled:
    """`compiler.pipeline.compile_campaign`, imported by the first command that compiles: the
    pipeline (pydantic models, Jinja2, the renderers) is most of drpc's start-up time, and
    `drpc --version`, `--help` and a no-op compile or check never need it."""
    from .pipeline import compile_campaign as compile_

    return compile_(path, **options)


def _finish_warnings(warnings: Sequence[Diagnostic], strict: bool, fmt: str) -> None:
    from .errors import ExitCode

    emit_diagnostics(list(warnings), fmt)
    if strict and warnings:
        click.echo(f"drpc: error: --strict: {len(warnings)} warning(s) fail the run; "
                   "nothing was written", err=True)
        raise click.exceptions.Exit(int(ExitCode.INVALID))


def _note(message: str) -> None:
    click.echo(f"drpc: note: {message}", err=True)


def _recompile_hint(campaign: Path, out: Path, site: str | None) -> str:
    return f"drpc compile {campaign} -o {out}" + (f" --site {site}" if site else "")


class DrpcGroup(click.Group):
    """The `drpc` group: commands of other modules are imported only when they are used.

    `drpc rehearse` lives in the separate `drpc_rehearsal` package, so the compiler never
    imports the rehearsal (nor the LSST stack it needs); plan, plot, init and status need more
    than the core. `drpc --help` lists them from LAZY (where and the first sentence of each
    command's help, which tests/test_speed_paths.py keeps equal to the command's), so that
    listing them imports none of them.
    """

    LAZY: dict[str, tuple[str, str]] = {
        "init": ("compiler.cli_init:init_command",
                 "Write a commented starter campaign at PATH (default campaign.yaml) and the "
                 "site fragments it includes (sites/<id>.yaml beside it; one already there is "
                 "kept)."),
        "plan": ("compiler.cli_plan:plan_command",
                 "Print the plan: per-site tracts, visits, core-hours, storage, days; "
                 "bottleneck; warnings."),
        "plot": ("compiler.cli_plan:plot_command",
                 "Draw the sky with every tract coloured by the site that owns it, and the ring "
                 "boundaries."),
        "rehearse": ("drpc_rehearsal.cli:rehearse_command",
                     "Run CAMPAIGN's compiled scripts in the runbook's order against local "
                     "stand-ins of every site."),
        "status": ("compiler.cli_status:status_command",
                   "Show where CAMPAIGN is: jobs, transfers, arrivals, ingest lag, and what can "
                   "start next."),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        # a set: a lazy command another module registered too is listed once
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.LAZY:
            module, name = self.LAZY[cmd_name][0].split(":")
            command = getattr(importlib.import_module(module), name)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing of the commands (name, short help), a lazy command's row from
        LAZY instead of from the imported command."""
        commands = [(name, click.Command(name, help=self.LAZY[name][1]) if name in self.LAZY
                     else self.get_command(ctx, name)) for name in self.list_commands(ctx)]
        shown = [(name, cmd) for name, cmd in commands if cmd is not None and not cmd.hidden]
        if shown:
            limit = formatter.width - 6 - max(len(name) for name, _ in shown)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in shown])


@click.group(cls=DrpcGroup, context_settings={"help_option_names": ["-h", "--help"],
                                              "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="drpc", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show a traceback on internal errors.")
def cli(debug: bool) -> None:
    """Compile Rubin multisite DRP campaigns into what every data facility needs."""


def complete_site_ids(ctx: click.Context, param: click.Parameter,
                      incomplete: str) -> list[click.shell_completion.CompletionItem]:
    """`--site <TAB>`: the site ids of the campaign already on the command line (includes
    merged); nothing when it is not given yet or does not load."""
    from .loader import load_campaign

    # click leaves CAMPAIGN unassigned when the option being completed is the last word (its
    # value is missing, so parsing stops before the positional arguments): it is in ctx.args
    campaign = ctx.params.get("campaign") or next(iter(ctx.args), None)
    if campaign is None:
        return []
    try:
        sites = load_campaign(campaign).data.get("sites")
    except Exception:  # noqa: BLE001 - completion never fails the shell over a broken file
        return []
    if not isinstance(sites, dict):
        return []
    return [click.shell_completion.CompletionItem(site) for site in sites
            if isinstance(site, str) and site.startswith(incomplete)]


campaign_arg = click.argument("campaign", type=click.Path(dir_okay=False, path_type=Path))
out_opt = click.option("-o", "--out", "out", required=True,
                       type=click.Path(file_okay=False, path_type=Path),
                       help="Output directory of the compiled tree.")
check_pipeline_opt = click.option(
    "--check-pipeline", is_flag=True,
    help="Also check every stage's subset against campaign.pipeline, read with lsst-pipe-base "
         "(needs it installed and the pipeline's $..._DIR variables set).")
fmt_opt = click.option("--format", "fmt", type=FORMATS, default="text", show_default=True,
                       help="How problems are printed.")


@cli.command()
@click.argument("campaigns", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@fmt_opt
@check_pipeline_opt
@guarded
def validate(campaigns: tuple[Path, ...], strict: bool, fmt: str, check_pipeline: bool) -> None:
    """Load and validate campaigns (and include fragments such as sites/*.yaml, each on its
    own); print every problem."""
    from .errors import ExitCode, SpecError
    from .fragment import is_fragment, validate_fragment
    from .loader import load_campaign

    diags: list[Diagnostic] = []
    failed = False
    fragments = 0
    for path in campaigns:
        try:
            loaded = load_campaign(path)
            if is_fragment(loaded.data):
                fragments += 1
                report = validate_fragment(loaded)
                click.echo(f"{path}: {report.summary}", err=True)
                continue
            compiled = compile_campaign(path, render=False, check_pipeline=check_pipeline)
            diags.extend(compiled.warnings)
            failed = failed or (strict and bool(compiled.warnings))
        except SpecError as exc:
            diags.extend(exc.diagnostics)
            failed = True
    emit_diagnostics(diags, fmt)
    files = _counted(len(campaigns) - fragments, fragments)
    if not failed:
        click.echo(f"{files} valid" + (f", {len(diags)} warning(s)" if diags else ""), err=True)
    else:
        errors = sum(d.severity == "error" for d in diags)
        click.echo(f"{files}: {errors} error(s)"
                   + (", and --strict fails on warnings" if strict and not errors else ""),
                   err=True)
        raise click.exceptions.Exit(int(ExitCode.INVALID))


def _counted(campaigns: int, fragments: int) -> str:
    """`2 campaign(s)`, `4 fragment(s)` or `2 campaign(s) and 4 fragment(s)`."""
    parts = ([f"{campaigns} campaign(s)"] if campaigns or not fragments else []) \
        + ([f"{fragments} fragment(s)"] if fragments else [])
    return " and ".join(parts)


@cli.command("compile")
@campaign_arg
@out_opt
@click.option("--site", help="Write only this site's part of the tree.",
              shell_complete=complete_site_ids)
@click.option("--strict", is_flag=True, help="Treat warnings as errors (and write nothing).")
@fmt_opt
@check_pipeline_opt
@guarded
def compile_cmd(campaign: Path, out: Path, site: str | None, strict: bool, fmt: str,
                check_pipeline: bool) -> None:
    """Validate CAMPAIGN and write the compiled tree into OUT."""
    from .emit import Comparison, remember_up_to_date, up_to_date, write_tree
    same = None if check_pipeline else up_to_date(campaign, out, site)
    if same is not None:  # the no-op fast path: OUT is what this compile would write
        _finish_warnings(same.warnings, strict, fmt)
        cmp = Comparison([], [], [], list(same.files))
        files = len(same.files)
    else:
        compiled = compile_campaign(campaign, site=site, check_pipeline=check_pipeline)
        _finish_warnings(compiled.warnings, strict, fmt)
        cmp = write_tree(out, compiled.files, note=_note)
        files = len(compiled.files)
        if not check_pipeline:
            remember_up_to_date(campaign, site, compiled.files, compiled.warnings)
    changed = len(cmp.missing) + len(cmp.stale)
    kept = f", {len(cmp.kept)} of the rest of the tree kept" if cmp.kept else ""
    click.echo(f"{out}: {files} files, {changed} written, {len(cmp.extra)} removed, "
               f"{len(cmp.unchanged)} unchanged{kept}", err=True)


@cli.command()
@campaign_arg
@out_opt
@click.option("--site", help="Compare only this site's part of the tree.",
              shell_complete=complete_site_ids)
@guarded
def check(campaign: Path, out: Path, site: str | None) -> None:
    """Compile in memory and list files of OUT that are missing, stale or extra."""
    from .emit import Comparison, check_tree, remember_up_to_date, up_to_date
    from .errors import ExitCode
    same = up_to_date(campaign, out, site)
    if same is not None:  # the no-op fast path: OUT is what a compile would write
        cmp = Comparison([], [], [], list(same.files))
    else:
        compiled = compile_campaign(campaign, site=site)
        cmp = check_tree(out, compiled.files, note=_note)
        remember_up_to_date(campaign, site, compiled.files, compiled.warnings)
    for label, paths in (("missing", cmp.missing), ("stale", cmp.stale), ("extra", cmp.extra)):
        for p in paths:
            click.echo(f"{label}: {p}")
    if not cmp.up_to_date:
        click.echo(f"{out} is out of date: run `{_recompile_hint(campaign, out, site)}`", err=True)
        raise click.exceptions.Exit(int(ExitCode.OUT_OF_DATE))
    click.echo(f"{out} is up to date ({len(cmp.unchanged)} files)", err=True)


@cli.command()
@campaign_arg
@out_opt
@click.option("--site", help="Compare only this site's part of the tree.",
              shell_complete=complete_site_ids)
@guarded
def diff(campaign: Path, out: Path, site: str | None) -> None:
    """Print a unified diff from OUT to a fresh compile; write nothing."""
    from .emit import diff_tree
    from .errors import ExitCode
    compiled = compile_campaign(campaign, site=site)
    text = diff_tree(out, compiled.files, note=_note)
    if text:
        click.echo(text, nl=False)
        raise click.exceptions.Exit(int(ExitCode.OUT_OF_DATE))


@cli.command(context_settings={"ignore_unknown_options": True})
@campaign_arg
@click.argument("what", type=click.Choice(["tract", "radec"]))
@click.argument("values", nargs=-1, required=True, type=click.UNPROCESSED)
@guarded
def explain(campaign: Path, what: str, values: tuple[str, ...]) -> None:
    """Say which site owns a tract (`tract N`) or a sky position (`radec RA DEC`), and why."""
    from .errors import UsageError
    from .report import explain_radec, explain_tract
    if what == "tract":
        if len(values) != 1:
            raise UsageError("usage: drpc explain CAMPAIGN tract N")
        tract = _number(values[0], int, "tract N: the tract id must be a whole number")
    else:
        if len(values) != 2:
            raise UsageError("usage: drpc explain CAMPAIGN radec RA DEC (degrees)")
        ra, dec = (_number(v, float, "radec RA DEC: RA and DEC must be numbers, in degrees")
                   for v in values)
    compiled = compile_campaign(campaign, render=False)
    try:
        if what == "tract":
            click.echo(explain_tract(compiled.plan, tract))
        else:
            click.echo(explain_radec(compiled.plan, ra, dec))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _number(text: str, kind: type[int] | type[float], what: str) -> Any:
    from .errors import UsageError

    try:
        return kind(text)
    except ValueError:
        raise UsageError(f"drpc explain {what}, got {text!r}") from None


@cli.command()
@guarded
def schema() -> None:
    """Print the JSON Schema of the campaign file."""
    from .schema import schema_text
    click.echo(schema_text(), nl=False)


SHELLS = ("bash", "zsh", "fish")


@cli.command()
@click.argument("shell", type=click.Choice(SHELLS))
@guarded
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    The same script as `_DRPC_COMPLETE=<shell>_source drpc`; e.g. for bash, in ~/.bashrc:
    eval "$(drpc completion bash)".
    """
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None  # click ships all three
    root = click.get_current_context().find_root().command
    click.echo(completer(root, {}, "drpc", "_DRPC_COMPLETE").source(), nl=False)


def main() -> None:
    try:
        cli.main(prog_name="drpc", standalone_mode=True)
    except SystemExit:
        raise
    except Exception:  # pragma: no cover - click's own failures
        from .errors import ExitCode

        click.echo("drpc: internal error in the command line parser", err=True)
        sys.exit(int(ExitCode.INTERNAL))
