"""Money under crashes and concurrency, with real processes over real HTTP: two invocations
into one run directory never both pay, SIGKILL re-sends at most the calls in flight, SIGTERM
stops like Ctrl-C, and a killed invocation is later shown as interrupted."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from societies.backends.sim_server import Faults, SimServer
from tests.backend_helpers import write_experiment

CONCURRENCY = 8
#: 3 agents x (1 persona + 1 + 2 + 4 + 8) per case, 2 societies, 6 cases.
TOTAL = 3 * 16 * 2 * 6


@pytest.fixture
def server() -> Iterator[SimServer]:
    server = SimServer(Faults(latency_ms=15)).start_in_thread()
    try:
        yield server
    finally:
        server.stop_thread()


def experiment(tmp: Path, server: SimServer) -> Path:
    model = {
        "backend": "openai",
        "name": "sim-model",
        "options": {"base_url": server.base_url, "api_key_env": None},
    }
    return write_experiment(
        tmp, cases=6, model=model, easy_going=[0, 2], rounds=3,
        extra={"concurrency": CONCURRENCY},
    )  # fmt: skip


def start(file: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "societies", "run", str(file), "--out", str(out), "--quiet"],
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def query(out: Path, sql: str) -> list[tuple[Any, ...]]:
    # Read-only: a poller must never create the file itself before the run does (the run
    # would then find an empty foreign file and refuse it).
    con = sqlite3.connect(f"{(out / 'store.sqlite').as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        return list(con.execute(sql))
    finally:
        con.close()


def stored(out: Path) -> int:
    try:
        return int(query(out, "SELECT COUNT(*) FROM calls")[0][0])
    except sqlite3.OperationalError:
        return 0  # not created yet, or the schema is being created


def wait_for_calls(proc: subprocess.Popen[str], out: Path, n: int) -> None:
    deadline = time.monotonic() + 60
    while stored(out) < n:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "no progress within 60 s"
        time.sleep(0.02)


def test_simultaneous_runs_into_one_directory_pay_once(tmp_path: Path, server: SimServer) -> None:
    file = experiment(tmp_path, server)
    out = tmp_path / "run"
    procs = [start(file, out) for _ in range(4)]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    winners = [r for r in results if r[0] == 0]
    assert len(winners) >= 1, results
    for code, err in results:
        assert "Traceback" not in err
        if code != 0:
            # Refused with one line naming the holder; or started after the winner finished
            # and found everything stored (then it exits 0 and made no call).
            assert code == 2, err
            lines = err.strip().splitlines()
            assert len(lines) == 1 and "in use by another invocation (pid " in lines[0], err
    # Every call asked of the server exactly once, whatever the interleaving.
    assert server.stats["requests"] == stored(out) == TOTAL
    made = query(out, "SELECT SUM(calls_made) FROM invocations")[0][0]
    assert made == TOTAL


def test_second_invocation_refused_while_first_runs(tmp_path: Path) -> None:
    slow = SimServer(Faults(latency_ms=500)).start_in_thread()  # the first outlives the second
    try:
        file = experiment(tmp_path, slow)
        out = tmp_path / "run"
        first = start(file, out)
        try:
            wait_for_calls(first, out, 8)
            second = subprocess.run(
                [sys.executable, "-m", "societies", "run", str(file), "--out", str(out),
                 "--quiet"],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            # A dry run reads any run directory, even one in use.
            dry = subprocess.run(
                [sys.executable, "-m", "societies", "run", str(file), "--out", str(out),
                 "--dry-run"],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert first.poll() is None, "the first invocation ended before the second began"
            assert dry.returncode == 0, dry.stderr
            assert "already stored" in dry.stdout
            assert second.returncode == 2, second.stderr
            assert f"in use by another invocation (pid {first.pid} on " in second.stderr
            assert len(second.stderr.strip().splitlines()) == 1
        finally:
            first.send_signal(signal.SIGTERM)
            first.wait(timeout=60)
        assert first.returncode == 143
        # The refused invocation sent nothing: only the first's calls reached the server.
        assert slow.stats["requests"] - stored(out) <= CONCURRENCY
    finally:
        slow.stop_thread()


def test_sigkill_resends_at_most_calls_in_flight(tmp_path: Path, server: SimServer) -> None:
    file = experiment(tmp_path, server)
    out = tmp_path / "run"
    proc = start(file, out)
    try:
        # Killed at a moment picked by the server's count, not the store's (which would
        # land right after a commit).
        deadline = time.monotonic() + 60
        while server.stats["answered"] < TOTAL // 3:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.002)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    sent_before = server.stats["requests"]
    kept = stored(out)
    assert 0 < kept < TOTAL
    # Only calls in flight at the kill were sent and not stored.
    assert sent_before - kept <= CONCURRENCY
    # The stale lock of the killed process is taken over; its invocation shows interrupted.
    resumed = subprocess.run(
        [sys.executable, "-m", "societies", "run", str(file), "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert stored(out) == TOTAL
    assert server.stats["requests"] - sent_before == TOTAL - kept
    statuses = query(out, "SELECT id, status FROM invocations ORDER BY id")
    assert statuses == [(1, "interrupted"), (2, "done")]


def test_sigterm_stops_like_ctrl_c(tmp_path: Path, server: SimServer) -> None:
    file = experiment(tmp_path, server)
    out = tmp_path / "run"
    proc = start(file, out)
    try:
        wait_for_calls(proc, out, TOTAL // 3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("terminated: stored calls are kept")
    assert query(out, "SELECT status FROM invocations") == [("interrupted",)]
    kept = stored(out)
    # Flushed on the way out: every answer the server gave is stored.
    assert server.stats["answered"] - kept <= CONCURRENCY
    made = query(out, "SELECT calls_made FROM invocations")[0][0]
    assert made == kept
