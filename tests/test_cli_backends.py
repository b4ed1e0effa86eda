"""The command line against a real HTTP server: permanent errors, resume, dry run, budget."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from societies.backends.base import Usage
from societies.backends.sim_server import Faults, SimServer
from societies.config.models import Price
from societies.cost import cost_of, find_price
from tests.backend_helpers import calls, write_experiment

KEY = "sk-cli-test-9f8e7d6c5b4a3210"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SimServer]:
    experiment = write_experiment(tmp_path)
    sim = SimServer(Faults(api_key=KEY), experiments=[experiment]).start_in_thread()
    try:
        yield sim
    finally:
        sim.stop_thread()


def societies(*args: str, key: str = KEY) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OPENAI_API_KEY=key, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "societies", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def run_args(server: SimServer, experiment: Path, out: Path, *more: str) -> list[str]:
    return [
        "-vv", "run", str(experiment), "--out", str(out), "--quiet",
        "--model", "openai:sim-model", "--base-url", server.base_url, *more,
    ]  # fmt: skip


def test_401_stops_with_one_line_and_the_run_resumes_once_fixed(
    server: SimServer, tmp_path: Path
) -> None:
    experiment = tmp_path / "backends.yaml"
    out = tmp_path / "run"
    first = societies(*run_args(server, experiment, out, "--limit", "1"))
    assert first.returncode == 0, first.stderr
    assert len(calls(out)) == 24

    before = server.stats["requests"]
    refused = societies(*run_args(server, experiment, out), key="sk-wrong-key-000000000000")
    assert refused.returncode == 1
    # With -vv the log lines ("LEVEL logger: ...") surround the one line meant for the user.
    levels = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    error_lines = [
        line for line in refused.stderr.splitlines() if line and not line.startswith(levels)
    ]
    assert len(error_lines) == 1 and "HTTP 401" in error_lines[0]
    assert "Traceback" not in refused.stderr
    assert server.stats["requests"] - before <= 16  # no retries, no new calls after the refusal
    assert len(calls(out)) == 24  # the store is intact

    fixed = societies(*run_args(server, experiment, out))
    assert fixed.returncode == 0, fixed.stderr
    assert "48 calls made, 24 reused" in fixed.stdout.replace("\n", " ")
    assert len(calls(out)) == 72
    for result in (first, refused, fixed):
        assert KEY not in result.stdout + result.stderr
    assert KEY.encode() not in (out / "store.sqlite").read_bytes()


def test_dry_run_sends_nothing(server: SimServer, tmp_path: Path) -> None:
    experiment = tmp_path / "backends.yaml"
    out = tmp_path / "run"
    result = societies(
        "run", str(experiment), "--out", str(out), "--dry-run", "--model", "openai:gpt-4o-mini"
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "calls: 72 to make (72 to paid models), 0 already stored" in text
    assert "estimated cost: $0.0" in text
    assert server.stats["requests"] == 0 and not out.exists()


def test_dry_run_counts_stored_calls_as_reused(server: SimServer, tmp_path: Path) -> None:
    experiment = tmp_path / "backends.yaml"
    out = tmp_path / "run"
    assert societies(*run_args(server, experiment, out, "--limit", "1")).returncode == 0
    stored = (out / "store.sqlite").read_bytes()
    result = societies(*run_args(server, experiment, out, "--dry-run"))
    text = " ".join(result.stdout.split())
    assert "calls: 48 to make (48 to paid models), 24 already stored" in text
    assert "no price for sim-model" in text
    assert (out / "store.sqlite").read_bytes() == stored


def test_budget_stops_new_calls_before_it_is_exceeded(tmp_path: Path) -> None:
    prices = {"sim-model": {"input": 200.0, "output": 200.0}}
    experiment = write_experiment(tmp_path, extra={"prices": prices, "concurrency": 4})
    out = tmp_path / "run"
    with SimServer(experiments=[experiment]).start_in_thread() as server:
        result = societies(*run_args(server, experiment, out, "--budget", "0.5"))
        assert result.returncode == 1
        assert "budget of $0.50 reached" in result.stderr
        rows = calls(out)
        price = find_price({"sim-model": Price(input=200, output=200)}, "sim-model")
        assert price is not None
        spent = sum(cost_of(price, Usage(r["prompt_tokens"], r["completion_tokens"])) for r in rows)
        assert 0 < len(rows) < 72 and spent <= 0.5

        resumed = societies(*run_args(server, experiment, out, "--budget", "100"))
    assert resumed.returncode == 0, resumed.stderr
    assert len(calls(out)) == 72
    assert "cost of this invocation: $" in resumed.stdout


def test_budget_needs_a_price(server: SimServer, tmp_path: Path) -> None:
    experiment = tmp_path / "backends.yaml"
    result = societies(*run_args(server, experiment, tmp_path / "run", "--budget", "1"))
    assert result.returncode == 2
    assert "no price for model sim-model" in result.stderr
