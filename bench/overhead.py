"""Scheduler + store overhead on the simulated model: 4 societies x 8 strategies x 150 cases.

Runs in-process on one core (asyncio, one thread), store included, and prints model calls per
second and peak memory. Target: >= 2,000 calls/s. Usage: python bench/overhead.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from societies.plan.plan import Overrides
from societies.plan.resolve import load_plan
from societies.scheduler.session import run_experiment


def make_cases(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            row = {
                "id": f"b{i}",
                "question": f"Which option is number {i % 4 + 1} of this synthetic question {i}?",
                "choices": [f"option {j} of {i}" for j in range(4)],
                "answer": "ABCD"[i % 4],
            }
            fh.write(json.dumps(row) + "\n")


def one_run(tmp: Path, index: int) -> tuple[int, float]:
    data = tmp / "cases.jsonl"
    if not data.exists():
        make_cases(data, 150)
    exp = {
        "name": "overhead",
        "task": {"name": "mmlu", "data": str(data)},
        "prompts": "machinesom",
        "concurrency": 256,
        "societies": [{"agents": 3, "easy_going": [0, 1, 2, 3]}],
        "rounds": 3,
        "strategies": "all",
    }
    file = tmp / "overhead.yaml"
    file.write_text(yaml.safe_dump(exp))
    plan = load_plan(file, Overrides(out=tmp / f"run{index}"))
    started = time.perf_counter()
    summary = asyncio.run(run_experiment(plan, argv=["bench"]))
    return summary.made, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            calls, elapsed = one_run(Path(tmp), i)
            rates.append(calls / elapsed)
            print(f"run {i + 1}: {calls} calls in {elapsed:.2f} s = {calls / elapsed:,.0f} calls/s")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"median: {statistics.median(rates):,.0f} calls/s over {args.runs} runs (target >= 2,000)"
    )
    print(f"peak memory (max RSS of the process): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
