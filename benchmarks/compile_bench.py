"""Time each phase of a compile (load, validate, plan, render) on the example campaigns.

Usage: .venv/bin/python benchmarks/compile_bench.py [CAMPAIGN...] [--repeat N]
Prints the median wall time of each phase over N runs. A measurement, not a test: CI does not
judge it; compare numbers before and after a change on the same machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from compiler.emit import with_manifest
from compiler.loader import load_campaign
from compiler.plan import build_plan
from compiler.render import render_all
from compiler.validate import plan_warnings, validate_loaded

ROOT = Path(__file__).resolve().parents[1]


def phases(path: Path) -> dict[str, float]:
    times: dict[str, float] = {}
    t = time.perf_counter()
    loaded = load_campaign(path)
    times["load"] = time.perf_counter() - t
    t = time.perf_counter()
    spec, _ = validate_loaded(loaded)
    times["validate"] = time.perf_counter() - t
    t = time.perf_counter()
    plan = build_plan(spec, loaded)
    plan_warnings(plan, loaded)
    times["plan"] = time.perf_counter() - t
    t = time.perf_counter()
    files = with_manifest(plan, render_all(plan), None)
    times["render"] = time.perf_counter() - t
    times["files"] = len(files)
    times["bytes"] = sum(len(b) for b in files.values())
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("campaigns", nargs="*", type=Path,
                        default=sorted((ROOT / "campaigns").glob("*.yaml")))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'campaign':<12} {'load':>8} {'validate':>9} {'plan':>8} {'render':>8} {'total':>8} "
          f"{'files':>6} {'KiB':>7}")
    for path in args.campaigns:
        runs = [phases(path) for _ in range(args.repeat)]
        med = {k: statistics.median(r[k] for r in runs)
               for k in ("load", "validate", "plan", "render")}
        total = sum(med.values())
        print(f"{path.stem:<12} " + " ".join(f"{med[k] * 1000:>7.1f}ms" for k in ("load",)) +
              f" {med['validate'] * 1000:>7.1f}ms {med['plan'] * 1000:>6.1f}ms"
              f" {med['render'] * 1000:>6.1f}ms"
              f" {total * 1000:>6.1f}ms {runs[0]['files']:>6} {runs[0]['bytes'] / 1024:>7.1f}")


if __name__ == "__main__":
    main()
