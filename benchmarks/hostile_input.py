"""How fast hostile or broken campaign files are refused (the tests assert only that they are).

Usage: .venv/bin/python benchmarks/hostile_input.py [--repeat N]
Prints the median wall time of `load + validate` for every file of tests/bad/ and for generated
hostile inputs (alias bombs, deep nesting, a wide flow list, a megabyte of comments). A
measurement, not a test: compare numbers before and after a change on the same machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compiler.errors import SpecError  # noqa: E402
from compiler.pipeline import compile_campaign  # noqa: E402


def generated() -> dict[str, str]:
    laughs = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        laughs.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return {
        "billion-laughs": "\n".join(laughs) + "\n",
        "deep-nesting": "a: " + "[" * 10_000 + "\n",
        "wide-flow-list": "x: [" + ",".join(["1"] * 200_000) + "]\n",
        "megabyte-of-comments": ("# " + "c" * 78 + "\n") * 12_000 + "a: 1\n",
    }


def once(path: Path) -> float:
    start = time.perf_counter()
    try:
        compile_campaign(path, render=False)
    except SpecError:
        pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cases = sorted((ROOT / "tests" / "bad").glob("*.yaml"))
        for name, text in generated().items():
            path = Path(tmp) / f"{name}.yaml"
            path.write_text(text)
            cases.append(path)
        worst = 0.0
        for path in cases:
            median = statistics.median(once(path) for _ in range(args.repeat))
            worst = max(worst, median)
            print(f"{median * 1000:9.1f} ms  {path.name}")
        print(f"{len(cases)} inputs, slowest {worst * 1000:.1f} ms")


if __name__ == "__main__":
    main()
