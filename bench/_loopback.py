"""Shared by the HTTP benchmarks: a synthetic multiple-choice set, an experiment file, and
serve-sim in a subprocess of its own (so that server and client do not share one CPU core)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from random import Random
from typing import Any

import yaml

from societies.plan.plan import Overrides, Plan
from societies.plan.resolve import load_plan
from societies.scheduler.runner import RunSummary
from societies.scheduler.session import run_experiment


def write_experiment(folder: Path, cases: int, concurrency: int, **extra: Any) -> Path:
    rng = Random(0)
    data = folder / "cases.jsonl"
    with data.open("w", encoding="utf-8") as fh:
        for i in range(cases):
            a, b = rng.randint(10, 99), rng.randint(10, 99)
            choices = [str(a + b + d) for d in rng.sample(range(-9, 10), 4)]
            answer = rng.randrange(4)
            choices[answer] = str(a + b)
            row = {
                "id": f"b{i:04d}",
                "question": f"What is {a} + {b}? (benchmark question {i})",
                "choices": choices,
                "answer": "ABCD"[answer],
            }
            fh.write(json.dumps(row) + "\n")
    experiment = {
        "name": "bench",
        "task": {"name": "mmlu", "data": str(data)},
        "prompts": "machinesom",
        "model": {"backend": "sim", "name": "default"},
        "societies": [{"agents": 3, "easy_going": [0, 1, 2, 3]}],
        "rounds": 3,
        "strategies": "all",
        "concurrency": concurrency,
        **extra,
    }
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(experiment), encoding="utf-8")
    return path


def start_server(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "societies", "serve-sim", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if " on http" not in line:
        proc.kill()
        raise RuntimeError(f"serve-sim did not start: {line!r}")
    return proc, line.split(" on ")[1].strip()


def stats(base_url: str) -> dict[str, int]:
    import urllib.request

    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats", timeout=10) as r:
        return dict(json.load(r))


def timed_run(
    experiment: Path, out: Path, base_url: str | list[str], **options: Any
) -> tuple[Plan, RunSummary, float]:
    """The experiment through the openai backend against serve-sim; wall time of the run."""
    plan = load_plan(
        experiment,
        Overrides(
            out=out, model="openai:sim-model", model_options={"base_url": base_url, **options}
        ),
    )
    started = time.perf_counter()
    summary = asyncio.run(run_experiment(plan))
    return plan, summary, time.perf_counter() - started
