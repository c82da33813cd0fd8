"""The CI kit (issue 15): pre-commit hooks, the GitHub Actions workflow, shell completion and
`drpc init`, each checked by the tool that consumes it.

- `.pre-commit-hooks.yaml` is read by pre-commit's own manifest loader, merged with a user's
  `.pre-commit-config.yaml` by pre-commit's own merge, its files picked by pre-commit's own
  classifier and run by pre-commit's own xargs (what `pre-commit run` does once the hook's
  environment is installed), with the venv's `drpc` console script on PATH.
- `ci/github/drpc.yml` is checked by check-jsonschema's vendored GitHub workflow schema with no
  network, then its `run:` steps are run by bash as the runner runs them; the annotations
  `drpc validate --format github` prints are parsed as the runner parses workflow commands.
- The bash completion script passes `bash -n` and completes in a real bash.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pre_commit.clientlib import load_config, load_manifest
from pre_commit.commands.run import Classifier
from pre_commit.hook import Hook
from pre_commit.lang_base import hook_cmd, run_xargs
from pre_commit.prefix import Prefix
from pre_commit.repository import _hook
from ruamel.yaml import YAML

from compiler.cli import cli
from compiler.cli_init import PRESETS, shipped_schema
from compiler.errors import Diagnostic, Position
from compiler.loader import load_campaign
from compiler.pipeline import compile_campaign
from compiler.schema import FRAGMENT_SCHEMA_ID
from tests.helpers import CAMPAIGNS, ROOT

BIN = Path(sys.executable).parent
DRPC = BIN / "drpc"
WORKFLOW = ROOT / "ci" / "github" / "drpc.yml"
LINE_COL = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning): ",
                      re.MULTILINE)


def cli_run(*args: str, cwd: Path | None = None) -> Any:
    """`drpc ARGS` in this process (click's runner), stdout and stderr apart."""
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, list(args), prog_name="drpc")
    finally:
        os.chdir(old)


# -- a repository of campaigns, as a user of the kit has one --------------------------------------

@pytest.fixture(scope="module")
def compiled_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """campaigns/ (3x2, dr1 and the site fragments) and 3x2's tree committed as out/3x2."""
    repo = tmp_path_factory.mktemp("campaign-repo")
    shutil.copytree(CAMPAIGNS, repo / "campaigns")
    result = cli_run("compile", "campaigns/3x2.yaml", "-o", "out/3x2", cwd=repo)
    assert result.exit_code == 0, result.output
    return repo


@pytest.fixture
def repo(compiled_repo: Path, tmp_path: Path) -> Path:
    target = tmp_path / "repo"
    shutil.copytree(compiled_repo, target)
    return target


def add_broken_campaign(repo: Path) -> tuple[Path, Path]:
    """A campaign with a bad value in itself and a fragment with a bad value."""
    text = (repo / "campaigns/3x2.yaml").read_text()
    bad = repo / "campaigns/broken.yaml"
    bad.write_text(text.replace("  name: drp-3x2", "  name: Broken")
                   .replace("sites/ukdf-lancs.yaml]", "sites/ukdf-lancs.yaml, sites/bad-df.yaml]"))
    fragment = repo / "campaigns/sites/bad-df.yaml"
    fragment.write_text((repo / "campaigns/sites/frdf.yaml").read_text()
                        .replace("  frdf:", "  bad-df:").replace("cloud: EU", "cloud: UK"))
    return bad, fragment


def all_files(repo: Path) -> list[str]:
    """Every file of the repository, relative, as `pre-commit run --all-files` lists them."""
    return sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file())


# -- pre-commit -----------------------------------------------------------------------------------

def configured_hooks(config_file: Path) -> tuple[dict[str, Any], list[Hook]]:
    """The hooks of a user's config, merged with drpc's manifest as pre-commit merges them."""
    config = load_config(str(config_file))
    manifest = {h["id"]: h for h in load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))}
    hooks = [Hook.create(repo["repo"], Prefix(str(ROOT)),
                         _hook(manifest[h["id"]], h, root_config=config))
             for repo in config["repos"] for h in repo["hooks"]]
    return config, hooks


def run_hook(config: dict[str, Any], hook: Hook, filenames: list[str]) -> tuple[int, str] | None:
    """What `pre-commit run` does with one installed hook (commands/run.py _run_single_hook and
    lang_base.basic_run_hook): None when it is skipped for want of files."""
    names = list(Classifier.from_config(filenames, config["files"], config["exclude"])
                 .filenames_for_hook(hook))
    if not names and not hook.always_run:
        return None
    code, out = run_xargs(hook_cmd(hook.entry, hook.args),
                          names if hook.pass_filenames else [],
                          require_serial=hook.require_serial, color=False)
    return code, out.decode()


