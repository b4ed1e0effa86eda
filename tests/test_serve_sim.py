"""serve-sim over real HTTP on 127.0.0.1: the API, the faults, and answers from the experiment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from societies.backends.sim_server import Faults, SimServer
from societies.plan.resolve import load_plan
from tests.backend_helpers import write_experiment

QUESTION = [{"role": "user", "content": "What is 2 + 2? Put the answer in the form (X)."}]


async def post(server: SimServer, body: dict[str, Any], **headers: str) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            f"{server.base_url}/chat/completions", json=body, headers=headers
        )
        await response.read()
        return response


async def test_models_stats_and_a_plain_answer() -> None:
    async with SimServer() as server:
        assert server.port > 0
        async with aiohttp.ClientSession() as session:
            models = await (await session.get(f"{server.base_url}/models")).json()
            assert [m["id"] for m in models["data"]] == ["sim-model"]
            response = await session.post(
                f"{server.base_url}/chat/completions",
                json={"model": "m", "messages": QUESTION},
            )
            body = await response.json()
            assert response.headers["x-request-id"].startswith("req_sim_")
            stats = await (await session.get(f"http://127.0.0.1:{server.port}/stats")).json()
    reply = body["choices"][0]["message"]["content"]
    assert "The answer is (" in reply
    assert body["usage"]["prompt_tokens"] > 0
    assert stats["requests"] == 1 and stats["status_200"] == 1


async def test_injected_faults() -> None:
    faults = Faults(share_429=1.0, retry_after=3)
    async with SimServer(faults) as server:
        response = await post(server, {"model": "m", "messages": QUESTION})
        assert response.status == 429
        assert response.headers["Retry-After"] == "3"
        assert response.headers["retry-after-ms"] == "3000"
    async with SimServer(Faults(share_500=1.0)) as server:
        assert (await post(server, {"model": "m", "messages": QUESTION})).status == 500
    async with SimServer(Faults(context_limit=5)) as server:
        response = await post(server, {"model": "m", "messages": QUESTION})
        assert response.status == 400
    async with SimServer(Faults(api_key="right")) as server:
        assert (await post(server, {"model": "m", "messages": QUESTION})).status == 401
        ok = await post(server, {"model": "m", "messages": QUESTION}, Authorization="Bearer right")
        assert ok.status == 200


async def test_rpm_limit_answers_429_beyond_the_window() -> None:
    async with SimServer(Faults(rpm=3)) as server:
        statuses = [
            (await post(server, {"model": "m", "messages": QUESTION})).status for _ in range(5)
        ]
        assert statuses == [200, 200, 200, 429, 429]
        assert server.stats["rpm_refused"] == 2


async def test_with_the_experiment_it_answers_like_the_sim_model(tmp_path: Path) -> None:
    """Same conversation, same reply; the answer of a known case follows its ground truth."""
    experiment = write_experiment(tmp_path, cases=30, model={"options": {"accuracy": 1.0}})
    plan = load_plan(experiment)
    case = plan.cases[4]
    question = plan.prompts.question(plan.task, case, plan.task.prompt_vars(case) | {"role": "x"})
    messages = [{"role": "user", "content": question}]
    async with SimServer(experiments=[experiment]) as server:
        first = await _reply(server, messages)
        again = await _reply(server, messages)
    assert first == again
    assert plan.task.parse(first) == case.target  # accuracy 1.0: always the ground truth


async def _reply(server: SimServer, messages: list[dict[str, str]]) -> str:
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            f"{server.base_url}/chat/completions", json={"model": "m", "messages": messages}
        )
        body = await response.json()
    return str(body["choices"][0]["message"]["content"])


def test_cli_serves_on_a_free_port_and_stops() -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "societies", "serve-sim", "--port", "0", "--latency-ms", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "serving the simulated model on http://127.0.0.1:" in line
        url = line.split(" on ")[1].strip()
        import urllib.request

        with urllib.request.urlopen(f"{url}/models", timeout=10) as response:
            assert json.load(response)["object"] == "list"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_rejects_bad_fault_settings() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "societies", "serve-sim", "--share-429", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "share_429" in result.stderr


@pytest.mark.parametrize("distribution", ["uniform", "exponential", "lognormal"])
def test_latency_distributions_have_the_right_mean(distribution: str) -> None:
    server = SimServer(Faults(latency_ms=100, latency_distribution=distribution))
    draws = [server._latency() for _ in range(4000)]
    assert sum(draws) / len(draws) == pytest.approx(0.1, rel=0.1)
