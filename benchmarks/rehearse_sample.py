"""How long `drpc rehearse --sample N` takes on a campaign, and where the time goes: a benchmark.

Usage: .venv/bin/python benchmarks/rehearse_sample.py [CAMPAIGN] [--sample N] [--json FILE]

Runs the rehearsal (real Rucio server, PostgreSQL, Kafka-protocol broker and Butlers on this
machine, as `drpc rehearse` does) of CAMPAIGN (default campaigns/dr1.yaml) on N tracts per site
(default 1) in a temporary folder, then prints its wall time, what it sampled and the seconds
spent per kind of step (register, wait, verify, setup-repo, ...) summed over the steps, from the
rehearsal's own report.json. Exits with the rehearsal's exit status.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("campaign", nargs="?", default=str(ROOT / "campaigns" / "dr1.yaml"))
    parser.add_argument("--sample", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drpc-rehearse-bench-") as tmp:
        work = Path(tmp) / "work"
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "compiler", "rehearse", args.campaign,
                                 "--sample", str(args.sample), "--work", str(work)],
                                cwd=ROOT, capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        report_file = work / "report.json"
        report = json.loads(report_file.read_text()) if report_file.is_file() else {}
    by_kind: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for step in report.get("steps", []):
        kind = step["key"].split(":", 1)[0]
        by_kind[kind] += step.get("seconds") or 0.0
        count[kind] += 1
    figures = {"campaign": args.campaign, "sample": args.sample, "exit": result.returncode,
               "wall_seconds": round(wall, 1), "ok": report.get("ok"),
               "sampled": report.get("sample"),
               "steps": {k: {"count": count[k], "seconds": round(v, 1)}
                         for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])}}
    print(f"drpc rehearse {args.campaign} --sample {args.sample}: exit {result.returncode}, "
          f"{wall:,.0f} s wall, ok={report.get('ok')}")
    if report.get("sample"):
        print(f"  {report['sample']}")
    for kind, row in figures["steps"].items():
        print(f"  {kind:<12} {row['count']:>5} step(s) {row['seconds']:>9,.1f} s")
    if result.returncode != 0:
        print(result.stdout[-3000:], result.stderr[-3000:], sep="\n", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
