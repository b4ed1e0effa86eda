"""serve-sim's Files and Batches endpoints, driven by the official client over real HTTP: what
a batch answers equals what /v1/chat/completions answers; failed items, an expired batch,
cancellation and invalid input look as the provider's do; all counted in /stats."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import openai
import pytest

from societies.backends.sim_server import Faults, SimServer

TERMINAL = {"completed", "failed", "expired", "cancelled"}


def request_line(n: int) -> dict[str, Any]:
    messages = [
        {"role": "user", "content": "You are a mathematician. If you understand say ok only."},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": f"What is {n} + {n}? (A) {2 * n} (B) {n} (C) 0 (D) 1"},
    ]
    body = {"model": "sim-model", "messages": messages, "temperature": 0}
    return {"custom_id": f"call-{n}", "method": "POST", "url": "/v1/chat/completions",
            "body": body}  # fmt: skip


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


@asynccontextmanager
async def served(**faults: Any) -> AsyncIterator[tuple[SimServer, openai.AsyncOpenAI]]:
    async with SimServer(Faults(**faults)) as server:
        client = openai.AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0)
        try:
            yield server, client
        finally:
            await client.close()


async def submit(client: openai.AsyncOpenAI, lines: list[dict[str, Any]]) -> str:
    uploaded = await client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    batch = await client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"run": "test"},
    )
    assert batch.status == "validating" and batch.metadata == {"run": "test"}
    return batch.id


async def finished(client: openai.AsyncOpenAI, batch_id: str) -> Any:
    """Poll like a batch client does, until the batch is in a final state (at most 30 s)."""
    for _ in range(1500):
        batch = await client.batches.retrieve(batch_id)
        if batch.status in TERMINAL:
            return batch
        await asyncio.sleep(0.02)
    raise AssertionError(f"batch {batch_id} still {batch.status}")


async def lines_of(client: openai.AsyncOpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    content = await client.files.content(file_id)
    return [json.loads(line) for line in content.text.splitlines()]


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("id", "created")}


async def test_a_batch_answers_as_chat_completions_do() -> None:
    lines = [request_line(n) for n in range(12)]
    async with served(batch_delay=0.3) as (server, client):
        batch_id = await submit(client, lines)
        batch = await finished(client, batch_id)
        assert batch.status == "completed" and batch.error_file_id is None
        counts = batch.request_counts
        assert counts is not None and (counts.total, counts.completed, counts.failed) == (12, 12, 0)
        output = await lines_of(client, batch.output_file_id)
        by_id = {line["custom_id"]: line for line in output}
        assert sorted(by_id) == sorted(line["custom_id"] for line in lines)
        for line in lines:
            raw = await client.chat.completions.with_raw_response.create(**line["body"])
            result = by_id[line["custom_id"]]
            assert result["error"] is None and result["response"]["status_code"] == 200
            assert comparable(result["response"]["body"]) == comparable(raw.http_response.json())
        stats = dict(server.stats)
    assert stats["batches"] == 1 and stats["batch_requests"] == 12
    assert stats["batches_completed"] == 1 and stats["requests"] == 12  # the chat calls only


async def test_failed_items_and_an_expired_batch() -> None:
    first = [request_line(n) for n in range(20)]
    second = [request_line(n) for n in range(20, 30)]
    async with served(batch_share_failed=0.3, expire_batches=(2,), seed=3) as (server, client):
        done = await finished(client, await submit(client, first))
        expired = await finished(client, await submit(client, second))
        ok = await lines_of(client, done.output_file_id)
        errors = await lines_of(client, done.error_file_id)
        assert done.status == "completed" and ok and errors
        assert {e["response"]["status_code"] for e in errors} == {500}
        ids = sorted(line["custom_id"] for line in ok + errors)
        assert ids == sorted(line["custom_id"] for line in first)
        assert done.request_counts is not None and done.request_counts.failed == len(errors)

        assert expired.status == "expired" and expired.expired_at is not None
        ran = await lines_of(client, expired.output_file_id)
        missed = await lines_of(client, expired.error_file_id)
        late = [m for m in missed if m["error"] and m["error"]["code"] == "batch_expired"]
        assert len(late) == 5 and all(m["response"] is None for m in late)
        ids = sorted(line["custom_id"] for line in ran + missed)
        assert ids == sorted(line["custom_id"] for line in second)
        stats = dict(server.stats)
    assert stats["batches"] == 2 and stats["batch_requests"] == 30
    assert stats["batches_expired"] == 1
    assert stats["batch_requests_failed"] == len(errors) + len(missed) - len(late)


async def test_cancel_leaves_the_rest_unrun_and_listing_pages() -> None:
    lines = [request_line(n) for n in range(10)]
    async with served(batch_delay=30) as (server, client):
        batch_id = await submit(client, lines)
        cancelling = await client.batches.cancel(batch_id)
        assert cancelling.status == "cancelling"
        batch = await finished(client, batch_id)
        assert batch.status == "cancelled" and batch.cancelled_at is not None
        unrun = await lines_of(client, batch.error_file_id)
        ran = await lines_of(client, batch.output_file_id)
        assert len(unrun) + len(ran) == 10 and len(unrun) >= 9
        assert {u["error"]["code"] for u in unrun} == {"batch_cancelled"}
        with pytest.raises(openai.ConflictError):
            await client.batches.cancel(batch_id)
        second = await submit(client, lines[:2])
        page = await client.batches.list(limit=1)
        assert [b.id for b in page.data] == [second] and page.has_more
        assert server.stats["batches_cancelled"] == 1


async def test_invalid_input_fails_the_batch_with_line_numbers() -> None:
    good = request_line(1)
    wrong_url = {**request_line(2), "url": "/v1/embeddings"}
    async with served(batch_max_requests=5) as (server, client):
        uploaded = await client.files.create(
            file=("in.jsonl", jsonl([good, good, wrong_url]) + b"{not json\n"), purpose="batch"
        )
        batch = await client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        batch = await finished(client, batch.id)
        assert batch.status == "failed" and batch.errors is not None
        found = {(e.line, e.code) for e in batch.errors.data or []}
        assert found == {(2, "duplicate_custom_id"), (3, "invalid_url"), (4, "invalid_json_line")}
        too_many = await finished(client, await submit_many(client, 6))
        assert too_many.status == "failed"
        with pytest.raises(openai.NotFoundError):
            await client.batches.create(
                input_file_id="file-none", endpoint="/v1/chat/completions", completion_window="24h"
            )
        with pytest.raises(openai.BadRequestError):
            await client.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h"
            )
        assert server.stats["batches_failed"] == 2 and server.stats["batch_requests"] == 0


async def submit_many(client: openai.AsyncOpenAI, count: int) -> str:
    uploaded = await client.files.create(
        file=("in.jsonl", jsonl([request_line(n) for n in range(count)])), purpose="batch"
    )
    batch = await client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return batch.id


async def test_the_key_is_required_when_the_server_has_one() -> None:
    async with SimServer(Faults(api_key="right")) as server:
        client = openai.AsyncOpenAI(api_key="wrong", base_url=server.base_url, max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            await client.files.create(file=("in.jsonl", jsonl([request_line(1)])), purpose="batch")
        await client.close()


async def test_a_server_without_the_batches_api_answers_404() -> None:
    async with served(batch_api=False) as (_, client):
        with pytest.raises(openai.NotFoundError):
            await client.files.create(file=("in.jsonl", jsonl([request_line(1)])), purpose="batch")
        with pytest.raises(openai.NotFoundError):
            await client.batches.retrieve("batch_sim_000001")
