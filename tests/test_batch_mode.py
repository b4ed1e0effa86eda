"""Batch mode end to end: the real openai client over real HTTP against serve-sim's Files and
Batches API. A run through batches equals the same run made interactively; failed and expired
items are asked again; a run killed while its batches are in progress resumes by polling them
and submits nothing twice; a server without the Batches API is one line, exit 1."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from societies.backends.sim_server import Faults, SimServer
from societies.plan.plan import Overrides
from societies.plan.resolve import load_plan
from societies.scheduler.batch import custom_id, parse_custom_id
from societies.scheduler.batch_live import run_batched
from societies.scheduler.runner import RunSummary
from societies.scheduler.session import open_store, run_experiment
from societies.store.batches import BatchLedger
from societies.store.records import CallKey
from tests.backend_helpers import answers, asked, calls, write_experiment

KEY_ENV = "SOCIETIES_BATCH_TEST_KEY"
#: A society whose name holds what would break a position spelled as text.
ODD = 'a|b"],[c ü\\'
#: 3 cases x 2 societies x 3 agents x (1 persona + 1 + 2 + 4 nodes): 2 rounds, every strategy.
CALLS = 3 * 2 * 3 * 8


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-batch-test")


def experiment(folder: Path) -> Path:
    return write_experiment(
        folder,
        extra={"societies": [{"agents": 3, "easy_going": 1}, {"name": ODD, "agents": 3}]},
    )


def overrides(out: Path, server: SimServer, **options: Any) -> Overrides:
    return Overrides(
        out=out,
        model="openai:sim-model",
        model_options={"base_url": server.base_url, "api_key_env": KEY_ENV, **options},
    )


async def batched(exp: Path, out: Path, server: SimServer, **options: Any) -> RunSummary:
    plan = load_plan(exp, overrides(out, server, batch=True, batch_poll=0.01, **options))
    store = open_store(plan)
    try:
        return await run_batched(plan, store)
    finally:
        store.close()


def ledger(out: Path) -> dict[str, int]:
    con = sqlite3.connect(out / "store.sqlite")
    try:
        found = BatchLedger(con)
        return {**found.counts(), "sent_twice": found.sent_twice()}
    finally:
        con.close()


def test_custom_ids_spell_positions_unambiguously() -> None:
    key = CallKey(2, 'q"1|', ODD, "01", 1, "answer")
    text = custom_id("0123456789ab", key)
    assert parse_custom_id(text) == ("0123456789ab", key)
    other = CallKey(2, 'q"1', "|" + ODD, "01", 1, "answer")  # same characters, joined as text
    assert custom_id("0123456789ab", other) != text
    assert parse_custom_id("0123456789ab[1,2]") is None
    assert parse_custom_id("not ours") is None


async def test_a_batch_run_equals_the_interactive_run(tmp_path: Path) -> None:
    exp = experiment(tmp_path)
    async with SimServer(Faults(batch_delay=0.02), experiments=[exp]) as server:
        plan = load_plan(exp, overrides(tmp_path / "interactive", server))
        await run_experiment(plan)
        chat_requests = server.stats["requests"]
        summary = await batched(exp, tmp_path / "batch", server)
        stats = dict(server.stats)
    assert summary.made == CALLS and summary.errors == 0
    # One batch per level: role-play, first answer, round 1, round 2.
    assert stats["batches"] == 4 and stats["batch_requests"] == CALLS
    assert stats["requests"] == chat_requests  # no interactive call in batch mode
    assert answers(tmp_path / "batch") == answers(tmp_path / "interactive")
    assert asked(tmp_path / "batch") == asked(tmp_path / "interactive")
    assert {c["society"] for c in calls(tmp_path / "batch")} == {"1eg-2oc", ODD}
    assert ledger(tmp_path / "batch") == {"collected": 4, "requests": CALLS, "sent_twice": 0}

    # Run again: everything is stored, nothing is sent.
    async with SimServer(experiments=[exp]) as server:
        again = await batched(exp, tmp_path / "batch", server)
        assert server.stats["batches"] == 0 and server.stats["files"] == 0
    assert again.made == 0 and again.reused == CALLS


async def test_failed_and_expired_items_are_asked_again(tmp_path: Path) -> None:
    exp = experiment(tmp_path)
    faults = Faults(batch_share_failed=0.2, expire_batches=(2,), seed=5)
    async with SimServer(faults, experiments=[exp]) as server:
        plan = load_plan(exp, overrides(tmp_path / "interactive", server))
        await run_experiment(plan)
        summary = await batched(exp, tmp_path / "batch", server)
        stats = dict(server.stats)
    assert summary.errors == 0 and summary.made == CALLS
    assert stats["batches_expired"] == 1 and stats["batch_requests_failed"] > 0
    # Every failed or expired item was asked again, in a later batch.
    assert stats["batch_requests"] > CALLS and stats["batches"] > 4
    rows = calls(tmp_path / "batch")
    assert max(r["attempts"] for r in rows) >= 2
    assert answers(tmp_path / "batch") == answers(tmp_path / "interactive")


async def test_items_that_keep_failing_end_as_errors_within_the_attempt_bound(
    tmp_path: Path,
) -> None:
    exp = experiment(tmp_path)
    async with SimServer(Faults(batch_share_failed=1.0), experiments=[exp]) as server:
        summary = await batched(exp, tmp_path / "batch", server, max_attempts=2)
        stats = dict(server.stats)
    persona = 3 * 2 * 3
    assert summary.errors == persona and summary.made == persona
    assert stats["batches"] == 2 and stats["batch_requests"] == 2 * persona
    rows = calls(tmp_path / "batch")
    assert {(r["outcome"], r["attempts"]) for r in rows} == {("error", 2)}


def run_cli(out: Path, exp: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    args = [
        sys.executable, "-m", "societies", "run", str(exp), "--out", str(out), "--quiet",
        "--base-url", url, "--batch", *extra,
    ]  # fmt: skip
    env = dict(os.environ, **{KEY_ENV: "sk-batch-test"})
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def poll_option(exp: Path) -> None:
    """The file's model: openai, polling batches every 10 ms (the CLI adds the server's URL
    and --batch)."""
    import yaml

    data = yaml.safe_load(exp.read_text(encoding="utf-8"))
    options = {"api_key_env": KEY_ENV, "batch_poll": 0.01}
    data["model"] = {"backend": "openai", "name": "sim-model", "options": options}
    exp.write_text(yaml.safe_dump(data), encoding="utf-8")


def test_a_run_killed_while_polling_resumes_and_submits_nothing_twice(tmp_path: Path) -> None:
    exp = experiment(tmp_path)
    poll_option(exp)
    out = tmp_path / "run"
    server = SimServer(Faults(batch_delay=3), experiments=[exp]).start_in_thread()
    try:
        first = run_cli(out, exp, server.base_url)
        deadline = time.monotonic() + 60
        while server.stats["batches"] < 1 or not (out / "store.sqlite").exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "no batch within 60 s"
            time.sleep(0.02)
        time.sleep(0.3)  # polling now
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        assert ledger(out)["submitted"] == 1  # recorded before the kill
        # The batch in progress finishes (fast from now on), while nobody polls it.
        server.faults = server.faults.model_copy(update={"batch_delay": 0.02})
        second = run_cli(out, exp, server.base_url)
        _, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        stats = dict(server.stats)
    finally:
        server.stop_thread()
    # The first level was not submitted again: one batch per level, each call sent once.
    assert stats["batches"] == 4 and stats["batch_requests"] == CALLS
    assert ledger(out)["sent_twice"] == 0
    assert len(calls(out)) == CALLS and all(c["outcome"] == "ok" for c in calls(out))


def test_a_server_without_the_batches_api_is_one_line_and_resumable(tmp_path: Path) -> None:
    exp = experiment(tmp_path)
    poll_option(exp)
    out = tmp_path / "run"
    with SimServer(Faults(batch_api=False), experiments=[exp]) as server:
        refused = run_cli(out, exp, server.base_url)
        _, err = refused.communicate(timeout=120)
        assert server.stats["requests"] == 0
    assert refused.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "no Batches API (HTTP 404 on /v1/files)" in lines[0], err
    assert calls(out) == [] and ledger(out)["requests"] == 0
    with SimServer(experiments=[exp]) as server:
        resumed = run_cli(out, exp, server.base_url)
        _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert len(calls(out)) == CALLS