@pytest.fixture
def drpc_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook environment's PATH: the venv's console scripts first."""
    assert DRPC.is_file(), f"{DRPC}: the venv has no drpc console script (pip install -e .)"
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")


def test_manifest_loads_with_pre_commits_own_loader() -> None:
    hooks = {h["id"]: h for h in load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))}
    assert set(hooks) == {"drpc-validate", "drpc-validate-strict", "drpc-check", "drpc-compile"}
    assert all(h["language"] == "python" and h["entry"].startswith("drpc ")
               for h in hooks.values())
    assert hooks["drpc-validate"]["entry"] == "drpc validate --format text"
    assert hooks["drpc-validate-strict"]["entry"] == "drpc validate --strict --format text"
    for tree_hook in ("drpc-check", "drpc-compile"):
        assert hooks[tree_hook]["pass_filenames"] is False and hooks[tree_hook]["require_serial"]
    # the manifest names a console script this package installs
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["drpc"] == "compiler.cli:main"


def test_files_regex_picks_campaigns_and_fragments_only(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, hooks = configured_hooks(ROOT / "ci" / "pre-commit-config.yaml")
    validate = next(h for h in hooks if h.id == "drpc-validate")
    (repo / ".github/workflows").mkdir(parents=True)
    (repo / ".github/workflows/drpc.yml").write_text("name: x\n")
    monkeypatch.chdir(repo)
    picked = sorted(Classifier.from_config(all_files(repo), config["files"],
                                           config["exclude"]).filenames_for_hook(validate))
    assert picked == ["campaigns/3x2.yaml", "campaigns/dr1.yaml",
                      *(f"campaigns/sites/{s}.yaml" for s in sorted(PRESETS))]


def test_example_config_merges_into_the_documented_commands() -> None:
    config, hooks = configured_hooks(ROOT / "ci" / "pre-commit-config.yaml")
    commands = [hook_cmd(h.entry, h.args) for h in hooks]
    assert commands == [
        ("drpc", "validate", "--format", "text"),
        ("drpc", "check", "campaigns/dr1.yaml", "-o", "out/dr1"),
        ("drpc", "check", "campaigns/3x2.yaml", "-o", "out/3x2")]
    for h in hooks[1:]:  # the example's campaigns are drpc's own
        assert (ROOT / h.args[0]).is_file()


def write_config(repo: Path) -> Path:
    config = repo / ".pre-commit-config.yaml"
    config.write_text(
        "repos:\n"
        "  - repo: https://github.com/lsst-dm/drpc\n"
        "    rev: v0.1.0\n"
        "    hooks:\n"
        "      - id: drpc-validate\n"
        "      - id: drpc-validate-strict\n"
        "      - id: drpc-check\n"
        "        args: [campaigns/3x2.yaml, -o, out/3x2]\n"
        "      - id: drpc-compile\n"
        "        args: [campaigns/3x2.yaml, -o, out/3x2]\n")
    return config


@pytest.mark.usefixtures("drpc_on_path")
def test_hooks_run_as_pre_commit_runs_them(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, hooks = configured_hooks(write_config(repo))
    by_id = {h.id: h for h in hooks}
    monkeypatch.chdir(repo)
    files = all_files(repo)

    # a good repository: validate passes (fragments too), strict fails on dr1's warnings
    code, out = run_hook(config, by_id["drpc-validate"], files) or (None, "")
    assert code == 0, out
    assert "campaigns/sites/usdf.yaml: fragment: 1 site(s) valid" in out
    code, out = run_hook(config, by_id["drpc-validate-strict"], ["campaigns/dr1.yaml"]) \
        or (None, "")
    assert code == 1 and "--strict fails on warnings" in out
    code, out = run_hook(config, by_id["drpc-check"], files) or (None, "")
    assert code == 0 and "out/3x2 is up to date" in out, out

    # a commit that touches only a fragment runs validate on that fragment alone
    code, out = run_hook(config, by_id["drpc-validate"], ["campaigns/sites/frdf.yaml"]) \
        or (None, "")
    assert code == 0 and "1 fragment(s) valid" in out
    assert run_hook(config, by_id["drpc-validate"], ["out/3x2/plan.md"]) is None  # skipped

    # a bad campaign and a bad fragment: exit 1, each problem at FILE:LINE:COL
    bad, fragment = add_broken_campaign(repo)
    code, out = run_hook(config, by_id["drpc-validate"], all_files(repo)) or (None, "")
    assert code == 1
    found = {(m["file"], int(m["line"]), int(m["col"])) for m in LINE_COL.finditer(out)
             if m["sev"] == "error"}
    name_line = bad.read_text().splitlines().index("  name: Broken") + 1
    cloud_line = fragment.read_text().splitlines().index("    cloud: UK") + 1
    assert ("campaigns/broken.yaml", name_line, 9) in found, out
    assert ("campaigns/sites/bad-df.yaml", cloud_line, 12) in found, out

    # a stale tree: check exits 3 naming the file; compile rewrites it, then check passes
    plan = repo / "out/3x2/plan.md"
    plan.write_text(plan.read_text() + "edited by hand\n")
    code, out = run_hook(config, by_id["drpc-check"], all_files(repo)) or (None, "")
    assert code == 3 and "stale: plan.md" in out
    assert plan.read_text().endswith("edited by hand\n")  # check writes nothing
    code, out = run_hook(config, by_id["drpc-compile"], all_files(repo)) or (None, "")
    assert code == 0 and "1 written" in out
    assert not plan.read_text().endswith("edited by hand\n")


# -- GitHub Actions -------------------------------------------------------------------------------

def offline(cmd: list[str]) -> tuple[list[str], dict[str, str]]:
    """`cmd` with no network: in a network namespace of its own where the machine allows it,
    else with every proxy variable pointing at a closed port."""
    env = dict(os.environ)
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n", *cmd], env
    dead = "http://127.0.0.1:9"
    env.update({k: dead for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")})
    env["no_proxy"] = env["NO_PROXY"] = ""
    return cmd, env


def check_workflow(path: Path) -> subprocess.CompletedProcess[str]:
    cmd, env = offline([str(BIN / "check-jsonschema"), "--builtin-schema",
                        "vendor.github-workflows", str(path)])
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def test_workflow_is_valid_for_githubs_schema_offline(tmp_path: Path) -> None:
    ok = check_workflow(WORKFLOW)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # the same check fails a workflow GitHub would refuse (a job without runs-on)
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("    runs-on: ubuntu-latest\n", "", 1))
    refused = check_workflow(broken)
    assert refused.returncode == 1 and "runs-on" in refused.stdout, refused.stdout


def workflow() -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(WORKFLOW.read_text())
    return data


def test_workflow_matrix_names_drpcs_own_campaigns() -> None:
    campaigns = workflow()["jobs"]["compile"]["strategy"]["matrix"]["campaign"]
    assert campaigns and all((CAMPAIGNS / f"{c}.yaml").is_file() for c in campaigns)


def run_job(job_name: str, repo: Path, matrix: dict[str, str]) -> list[tuple[str, int, str]]:
    """The job's `run:` steps, in order, as the runner runs them (bash -eo pipefail, the
    workflow's and the job's env, RUNNER_TEMP, GITHUB_STEP_SUMMARY), the install step and the
    `uses:` actions left out (drpc comes from this venv); stops after a failing step."""
    wf = workflow()
    job = wf["jobs"][job_name]

    def expand(text: str) -> str:
        for key, value in matrix.items():
            text = re.sub(r"\$\{\{\s*matrix\." + key + r"\s*\}\}", value, text)
        assert "${{" not in text, f"an expression the test cannot expand: {text!r}"
        return text

    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
               RUNNER_TEMP=str(repo.parent / "runner-temp"),
               GITHUB_STEP_SUMMARY=str(repo.parent / "summary.md"), CI="true")
    Path(env["RUNNER_TEMP"]).mkdir(exist_ok=True)
    env.update({k: expand(str(v)) for k, v in {**wf.get("env", {}),
                                               **job.get("env", {})}.items()})
    results = []
    for step in job["steps"]:
        if "run" not in step or step.get("name") == "Install drpc":
            continue
        script = repo.parent / "step.sh"
        script.write_text(expand(step["run"]))
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                              cwd=repo, env=env, capture_output=True, text=True, timeout=120)
        results.append((step["name"], done.returncode, done.stdout + done.stderr))
        if done.returncode:
            break
    return results


def test_workflow_steps_pass_on_a_good_repository(repo: Path) -> None:
    for name, code, out in run_job("validate", repo, {}) + run_job("compile", repo,
                                                                   {"campaign": "3x2"}):
        assert code == 0, f"{name}: {out}"
    assert (repo.parent / "runner-temp/tree/manifest.json").is_file()


def parse_workflow_command(line: str) -> tuple[str, dict[str, str], str]:
    """A line as the runner reads it (actions/runner ActionCommand.TryParseV2): `::`, the
    command, properties split on ',' and '=', the data after the next `::`, each unescaped."""
    assert line.startswith("::"), line
    end = line.index("::", 2)
    command, _, props_text = line[2:end].partition(" ")

    def unescape(text: str, prop: bool) -> str:
        pairs = [("%0D", "\r"), ("%0A", "\n")] + ([("%3A", ":"), ("%2C", ",")] if prop else [])
        for escaped, char in [*pairs, ("%25", "%")]:
            text = text.replace(escaped, char)
        return text

    props = {}
    for item in filter(None, props_text.strip().split(",")):
        key, sep, value = item.partition("=")
        if sep:
            props[key] = unescape(value, prop=True)
    return command, props, unescape(line[end + 2:], prop=False)


def test_validate_step_annotates_each_problem(repo: Path) -> None:
    bad, fragment = add_broken_campaign(repo)
    [(name, code, out)] = run_job("validate", repo, {})
    assert code == 1
    commands = [parse_workflow_command(line) for line in out.splitlines()
                if line.startswith("::")]
    assert {c[0] for c in commands} == {"error", "warning"}  # dr1's warnings too
    files = {c[1]["file"] for c in commands if c[0] == "error"}
    assert files == {"campaigns/broken.yaml", "campaigns/sites/bad-df.yaml"}
    cloud = next(c for c in commands if c[1]["title"] == "sites.bad-df.cloud")
    assert cloud[1]["line"] == str(fragment.read_text().splitlines().index("    cloud: UK") + 1)
    assert cloud[1]["col"] == "12" and cloud[2].startswith("'UK' is not allowed")


def test_check_step_fails_on_a_stale_tree_with_the_diff_in_the_summary(repo: Path) -> None:
    plan = repo / "out/3x2/plan.md"
    plan.write_text(plan.read_text() + "edited by hand\n")
    results = run_job("compile", repo, {"campaign": "3x2"})
    name, code, out = results[-1]
    assert name.startswith("drpc check") and code == 3, out
    summary = (repo.parent / "summary.md").read_text()
    assert "`out/3x2` is out of date" in summary and "```diff" in summary
    assert "-edited by hand" in summary


@pytest.mark.parametrize("file, message", [
    ("campaigns/a,b:c%d.yaml", "plain"),
    ("C:\\campaigns\\x.yaml", "two lines\r\nand 100% of it :: with colons, commas"),
])
def test_github_annotations_survive_the_runners_parser(file: str, message: str) -> None:
    diag = Diagnostic("warning", "sites.usdf:x,y", message, Position(file, 12, 7), "a hint")
    line = diag.github()
    assert "\n" not in line and "\r" not in line
    command, props, data = parse_workflow_command(line)
    assert command == "warning"
    assert props == {"file": file, "line": "12", "col": "7", "title": "sites.usdf:x,y"}
    assert data == f"{message} (a hint)"


def test_validate_format_github_escapes_the_file_name(tmp_path: Path) -> None:
    odd = tmp_path / "odd,name:1.yaml"
    odd.write_text((CAMPAIGNS / "sites" / "frdf.yaml").read_text().replace("cloud: EU",
                                                                          "cloud: UK"))
    result = cli_run("validate", "--format", "github", str(odd))
    assert result.exit_code == 1
    [(command, props, data)] = [parse_workflow_command(line)
                                for line in result.stdout.splitlines()]
    assert (command, props["file"], props["col"]) == ("error", str(odd), "12")
    assert result.stderr.strip() == "1 fragment(s): 1 error(s)"


# -- shell completion -----------------------------------------------------------------------------

def complete(words: str) -> list[str]:
    """A bash_complete request as click documents it (COMP_WORDS, COMP_CWORD, _DRPC_COMPLETE),
    answered in this process (test_completion_in_a_real_bash asks the console script)."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    result = CliRunner(env={"COMP_WORDS": words, "COMP_CWORD": str(cword),
                            "_DRPC_COMPLETE": "bash_complete"}).invoke(cli, [], prog_name="drpc")
    assert result.exit_code == 0 and not result.stderr, result.output
    return [line for line in result.stdout.splitlines() if line]


