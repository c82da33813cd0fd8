"""A seeded fuzzer over the example campaigns: whatever the input, drpc answers with exit 0 or 1
(diagnostics that name a file, line and column), never a traceback or an internal error, and
never leaves a partial output tree.

Two kinds of mutants, each from a fixed seed and a fixed budget (so a failure reproduces
exactly: the test id names the seed):
- text mutants of a campaign file or of a fragment it includes (bytes flipped, lines dropped,
  doubled or swapped, indentation changed, a hostile token spliced in, the file cut short), for
  the loader, the include layer and the YAML layer;
- data mutants of the merged document (a value anywhere in the tree replaced by a hostile one, a
  key dropped or renamed, a list entry doubled), dumped back to YAML, for validation, the
  planner and every renderer, since a valid-looking mutant compiles the whole tree.
`DRPC_FUZZ_SEED` and `DRPC_FUZZ_BUDGET` widen a run by hand (e.g. a night-long search).
"""

from __future__ import annotations

import copy
import os
import random
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from compiler.cli import cli
from tests.helpers import CAMPAIGNS, MINIMAL, bring_site_files, dump_yaml, example_data

SEED = int(os.environ.get("DRPC_FUZZ_SEED", "20261202"))
BUDGET = int(os.environ.get("DRPC_FUZZ_BUDGET", "120"))  # mutants per kind and base campaign
BATCHES = 4  # each kind's budget is split into batches: test ids that say where a failure is

HOSTILE_VALUES: tuple[Any, ...] = (
    None, "", " ", 0, -1, 1, 2**63, -(2**63), 10**309, 1e308, -1e-308, 0.5, True, False,
    float("inf"), float("nan"), [], {}, [None], {"x": 1}, "x" * 300, "USDF", "../../etc/passwd",
    "/abs/path", "$HOME", "${X}", "{a}", "`id`", "a'b\"c", "a\nb", "\u2028", "\x00", "é",
    "\U0001f600", "file:///x", "davs://h:1/", "HSC", "visit", "tract", "usdf", "frdf",
    "step1", "every-site", "central", "tracts", "visits", "all", [1, 2, 3], [9469], "9469",
    -90, 90, 91, 360, 1e-9, "0x10", "1e3", "yes", "~", "*", "&a", "!!str",
)

HOSTILE_TOKENS: tuple[str, ...] = (
    "\x00", "\t", "&a ", "*a", "<<: *a", "!!python/object:os.system ", "{", "}", "[", "]",
    ": ", "- ", "? ", "'", '"', "#", "%YAML 1.1\n", "---\n", "...\n", "\u2028", "\ufeff", "\xe9",
    "${HOME}", "`x`", "|\n", ">-\n", "0o777", ".inf", "1e999", "-", "&", "!", "@",
)

INTERNAL = re.compile(r"Traceback|internal error|This is a bug in drpc")
DIAGNOSTIC = re.compile(r"^\S.*:\d+:\d+: (error|warning): ", re.M)


def bases(tmp: Path) -> dict[str, Path]:
    """The campaigns mutated: the minimal one, and the two examples (with their includes)."""
    bring_site_files(tmp)
    out = {"minimal": tmp / "minimal.yaml", "3x2": tmp / "3x2.yaml"}
    out["minimal"].write_text(MINIMAL, encoding="utf-8")
    shutil.copy(CAMPAIGNS / "3x2.yaml", out["3x2"])
    return out


# -- text mutants ----------------------------------------------------------------------------------

def text_mutant(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(8)
        if not lines:
            break
        i = rng.randrange(len(lines))
        if kind == 0:  # drop a line
            del lines[i]
        elif kind == 1:  # double a line
            lines.insert(i, lines[i])
        elif kind == 2:  # swap two lines
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == 3:  # change the indentation
            lines[i] = " " * rng.choice((0, 1, 3, 8)) + lines[i].lstrip(" ")
        elif kind == 4:  # splice a hostile token into a line
            at = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:at] + rng.choice(HOSTILE_TOKENS) + lines[i][at:]
        elif kind == 5:  # flip a character
            if lines[i]:
                at = rng.randrange(len(lines[i]))
                lines[i] = lines[i][:at] + chr(rng.randrange(1, 0x250)) + lines[i][at + 1:]
        elif kind == 6:  # cut the file short
            lines = lines[:i] + ([lines[i][:rng.randrange(len(lines[i]) + 1)]] if lines[i] else [])
        else:  # replace a scalar after a colon
            m = re.match(r"^(\s*[\w-]+: )(\S.*)$", lines[i].rstrip("\n"))
            if m:
                value = rng.choice(HOSTILE_VALUES)
                lines[i] = m.group(1) + (repr(value) if not isinstance(value, str) else value) + "\n"
    return "".join(lines)


