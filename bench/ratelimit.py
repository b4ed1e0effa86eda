"""Rate limiting through the openai backend against serve-sim enforcing an RPM limit.

serve-sim refuses (429, with Retry-After) any request beyond ``--rpm`` in a sliding window;
the backend is configured with the same ``rpm`` and paces its requests. Prints the rate
achieved as a share of the limit (target >= 90%), the share of requests answered 429 (target
< 2%) and whether every call completed. ``--no-pacing`` leaves the backend unaware of the
limit, to show the back-off on bursts of 429s and the recovery.

    python bench/ratelimit.py [--rpm 1800] [--cases 10] [--latency-ms 200] [--no-pacing]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from _loopback import start_server, stats, timed_run, write_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rpm", type=int, default=1800)
    parser.add_argument("--window", type=float, default=60.0, help="seconds of the RPM window")
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--no-pacing", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("SOCIETIES_BENCH_KEY", "bench")
    options: dict[str, object] = {"api_key_env": "SOCIETIES_BENCH_KEY", "max_attempts": 20}
    if not args.no_pacing:
        options["rpm"] = args.rpm
    with tempfile.TemporaryDirectory() as tmp:
        experiment = write_experiment(Path(tmp), args.cases, args.concurrency)
        proc, url = start_server(
            "--latency-ms", str(args.latency_ms), "--experiment", str(experiment),
            "--rpm", str(args.rpm), "--rpm-window", str(args.window),
        )  # fmt: skip
        try:
            _, summary, wall = timed_run(experiment, Path(tmp) / "run", url, **options)
            ok = summary.made - summary.errors - summary.context_exceeded
            served = stats(url)
        finally:
            proc.terminate()
            proc.wait()
    achieved = served["answered"] / wall * 60
    refused = served.get("429", 0)
    print(f"pacing: {'off' if args.no_pacing else 'on'}; limit {args.rpm} rpm")
    print(
        f"calls: {summary.planned} planned, {ok} ok, {summary.errors} errors; "
        f"wall time {wall:.1f} s"
    )
    print(f"achieved: {achieved:.0f} rpm = {achieved / args.rpm:.1%} of the limit")
    print(f"429s: {refused} of {served['requests']} requests = {refused / served['requests']:.2%}")
    print(f"no case lost: {ok == summary.planned}")


if __name__ == "__main__":
    main()
