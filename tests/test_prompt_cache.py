"""Prompt caching: a ``prompt_cache_key`` per conversation when enabled, cached tokens stored
and priced at the cached rate, and ``load_run``'s cache table per agent and round."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx2
import pytest

import societies
from societies.backends.base import ChatMessage, GenerateRequest, create_backend
from societies.backends.sim_server import Faults, SimServer
from societies.config.models import ModelSpec
from societies.plan.plan import Overrides
from societies.plan.resolve import load_plan
from societies.scheduler.session import run_experiment
from tests.backend_helpers import write_experiment


async def sent_bodies(server: SimServer, enabled: bool) -> list[dict[str, Any]]:
    """Two conversations of two calls each; the JSON bodies the client sent."""
    options = {"base_url": server.base_url, "api_key_env": None, "prompt_cache_key": enabled}
    backend: Any = create_backend(ModelSpec(backend="openai", name="m", options=options))
    seen: list[httpx2.Request] = []

    async def spy(request: httpx2.Request) -> None:
        seen.append(request)

    backend.client._client.event_hooks["request"].append(spy)
    for question in ("What is 2 + 2?", "What is 3 + 3?"):
        messages: list[ChatMessage] = [{"role": "user", "content": question}]
        first = await backend.generate(GenerateRequest(messages, "m", {}))
        more = [{"role": "assistant", "content": first.text}, {"role": "user", "content": "Sure?"}]
        await backend.generate(GenerateRequest([*messages, *more], "m", {}))
    await backend.aclose()
    return [json.loads(r.content) for r in seen]


async def test_one_prompt_cache_key_per_conversation_when_enabled() -> None:
    async with SimServer() as server:
        on = await sent_bodies(server, True)
        off = await sent_bodies(server, False)
    keys = [body["prompt_cache_key"] for body in on]
    assert keys[0] == keys[1] and keys[2] == keys[3] and keys[0] != keys[2]
    assert all("prompt_cache_key" not in body for body in off)


def test_cached_input_share_and_dollars_saved_per_agent_and_round(tmp_path: Path) -> None:
    model = {"backend": "openai", "name": "sim-model",
             "options": {"api_key_env": None, "prompt_cache_key": True}}  # fmt: skip
    experiment = write_experiment(tmp_path, cases=2, rounds=2, model=model)
    with SimServer(Faults(prefix_cache_tokens=1_000_000), experiments=[experiment]) as server:
        plan = load_plan(
            experiment,
            Overrides(out=tmp_path / "run", model_options={"base_url": server.base_url}),
        )
        summary = asyncio.run(run_experiment(plan))
    assert summary.errors == 0
    prices = {"sim-model": {"input": 2.0, "output": 4.0, "cached": 0.5}}
    cache = societies.load_run(tmp_path / "run", prices=prices).cache
    con = sqlite3.connect(tmp_path / "run" / "store.sqlite")
    rows = con.execute(
        "SELECT society, agent, round, SUM(prompt_tokens), SUM(cached_tokens) FROM calls "
        "GROUP BY society, agent, round"
    ).fetchall()
    con.close()
    assert len(cache) == len(rows)
    records: list[dict[Any, Any]] = cache.to_dict("records")
    table = {(r["society"], r["agent"], r["round"]): r for r in records}
    for society, agent, round_index, prompt, cached in rows:
        row = table[(society, agent, round_index)]
        assert row["prompt_tokens"] == prompt and row["cached_tokens"] == cached
        assert row["cached_share"] == pytest.approx(cached / prompt)
        # each cached token costs 0.5 instead of 2.0 dollars per million
        assert row["usd_saved"] == pytest.approx(cached * 1.5 / 1e6)
    later = cache[cache["round"] > 0]
    assert len(later) and (later["cached_share"] > 0.5).all(), "later rounds are mostly cached"
