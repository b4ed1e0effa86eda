"""The openai backend end to end: the official client over real HTTP against serve-sim."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from societies.backends.base import (
    CallFailedError,
    ContextExceededError,
    GenerateRequest,
    ModelBackend,
    PermanentModelError,
    create_backend,
)
from societies.backends.errors import Transient, classify
from societies.backends.sim_server import Faults, SimServer
from societies.config.models import ModelSpec
from societies.plan.plan import Overrides
from societies.plan.resolve import load_plan
from societies.scheduler.runner import RunSummary
from societies.scheduler.session import run_experiment
from tests.backend_helpers import answers, calls, write_experiment

KEY = "sk-test-0123456789abcdefSECRET"
FAST = {"backoff_initial": 0.01, "backoff_max": 0.05, "timeout": 5.0}


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIETIES_TEST_KEY", KEY)


async def run_against(server: SimServer, experiment: Path, out: Path, **options: Any) -> RunSummary:
    plan = load_plan(
        experiment,
        Overrides(
            out=out,
            model="openai:sim-model",
            model_options={
                "base_url": server.base_url,
                "api_key_env": "SOCIETIES_TEST_KEY",
                **FAST,
                **options,
            },
        ),
    )
    return await run_experiment(plan)


async def test_a_run_over_http_equals_a_run_over_http_again(tmp_path: Path) -> None:
    """Deterministic through the server; usage, request ids and attempts are stored."""
    experiment = write_experiment(tmp_path)
    async with SimServer(experiments=[experiment]) as server:
        summary = await run_against(server, experiment, tmp_path / "a")
        await run_against(server, experiment, tmp_path / "b")
    assert summary.made == 72 and summary.errors == 0
    assert answers(tmp_path / "a") == answers(tmp_path / "b")
    rows = calls(tmp_path / "a")
    assert all(r["outcome"] == "ok" and r["attempts"] == 1 for r in rows)
    assert all(r["request_id"].startswith("req_sim_") for r in rows)
    assert all(r["prompt_tokens"] > 0 and r["completion_tokens"] > 0 for r in rows)
    assert {r["answer"] for r in rows if r["step"] == "answer"} <= set("ABCD") | {None}


async def test_resume_makes_no_call_twice(tmp_path: Path) -> None:
    experiment = write_experiment(tmp_path)
    async with SimServer(experiments=[experiment]) as server:
        await run_against(server, experiment, tmp_path / "a")
        before = server.stats["requests"]
        again = await run_against(server, experiment, tmp_path / "a")
        assert server.stats["requests"] == before
    assert again.made == 0 and again.reused == 72


async def test_thirty_percent_429_and_500_every_case_completes(tmp_path: Path) -> None:
    experiment = write_experiment(tmp_path, cases=5)
    faults = Faults(share_429=0.15, share_500=0.15, retry_after=0, seed=3)
    async with SimServer(faults, experiments=[experiment]) as server:
        summary = await run_against(server, experiment, tmp_path / "a", max_attempts=12)
        injected = server.stats["429"] + server.stats["status_500"]
    rows = calls(tmp_path / "a")
    assert summary.errors == 0 and len(rows) == 120
    assert all(r["outcome"] == "ok" for r in rows)
    assert injected > 10  # the faults did happen...
    assert sum(r["attempts"] - 1 for r in rows) == injected  # ...and each was retried once
    assert max(r["attempts"] for r in rows) <= 12


async def test_attempts_are_bounded_then_the_call_is_an_error(tmp_path: Path) -> None:
    experiment = write_experiment(tmp_path, cases=1, rounds=0, strategies=[""])
    async with SimServer(Faults(share_500=1.0), experiments=[experiment]) as server:
        summary = await run_against(server, experiment, tmp_path / "a", max_attempts=3)
        assert server.stats["requests"] == 9  # 3 persona calls x 3 attempts
    rows = calls(tmp_path / "a")
    assert summary.errors == 3
    assert all(r["outcome"] == "error" and r["attempts"] == 3 for r in rows)
    assert all("gave up after 3 attempts: HTTP 500" in r["error"] for r in rows)


async def test_a_hanging_server_times_out_and_the_call_is_retried(tmp_path: Path) -> None:
    experiment = write_experiment(tmp_path, cases=2)
    async with SimServer(Faults(share_hang=0.1, seed=5), experiments=[experiment]) as server:
        summary = await run_against(server, experiment, tmp_path / "a", timeout=0.3)
        hangs = server.stats["hangs"]
    assert hangs > 0
    assert summary.errors == 0 and summary.made == 48
    assert sum(r["attempts"] - 1 for r in calls(tmp_path / "a")) == hangs


@pytest.mark.parametrize("fault", ["share_malformed", "share_empty"])
async def test_unreadable_replies_are_retried_then_recorded_with_the_reason(
    tmp_path: Path, fault: str
) -> None:
    experiment = write_experiment(tmp_path, cases=2)
    async with SimServer(Faults(**{fault: 0.2}, seed=2), experiments=[experiment]) as server:
        summary = await run_against(server, experiment, tmp_path / "a")
    assert summary.errors == 0
    assert any(r["attempts"] > 1 for r in calls(tmp_path / "a"))

    async with SimServer(Faults(**{fault: 1.0}), experiments=[experiment]) as server:
        summary = await run_against(server, experiment, tmp_path / "b", max_attempts=2)
    reason = "malformed JSON" if fault == "share_malformed" else "no choices"
    rows = calls(tmp_path / "b")
    assert summary.errors == 6 and all(reason in r["error"] for r in rows)


async def test_context_overflow_is_an_outcome_not_an_error(tmp_path: Path) -> None:
    experiment = write_experiment(tmp_path, cases=1)
    async with SimServer(Faults(context_limit=150), experiments=[experiment]) as server:
        summary = await run_against(server, experiment, tmp_path / "a")
    rows = calls(tmp_path / "a")
    assert summary.errors == 0 and summary.context_exceeded > 0
    exceeded = [r for r in rows if r["outcome"] == "context_exceeded"]
    assert exceeded and all(r["attempts"] <= 1 for r in exceeded)


async def test_401_stops_the_run_with_a_permanent_error(tmp_path: Path) -> None:
    experiment = write_experiment(tmp_path)
    async with SimServer(Faults(api_key="another"), experiments=[experiment]) as server:
        with pytest.raises(PermanentModelError, match="HTTP 401"):
            await run_against(server, experiment, tmp_path / "a")
        assert server.stats["requests"] <= 16  # no new call after the first refusal returns


async def test_exhausted_quota_is_permanent(tmp_path: Path) -> None:
    experiment = write_experiment(tmp_path, cases=1)
    async with SimServer(Faults(quota_exhausted=True), experiments=[experiment]) as server:
        with pytest.raises(PermanentModelError, match="insufficient_quota"):
            await run_against(server, experiment, tmp_path / "a")


async def test_rpm_pacing_keeps_clear_of_the_servers_limit(tmp_path: Path) -> None:
    experiment = write_experiment(tmp_path, cases=1, rounds=0, strategies=[""])
    faults = Faults(rpm=300, rpm_window=1.0)  # 5 requests in any second
    async with SimServer(faults, experiments=[experiment]) as server:
        await run_against(server, experiment, tmp_path / "a")
        assert server.stats["429"] > 0  # 6 calls at once: some are refused (and retried)
    async with SimServer(faults, experiments=[experiment]) as server:
        await run_against(server, experiment, tmp_path / "b", rpm=200)
        assert server.stats["429"] == 0  # paced at 3.3 per second (with margin): none is
    assert answers(tmp_path / "a") == answers(tmp_path / "b")


def test_a_missing_key_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(PermanentModelError, match="OPENAI_API_KEY is not set"):
        create_backend(ModelSpec(backend="openai", name="gpt-4o-mini"))


async def test_params_and_headers_reach_the_server() -> None:
    seen: list[httpx2.Request] = []

    async with SimServer() as server:
        backend = create_backend(
            ModelSpec(
                backend="openai",
                name="sim-model",
                options={
                    "base_url": server.base_url,
                    "api_key_env": "SOCIETIES_TEST_KEY",
                    "headers": {"X-Team": "societies"},
                    "organization": "org-1",
                },
            )
        )
        assert isinstance(backend, ModelBackend)

        async def spy(request: httpx2.Request) -> None:
            seen.append(request)

        client: Any = backend.client  # type: ignore[attr-defined]
        client._client.event_hooks["request"].append(spy)
        params = {"temperature": 0.2, "seed": 7, "stop": ["\n\n"], "extra_body": {"top_k": 5}}
        result = await backend.generate(
            GenerateRequest([{"role": "user", "content": "Say ok only."}], "sim-model", params)
        )
        await backend.aclose()
    assert result.text == "ok" and result.request_id is not None
    import json

    body = json.loads(seen[0].content)
    assert body["temperature"] == 0.2 and body["seed"] == 7 and body["top_k"] == 5
    assert body["stop"] == ["\n\n"] and "extra_body" not in body
    assert seen[0].headers["X-Team"] == "societies"
    assert seen[0].headers["Content-Type"] == "application/json"
    assert seen[0].headers["OpenAI-Organization"] == "org-1"
    assert seen[0].headers["Authorization"] == f"Bearer {KEY}"


def _status_error(status: int, body: dict[str, Any], **headers: str) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(status, json=body, headers=headers, request=request)
    cls = {400: openai.BadRequestError, 429: openai.RateLimitError}.get(
        status, openai.APIStatusError
    )
    error = body.get("error", body)
    return cls(str(error.get("message")), response=response, body=error)


@pytest.mark.parametrize(
    "message",
    [
        # OpenAI
        "This model's maximum context length is 16385 tokens. However, your messages "
        "resulted in 17000 tokens.",
        # vLLM
        "This model's maximum context length is 4096 tokens. However, you requested 5000 "
        "tokens (4000 in the messages, 1000 in the completion).",
        "The prompt (total length 5000) is longer than the model's context length of 4096",
        # llama.cpp server
        "the request exceeds the available context size, try increasing it",
    ],
)
def test_context_overflow_variants(message: str) -> None:
    error = classify(_status_error(400, {"error": {"message": message}}), [])
    assert isinstance(error, ContextExceededError)


def test_classification() -> None:
    assert isinstance(
        classify(_status_error(400, {"message": "bad field"}), []), PermanentModelError
    )
    for status in (401, 403, 404):
        assert isinstance(
            classify(_status_error(status, {"message": "no"}), []), PermanentModelError
        )
    for status in (408, 409, 500, 502, 503):
        assert isinstance(classify(_status_error(status, {"message": "later"}), []), Transient)
    limited = classify(
        _status_error(429, {"message": "slow down"}, **{"retry-after-ms": "250"}), []
    )
    assert isinstance(limited, Transient) and limited.retry_after == 0.25
    quota = {
        "error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}
    }
    assert isinstance(classify(_status_error(429, quota), []), PermanentModelError)
    leaky = classify(_status_error(401, {"message": f"Incorrect API key provided: {KEY}"}), [KEY])
    assert KEY not in str(leaky) and "sk-test" not in str(leaky)


async def test_the_key_never_leaks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    experiment = write_experiment(tmp_path, cases=1)
    async with SimServer(Faults(api_key=KEY, share_500=0.2), experiments=[experiment]) as server:
        await run_against(server, experiment, tmp_path / "a")
    async with SimServer(Faults(api_key="other"), experiments=[experiment]) as server:
        with pytest.raises(PermanentModelError) as failure:
            await run_against(server, experiment, tmp_path / "b")
    assert KEY not in str(failure.value)
    assert KEY not in caplog.text
    for run in ("a", "b"):
        for file in (tmp_path / run).iterdir():
            assert KEY.encode() not in file.read_bytes(), file


async def test_a_heterogeneous_society_mixes_backends(tmp_path: Path) -> None:
    experiment = write_experiment(tmp_path, cases=1)
    async with SimServer(experiments=[experiment]) as server:
        remote = {
            "backend": "openai",
            "name": "sim-model",
            "options": {"base_url": server.base_url, "api_key_env": "SOCIETIES_TEST_KEY", **FAST},
        }
        mixed = write_experiment(
            tmp_path,
            cases=1,
            name="mixed",
            extra={
                "societies": [
                    {"agents": [{"trait": "easy-going", "model": remote}, "overconfident"]}
                ]
            },
        )
        summary = await run_experiment(load_plan(mixed, Overrides(out=tmp_path / "a")))
        assert server.stats["requests"] == summary.made // 2
    backends = {(r["agent"], r["backend"]) for r in calls(tmp_path / "a")}
    assert backends == {(0, "openai"), (1, "sim")}


async def test_connection_errors_are_retried_then_reported() -> None:
    server = await SimServer().start()
    url = server.base_url
    await server.stop()  # nothing listens there any more
    backend = create_backend(
        ModelSpec(
            backend="openai",
            name="m",
            options={
                "base_url": url,
                "api_key_env": "SOCIETIES_TEST_KEY",
                "max_attempts": 2,
                **FAST,
            },
        )
    )
    request = GenerateRequest([{"role": "user", "content": "hello"}], "m", {})
    with pytest.raises(CallFailedError, match="gave up after 2 attempts: connection error") as err:
        await backend.generate(request)
    await backend.aclose()
    assert err.value.attempts == 2


async def test_tokens_per_minute_are_drawn_from_the_limiter() -> None:
    async with SimServer() as server:
        backend: Any = create_backend(
            ModelSpec(
                backend="openai",
                name="m",
                options={"base_url": server.base_url, "api_key_env": None, "tpm": 60},
            )
        )
        messages = [{"role": "user", "content": "x" * 40}]  # 16 tokens with the overhead
        await backend.generate(GenerateRequest(messages, "m", {"max_tokens": 30}))
        await backend.aclose()
    # 16 + 30 tokens were drawn from a bucket of 60 that drains one token a second: more than
    # the 30 of max_tokens alone is still in it.
    assert not backend._tpm.has_capacity(60 - 40)
    assert backend._tpm.has_capacity(60 - 46)
