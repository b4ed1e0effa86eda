"""A synthetic run store of any size, written through the store's API (seconds for 100k calls).

The layout is a real run's: societies of 3 agents, every 3-round strategy over a prefix tree
(15 nodes, machinesom role-play turns: 48 calls per case and society), answers that drift
towards agreement. The one synthetic-store builder: the viewer's browser test, the figure and
report tests, ``bench/report.py`` and ``bench/analysis.py`` all use it (the benchmarks import
it from here, as test scaffolding it stays out of the installed package).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from societies.store.db import RunStore
from societies.store.records import CallKey, CallRecord, Outcome

STRATEGIES = [f"{i:03b}" for i in range(8)]
NODES = sorted({s[:r] for s in STRATEGIES for r in range(4)}, key=lambda c: (len(c), c))
TRAITS = ("easy-going", "overconfident")
CALLS_PER_TREE = 3 * (1 + len(NODES))


def society_names(n: int) -> list[str]:
    """``n`` distinct societies of 3 agents (traits cycling)."""
    return [f"s{i:02d}-{i % 4}eg" for i in range(n)]


def build_store(
    folder: Path,
    *,
    name: str = "synthetic",
    societies: int = 4,
    cases: int = 50,
    repeats: int = 1,
    seed: int = 0,
    planted: str | None = None,
    invocation_status: str = "done",
) -> int:
    """Write one run's store into ``folder``; return its number of calls. ``planted`` is put
    in exactly one reply (repeat 0, the last case, the first society, agent 1, node "01")."""
    rng = random.Random(seed)
    store = RunStore.for_run_dir(folder)
    config = {"name": name, "task": {"name": "mmlu", "data": "synthetic.jsonl"}}
    store.create_run(
        {"name": name, "created_at": "2026-01-01T00:00:00", "package_version": "test",
         "config_json": json.dumps(config), "identity_json": "{}", "task": "mmlu",
         "extraction": "robust", "prompts": "machinesom", "source": None}
    )  # fmt: skip
    choices = ["one", "two", "three", "four"]
    store.put_cases(
        (f"c{i:05d}", i, json.dumps({"id": f"c{i:05d}", "question": f"Question number {i}?",
                                     "answer": "ABCD"[i % 4], "choices": choices}))
        for i in range(cases)
    )  # fmt: skip
    names = society_names(societies)
    store.put_agents(
        (society, a, f"agent{a}", TRAITS[0] if a < int(society[-3]) else TRAITS[1], None,
         "sim", "default")
        for society in names
        for a in range(3)
    )  # fmt: skip
    store.put_strategy_nodes(
        (rep, f"c{i:05d}", society, s, r, s[:r])
        for rep in range(repeats)
        for i in range(cases)
        for society in names
        for s in STRATEGIES
        for r in range(4)
    )
    store.batch_rows = 20_000
    store.batch_seconds = 3600.0
    total = 0
    for rep in range(repeats):
        rows: list[CallRecord] = []
        for i in range(cases):
            case_id, target = f"c{i:05d}", "ABCD"[i % 4]
            for society in names:
                answers: dict[str, list[str | None]] = {}
                for node in NODES:
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
                        pattern = (
                            None if r == 0 else ("debate" if node[-1] == "0" else "reflection")
                        )
                        reply: str | None = (
                            f"Reasoning about case {i}. The answer is ({ans})." if ans else "?"
                        )
                        first = (rep, i, society, node, a) == (0, cases - 1, names[0], "01", 1)
                        if planted and first:
                            reply = f"{reply} {planted}"
                        messages = ({"role": "user", "content": f"Question number {i}?"},)
                        outcome: Outcome = "ok"
                        error: str | None = None
                        roll = 1.0 if first else rng.random()
                        if r > 0 and roll < 0.004:
                            outcome, reply, ans = "context_exceeded", None, None
                        elif r > 0 and roll < 0.006:
                            outcome, error, reply, ans = "error", "HTTP 500", None, None
                        when = "2026-01-01T00:00:00"
                        if r == 0:
                            rows.append(
                                CallRecord(CallKey(rep, case_id, society, node, a, "persona"), 0,
                                           None, None, messages, "ok", None, None, 60, 1, 61, 0,
                                           5.0, "sim", "sim:default", "{}", 1, "ok", None, "h",
                                           None, 1, when)
                            )  # fmt: skip
                        prompt = 150 + 320 * r
                        rows.append(
                            CallRecord(CallKey(rep, case_id, society, node, a, "answer"), r,
                                       pattern, None, messages, reply, ans, int(ans == target),
                                       prompt, 60, prompt + 60, 0, 5.0, "sim", "sim:default",
                                       "{}", 1, outcome, error, "h", None, 1, when)
                            )  # fmt: skip
        for row in rows:
            store.add_call(row)
        store.flush()
        total += len(rows)
    invocation = store.begin_invocation("test", [])
    store.end_invocation(invocation, total, 0, invocation_status)
    store.close()
    return total
