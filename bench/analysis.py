"""Benchmark: analysis of a synthetic run the size of the study's full main grid.

144,000 calls = 3 runs (one per task in the study; here three runs of the multiple-choice task,
the analysis being task-agnostic) x 4 societies x 50 cases x 5 repeats x 48 tree calls (3
agents, 8 strategies of 3 rounds, machinesom role-play turns). The stores are written through
the store's API by ``tests/synthetic_store.py`` (not timed; the one synthetic-store builder,
shared with the tests and ``bench/report.py``); then loading, every table and every figure are
timed, with peak memory (the process's max RSS). Target: <= 15 s and <= 2 GB.

    .venv/bin/python bench/analysis.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.synthetic_store import build_store

SOCIETIES, CASES, REPEATS, TASKS = 4, 50, 5, ("mmlu-a", "mmlu-b", "mmlu-c")


def measure(dirs: list[str]) -> None:
    """Child process: time loading + every table + every figure, print JSON."""
    import societies
    from societies.analysis.figures import render

    started = time.perf_counter()
    analysis = societies.load_run(dirs)
    loaded = time.perf_counter()
    tables = analysis.tables()
    tabled = time.perf_counter()
    figures = render(analysis)
    done = time.perf_counter()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "calls": len(analysis.calls),
                "answer_rows": len(analysis.answers),
                "tables": len(tables),
                "figures": len(figures),
                "load_s": loaded - started,
                "tables_s": tabled - loaded,
                "figures_s": done - tabled,
                "total_s": done - started,
                "peak_mb": peak_kb / 1024,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs (fresh process each)")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure)
        return
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        dirs = []
        total = 0
        for n, name in enumerate(TASKS):
            folder = Path(tmp) / name
            total += build_store(
                folder, name=name, societies=SOCIETIES, cases=CASES, repeats=REPEATS, seed=n
            )
            dirs.append(str(folder))
        print(f"built {total:,} calls in {time.perf_counter() - started:.1f}s (not timed)")
        results = []
        for i in range(args.runs):
            out = subprocess.run(
                [sys.executable, __file__, "--measure", *dirs],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            result = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(result)
            print(
                f"run {i + 1}: load {result['load_s']:.2f}s, tables {result['tables_s']:.2f}s, "
                f"figures {result['figures_s']:.2f}s, total {result['total_s']:.2f}s, "
                f"peak {result['peak_mb']:.0f} MB"
            )
        total_s = statistics.median(r["total_s"] for r in results)
        peak = statistics.median(r["peak_mb"] for r in results)
        print(
            f"median over {len(results)} runs: {total_s:.2f}s, peak memory {peak:.0f} MB "
            f"({results[0]['calls']:,} calls, {results[0]['answer_rows']:,} answer rows; "
            "target <= 15 s, <= 2048 MB)"
        )


if __name__ == "__main__":
    main()
