"""Throughput through the openai backend against serve-sim at 200 ms per call.

4 societies x 8 strategies x 50 cases (9,600 calls, machinesom protocol) at concurrency 64.
Prints the wall time, the ideal bound max(critical path, calls x latency / concurrency), and
``efficiency: X`` with X = ideal / actual (target >= 0.9).

    python bench/throughput.py [--cases 50] [--latency-ms 200] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from _loopback import start_server, stats, timed_run, write_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    os.environ.setdefault("SOCIETIES_BENCH_KEY", "bench")
    with tempfile.TemporaryDirectory() as tmp:
        experiment = write_experiment(Path(tmp), args.cases, args.concurrency)
        proc, url = start_server(
            "--latency-ms", str(args.latency_ms), "--experiment", str(experiment)
        )
        try:
            plan, summary, wall = timed_run(
                experiment, Path(tmp) / "run", url, api_key_env="SOCIETIES_BENCH_KEY"
            )
            served = stats(url)
        finally:
            proc.terminate()
            proc.wait()
    latency = args.latency_ms / 1000
    depth = 2 + plan.rounds  # persona call, first answer, one call per round
    critical = depth * latency
    ideal = max(critical, summary.made * latency / args.concurrency)
    print(
        f"calls: {summary.made} ({summary.errors} errors), server requests: {served['requests']}, "
        f"max in flight at the server: {served['max_in_flight']}"
    )
    print(f"wall time: {wall:.2f} s; ideal bound: {ideal:.2f} s (critical path {critical:.2f} s)")
    print(f"calls/s: {summary.made / wall:.1f}")
    print(f"efficiency: {ideal / wall:.3f}")


if __name__ == "__main__":
    main()
