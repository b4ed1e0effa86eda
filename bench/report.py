"""Benchmark: ``societies report`` on a synthetic store the size of the agent-number preset.

1,008,000 calls = 42 societies x 100 cases x 5 repeats x 48 tree calls (3 agents, every
3-round strategy, role-play turns), written with direct SQL inserts (not timed) by
``tests/synthetic_store.py``. Then ``societies report`` runs in a fresh process per timed run;
the file's size and the wall time are printed. Targets: <= 10 MB and <= 30 s.

    .venv/bin/python bench/report.py [--runs N] [--cases N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.synthetic_store import build_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs (fresh process each)")
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--societies", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        run_dir = Path(tmp) / "agents"
        calls = build_store(
            run_dir, name="agents", societies=args.societies, cases=args.cases,
            repeats=args.repeats,
        )  # fmt: skip
        print(f"built {calls:,} calls in {time.perf_counter() - started:.1f}s (not timed)")
        sizes, times = [], []
        for i in range(args.runs):
            out = Path(tmp) / f"report{i}.html"
            began = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "societies", "report", str(run_dir), "-o", str(out)],
                check=True, capture_output=True,
            )  # fmt: skip
            times.append(time.perf_counter() - began)
            sizes.append(out.stat().st_size / 1e6)
            print(f"run {i + 1}: {times[-1]:.1f}s, {sizes[-1]:.2f} MB")
        print(
            f"median over {args.runs} runs: {statistics.median(times):.1f}s, "
            f"{statistics.median(sizes):.2f} MB ({calls:,} calls; target <= 30 s, <= 10 MB); "
            f"load average {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    main()
