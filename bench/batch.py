"""The study's main preset through batch mode against serve-sim's Batch API on 127.0.0.1.

The shape of experiments/paper/main.yaml on MMLU: 4 societies (0-3 easy-going) x the 8
strategies of 3 rounds x N cases (--limit, default 50) x 1 repeat, machinesom prompts, 48
calls per case and society; the model named as the study's (gpt-3.5-turbo-1106) so that
prices apply, served by serve-sim (a subprocess) with a processing delay per batch.

Prints, for an uninterrupted run: batches (one per level: role-play, first answer, 3 rounds),
calls, wall time, tokens and the cost of those tokens at batch and at interactive prices (and
the dry run's estimate of both). Then a second run is killed with SIGKILL while its batches
are in progress and run again: the requests the server was sent twice (serve-sim /stats
``batch_requests`` minus the calls, and the ledger's count) must be 0.

    python bench/batch.py [--limit 50] [--batch-delay 2]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from _loopback import start_server, stats

from societies.backends.base import Usage
from societies.cost import DEFAULT_PRICES, cost_of, estimate_run
from societies.plan.plan import Overrides
from societies.plan.resolve import load_plan
from societies.store.batches import BatchLedger

REPO = Path(__file__).resolve().parents[1]
MODEL = "gpt-3.5-turbo-1106"


def write_experiment(folder: Path) -> Path:
    """main.yaml on its MMLU task alone, one repeat, through the openai backend in batch mode."""
    main = yaml.safe_load((REPO / "experiments/paper/main.yaml").read_text(encoding="utf-8"))
    task = dict(main.pop("tasks")[0])
    task["data"] = [str((REPO / "experiments/paper" / p).resolve()) for p in task["data"]]
    main.update(
        name="bench-batch",
        task=task,
        repeats=1,
        output=None,
        model={
            "backend": "openai",
            "name": MODEL,
            "options": {"api_key_env": "SOCIETIES_BENCH_KEY", "batch": True, "batch_poll": 0.2},
        },
    )
    main.pop("output")
    path = folder / "bench-batch.yaml"
    path.write_text(yaml.safe_dump(main, sort_keys=False), encoding="utf-8")
    return path


def run(experiment: Path, out: Path, url: str, limit: int) -> subprocess.Popen[str]:
    args = [
        sys.executable, "-m", "societies", "run", str(experiment), "--out", str(out),
        "--limit", str(limit), "--base-url", url, "--quiet", "--accept-size",
    ]  # fmt: skip
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def store_figures(out: Path) -> dict[str, Any]:
    con = sqlite3.connect(out / "store.sqlite")
    try:
        ledger = BatchLedger(con)
        counts = ledger.counts()
        calls, prompt, completion, ok = con.execute(
            "SELECT COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(outcome = 'ok') "
            "FROM calls"
        ).fetchone()
        return {
            "batches": sum(v for k, v in counts.items() if k != "requests"),
            "requests": counts["requests"],
            "sent_twice": ledger.sent_twice(),
            "calls": calls,
            "ok": ok,
            "prompt": prompt or 0,
            "completion": completion or 0,
        }
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=50, help="cases")
    parser.add_argument("--batch-delay", type=float, default=2.0, help="seconds per batch")
    args = parser.parse_args()
    os.environ.setdefault("SOCIETIES_BENCH_KEY", "bench")
    price = DEFAULT_PRICES[MODEL]
    with tempfile.TemporaryDirectory() as tmp:
        experiment = write_experiment(Path(tmp))
        plan = load_plan(experiment, Overrides(limit=args.limit, out=Path(tmp) / "dry"))
        dry = estimate_run(plan, DEFAULT_PRICES)
        server_args = ["--experiment", str(experiment), "--batch-delay", str(args.batch_delay)]

        proc, url = start_server(*server_args)
        try:
            started = time.perf_counter()
            whole = run(experiment, Path(tmp) / "whole", url, args.limit)
            _, err = whole.communicate()
            wall = time.perf_counter() - started
            assert whole.returncode == 0, err
            served = stats(url)
        finally:
            proc.terminate()
            proc.wait()
        fig = store_figures(Path(tmp) / "whole")
        usage = Usage(fig["prompt"], fig["completion"])
        print(
            f"{plan.experiment.name}: {len(plan.societies)} societies x "
            f"{len(plan.strategies[plan.societies[0].name])} strategies x {len(plan.cases)} "
            f"cases x 1 repeat; {dry.levels} levels"
        )
        print(
            f"uninterrupted: {fig['batches']} batches, {fig['calls']:,} calls ({fig['ok']:,} ok), "
            f"server: {served.get('batches', 0)} batches / {served.get('batch_requests', 0):,} "
            f"requests; wall {wall:.1f} s ({args.batch_delay:g} s per batch at the server)"
        )
        print(
            f"tokens: {fig['prompt']:,} prompt + {fig['completion']:,} completion; at "
            f"{MODEL} prices: ${cost_of(price, usage, batch=True):.2f} batch vs "
            f"${cost_of(price, usage):.2f} interactive; dry-run estimate "
            f"${dry.batch_cost or 0:.2f} batch vs ${dry.cost or 0:.2f} interactive"
        )

        proc, url = start_server(*server_args)
        out = Path(tmp) / "killed"
        try:
            first = run(experiment, out, url, args.limit)
            while stats(url).get("batches", 0) < 2:  # the first answer's level is in progress
                assert first.poll() is None, first.communicate()
                time.sleep(0.05)
            time.sleep(args.batch_delay / 4)
            first.send_signal(signal.SIGKILL)
            first.wait()
            at_kill = store_figures(out)
            before = stats(url)
            second = run(experiment, out, url, args.limit)
            _, err = second.communicate()
            assert second.returncode == 0, err
            after = stats(url)
        finally:
            proc.terminate()
            proc.wait()
        fig = store_figures(out)
        twice = after.get("batch_requests", 0) - fig["calls"]
        print(
            f"SIGKILL while batch {before.get('batches', 0)} was in progress "
            f"({at_kill['calls']:,} calls stored, {at_kill['batches']} batches recorded), then "
            f"resume: {fig['calls']:,} calls, {after.get('batches', 0)} batches at the server, "
            f"requests submitted twice: {twice} (server), {fig['sent_twice']} (ledger)"
        )
        print(json.dumps({"load": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
