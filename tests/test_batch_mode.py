"""Batch mode end to end: the real openai client over real HTTP against serve-sim's Files and
Batches API. A run through batches equals the same run made interactively; failed and expired
items are asked again; a run killed while its batches are in progress resumes by polling them
and submits nothing twice; a server without the Batches API is one line, exit 1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner, Result

from societies.backends.sim_server import Faults, SimServer
from societies.cli.main import cli as main_cli
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


#: Every progress report of batches: (submitted, in progress, done).
SEEN: list[tuple[int, int, int]] = []


async def batched(exp: Path, out: Path, server: SimServer, **options: Any) -> RunSummary:
    plan = load_plan(exp, overrides(out, server, batch=True, batch_poll=0.01, **options))
    store = open_store(plan)
    SEEN.clear()
    try:
        return await run_batched(plan, store, batch_progress=lambda *n: SEEN.append(n))
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
    # Progress: one level at a time, each batch submitted, in progress, then done.
    assert SEEN == [(1, 1, 0), (1, 0, 1), (2, 1, 1), (2, 0, 2), (3, 1, 2), (3, 0, 3),
                    (4, 1, 3), (4, 0, 4)]  # fmt: skip

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
        "--base-url", url, *(extra or ["--batch"]),
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
        # Not interactively: those calls are paid for in the batch.
        interactive = run_cli(out, exp, server.base_url, "--concurrency", "4")
        _, err = interactive.communicate(timeout=120)
        assert interactive.returncode == 2 and "re-run with --batch to collect them" in err
        assert server.stats["requests"] == 0
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


def cli(*args: str) -> Result:
    """The command in this process (a subprocess would cost seconds of start-up each)."""
    return CliRunner().invoke(main_cli, list(args))


def run_offline(client: openai.OpenAI, requests: bytes) -> bytes:
    """What ``vllm run-batch`` does with a request file, here through serve-sim's Batch API."""
    uploaded = client.files.create(file=("requests.jsonl", requests), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    for _ in range(1500):
        done = client.batches.retrieve(batch.id)
        if done.status in ("completed", "failed", "expired", "cancelled"):
            break
        time.sleep(0.02)
    assert done.status == "completed" and done.output_file_id is not None
    return client.files.content(done.output_file_id).content


def test_export_import_round_trip_equals_the_interactive_run(tmp_path: Path) -> None:
    exp = experiment(tmp_path)
    poll_option(exp)  # the file's model is openai:sim-model, as the interactive run's
    out = tmp_path / "offline"
    with SimServer(experiments=[exp]) as server:
        asyncio.run(run_experiment(load_plan(exp, overrides(tmp_path / "interactive", server))))
        client = openai.OpenAI(api_key="k", base_url=server.base_url, max_retries=0)
        levels: list[int] = []
        while True:
            # The first export starts the run from the experiment file.
            start = [] if levels else ["--experiment", str(exp)]
            exported = cli("batch", "export", str(out), *start)
            assert exported.exit_code == 0, exported.output
            if not exported.stdout_bytes:
                break
            lines = exported.stdout_bytes.splitlines()
            levels.append(len(lines))
            results = tmp_path / f"results-{len(levels)}.jsonl"
            results.write_bytes(run_offline(client, exported.stdout_bytes))
            imported = cli("batch", "import", str(out), str(results))
            assert imported.exit_code == 0, imported.output
            assert f"imported {len(lines)} calls" in imported.stdout
            # Importing the same file again stores nothing more.
            again = cli("batch", "import", str(out), str(results))
            assert "imported 0 calls" in again.stdout, again.output
        client.close()
        chat_before = server.stats["requests"]
        resumed = asyncio.run(run_experiment(load_plan(exp, overrides(out, server))))
        assert server.stats["requests"] == chat_before  # the run resumes: nothing to ask
    assert resumed.made == 0 and resumed.reused == CALLS
    assert levels == [18, 18, 36, 72]
    assert answers(out) == answers(tmp_path / "interactive")
    assert asked(out) == asked(tmp_path / "interactive")


def test_bad_results_files_are_one_line_exit_2_and_write_nothing(tmp_path: Path) -> None:
    exp = experiment(tmp_path)
    with SimServer(experiments=[exp]) as server:
        for name in ("a", "b"):
            open_store(load_plan(exp, overrides(tmp_path / name, server))).close()
        client = openai.OpenAI(api_key="k", base_url=server.base_url, max_retries=0)
        exported = cli("batch", "export", str(tmp_path / "a"))
        results_a = tmp_path / "a.jsonl"
        results_a.write_bytes(run_offline(client, exported.stdout_bytes))
        client.close()
    first = json.loads(results_a.read_bytes().splitlines()[0])
    tag = first["custom_id"][:12]
    nowhere = CallKey(0, "no-such-case", ODD, "", 0, "persona")
    unknown = dict(first, custom_id=custom_id(tag, nowhere))
    cases = {
        "another run": results_a.read_bytes(),
        "unknown": (json.dumps(unknown) + "\n").encode(),
        "not json": results_a.read_bytes() + b"{broken\n",
        "no id": b'{"response": null}\n',
    }
    expected = {
        "another run": ":1: custom_id: ",
        "unknown": ":1: custom_id: ",
        "not json": ":19: not a JSON line",
        "no id": ":1: custom_id: missing",
    }
    for what, data in cases.items():
        target = tmp_path / ("a" if what != "another run" else "b")
        path = tmp_path / f"{what}.jsonl"
        path.write_bytes(data)
        result = cli("batch", "import", str(target), str(path))
        assert result.exit_code == 2, (what, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{path}{expected[what]}" in lines[0], (what, result.stderr)
        assert "Traceback" not in result.output
        assert calls(target) == [], what
        con = sqlite3.connect(target / "store.sqlite")
        assert con.execute("SELECT COUNT(*) FROM invocations").fetchone()[0] == 0, what
        con.close()
    assert "from another run" in cli("batch", "import", str(tmp_path / "b"), str(results_a)).stderr
    missing = cli("batch", "export", str(tmp_path / "nothing-here"))
    assert missing.exit_code == 2 and "no run store here" in missing.stderr


def test_dry_run_prices_batch_mode_and_batch_needs_the_openai_backend(tmp_path: Path) -> None:
    exp = experiment(tmp_path)
    model = ["--model", "openai:gpt-3.5-turbo-1106", "--base-url", "http://127.0.0.1:9/v1"]
    interactive = cli("run", str(exp), "--dry-run", *model)
    batch = cli("run", str(exp), "--dry-run", "--batch", *model)
    assert interactive.exit_code == 0 and batch.exit_code == 0, batch.output
    cost = float(interactive.stdout.split("estimated cost: $")[1].split(";")[0])
    line = batch.stdout.split("estimated cost: $")[1]
    at_batch = float(line.split(" at batch prices")[0])
    assert f"(${cost:.2f} interactive), in 4 levels" in line
    assert at_batch == pytest.approx(cost / 2, abs=0.011)  # the Batch API's 50%
    refused = cli("run", str(exp), "--batch", "--out", str(tmp_path / "no"))
    assert refused.exit_code == 2 and not (tmp_path / "no").exists()
    assert refused.stderr.strip() == (
        "--batch: batch mode needs the openai backend (the model is sim); add --model openai:MODEL"
    )


async def test_a_crash_between_creating_a_batch_and_recording_it_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one window where the ledger cannot know the batch id: the batch is looked up by
    its input file (batches.list) before anything is created again."""
    exp = experiment(tmp_path)
    recorded = BatchLedger.submitted

    def crash(self: BatchLedger, batch: int, provider_id: str, status: str) -> None:
        raise RuntimeError("killed right after the batch was created")

    async with SimServer(Faults(batch_delay=0.05), experiments=[exp]) as server:
        monkeypatch.setattr(BatchLedger, "submitted", crash)
        with pytest.raises(RuntimeError, match="killed right after"):
            await batched(exp, tmp_path / "run", server)
        assert server.stats["batches"] == 1
        assert ledger(tmp_path / "run")["submitting"] == 1
        monkeypatch.setattr(BatchLedger, "submitted", recorded)
        summary = await batched(exp, tmp_path / "run", server)
        stats = dict(server.stats)
    assert summary.made == CALLS and summary.errors == 0
    assert stats["batches"] == 4 and stats["batch_requests"] == CALLS
    assert ledger(tmp_path / "run")["sent_twice"] == 0


async def test_levels_are_split_at_the_providers_limits(tmp_path: Path) -> None:
    exp = experiment(tmp_path)
    limits = {"batch_max_requests": 7, "batch_max_bytes": 10_000}
    async with SimServer(Faults(batch_max_requests=7), experiments=[exp]) as server:
        await run_experiment(load_plan(exp, overrides(tmp_path / "interactive", server)))
        summary = await batched(exp, tmp_path / "batch", server, **limits)
        stats = dict(server.stats)
    assert summary.made == CALLS and summary.errors == 0
    con = sqlite3.connect(tmp_path / "batch" / "store.sqlite")
    sizes = con.execute("SELECT requests, bytes FROM batches").fetchall()
    con.close()
    assert max(n for n, _ in sizes) == 7 and max(b for _, b in sizes) <= 10_000
    # By count alone the levels (18, 18, 36, 72 calls) make 23 files; by size, more.
    assert len(sizes) > 23
    assert sum(n for n, _ in sizes) == CALLS == stats["batch_requests"]
    assert stats["batches"] == len(sizes) > 4 and stats.get("batches_failed", 0) == 0
    assert answers(tmp_path / "batch") == answers(tmp_path / "interactive")
