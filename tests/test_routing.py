"""Several replicas behind one openai backend: a conversation keeps to one replica (and so
finds its prefix cached there), calls spill when a replica is saturated or killed, and an
empty list of URLs is bad input. Real client, real HTTP, serve-sim on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from societies.backends.base import ChatMessage, GenerateRequest, GenerateResult, create_backend
from societies.backends.routing import conversation_key
from societies.backends.sim_server import Faults, SimServer
from societies.cli.main import cli
from societies.config.models import ModelSpec
from tests.backend_helpers import write_experiment

PERSONA = "You are an expert and easy-going. If you understand please say ok only."


def question(n: int) -> str:
    return f"Question {n}: which option is right? (A) 1 (B) 2 (C) 3 (D) 4. Explain, then answer."


def backend(urls: Sequence[str], **options: Any) -> Any:
    spec = {"base_url": list(urls), "api_key_env": None, "max_attempts": 4, **options}
    return create_backend(ModelSpec(backend="openai", name="sim-model", options=spec))


async def converse(
    model: Any, opener: Sequence[ChatMessage], turns: int
) -> tuple[list[GenerateResult], list[list[ChatMessage]]]:
    """An append-only conversation: each call re-sends everything so far plus a new turn."""
    messages, results, prompts = list(opener), [], []
    for turn in range(turns):
        prompts.append(list(messages))
        result = await model.generate(GenerateRequest(list(messages), "sim-model", {}))
        results.append(result)
        messages += [
            {"role": "assistant", "content": result.text},
            {"role": "user", "content": f"Peers said (B) and (C). Round {turn + 1}: answer again."},
        ]
    return results, prompts


def test_conversation_key_covers_the_question_after_a_role_play_opener() -> None:
    default = [{"role": "system", "content": PERSONA}, {"role": "user", "content": question(1)}]
    later = [*default, {"role": "assistant", "content": "I think (B)."},
             {"role": "user", "content": "Peers said (C)."}]  # fmt: skip
    assert conversation_key("m", default) == conversation_key("m", later)
    terse = [*default, {"role": "assistant", "content": "(B)"}, later[-1]]
    assert conversation_key("m", default) == conversation_key("m", terse)
    assert conversation_key("m", default) != conversation_key("other-model", default)
    other_case = [default[0], {"role": "user", "content": question(2)}]
    assert conversation_key("m", default) != conversation_key("m", other_case)
    # The study's protocol: a role-play user turn answered "ok", shared by every agent of the
    # trait; the conversation is told apart by the question that follows.
    opener: list[ChatMessage] = [{"role": "user", "content": PERSONA}]
    one = [
        *opener,
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": question(1)},
    ]
    two = [*one[:2], {"role": "user", "content": question(2)}]
    assert conversation_key("m", one) != conversation_key("m", two)
    assert conversation_key("m", one) == conversation_key(
        "m", [*one, {"role": "assistant", "content": "(A)"}, {"role": "user", "content": "again"}]
    )


async def test_a_conversation_keeps_to_one_replica_and_finds_its_prefix_cached() -> None:
    faults = Faults(prefix_cache_tokens=1_000_000)
    async with AsyncExitStack() as stack:
        servers = [await stack.enter_async_context(SimServer(faults)) for _ in range(4)]
        model = backend([s.base_url for s in servers])
        used: set[int] = set()
        for n in range(12):
            before = [s.stats["requests"] for s in servers]
            opener = [{"role": "system", "content": PERSONA},
                      {"role": "user", "content": question(n)}]  # fmt: skip
            results, _ = await converse(model, opener, 4)
            grew = [s.stats["requests"] - b for s, b in zip(servers, before, strict=True)]
            assert sorted(grew) == [0, 0, 0, 4], f"conversation {n} was split: {grew}"
            used.add(grew.index(4))
            # Every later call re-sends the previous prompt and its reply: all of it cached.
            for previous, result in itertools.pairwise(results):
                usage = previous.usage
                assert result.usage.cached_tokens == usage.prompt_tokens + usage.completion_tokens
        await model.aclose()
    assert len(used) >= 3, "conversations should spread over the replicas"


async def test_round_robin_splits_a_conversation_and_misses_the_cache() -> None:
    faults = Faults(prefix_cache_tokens=1_000_000)
    async with AsyncExitStack() as stack:
        servers = [await stack.enter_async_context(SimServer(faults)) for _ in range(4)]
        model = backend([s.base_url for s in servers], routing="round_robin")
        opener = [{"role": "system", "content": PERSONA}, {"role": "user", "content": question(0)}]
        results, _ = await converse(model, opener, 4)
        await model.aclose()
    assert [s.stats["requests"] for s in servers] == [1, 1, 1, 1]
    assert all(r.usage.cached_tokens == 0 for r in results)


async def test_a_saturated_replica_spills_to_the_next() -> None:
    async with AsyncExitStack() as stack:
        faults = Faults(latency_ms=300)
        servers = [await stack.enter_async_context(SimServer(faults)) for _ in range(2)]
        model = backend([s.base_url for s in servers], replica_concurrency=1)
        request = GenerateRequest([{"role": "user", "content": question(7)}], "sim-model", {})
        results = await asyncio.gather(*(model.generate(request) for _ in range(2)))
        await model.aclose()
    assert [s.stats["requests"] for s in servers] == [1, 1]
    assert results[0].text == results[1].text  # the same deterministic answer on both


@contextmanager
def serve_sim_processes(count: int) -> Iterator[list[tuple[subprocess.Popen[str], str]]]:
    """serve-sim replicas as processes of their own, so that one can be killed for real."""
    servers: list[tuple[subprocess.Popen[str], str]] = []
    try:
        for _ in range(count):
            proc = subprocess.Popen(
                [sys.executable, "-m", "societies", "serve-sim", "--port", "0"],
                stdout=subprocess.PIPE,
                text=True,
            )
            servers.append((proc, ""))
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert " on http" in line, line
            servers[-1] = (proc, line.split(" on ")[1].strip())
        yield servers
    finally:
        for proc, _ in servers:
            proc.kill()
            proc.wait()


def requests_served(url: str) -> int:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=10) as r:
        return int(json.load(r).get("requests", 0))


async def test_a_killed_replica_is_left_and_its_conversations_spill() -> None:
    with serve_sim_processes(3) as servers:
        urls = [url for _, url in servers]
        model = backend(urls)
        opener = [{"role": "system", "content": PERSONA}, {"role": "user", "content": question(3)}]
        first, _ = await converse(model, opener, 1)
        home = [requests_served(u) for u in urls].index(1)
        servers[home][0].send_signal(signal.SIGKILL)
        servers[home][0].wait()
        # The conversation goes on: every call answered, by the replicas still alive.
        results, _ = await converse(model, opener, 3)
        alive = [u for i, u in enumerate(urls) if i != home]
        assert sum(requests_served(u) for u in alive) >= 3
        assert [r.text for r in results[:1]] == [first[0].text]  # same deterministic answer
        # A dropped keep-alive connection (a failure), then a refused one: the replica is down
        # and the retry goes to the next replica.
        assert 2 <= results[0].attempts <= 3
        assert all(r.attempts == 1 for r in results[1:])  # the dead one is left alone
        await model.aclose()


def test_an_empty_list_of_base_urls_is_bad_input(tmp_path: Path) -> None:
    model = {"backend": "openai", "name": "m", "options": {"base_url": [], "api_key_env": None}}
    experiment = write_experiment(tmp_path, model=model)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(experiment), "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "base_url" in lines[0] and "empty list of base URLs" in lines[0], lines[0]
    assert not out.exists()
