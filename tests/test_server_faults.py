"""Never hang: a dead server stops the run within seconds (circuit breaker), a server killed
mid-run leaves a resumable store, hung requests are abandoned at a timeout that follows the
server's answer times, and a 429 delays only its own call. Real processes, real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from societies.backends.base import CallFailedError, GenerateRequest, create_backend
from societies.backends.sim_server import Faults, SimServer
from societies.config.models import ModelSpec
from tests.backend_helpers import calls, write_experiment

#: 3 agents x (1 persona + 1 + 2 + 4) per case.
PER_CASE = 24


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def openai_model(url: str, **options: object) -> dict[str, object]:
    return {
        "backend": "openai",
        "name": "sim-model",
        "options": {"base_url": url, "api_key_env": None, **options},
    }


def societies(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "societies", *args], capture_output=True, text=True, timeout=timeout
    )


def stored(out: Path) -> int:
    if not (out / "store.sqlite").exists():
        return 0
    con = sqlite3.connect(out / "store.sqlite", timeout=10)
    try:
        return int(con.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def test_no_server_stops_at_once_with_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    file = write_experiment(tmp_path, cases=4, model=openai_model(url))
    # Before the breaker: 8 attempts per call with back-off, ~90 s. The subprocess timeout
    # is only a guard; the bench measures the time (bench/faults.py).
    result = societies("run", str(file), "--out", str(tmp_path / "run"), "--quiet", timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "the server is down" in lines[0] and "re-run to resume" in lines[0]
    assert stored(tmp_path / "run") == 0


def start_server(port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "societies", "serve-sim", "--port", str(port), "--latency-ms", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    assert "serving the simulated model" in proc.stdout.readline()
    return proc


def test_server_killed_mid_run_store_intact_and_resumable(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    file = write_experiment(tmp_path, cases=8, model=openai_model(url), easy_going=[0, 1])
    out = tmp_path / "run"
    total = PER_CASE * 8 * 2
    server = start_server(port)
    run = subprocess.Popen(
        [sys.executable, "-m", "societies", "run", str(file), "--out", str(out), "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while stored(out) < total // 4:
            assert run.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        server.send_signal(signal.SIGKILL)
        server.wait()
        _, err = run.communicate(timeout=60)  # a guard: before the breaker, minutes
    finally:
        for proc in (run, server):
            if proc.poll() is None:
                proc.kill()
    assert run.returncode == 1, err
    assert len(err.strip().splitlines()) == 1 and "the server is down" in err
    kept = stored(out)
    assert 0 < kept < total
    assert all(r["outcome"] == "ok" for r in calls(out))  # nothing recorded as failed

    server = start_server(port)
    try:
        resumed = societies("run", str(file), "--out", str(out), "--quiet")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
    assert resumed.returncode == 0, resumed.stderr
    assert stored(out) == total


async def test_hung_requests_are_abandoned_at_an_adaptive_timeout(tmp_path: Path) -> None:
    """Default options (a 120 s ceiling): 5% of requests never answered cost seconds."""
    async with SimServer(Faults(share_hang=0.05, seed=11)) as server:
        file = write_experiment(tmp_path, cases=6, model=openai_model(server.base_url))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "societies", "-v", "run", str(file), "--out",
            str(tmp_path / "run"),
            "--quiet", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        # A guard, not a measurement: waiting out 120 s per hang would exceed it.
        _, err = await asyncio.wait_for(proc.communicate(), 90)
        hangs = server.stats["hangs"]
    assert proc.returncode == 0, err.decode()
    assert hangs > 0
    # With -v the retries say why.
    assert b"Traceback" not in err
    assert b"attempt 1 failed (no answer within " in err and b"retrying in " in err
    rows = calls(tmp_path / "run")
    assert len(rows) == PER_CASE * 6 and all(r["outcome"] == "ok" for r in rows)
    assert sum(r["attempts"] - 1 for r in rows) == hangs


async def test_a_429_delays_its_own_call_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with SimServer(Faults(share_429=1.0, retry_after=30)) as server:
        backend = create_backend(
            ModelSpec.model_validate(openai_model(server.base_url, max_attempts=1))
        )
        request = GenerateRequest(({"role": "user", "content": "hi"},), "sim-model", {})
        try:
            for n in range(1, 9):
                with contextlib.suppress(CallFailedError):
                    await backend.generate(request)
                paused = backend._paused_until > time.monotonic()  # type: ignore[attr-defined]
                # One 429 is the server refusing that request; 8 in a row, a saturated server.
                assert paused == (n >= 8), n
        finally:
            await backend.aclose()
    # A slow run explains itself with -v: the pause is logged.
    assert "8 429s in a row; pausing every call 30.0 s" in caplog.text