def source(shell: str) -> str:
    result = CliRunner(env={"_DRPC_COMPLETE": f"{shell}_source"}).invoke(cli, [],
                                                                       prog_name="drpc")
    assert result.exit_code == 0, result.output
    return result.stdout


def test_bash_source_is_valid_bash_and_the_completion_command_prints_it() -> None:
    bash = subprocess.run([str(DRPC)], env={**os.environ, "_DRPC_COMPLETE": "bash_source"},
                          capture_output=True, text=True, check=True).stdout
    assert "complete -o nosort -F _drpc_completion drpc" in bash
    syntax = subprocess.run(["bash", "-n"], input=bash, capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    assert source("bash") == bash
    for shell in ("bash", "zsh", "fish"):
        assert cli_run("completion", shell).stdout == source(shell)
        assert f"_DRPC_COMPLETE={shell}_complete" in source(shell)


def test_completion_of_commands_options_and_choices() -> None:
    assert complete("drpc comp") == ["plain,compile", "plain,completion"]
    assert complete("drpc validate --format ") == ["plain,text", "plain,github", "plain,json"]
    # the lazy commands (imported only when used) complete like the others
    assert complete("drpc p") == ["plain,plan", "plain,plot"]
    assert complete("drpc re") == ["plain,rehearse"]
    assert complete("drpc st") == ["plain,status"]
    assert complete("drpc in") == ["plain,init"]
    assert complete("drpc plan x.yaml --format ") == ["plain,table", "plain,json",
                                                     "plain,markdown"]
    assert complete("drpc status x.yaml --format ") == ["plain,table", "plain,json",
                                                       "plain,html", "plain,prometheus"]
    assert "plain,--inject" in complete("drpc rehearse x.yaml --")
    # values only drpc knows: a campaign's site ids, the presets of `init --sites`
    assert complete(f"drpc compile {CAMPAIGNS}/3x2.yaml -o out --site ") == [
        "plain,usdf", "plain,frdf", "plain,ukdf-lancs"]
    assert complete(f"drpc check {CAMPAIGNS}/dr1.yaml -o out --site ukdf-") == [
        "plain,ukdf-lancs", "plain,ukdf-ral"]
    assert complete("drpc diff missing.yaml -o out --site ") == []
    assert complete("drpc init --sites usdf,f") == ["plain,usdf,frdf"]
    # a campaign argument completes as a file name, by the shell
    assert complete("drpc validate camp") == ["file,camp"]


def test_completion_in_a_real_bash() -> None:
    source = cli_run("completion", "bash").stdout
    script = (source + '\nCOMP_WORDS=(drpc comp); COMP_CWORD=1; _drpc_completion drpc\n'
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    done = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["compile", "completion"]


# -- drpc init ------------------------------------------------------------------------------------

def test_init_then_validate_then_compile(tmp_path: Path) -> None:
    created = cli_run("init", "campaigns/dr2.yaml", cwd=tmp_path)
    assert created.exit_code == 0, created.output
    assert "campaigns/dr2.yaml is valid" in created.stderr
    # no schema/ above it: the modeline names the schema's id, and the note a real copy
    assert f"point them at a copy of {shipped_schema()}" in created.stderr
    assert shipped_schema().is_file()
    files = ["campaigns/dr2.yaml", *(f"campaigns/sites/{s}.yaml"
                                     for s in ("usdf", "frdf", "ukdf-lancs"))]
    strict = cli_run("validate", "--strict", *files, cwd=tmp_path)
    assert strict.exit_code == 0, strict.output
    assert strict.stderr.splitlines()[-1] == "1 campaign(s) and 3 fragment(s) valid"
    compiled = cli_run("compile", "campaigns/dr2.yaml", "-o", "out/dr2", cwd=tmp_path)
    assert compiled.exit_code == 0, compiled.output
    assert (tmp_path / "out/dr2/sites/frdf/bps").is_dir()
    text = (tmp_path / "campaigns/dr2.yaml").read_text()
    assert text.splitlines()[0] == f"# yaml-language-server: $schema={FRAGMENT_SCHEMA_ID}"
    assert "  name: dr2  #" in text and "include: [sites/usdf.yaml, sites/frdf.yaml" in text


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    target = tmp_path / "dr2.yaml"
    target.write_text("# mine\n")
    refused = cli_run("init", str(target), cwd=tmp_path)
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (f"drpc: error: {target} exists; drpc init does not "
                                      "overwrite it (--force replaces it)")
    assert target.read_text() == "# mine\n" and not (tmp_path / "sites").exists()
    forced = cli_run("init", str(target), "--force", cwd=tmp_path)
    assert forced.exit_code == 0, forced.output
    assert target.read_text().startswith("# yaml-language-server: $schema=")


def test_init_keeps_fragments_already_there_and_fills_in_unknown_sites(tmp_path: Path) -> None:
    (tmp_path / "sites").mkdir()
    mine = (CAMPAIGNS / "sites" / "usdf.yaml").read_text() + "# mine\n"
    (tmp_path / "sites" / "usdf.yaml").write_text(mine)
    created = cli_run("init", "dr2.yaml", "--sites", "usdf", "--sites", "new-df", cwd=tmp_path)
    assert created.exit_code == 0, created.output
    assert f"drpc: kept {Path('sites/usdf.yaml')}" in created.stderr
    assert (tmp_path / "sites" / "usdf.yaml").read_text() == mine
    generic = (tmp_path / "sites" / "new-df.yaml").read_text()
    assert "panda_site: NEW-DF" in generic and "rse: NEW_DF_BUTLER_DISK" in generic
    compiled = compile_campaign(tmp_path / "dr2.yaml", render=False)
    assert compiled.warnings == ()
    assert [s.id for s in compiled.plan.sites] == ["usdf", "new-df"]


@pytest.mark.parametrize("sites", ["usdf", "usdf,frdf,ukdf-lancs,ukdf-ral", "frdf,ukdf-ral"])
def test_init_rings_give_each_site_its_share(tmp_path: Path, sites: str) -> None:
    assert cli_run("init", "c.yaml", "--sites", sites, cwd=tmp_path).exit_code == 0
    compiled = compile_campaign(tmp_path / "c.yaml", render=False)
    assert compiled.warnings == ()
    ids = sites.split(",")
    assert [s.id for s in compiled.plan.sites] == ids
    assert compiled.plan.central_site == ("usdf" if "usdf" in ids else ids[0])
    for site in compiled.plan.sites:
        assert abs(site.fraction - site.share) < 0.02, (site.id, site.fraction, site.share)
    assert abs(sum(s.share for s in compiled.plan.sites) - 1) < 1e-9


def test_init_presets_are_drpcs_site_fragments(tmp_path: Path) -> None:
    result = cli_run("init", "c.yaml", "--sites", ",".join(PRESETS), cwd=tmp_path)
    assert result.exit_code == 0, result.output
    for site in PRESETS:
        written = load_campaign(tmp_path / "sites" / f"{site}.yaml").data
        assert written == load_campaign(CAMPAIGNS / "sites" / f"{site}.yaml").data, site


def test_init_modeline_points_at_a_schema_in_the_tree_and_the_files_validate(
        tmp_path: Path) -> None:
    shutil.copytree(ROOT / "schema", tmp_path / "schema")
    assert cli_run("init", "campaigns/dr2.yaml", "--sites", "usdf,x-df",
                   cwd=tmp_path).exit_code == 0
    campaign = tmp_path / "campaigns" / "dr2.yaml"
    fragments = sorted((tmp_path / "campaigns" / "sites").glob("*.yaml"))
    for path, ref in [(campaign, "../schema/campaign-fragment.schema.json"),
                      *((f, "../../schema/campaign-fragment.schema.json") for f in fragments)]:
        assert path.read_text().splitlines()[0] == f"# yaml-language-server: $schema={ref}"
        assert (path.parent / ref).resolve().is_file()
    # what an editor's validator says (check-jsonschema, its default regex engine)
    checked = subprocess.run([str(BIN / "check-jsonschema"), "--schemafile",
                              str(tmp_path / "schema" / "campaign-fragment.schema.json"),
                              str(campaign), *map(str, fragments)],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("args, message", [
    (["--sites", "USDF"], "'USDF' is not a site id: lowercase letters, digits and '-', starting "
                          "with a letter, at most 40 characters (did you mean 'usdf'?)"),
    (["--sites", "usdf,frdf,usdf"], "'usdf' is given twice"),
    (["--sites", ","], "name at least one site"),
    (["My_Campaign.v2.yaml"], "gives the campaign id 'my-campaign.v2', which is not a name"),
    (["--name", "DR2"], "--name gives the campaign id 'DR2', which is not a name"),
])
def test_init_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = cli_run("init", *args, cwd=tmp_path)
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert list(tmp_path.iterdir()) == []
