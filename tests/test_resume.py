"""Resume and determinism: a killed run finishes without repeating stored calls, and the
simulated model gives the same results for the same seed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from societies.store.db import RunStore
from tests.helpers import experiment, run, write

COMPARED = (
    "repeat, case_id, society, node, agent, step, reply, answer, correct, "
    "prompt_tokens, completion_tokens, total_tokens, outcome, request_hash, model, attempts"
)


def rows(out: Path) -> set[tuple[object, ...]]:
    """Every call: position, outcome, usage, and the messages it was asked (as JSON)."""
    store = RunStore.for_run_dir(out, readonly=True)
    try:
        asked = {
            (k.repeat, k.case_id, k.society, k.node, k.agent, k.step): json.dumps(m)
            for k, m in store.conversations()
        }
    finally:
        store.close()
    con = sqlite3.connect(out / "store.sqlite")
    try:
        return {(*r, asked[r[:6]]) for r in con.execute(f"SELECT {COMPARED} FROM calls")}
    finally:
        con.close()


def count(db: Path, sql: str) -> int:
    con = sqlite3.connect(db, timeout=5)
    try:
        return int(con.execute(sql).fetchone()[0])
    finally:
        con.close()


def slow_experiment() -> dict[str, object]:
    exp = experiment(rounds=3, societies=[{"agents": 3, "easy_going": [0, 1, 2, 3]}])
    exp["task"]["cases"] = 6
    exp["concurrency"] = 8
    exp["model"] = {"backend": "sim", "name": "default", "options": {"latency_ms": 10}}
    return exp


def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path: Path) -> None:
    file = write(tmp_path, slow_experiment())
    total = 48 * 4 * 6
    killed = tmp_path / "killed"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "societies", "run", str(file), "--out", str(killed), "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    db = killed / "store.sqlite"
    deadline = time.monotonic() + 60
    stored = 0
    try:
        # Wait (by observing the store, with a deadline) until a good part of the run is in.
        while stored < total // 4:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no progress within 60 s"
            if db.exists():
                try:
                    stored = count(db, "SELECT COUNT(*) FROM calls")
                except sqlite3.OperationalError:
                    stored = 0  # the schema is being created
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = count(db, "SELECT COUNT(*) FROM calls")
    assert 0 < before < total

    _, summary = run(file, killed)
    assert summary.reused == before
    assert summary.made == total - before
    # The first invocation's rows are untouched: nothing stored was asked again.
    assert count(db, "SELECT COUNT(*) FROM calls WHERE invocation = 1") == before
    assert count(db, "SELECT calls_made FROM invocations WHERE id = 2") == total - before

    _, clean = run(file, tmp_path / "clean")
    assert clean.made == total
    assert rows(killed) == rows(tmp_path / "clean")

    _, again = run(file, killed)
    assert again.made == 0 and again.reused == total


def test_same_seed_same_results_other_seed_differs(tmp_path: Path) -> None:
    exp = experiment(rounds=2)
    run(write(tmp_path, exp, "a.yaml"), tmp_path / "a", concurrency=1)
    run(write(tmp_path, exp, "b.yaml"), tmp_path / "b", concurrency=64)
    assert rows(tmp_path / "a") == rows(tmp_path / "b")
    run(write(tmp_path, experiment(rounds=2, seed=1), "c.yaml"), tmp_path / "c")
    replies_a = {r[:6]: r[6] for r in rows(tmp_path / "a")}
    replies_c = {r[:6]: r[6] for r in rows(tmp_path / "c")}
    assert replies_a.keys() == replies_c.keys()
    assert replies_a != replies_c