# -- data mutants ----------------------------------------------------------------------------------

def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*prefix, i))


def data_mutant(data: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for _ in range(rng.randint(1, 2)):
        where = [p for p in paths(data) if p]
        path = rng.choice(where)
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        kind = rng.randrange(5)
        if kind <= 1:  # a hostile value
            parent[last] = copy.deepcopy(rng.choice(HOSTILE_VALUES))
        elif kind == 2:  # drop it
            del parent[last]
        elif kind == 3 and isinstance(parent, dict):  # rename the key
            parent[rng.choice(("x", str(last).upper(), f"{last}_", "usdf"))] = parent.pop(last)
        elif isinstance(parent, list):  # double a list entry
            parent.insert(last, copy.deepcopy(parent[last]))
        else:  # a value of another kind: a list of it, or a mapping holding it
            parent[last] = rng.choice(([parent[last]], {"value": parent[last]}))
    return data


# -- the property ----------------------------------------------------------------------------------

def check(campaign: Path, out: Path, what: str) -> None:
    """drpc validate and compile: exit 0 or 1, no internal error, and OUT whole or absent."""
    runner = CliRunner()
    validate = runner.invoke(cli, ["validate", str(campaign)])
    assert validate.exit_code in (0, 1), (what, validate.exit_code, validate.output[-2000:])
    assert not INTERNAL.search(validate.output), (what, validate.output[-2000:])
    if validate.exit_code == 1:
        assert DIAGNOSTIC.search(validate.output) or "drpc: error:" in validate.output, \
            (what, validate.output[-2000:])
        return
    compiled = runner.invoke(cli, ["compile", str(campaign), "-o", str(out)])
    assert compiled.exit_code in (0, 1), (what, compiled.exit_code, compiled.output[-2000:])
    assert not INTERNAL.search(compiled.output), (what, compiled.output[-2000:])
    if compiled.exit_code == 0:
        assert (out / "manifest.json").is_file(), what
        shutil.rmtree(out)
    else:
        assert not out.exists(), (what, "a failed compile left", sorted(out.rglob("*"))[:5])
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.drpc")]
    assert not leftovers, (what, leftovers)


@pytest.mark.parametrize("batch", range(BATCHES))
@pytest.mark.parametrize("base", ["minimal", "3x2", "sites/frdf.yaml"])
def test_text_mutants(tmp_path: Path, base: str, batch: int) -> None:
    """`sites/frdf.yaml`: the mutants are of the fragment 3x2 includes, 3x2 is what is run."""
    files = bases(tmp_path)
    target = files.get(base, tmp_path / base)
    campaign = files.get(base, files["3x2"])
    original = target.read_text(encoding="utf-8")
    rng = random.Random(f"{SEED}-text-{base}-{batch}")
    for n in range(BUDGET // BATCHES):
        mutant = text_mutant(original, rng)
        target.write_text(mutant, encoding="utf-8", errors="surrogateescape")
        check(campaign, tmp_path / "out", f"text mutant {n} of {base}, batch {batch}, "
                                          f"seed {SEED}:\n{mutant[:3000]}")


@pytest.mark.parametrize("batch", range(BATCHES))
@pytest.mark.parametrize("base", ["minimal", "3x2"])
def test_data_mutants(tmp_path: Path, base: str, batch: int) -> None:
    from ruamel.yaml import YAML

    data = (YAML(typ="safe").load(MINIMAL) if base == "minimal" else example_data("3x2.yaml"))
    rng = random.Random(f"{SEED}-data-{base}-{batch}")
    target = tmp_path / f"mutant-{base}.yaml"
    for n in range(BUDGET // BATCHES):
        mutant = data_mutant(data, rng)
        try:
            dump_yaml(mutant, target)
        except (ValueError, TypeError, OverflowError):  # a value YAML cannot hold: not a file
            continue
        check(target, tmp_path / "out", f"data mutant {n} of {base}, batch {batch}, seed {SEED}:\n"
                                        f"{target.read_text(encoding='utf-8', errors='replace')[:3000]}")
