"""The speed paths stay correct: the no-op fast path of compile and check, the template bytecode
cache, the lazy imports of `drpc --version` and `--help`, the counted tract predicate.

How fast they are is benchmarks/speed.py's business; these tests only say that each path gives
exactly what the full one gives, and that every change that matters defeats the fast path.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

import compiler
import compiler.cli as cli_module
import compiler.emit
import compiler.render.common as common
from compiler.cli import DrpcGroup, cli
from compiler.emit import STAMPS_FOLDER
from compiler.naming import tract_predicate
from compiler.skymap import compress_ranges
from tests.helpers import CAMPAIGNS, ROOT

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user cache of the test's own (stamps and bytecode)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    return folder


@pytest.fixture
def campaigns(tmp_path: Path) -> Path:
    """A copy of campaigns/ (3x2.yaml includes sites/*.yaml), free to edit."""
    return Path(shutil.copytree(CAMPAIGNS, tmp_path / "campaigns"))


class Compiles:
    """Counts the full compiles the command line starts (the fast path starts none)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = cli_module.compile_campaign

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(cli_module, "compile_campaign", counted)


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> Compiles:
    return Compiles(monkeypatch)


def drpc(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def outcome(result: Result) -> tuple[int, str, str]:
    return result.exit_code, result.stdout, result.stderr


def full_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str | Path) -> Result:
    """The same command with an empty cache: no stamp, so the full compile answers."""
    with monkeypatch.context() as m:
        m.setenv("XDG_CACHE_HOME", str(tmp_path / f"empty-cache-{random.random()}"))
        return drpc(*args)


def compiled_tree(campaign: Path, out: Path, *extra: str) -> None:
    result = drpc("compile", campaign, "-o", out, *extra)
    assert result.exit_code == 0, result.output


# -- the fast path answers as the full path does ---------------------------------------------

@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_no_op_compile_and_check_say_what_the_full_path_says(
        tmp_path: Path, cache: Path, compiles: Compiles, monkeypatch: pytest.MonkeyPatch,
        fmt: str) -> None:
    campaign, out = CAMPAIGNS / "dr1.yaml", tmp_path / "out"  # dr1 has warnings
    compiled_tree(campaign, out)
    assert compiles.count == 1 and list((cache / "drpc" / STAMPS_FOLDER).glob("*.json"))
    for args in (("compile", campaign, "-o", out, "--format", fmt), ("check", campaign, "-o", out),
                 ("compile", campaign, "-o", out, "--strict", "--format", fmt)):
        before = compiles.count
        fast = drpc(*args)
        assert compiles.count == before, f"{args}: the fast path was not taken"
        assert outcome(fast) == outcome(full_path(monkeypatch, tmp_path, *args)), args
    files = len(json.loads((out / "manifest.json").read_text())["files"]) + 1
    assert f"{files} files, 0 written, 0 removed, {files} unchanged" in drpc(
        "compile", campaign, "-o", out).stderr


def test_no_op_of_a_site_tree(tmp_path: Path, cache: Path, compiles: Compiles,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    campaign, out = CAMPAIGNS / "3x2.yaml", tmp_path / "out"
    compiled_tree(campaign, out, "--site", "frdf")
    for args in (("compile", campaign, "-o", out, "--site", "frdf"),
                 ("check", campaign, "-o", out, "--site", "frdf")):
        before = compiles.count
        fast = drpc(*args)
        assert fast.exit_code == 0 and compiles.count == before
        assert outcome(fast) == outcome(full_path(monkeypatch, tmp_path, *args))


# -- every change that matters defeats it ----------------------------------------------------

def check_is_out_of_date(campaign: Path, out: Path, compiles: Compiles, *stale: str) -> None:
    before = compiles.count
    result = drpc("check", campaign, "-o", out)
    assert compiles.count == before + 1, "the fast path answered for a changed tree"
    assert result.exit_code == 3, result.output
    for path in stale:
        assert f"stale: {path}" in result.stdout or f"missing: {path}" in result.stdout


def test_a_changed_include_defeats_it(tmp_path: Path, cache: Path, campaigns: Path,
                                      compiles: Compiles) -> None:
    campaign, out = campaigns / "3x2.yaml", tmp_path / "out"
    compiled_tree(campaign, out)
    site = campaigns / "sites" / "frdf.yaml"
    site.write_text(site.read_text() + "# a comment changes the include's sha256\n")
    check_is_out_of_date(campaign, out, compiles, "manifest.json")
    compiled_tree(campaign, out)  # the full path writes the new manifest ...
    before = compiles.count
    assert drpc("check", campaign, "-o", out).exit_code == 0
    assert compiles.count == before  # ... and the fast path knows it again


def test_a_changed_campaign_file_defeats_it(tmp_path: Path, cache: Path, campaigns: Path,
                                            compiles: Compiles) -> None:
    campaign, out = campaigns / "3x2.yaml", tmp_path / "out"
    compiled_tree(campaign, out)
    campaign.write_text(campaign.read_text().replace("stack: w_2025_30", "stack: w_2025_31"))
    check_is_out_of_date(campaign, out, compiles, "manifest.json", "sites/usdf/RUNBOOK.md")


def test_a_retargeted_include_link_defeats_it(tmp_path: Path, cache: Path, campaigns: Path,
                                              compiles: Compiles) -> None:
    """Same bytes everywhere but another real file behind an include: the loader's view, not
    the recorded names, decides."""
    campaign, out = campaigns / "3x2.yaml", tmp_path / "out"
    sites = campaigns / "sites"
    (campaigns / "sites-a").mkdir()
    shutil.copy(sites / "frdf.yaml", campaigns / "sites-a" / "frdf.yaml")
    shutil.copy(sites / "frdf.yaml", campaigns / "sites-b.yaml")
    (sites / "frdf.yaml").unlink()
    (sites / "frdf.yaml").symlink_to("../sites-a/frdf.yaml")
    compiled_tree(campaign, out)
    (sites / "frdf.yaml").unlink()
    (sites / "frdf.yaml").symlink_to("../sites-b.yaml")
    check_is_out_of_date(campaign, out, compiles, "manifest.json")


@pytest.fixture
def restore_caches() -> Iterator[None]:
    """Tests that switch the templates or the package clear the caches built from them."""
    yield
    compiler.build_digest.cache_clear()
    common.environment.cache_clear()


def switch_templates(monkeypatch: pytest.MonkeyPatch, templates: Path) -> None:
    monkeypatch.setattr(compiler, "templates_path", lambda: templates)
    monkeypatch.setattr(common, "templates_path", lambda: templates)
    compiler.build_digest.cache_clear()
    common.environment.cache_clear()


def test_a_changed_template_defeats_it(tmp_path: Path, cache: Path, compiles: Compiles,
                                       monkeypatch: pytest.MonkeyPatch,
                                       restore_caches: None) -> None:
    campaign, out = CAMPAIGNS / "3x2.yaml", tmp_path / "out"
    templates = Path(shutil.copytree(common.templates_dir(), tmp_path / "templates"))
    switch_templates(monkeypatch, templates)
    compiled_tree(campaign, out)
    before = compiles.count
    assert drpc("check", campaign, "-o", out).exit_code == 0 and compiles.count == before
    plan = templates / "docs" / "plan.md.j2"
    plan.write_text(plan.read_text() + "One more line of a newer template.\n")
    switch_templates(monkeypatch, templates)  # a new drpc process: digests computed afresh
    check_is_out_of_date(campaign, out, compiles, "plan.md")


def test_another_build_of_drpc_defeats_it(tmp_path: Path, cache: Path, compiles: Compiles,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    campaign, out = CAMPAIGNS / "3x2.yaml", tmp_path / "out"
    compiled_tree(campaign, out)
    monkeypatch.setattr(compiler.emit, "build_digest", lambda: "another build")
    before = compiles.count
    assert drpc("check", campaign, "-o", out).exit_code == 0
    assert compiles.count == before + 1


def test_the_build_digest_covers_code_and_templates(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    restore_caches: None) -> None:
    package = Path(shutil.copytree(Path(compiler.__file__).parent, tmp_path / "compiler",
                                   ignore=shutil.ignore_patterns("templates")))
    templates = Path(shutil.copytree(common.templates_dir(), tmp_path / "templates"))
    monkeypatch.setattr(compiler, "__file__", str(package / "__init__.py"))

    def digest() -> str:
        compiler.build_digest.cache_clear()
        return compiler.build_digest()

    assert compiler.templates_path() == templates
    first = digest()
    (package / "__pycache__").mkdir(exist_ok=True)
    (package / "__pycache__" / "x.pyc").write_bytes(b"a cache is not code")
    assert digest() == first
    (package / "naming.py").write_text((package / "naming.py").read_text() + "\n# edited\n")
    second = digest()
    assert second != first
    (templates / "bps" / "submit.yaml.j2").write_text("edited\n")
    assert digest() not in (first, second)


def test_a_hand_edited_file_defeats_it(tmp_path: Path, cache: Path, compiles: Compiles) -> None:
    campaign, out = CAMPAIGNS / "3x2.yaml", tmp_path / "out"
    compiled_tree(campaign, out)
    (out / "sites/usdf/RUNBOOK.md").write_text("edited by hand\n")
    check_is_out_of_date(campaign, out, compiles, "sites/usdf/RUNBOOK.md")
    before = compiles.count
    result = drpc("compile", campaign, "-o", out)
    assert compiles.count == before + 1 and "1 written" in result.stderr
    assert (out / "sites/usdf/RUNBOOK.md").read_bytes() == (
        GOLDEN / "3x2/sites/usdf/RUNBOOK.md").read_bytes()


def test_a_changed_mode_a_removed_file_a_link_defeat_it(tmp_path: Path, cache: Path,
                                                        compiles: Compiles) -> None:
    campaign, out = CAMPAIGNS / "3x2.yaml", tmp_path / "out"
    compiled_tree(campaign, out)
    script = next((out / "sites/usdf/rucio").glob("*.sh"))
    rel = script.relative_to(out).as_posix()
    script.chmod(0o644)
    check_is_out_of_date(campaign, out, compiles, rel)
    compiled_tree(campaign, out)
    script.unlink()
    check_is_out_of_date(campaign, out, compiles, rel)
    compiled_tree(campaign, out)
    copy = tmp_path / "copy.md"
    shutil.copy(out / "plan.md", copy)
    (out / "plan.md").unlink()
    (out / "plan.md").symlink_to(copy)  # the same bytes, but not a file drpc wrote
    before = compiles.count
    drpc("check", campaign, "-o", out)
    assert compiles.count == before + 1


def test_a_different_site_defeats_it(tmp_path: Path, cache: Path, compiles: Compiles,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    campaign, out = CAMPAIGNS / "3x2.yaml", tmp_path / "out"
    compiled_tree(campaign, out)
    for args in (("check", campaign, "-o", out, "--site", "frdf"),
                 ("compile", campaign, "-o", out, "--site", "frdf")):
        before = compiles.count
        result = drpc(*args)
        assert compiles.count == before + 1, args
        assert outcome(result) == outcome(full_path(monkeypatch, tmp_path, *args))
    site_out = tmp_path / "site-out"
    compiled_tree(campaign, site_out, "--site", "usdf")
    before = compiles.count
    other_site = drpc("check", campaign, "-o", site_out, "--site", "frdf")
    assert other_site.exit_code == 2 and "holds only site usdf's part" in other_site.stderr
    assert drpc("check", campaign, "-o", site_out).exit_code == 3
    assert compiles.count == before + 2


def test_an_interrupted_compile_beside_out_defeats_it(tmp_path: Path, cache: Path,
                                                      compiles: Compiles) -> None:
    campaign, out = CAMPAIGNS / "3x2.yaml", tmp_path / "out"
    compiled_tree(campaign, out)
    (tmp_path / ".out.drpc-new-1-abcdef").mkdir()
    before = compiles.count
    result = drpc("compile", campaign, "-o", out)
    assert result.exit_code == 0 and compiles.count == before + 1
    assert not (tmp_path / ".out.drpc-new-1-abcdef").exists()  # the full path cleaned it up


def test_a_corrupt_or_forged_stamp_only_costs_the_full_path(tmp_path: Path, cache: Path,
                                                            compiles: Compiles) -> None:
    campaign, out = CAMPAIGNS / "dr1.yaml", tmp_path / "out"
    compiled_tree(campaign, out)
    (stamp,) = (cache / "drpc" / STAMPS_FOLDER).glob("*.json")
    for text in ("{not json", json.dumps({"drpc_version": compiler.__version__,
                                          "warnings": [{"severity": "error"}]})):
        stamp.write_text(text)
        before = compiles.count
        result = drpc("compile", campaign, "-o", out)
        assert result.exit_code == 0 and compiles.count == before + 1
        assert result.stderr.count(": warning: ") == 8


def test_an_unwritable_cache_is_no_error(tmp_path: Path, compiles: Compiles,
                                         monkeypatch: pytest.MonkeyPatch,
                                         restore_caches: None) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would go\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    common.environment.cache_clear()
    campaign, out = CAMPAIGNS / "3x2.yaml", tmp_path / "out"
    for _ in range(2):
        compiled_tree(campaign, out)
    assert compiles.count == 2
    assert drpc("check", campaign, "-o", out).exit_code == 0
    assert tree(out) == tree(GOLDEN / "3x2")


# -- the bytecode cache ------------------------------------------------------------------------

def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_bytecode_cache_lives_in_the_user_cache_and_changes_nothing(tmp_path: Path) -> None:
    """Cold cache, then warm cache, each in a new process: the same bytes as the golden tree,
    bytecode only under $XDG_CACHE_HOME/drpc/jinja-<version>-<digest>, nothing in OUT."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    for run in ("cold", "warm"):
        out = tmp_path / run
        subprocess.run([sys.executable, "-m", "compiler", "compile", str(CAMPAIGNS / "3x2.yaml"),
                        "-o", str(out)], cwd=ROOT, env=env, check=True, capture_output=True)
        assert tree(out) == tree(GOLDEN / "3x2"), run
        (folder,) = (tmp_path / "cache" / "drpc").glob("jinja-*")
        assert folder.name.startswith(f"jinja-{compiler.__version__}-")
        assert len(list(folder.glob("*.j2c"))) >= 20
    for folder in (ROOT / "templates", ROOT / "compiler", ROOT / "campaigns"):
        assert not [p for p in folder.rglob("*") if p.name.endswith(".j2c")], folder


def test_bytecode_of_a_changed_template_is_not_used(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    restore_caches: None) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    templates = Path(shutil.copytree(common.templates_dir(), tmp_path / "templates"))
    probe = templates / "probe.txt.j2"
    seen: list[str] = []
    for text, expected in (("first {{ 1 }}\n", b"first 1\n"), ("second {{ 2 }}\n", b"second 2\n")):
        probe.write_text(text)
        switch_templates(monkeypatch, templates)
        assert common.render_template("probe.txt.j2") == expected
        common.environment.cache_clear()
        assert common.render_template("probe.txt.j2") == expected  # now from the bytecode
        (folder,) = [p for p in (tmp_path / "cache" / "drpc").glob("jinja-*") if p.name not in seen]
        assert list(folder.glob("*.j2c"))
        seen.append(folder.name)


# -- lazy imports ------------------------------------------------------------------------------

HEAVY = ("pydantic", "pydantic_core", "jinja2", "ruamel", "jsonschema", "drpc_rehearsal", "lsst")


@pytest.mark.parametrize("option", ["--version", "--help"])
def test_version_and_help_import_no_pipeline(option: str) -> None:
    code = ("import sys\nfrom compiler.cli import main\n"
            f"sys.argv = ['drpc', {option!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('MODULES', sorted(m for m in sys.modules if m.split('.')[0] in "
            f"({', '.join(repr(h) for h in (*HEAVY, 'compiler'))},)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout
    loaded = out.split("MODULES ", 1)[1].strip()
    assert loaded == "['compiler', 'compiler.cli']", loaded


def test_help_lists_every_command_as_click_would(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lazy listing is click's own, row for row, at several widths."""
    for width in (60, 80, 100, 140):
        ctx = click.Context(cli, info_name="drpc", max_content_width=width, terminal_width=width)
        lazy, eager = ctx.make_formatter(), ctx.make_formatter()
        cli.format_commands(ctx, lazy)
        click.Group.format_commands(cli, ctx, eager)
        assert lazy.getvalue() == eager.getvalue(), width
        for name in cli.list_commands(ctx):
            assert f"\n  {name} " in lazy.getvalue()


def test_lazy_short_help_is_the_commands_own() -> None:
    ctx = click.Context(cli)
    for name, (_, text) in DrpcGroup.LAZY.items():
        command = cli.get_command(ctx, name)
        assert command is not None and not command.hidden and command.short_help is None
        stand_in = click.Command(name, help=text)
        for limit in (10, 30, 45, 60, 90, 200, 10_000):
            assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), (
                f"drpc {name}: its help changed; update its first sentence in DrpcGroup.LAZY")


# -- the counted tract predicate ---------------------------------------------------------------

def _tract_predicate_written_out(tracts: list[int]) -> str:
    """The predicate as it was defined before it counted: both forms written, the shorter."""
    ids = sorted(set(tracts))
    if len(ids) == 1:
        return f"tract = {ids[0]}"
    in_list = f"tract IN ({', '.join(str(t) for t in ids)})"
    parts = [f"tract = {a}" if a == b else f"tract >= {a} AND tract <= {b}"
             for a, b in compress_ranges(ids)]
    ranges = (parts[0] if len(parts) == 1
              else "(" + " OR ".join(f"({p})" if " AND " in p else p for p in parts) + ")")
    return ranges if len(ranges) < len(in_list) else in_list


def test_tract_predicate_counts_as_it_would_write() -> None:
    rng = random.Random(15)
    cases: list[list[int]] = [[], [7], [-1], [0, 1], [9, 10], [99, 100, 101], [-3, -1, 0, 10, 100],
                              list(range(0, 18938, 3)), [*range(1, 50), 70, *range(100, 150)]]
    for _ in range(2000):
        top = rng.choice([10, 100, 1000, 20_000, 10**7])
        cases.append([rng.randint(0, top) for _ in range(rng.randint(0, 40))])
    for tracts in cases:
        assert tract_predicate(tracts) == _tract_predicate_written_out(tracts), tracts
