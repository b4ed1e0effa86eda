"""The engine at scale: the study's agent-number preset on the simulated model, then analysed.

Runs ``experiments/paper/agents.yaml`` (1,052,000 calls in full; ``--limit N`` takes its first
N cases) in-process on the simulated model, then loads the run and computes every table. Each
phase runs in a fresh child process, whose own resource usage (``wait4``) gives its peak
memory, so the figures of one phase do not include the other's. Prints calls/s, peak RSS of
the run, store bytes per call, analysis seconds and the analysis's peak RSS.

Targets (issue 15): run peak RSS <= 400 MB and within 10 % between ``--limit 5`` and the full
preset; store <= 900 MB for the full preset; calls/s not below the previous commit's; load_run
plus every table <= 20 s and <= 1 GB.

    .venv/bin/python bench/scale.py --limit 5 --runs 3
    .venv/bin/python bench/scale.py --python /work/main/.venv/bin/python --limit 5  # compare
    .venv/bin/python bench/scale.py                                                 # ~13 min
    .venv/bin/python bench/scale.py --keep /tmp/scale                   # keep the run directory
    .venv/bin/python bench/scale.py --analyse /tmp/scale/run0 --runs 3  # analysis step alone

``--python`` runs both phases with another interpreter (another checkout's venv), so that two
versions of the engine are measured by the same script, one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRESET = REPO / "experiments" / "paper" / "agents.yaml"

#: The child's run phase. The plan resolver's module moved in issue 15 (config.load ->
#: plan.resolve); the fallback lets this script measure a checkout from before the move.
RUN = """
import asyncio, sys
from pathlib import Path
try:
    from societies.plan.plan import Overrides
    from societies.plan.resolve import load_plan
except ImportError:
    from societies.config.load import Overrides, load_plan
from societies.scheduler.session import run_experiment
limit = int(sys.argv[3]) if sys.argv[3] != "all" else None
plan = load_plan(Path(sys.argv[1]), Overrides(out=Path(sys.argv[2]), limit=limit))
summary = asyncio.run(run_experiment(plan, argv=["bench"]))
print(summary.made)
"""

ANALYSE = """
import sys
import societies
analysis = societies.load_run(sys.argv[1])
print(sum(len(t) for t in analysis.tables().values()))
"""


#: CPU seconds of the last child (user + system): on a loaded machine they say more than
#: its wall time.
LAST_CPU = [0.0]


def child(python: str, code: str, *args: str, cwd: Path) -> tuple[float, float, str]:
    """Seconds, peak RSS (MB) and standard output of one child process. It runs outside the
    repository, so that the package it imports is the interpreter's own install."""
    started = time.perf_counter()
    proc = subprocess.Popen([python, "-c", code, *args], stdout=subprocess.PIPE, text=True, cwd=cwd)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    LAST_CPU[0] = usage.ru_utime + usage.ru_stime
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}): {code.strip().splitlines()[-2]}")
    return elapsed, usage.ru_maxrss / 1024, out.strip()


def store_bytes(run_dir: Path) -> int:
    return sum(f.stat().st_size for f in run_dir.glob("store.sqlite*"))


def one(python: str, limit: str, tmp: Path, index: int) -> dict[str, float]:
    out = tmp / f"run{index}"
    seconds, rss, printed = child(python, RUN, str(PRESET), str(out), limit, cwd=tmp)
    calls = int(printed.splitlines()[-1])
    size = store_bytes(out)
    a_seconds, a_rss, _ = child(python, ANALYSE, str(out), cwd=tmp)
    return {
        "calls": calls,
        "seconds": seconds,
        "calls_per_s": calls / seconds,
        "run_rss_mb": rss,
        "store_mb": size / 1e6,
        "bytes_per_call": size / calls,
        "analysis_s": a_seconds,
        "analysis_rss_mb": a_rss,
    }


def analyse_only(python: str, run_dir: Path, runs: int) -> None:
    """The analysis phase alone on a kept store (the full preset takes minutes to run)."""
    seconds, cpu, peaks = [], [], []
    for i in range(runs):
        load = os.getloadavg()[0]
        s, rss, _ = child(python, ANALYSE, str(run_dir.resolve()), cwd=Path(tempfile.gettempdir()))
        seconds.append(s)
        cpu.append(LAST_CPU[0])
        peaks.append(rss)
        print(
            f"analysis {i + 1}: {s:.1f} s ({cpu[-1]:.1f} s CPU), peak RSS {rss:.0f} MB "
            f"(load average {load:.2f} before)",
            flush=True,
        )
    print(
        f"median of {runs}: analysis {statistics.median(seconds):.1f} s "
        f"({statistics.median(cpu):.1f} s CPU), peak RSS {statistics.median(peaks):.0f} MB "
        f"(load average {os.getloadavg()[0]:.2f} after)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", default="all", help="the first N cases (default: all 50)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--python", default=sys.executable, help="interpreter to measure")
    parser.add_argument("--keep", type=Path, help="keep the run directories here")
    parser.add_argument(
        "--analyse", type=Path, help="only analyse this existing run directory, --runs times"
    )
    args = parser.parse_args()
    if args.analyse:
        analyse_only(args.python, args.analyse, args.runs)
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="societies-scale-") as scratch:
        tmp = args.keep or Path(scratch)
        for i in range(args.runs):
            load = os.getloadavg()[0]
            r = one(args.python, args.limit, tmp, i)
            results.append(r)
            print(
                f"run {i + 1}: {r['calls']:,.0f} calls in {r['seconds']:.1f} s = "
                f"{r['calls_per_s']:,.0f} calls/s, run peak RSS {r['run_rss_mb']:.0f} MB, store "
                f"{r['store_mb']:.1f} MB ({r['bytes_per_call']:,.0f} B/call); analysis "
                f"{r['analysis_s']:.1f} s, peak RSS {r['analysis_rss_mb']:.0f} MB "
                f"(load average {load:.2f} before)",
                flush=True,
            )
    median = {k: statistics.median(r[k] for r in results) for k in results[0]}
    print(
        f"median of {len(results)} ({args.python}, --limit {args.limit}): "
        + json.dumps({k: round(v, 1) for k, v in median.items()})
    )


if __name__ == "__main__":
    main()
