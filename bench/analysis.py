"""Benchmark: analysis of a synthetic run the size of the study's full main grid.

144,000 calls = 3 runs (one per task in the study; here three runs of the multiple-choice task,
the analysis being task-agnostic) x 4 societies x 50 cases x 5 repeats x 48 tree calls (3
agents, 8 strategies of 3 rounds, machinesom role-play turns). The stores are written with
direct SQL inserts (not timed); then loading, every table and every figure are timed, with
peak memory (the process's max RSS). Target: <= 15 s and <= 2 GB.

    .venv/bin/python bench/analysis.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from societies.store.db import RunStore
from societies.store.records import CallKey, CallRecord, Outcome

SOCIETIES = {
    "3oc": ["overconfident"] * 3,
    "1eg-2oc": ["easy-going", "overconfident", "overconfident"],
    "2eg-1oc": ["easy-going", "easy-going", "overconfident"],
    "3eg": ["easy-going"] * 3,
}
STRATEGIES = [f"{i:03b}" for i in range(8)]
CASES, REPEATS, TASKS = 50, 5, ("mmlu-a", "mmlu-b", "mmlu-c")


def build_store(folder: Path, name: str, seed: int) -> int:
    """One run's store with every call of the grid; answers drift towards agreement."""
    rng = random.Random(seed)
    store = RunStore.for_run_dir(folder)
    config = {"name": name, "task": {"name": "mmlu", "data": "synthetic.jsonl"}}
    store.create_run(
        {"name": name, "created_at": "2026-01-01T00:00:00", "package_version": "bench",
         "config_json": json.dumps(config), "identity_json": "{}", "task": "mmlu",
         "extraction": "robust", "prompts": "machinesom", "source": None}
    )  # fmt: skip
    cases = []
    for i in range(CASES):
        fields = {"id": f"c{i}", "question": f"Question {i}?", "answer": "ABCD"[i % 4],
                  "choices": ["one", "two", "three", "four"]}  # fmt: skip
        cases.append((f"c{i}", i, json.dumps(fields)))
    store.put_cases(cases)
    store.put_agents(
        (society, a, f"agent{a}", trait, None, "sim", "default")
        for society, traits in SOCIETIES.items()
        for a, trait in enumerate(traits)
    )
    nodes = sorted({s[:r] for s in STRATEGIES for r in range(4)}, key=lambda c: (len(c), c))
    store.put_strategy_nodes(
        (rep, f"c{i}", society, s, r, s[:r])
        for rep in range(REPEATS)
        for i in range(CASES)
        for society in SOCIETIES
        for s in STRATEGIES
        for r in range(4)
    )
    rows: list[CallRecord] = []
    for rep in range(REPEATS):
        for i in range(CASES):
            target = "ABCD"[i % 4]
            for society in SOCIETIES:
                answers: dict[str, list[str | None]] = {}
                for node in nodes:
                    parent = answers.get(node[:-1])
                    for a in range(3):
                        if parent is None:
                            ans: str | None = target if rng.random() < 0.6 else rng.choice("ABCD")
                        else:
                            ans = parent[a] if rng.random() < 0.7 else rng.choice(parent)
                        if rng.random() < 0.03:
                            ans = None
                        answers.setdefault(node, []).append(ans)
                        r = len(node)
                        prompt = 150 + 320 * r + rng.randrange(40)
                        pattern = (
                            None if r == 0 else ("debate" if node[-1] == "0" else "reflection")
                        )
                        reply = f"Reasoning about case {i}. The answer is ({ans})." if ans else "?"
                        common: tuple[str, str, str, int, Outcome, None, str, None, int] = (
                            "sim",
                            "sim:default",
                            "{}",
                            1,
                            "ok",
                            None,
                            "h",
                            None,
                            1,
                        )
                        if r == 0:
                            rows.append(
                                CallRecord(CallKey(rep, f"c{i}", society, node, a, "persona"), 0,
                                           None, None, (), "ok", None, None, 60, 1, 61, 0, 5.0,
                                           *common, "2026-01-01")
                            )  # fmt: skip
                        rows.append(
                            CallRecord(CallKey(rep, f"c{i}", society, node, a, "answer"), r,
                                       pattern, None, (), reply, ans, int(ans == target),
                                       prompt, 60, prompt + 60, 0, 5.0, *common, "2026-01-01")
                        )  # fmt: skip
    store.batch_rows = 10_000
    for row in rows:
        store.add_call(row)
    store.close()
    return len(rows)


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
            total += build_store(folder, name, seed=n)
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
