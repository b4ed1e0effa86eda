"""Prefix-cache hits and wall time over 4 replicas: affinity routing vs round robin.

Four serve-sim replicas (subprocesses on 127.0.0.1), each with its own prefix-cache model
(``--prefix-cache-tokens``) where every prompt token not served from cache adds prefill
latency (``--prefill-ms-per-1k``). The experiment is the throughput benchmark's shape
(4 societies x 8 strategies x N cases, machinesom protocol) through the openai backend with
``base_url`` listing the four replicas. The ideal hit share is what one replica with the same
cache measures for the same run: every append-only prefix a hit after its first call.

Prints, for affinity routing (without and with a per-replica concurrency limit, which
spills calls off a busy replica) and for round robin: the cached share of prompt tokens, its
ratio to the ideal (target >= 0.9 for affinity), wall time, and the calls each replica served.

    python bench/affinity.py [--cases 25] [--latency-ms 20] [--prefill-ms-per-1k 100]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from _loopback import start_server, stats, timed_run, write_experiment


def measure(
    experiment: Path, out: Path, server_args: list[str], replicas: int, **options: Any
) -> tuple[float, float, list[int]]:
    """(cached share of prompt tokens, wall seconds, requests per replica) of one run."""
    servers = [start_server(*server_args) for _ in range(replicas)]
    urls = [url for _, url in servers]
    try:
        _, summary, wall = timed_run(experiment, out, urls if replicas > 1 else urls[0], **options)
        served = [stats(url) for url in urls]
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait()
    assert summary.errors == 0, f"{summary.errors} calls failed"
    share = sum(s.get("cached_tokens", 0) for s in served) / sum(s["prompt_tokens"] for s in served)
    return share, wall, [s["requests"] for s in served]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=25)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--prefill-ms-per-1k", type=float, default=100.0)
    parser.add_argument("--cache-tokens", type=int, default=5_000_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--slots", type=int, default=16, help="requests a replica works on at once")
    parser.add_argument("--replica-concurrency", type=int, default=32, help="the limited run's")
    args = parser.parse_args()
    os.environ.setdefault("SOCIETIES_BENCH_KEY", "bench")
    with tempfile.TemporaryDirectory() as tmp:
        experiment = write_experiment(Path(tmp), args.cases, args.concurrency)
        server_args = [
            "--experiment", str(experiment),
            "--latency-ms", str(args.latency_ms),
            "--prefill-ms-per-1k", str(args.prefill_ms_per_1k),
            "--prefix-cache-tokens", str(args.cache_tokens),
        ]  # fmt: skip
        slots = ["--slots", str(args.slots)]
        common = {"api_key_env": "SOCIETIES_BENCH_KEY"}
        one = [*server_args, "--slots", str(4 * args.slots)]
        ideal, ideal_wall, _ = measure(experiment, Path(tmp) / "one", one, 1, **common)
        print(f"ideal (one replica): cached share {ideal:.3f}, wall {ideal_wall:.2f} s")
        limit = args.replica_concurrency
        for name, routing, per_replica in (
            ("affinity", "affinity", None),
            (f"affinity, replica_concurrency {limit}", "affinity", limit),
            ("round_robin", "round_robin", None),
        ):
            share, wall, calls = measure(
                experiment, Path(tmp) / name, [*server_args, *slots], 4, routing=routing,
                replica_concurrency=per_replica, **common,
            )  # fmt: skip
            print(
                f"{name}: cached share {share:.3f} ({share / ideal:.3f} of ideal), "
                f"wall {wall:.2f} s, calls per replica {calls}"
            )


if __name__ == "__main__":
    main()
