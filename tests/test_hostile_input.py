"""The loader against hostile input: every case is a one-line diagnostic at the line that holds
the problem, exit status 1 (never 4, never a MemoryError), in well under a second."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler import loader
from compiler.errors import SpecError
from compiler.loader import load_campaign
from compiler.pipeline import compile_campaign
from tests.helpers import MINIMAL, ROOT, write

# How fast these are refused is measured by benchmarks/hostile_input.py, not asserted here:
# the tests assert what bounds the work (the refusal, where it is reported, exit 1).


def refused(path: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_campaign(path)
    return [d.text().replace(f"{path.parent}/", "") for d in info.value.diagnostics]


def billion_laughs(levels: int = 8, width: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghijklmnop"[:levels]:
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * width) + "]")
        prev = name
    return "\n".join(lines) + "\n"


def merge_bomb() -> str:
    lines = ["m0: &m0 {k0: 0, k1: 1, k2: 2, k3: 3}"]
    for i in range(1, 40):
        lines.append(f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], x{i}: {i}}}")
    return "\n".join(lines) + "\n"


# -- aliases, size, nesting ---------------------------------------------------------------------------

def test_billion_laughs_is_refused_at_the_alias(tmp_path: Path) -> None:
    out = refused(write(tmp_path, billion_laughs()))
    assert out == ["campaign.yaml:4:12: error: <root>: alias *c expands to 820 values (2,187 characters): "
                   "aliases may add at most 2,000 values and 100,000 characters to a file (nested aliases "
                   "multiply (an alias bomb); write the values out)"]


def test_merge_key_bomb_is_refused_at_the_alias(tmp_path: Path) -> None:
    text = merge_bomb()
    assert len(text) < 3000
    out = refused(write(tmp_path, text))
    assert len(out) == 1 and out[0].startswith("campaign.yaml:8:") and "aliases may add at most" in out[0]


def test_alias_to_a_long_string_is_bounded_by_characters(tmp_path: Path) -> None:
    text = f'a: &a "{"x" * 60_000}"\nb: [*a, *a]\n'
    out = refused(write(tmp_path, text))
    assert out[0].startswith("campaign.yaml:2:9: error: <root>: alias *a expands to 1 values (60,000 characters)")


def test_recursive_and_undefined_aliases(tmp_path: Path) -> None:
    assert refused(write(tmp_path, "a: &x [1, *x]\n")) == [
        "campaign.yaml:1:11: error: <root>: alias *x refers to the node that contains it (a recursive alias)"]
    assert refused(write(tmp_path, "a: *nope\n")) == [
        "campaign.yaml:1:4: error: <root>: alias *nope names no anchor defined before it "
        "(define the anchor (&name) before its first use)"]


def test_small_aliases_and_merge_keys_still_work(tmp_path: Path) -> None:
    loaded = load_campaign(write(tmp_path, """\
        defaults: &d {cores: 4, share: 0.5}
        usdf: {<<: *d, cores: 8}
        frdf:
          <<: *d
        list: &l [a, b]
        again: *l
        """))
    assert loaded.data["usdf"] == {"share": 0.5, "cores": 8}
    assert loaded.data["frdf"] == {"cores": 4, "share": 0.5}
    assert loaded.data["again"] == ["a", "b"]
    src = loaded.source
    assert (src.locate(("usdf", "cores")).line, src.locate(("usdf", "share")).line) == (2, 1)
    assert (src.locate(("again",)).line, src.locate(("again",)).column) == (6, 8)  # where the alias is


def test_file_larger_than_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "campaign.yaml"
    with path.open("w") as fh:
        fh.write("a: 1\n")
        fh.truncate(50 << 20)  # a sparse 50 MB file of NULs
    out = refused(path)
    assert out == ["campaign.yaml:1:1: error: <root>: campaign.yaml is 52,428,800 bytes; a campaign file may be at "
                   "most 1,048,576 bytes"]


def test_a_megabyte_of_comments_is_read(tmp_path: Path) -> None:
    text = "# " + "c" * 78 + "\n"
    path = write(tmp_path, text * ((loader.MAX_FILE_BYTES - 100) // len(text)) + "a: 1\n")
    assert load_campaign(path).data == {"a": 1}


def test_wide_flow_list_under_an_unknown_key_is_refused_fast(tmp_path: Path) -> None:
    text = "apiVersion: drpc/v1\nkind: Campaign\nunknown: [" + ",".join(["1"] * 200_000) + "]\n"
    assert len(text) > 400_000
    out = refused(write(tmp_path, text))
    assert out == ["campaign.yaml:3:19997: error: <root>: more than 10,000 values in one file (aliases expanded) "
                   "(a campaign is a few hundred values; list tracts as rings or ranges)"]


@pytest.mark.parametrize("opener", ["[", "{a: ", "- "])
def test_deep_nesting_is_refused(tmp_path: Path, opener: str) -> None:
    if opener == "- ":
        text = "a:\n" + "".join("  " * (i + 1) + "- \n" for i in range(100))
    else:
        text = "a: " + opener * 5000 + "\n"
    out = refused(write(tmp_path, text))
    assert len(out) == 1 and "nesting deeper than 32 levels" in out[0], out


def test_too_many_files_and_include_diamonds(tmp_path: Path) -> None:
    write(tmp_path, "include: [a1.yaml, a1.yaml]\n", "campaign.yaml")
    for i in range(1, 20):
        write(tmp_path, f"include: [a{i + 1}.yaml, a{i + 1}.yaml]\n", f"a{i}.yaml")
    write(tmp_path, "x: 1\n", "a20.yaml")
    out = refused(tmp_path / "campaign.yaml")
    assert len(out) == 1 and out[0].endswith("error: include: more than 64 files read for one campaign "
                                             "(includes included) (include each shared file once)")


def test_big_integers_and_tags(tmp_path: Path) -> None:
    assert refused(write(tmp_path, "a: " + "9" * 5000 + "\n")) == [
        "campaign.yaml:1:4: error: <root>: an integer of 5,000 digits (integers have at most 100 digits)"]
    assert refused(write(tmp_path, "a: !!python/object:os.system x\n"))[0].startswith(
        "campaign.yaml:1:4: error: <root>: YAML tag '!!python/object:os.system' is not allowed here")
    assert refused(write(tmp_path, "a: !!binary aGk=\n"))[0].startswith(
        "campaign.yaml:1:4: error: <root>: YAML tag '!!binary' is not allowed here")
    loaded = load_campaign(write(tmp_path, "a: !!str 010\nb: 010\nc: 0x1F\nd: 1_000\ne: 2025-01-01\nf: yes\n"
                                           "g: .inf\nh: ~\ni: 1e3\nj: '1'\n"))
    assert loaded.data == {"a": "010", "b": 10, "c": 31, "d": 1000, "e": "2025-01-01", "f": "yes",
                           "g": float("inf"), "h": None, "i": 1000.0, "j": "1"}


def test_keys_are_names(tmp_path: Path) -> None:
    assert refused(write(tmp_path, "? [a, b]\n: 1\n")) == [
        "campaign.yaml:1:3: error: <root>: a mapping key must be a plain name, not a sequence"]
    assert refused(write(tmp_path, "password: a\npassword: hunter2\n")) == [
        "campaign.yaml:2:1: error: <root>: duplicate key 'password' (first given at line 1, column 1) "
        "(each key may appear once in a mapping)"]  # never the values (a secret, maybe)


# -- positions of YAML errors --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("campaign:\n  instrument: [HSC\n  skymap: x\n",
         "2:19: error: <root>: YAML syntax error: the flow sequence '[' opened at line 2, column 15 is not closed "
         "(expected ',' or ']' at the end of this line) (add the missing ']')"),
        ("a: [HSC,\n  LSST  # comment\n\n# another\nb: 1\n",
         "2:7: error: <root>: YAML syntax error: the flow sequence '[' opened at line 1, column 4 is not closed "
         "(expected ',' or ']' at the end of this line) (add the missing ']')"),
        ("sites:\n  usdf:\n    butler: {repo: /x\n    cores: 3\n",
         "3:22: error: <root>: YAML syntax error: the flow mapping '{' opened at line 3, column 13 is not closed "
         "(expected ',' or '}' at the end of this line) (add the missing '}')"),
        ("a: {b: 1\n",
         "1:9: error: <root>: YAML syntax error: the flow mapping '{' opened at line 1, column 4 is not closed "
         "(expected ',' or '}' at the end of this line) (add the missing '}')"),
        ('metadata:\n  description: "abc\n  name: x\nother: 1\n',
         "2:16: error: <root>: YAML syntax error: this quoted string is never closed (close the quote on this line)"),
        ("a: 'x\nb: 2\n",
         "1:4: error: <root>: YAML syntax error: this quoted string is never closed (close the quote on this line)"),
        ("a: 1\n---\nb: 2\n",
         "2:1: error: <root>: a second YAML document starts here; a campaign file holds exactly one (remove "
         "this line and everything after it, or split the file)"),
        ("a: 'x\nb: 2\nc: 'y'\n",
         "1:4: error: <root>: YAML syntax error: this quoted string runs on to line 3: is its closing quote "
         "missing? (expected <block end>, but found '<scalar>' at line 3, column 5) (close the quote on this line)"),
        ("a: 1\nb: x\x00y\n",
         "2:5: error: <root>: character U+0000 NUL is not allowed in YAML (a campaign file holds printable text "
         "only; remove the character)"),
        ("a: 1\n# comment \u2029 here\n",
         "2:11: error: <root>: character U+2029 PARAGRAPH SEPARATOR is a line break to YAML 1.1 readers (PyYAML) "
         "and text to YAML 1.2 ones (a campaign file holds printable text only; remove the character)"),
        ("a: 1\nb: abc\u202edef\n",
         "2:7: error: <root>: character U+202E RIGHT-TO-LEFT OVERRIDE is an invisible character that changes how "
         "the text around it looks (a campaign file holds printable text only; remove the character)"),
        ("a: 1\nb: \x1b[31mred\n",
         "2:4: error: <root>: character U+001B ESCAPE is not allowed in YAML (a campaign file holds printable "
         "text only; remove the character)"),
        ("a:\n\t- 1\n",
         "2:1: error: <root>: YAML syntax error: found character '\\t' that cannot start any token (while "
         "scanning for the next token)"),
    ],
)
def test_yaml_errors_point_at_the_line_that_holds_the_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "campaign.yaml"
    path.write_text(text, encoding="utf-8")
    assert refused(path) == [f"campaign.yaml:{expected}"]


def test_latin1_byte_is_reported_where_it_is(tmp_path: Path) -> None:
    path = tmp_path / "campaign.yaml"
    path.write_bytes("a: 1\nfacility: Orsay é\n".encode().replace("é".encode(), b"\xe9"))
    assert refused(path) == [
        "campaign.yaml:2:17: error: <root>: not UTF-8 text: byte 0xE9 cannot start or continue a UTF-8 character "
        "(save the file as UTF-8 (it looks like Latin-1 or another 8-bit encoding))"]


def test_empty_value_is_reported_on_its_own_line(tmp_path: Path) -> None:
    text = MINIMAL.replace("metadata:\n  name: mini\n", "metadata:\n")
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        compile_campaign(path, render=False)
    lines = [d.text().replace(f"{path}:", "") for d in info.value.diagnostics]
    assert lines == ["3:9: error: metadata: input should be a valid dictionary or instance of Metadata"]


def test_syntax_error_inside_an_include_points_into_it(tmp_path: Path) -> None:
    write(tmp_path, "sites:\n  usdf: {cores: [1, 2\n  frdf: {}\n", "sites/bad.yaml")
    out = refused(write(tmp_path, "include: [sites/bad.yaml]\na: 1\n"))
    assert out == ["sites/bad.yaml:2:22: error: <root>: YAML syntax error: the flow sequence '[' opened at line 2, "
                   "column 17 is not closed (expected ',' or ']' at the end of this line) (add the missing ']')"]


# -- includes stay in the campaign's folder and read regular files only -----------------------------------

@pytest.mark.parametrize(
    ("include", "expected"),
    [
        ("../../../../etc/hostname", "include '../../../../etc/hostname' is outside the campaign's folder {root} "
         "(includes stay inside the folder of the campaign file (symlinks are followed before this check); copy "
         "the shared file into it)"),
        ("/etc/os-release", "include '/etc/os-release' is an absolute path (includes are paths relative to the "
         "including file, inside the campaign's folder)"),
        ("/dev/zero", "include '/dev/zero' is an absolute path (includes are paths relative to the including "
         "file, inside the campaign's folder)"),
        ("~/x.yaml", "include '~/x.yaml' is an absolute path (includes are paths relative to the including file, "
         "inside the campaign's folder)"),
    ],
)
def test_includes_outside_the_tree_are_refused(tmp_path: Path, include: str, expected: str) -> None:
    root = tmp_path / "c"
    out = refused(write(root, f"include: [{include}]\n"))
    assert out == [f"campaign.yaml:1:11: error: include: {expected.format(root=root)}"]


def test_include_names_cannot_forge_diagnostics(tmp_path: Path) -> None:
    out = refused(write(tmp_path, 'include: ["x\\n::error file=a.yaml::forged.yaml", "' + "y" * 5000 + '"]\n'))
    assert out == [
        "campaign.yaml:1:11: error: include: include 'x\\n::error file=a.yaml::forged.yaml' holds U+000A LINE "
        "FEED (an include is a plain relative path; its name goes into diagnostics)",
        "campaign.yaml:1:50: error: include: include '" + "y" * 80 + "'... (5,000 characters) is longer than "
        "1024 characters (an include is a plain relative path)",
    ]


def test_symlink_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "c"
    write(tmp_path, "secret: 1\n", "outside.yaml")
    (root / "sites").mkdir(parents=True)
    (root / "sites" / "usdf.yaml").symlink_to(tmp_path / "outside.yaml")
    (root / "zero.yaml").symlink_to("/dev/zero")
    (root / "inside.yaml").symlink_to(root / "sites")  # a link inside the tree is fine...
    out = refused(write(root, "include: [sites/usdf.yaml, zero.yaml, inside.yaml/../x.yaml]\n"))
    assert out[0].startswith("campaign.yaml:1:11: error: include: include 'sites/usdf.yaml' is outside")
    assert out[1].startswith("campaign.yaml:1:28: error: include: include 'zero.yaml' is outside")
    assert len(out) == 3 and "file not found" in out[2]


def test_link_inside_the_tree_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "c"
    write(root, "a: 1\n", "shared/real.yaml")
    (root / "link.yaml").symlink_to(root / "shared" / "real.yaml")
    loaded = load_campaign(write(root, "include: [link.yaml]\nb: 2\n"))
    assert loaded.data == {"a": 1, "b": 2} and set(loaded.inputs) == {"campaign.yaml", "shared/real.yaml"}


def test_fifo_device_and_directory_are_refused_without_blocking(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir()
    os.mkfifo(root / "fifo.yaml")
    (root / "dir.yaml").mkdir()
    out = refused(write(root, "include: [fifo.yaml, dir.yaml]\n"))
    assert out == [
        "campaign.yaml:1:11: error: include: fifo.yaml is a FIFO (named pipe), not a regular file "
        "(a campaign reads regular files only)",
        "campaign.yaml:1:22: error: include: dir.yaml is a directory, not a regular file "
        "(a campaign reads regular files only)",
    ]
    with pytest.raises(SpecError, match="is a character device, not a regular file"):
        load_campaign("/dev/zero")
    with pytest.raises(SpecError, match="is a FIFO"):
        load_campaign(root / "fifo.yaml")


# -- the command line: exit 1, never 4, fast --------------------------------------------------------------

def test_cli_exit_status_is_1_for_every_hostile_file(tmp_path: Path) -> None:
    files = {
        "laughs.yaml": billion_laughs(),
        "merge.yaml": merge_bomb(),
        "deep.yaml": "a: " + "[" * 10_000 + "\n",
        "wide.yaml": "x: [" + ",".join(["1"] * 200_000) + "]\n",
        "nul.yaml": "a: \x00\n",
        "include.yaml": "include: [/dev/zero]\n",
    }
    paths = [str(write(tmp_path, text, name)) for name, text in files.items()]
    os.mkfifo(tmp_path / "fifo.yaml")
    paths.append(str(tmp_path / "fifo.yaml"))
    proc = subprocess.run([sys.executable, "-m", "compiler", "validate", *paths], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)  # hang guard
    assert proc.returncode == 1, proc.stderr
    *lines, summary = proc.stderr.splitlines()
    assert summary == f"{len(paths)} campaign(s): {len(paths)} error(s)", proc.stderr
    assert len(lines) == len(paths), proc.stderr
    assert all(": error: " in line and len(line) < 400 for line in lines)
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr


# -- the corpus of broken campaign files (tests/bad) -------------------------------------------------------

BAD = Path(__file__).parent / "bad"
BAD_CASES = sorted(p.stem for p in BAD.glob("*.yaml"))


def test_bad_corpus_is_complete() -> None:
    assert len(BAD_CASES) >= 80
    assert sorted(p.stem for p in BAD.glob("*.expected")) == BAD_CASES


@pytest.mark.parametrize("name", BAD_CASES)
def test_bad_corpus(name: str) -> None:
    expected = (BAD / f"{name}.expected").read_text(encoding="utf-8").rstrip("\n")
    with pytest.raises(SpecError) as info:
        compile_campaign(BAD / f"{name}.yaml", render=False)
    first = info.value.diagnostics[0].text().replace(f"{BAD}/", "").replace(str(BAD), "tests/bad")
    assert first == expected
