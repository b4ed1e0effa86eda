"""serve-sim's Files and Batches endpoints: the OpenAI Batch API, whose JSONL vLLM's
``run-batch`` also reads, so that batch clients are tested over real HTTP.

A batch answers each item exactly as ``POST /v1/chat/completions`` answers the same request
(the server is deterministic), spread evenly over ``batch_delay`` seconds. On top of that,
what a client must survive: a share of items answered with a 500 (in the error file, like
the provider's per-request failures), batches that expire half done (the rest in the error
file with code ``batch_expired``), cancellation (items not yet run in the error file with
code ``batch_cancelled``), input that fails validation (status ``failed`` with the line
numbers), and more requests per file than the provider's limit. A client should still treat
a ``custom_id`` found in neither file as not done: that is what a provider's contract allows.
Everything is held in memory, so a client may be killed and come back to the same server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from dataclasses import dataclass, field
from random import Random
from typing import TYPE_CHECKING, Any

from aiohttp import web

from societies.backends.base import ChatMessage
from societies.backends.sim_server import error_body, parse_chat

if TYPE_CHECKING:
    from societies.backends.sim_server import SimServer

ENDPOINT = "/v1/chat/completions"
PURPOSES = frozenset({"batch", "batch_output", "fine-tune", "assistants", "vision", "user_data"})
ACTIVE = frozenset({"validating", "in_progress", "finalizing", "cancelling"})


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


@dataclass(frozen=True)
class Item:
    custom_id: str
    messages: list[ChatMessage]
    model: str


@dataclass
class Batch:
    number: int
    obj: dict[str, Any]
    items: list[Item]
    errors: list[dict[str, Any]]
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


def _not_found(kind: str, ident: str) -> web.Response:
    body = error_body(f"No such {kind}: '{ident}'", "invalid_request_error")
    return web.json_response(body, status=404)


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response(error_body(message, "invalid_request_error"), status=status)


class BatchService:
    """The endpoints, on the server they belong to (its faults, stats and answers)."""

    def __init__(self, server: SimServer) -> None:
        self.server = server
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, Batch] = {}
        self._file_numbers = itertools.count(1)
        self._batch_numbers = itertools.count(1)
        self._item_numbers = itertools.count(1)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files/{id}", self._file)
        app.router.add_get("/v1/files/{id}/content", self._content)
        app.router.add_delete("/v1/files/{id}", self._delete_file)
        app.router.add_post("/v1/batches", self._create)
        app.router.add_get("/v1/batches", self._list)
        app.router.add_get("/v1/batches/{id}", self._retrieve)
        app.router.add_post("/v1/batches/{id}/cancel", self._cancel)

    async def stop(self) -> None:
        tasks = [b.task for b in self.batches.values() if b.task is not None and not b.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- files ----------------------------------------------------------------------------
    def _store(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        stored = StoredFile(f"file-sim{next(self._file_numbers):06d}", filename, purpose, data)
        self.files[stored.id] = stored
        self.server.stats["files"] += 1
        return stored

    async def _upload(self, request: web.Request) -> web.Response:
        if (refused := self.server.refusal(request)) is not None:
            return refused
        form = await request.post()
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, web.FileField) or not isinstance(purpose, str):
            return _bad("a multipart body with `file` and `purpose` is required")
        if purpose not in PURPOSES:
            return _bad(f"unknown purpose '{purpose}'")
        stored = self._store(upload.filename, purpose, upload.file.read())
        return web.json_response(stored.describe())

    async def _file(self, request: web.Request) -> web.Response:
        if (refused := self.server.refusal(request)) is not None:
            return refused
        stored = self.files.get(request.match_info["id"])
        if stored is None:
            return _not_found("File", request.match_info["id"])
        return web.json_response(stored.describe())

    async def _content(self, request: web.Request) -> web.Response:
        if (refused := self.server.refusal(request)) is not None:
            return refused
        stored = self.files.get(request.match_info["id"])
        if stored is None:
            return _not_found("File", request.match_info["id"])
        return web.Response(body=stored.data, content_type="application/octet-stream")

    async def _delete_file(self, request: web.Request) -> web.Response:
        if (refused := self.server.refusal(request)) is not None:
            return refused
        ident = request.match_info["id"]
        if self.files.pop(ident, None) is None:
            return _not_found("File", ident)
        return web.json_response({"id": ident, "object": "file", "deleted": True})

    # -- batches --------------------------------------------------------------------------
    async def _create(self, request: web.Request) -> web.Response:
        if (refused := self.server.refusal(request)) is not None:
            return refused
        try:
            body = await request.json()
            file_id, endpoint = str(body["input_file_id"]), str(body["endpoint"])
            window = str(body["completion_window"])
            metadata = body.get("metadata")
        except (ValueError, KeyError, TypeError) as exc:
            return _bad(f"invalid request body: {exc}")
        stored = self.files.get(file_id)
        if stored is None:
            return _not_found("File", file_id)
        if stored.purpose != "batch":
            return _bad(f"file {file_id} has purpose '{stored.purpose}', not 'batch'")
        if endpoint != ENDPOINT:
            return _bad(f"endpoint {endpoint} is not supported here (only {ENDPOINT})")
        if window != "24h":
            return _bad("completion_window must be '24h'")
        items, errors = self._validate(stored.data, endpoint)
        number = next(self._batch_numbers)
        now = int(time.time())
        obj: dict[str, Any] = {
            "id": f"batch_sim_{number:06d}",
            "object": "batch",
            "endpoint": endpoint,
            "errors": None,
            "input_file_id": file_id,
            "completion_window": window,
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 24 * 3600,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": len(items), "completed": 0, "failed": 0},
            "metadata": metadata,
        }
        batch = Batch(number, obj, items, errors)
        self.batches[obj["id"]] = batch
        self.server.stats["batches"] += 1
        if not errors:
            self.server.stats["batch_requests"] += len(items)
        answer = web.json_response(dict(obj))
        batch.task = asyncio.get_running_loop().create_task(self._run(batch))
        return answer

    def _validate(self, data: bytes, endpoint: str) -> tuple[list[Item], list[dict[str, Any]]]:
        items: list[Item] = []
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()

        def fail(line: int, code: str, message: str) -> None:
            errors.append({"code": code, "message": message, "param": None, "line": line})

        lines = [ln for ln in data.decode("utf-8", errors="replace").splitlines() if ln.strip()]
        if not lines:
            fail(1, "empty_file", "the input file holds no requests")
        limit = self.server.faults.batch_max_requests
        if len(lines) > limit:
            fail(limit + 1, "too_many_requests", f"more than {limit} requests in one batch")
        for number, text in enumerate(lines, 1):
            try:
                row = json.loads(text)
                custom_id, method, url = row["custom_id"], row["method"], row["url"]
                messages, model = parse_chat(row["body"])
            except (ValueError, KeyError, TypeError) as exc:
                fail(number, "invalid_json_line", f"not a valid request line ({exc})")
                continue
            if not isinstance(custom_id, str) or custom_id in seen:
                fail(number, "duplicate_custom_id", f"custom_id {custom_id!r} is repeated")
            elif method != "POST" or url != endpoint:
                fail(number, "invalid_url", f"{method} {url} does not match {endpoint}")
            else:
                seen.add(custom_id)
                items.append(Item(custom_id, messages, model))
        return items, errors

    async def _run(self, batch: Batch) -> None:
        obj, faults = batch.obj, self.server.faults
        await asyncio.sleep(0)
        if batch.errors:
            obj.update(status="failed", failed_at=int(time.time()))
            obj["errors"] = {"object": "list", "data": batch.errors}
            obj["request_counts"]["total"] = 0
            self.server.stats["batches_failed"] += 1
            return
        if not batch.cancelled.is_set():
            obj.update(status="in_progress", in_progress_at=int(time.time()))
        expires = batch.number in faults.expire_batches
        todo = batch.items[: len(batch.items) // 2] if expires else batch.items
        rng = Random(f"{faults.seed}:{batch.number}")
        started = time.monotonic()
        out: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for i, item in enumerate(todo):
            due = started + faults.batch_delay * (i + 1) / len(batch.items)
            if await _cancelled_before(batch.cancelled, due - time.monotonic()):
                break
            line = await self._answer(item, rng)
            ok = line["response"]["status_code"] == 200
            (out if ok else failed).append(line)
            obj["request_counts"]["completed" if ok else "failed"] += 1
        done = {line["custom_id"] for line in out + failed}
        if batch.cancelled.is_set():
            status, code = "cancelled", "batch_cancelled"
            message = "This request was not executed: the batch was cancelled."
        elif expires:
            await _cancelled_before(
                batch.cancelled, started + faults.batch_delay - time.monotonic()
            )
            status, code = "expired", "batch_expired"
            message = "This request could not be executed before the completion window expired."
        else:
            status, code, message = "completed", "", ""
            obj.update(status="finalizing", finalizing_at=int(time.time()))
        for item in batch.items:
            if item.custom_id not in done:
                failed.append(
                    {
                        "id": f"batch_req_{next(self._item_numbers):08d}",
                        "custom_id": item.custom_id,
                        "response": None,
                        "error": {"code": code, "message": message},
                    }
                )
        name = obj["id"]
        if out:
            obj["output_file_id"] = self._store(f"{name}_output.jsonl", "batch_output",
                                                _jsonl(out)).id  # fmt: skip
        if failed:
            obj["error_file_id"] = self._store(f"{name}_error.jsonl", "batch_output",
                                               _jsonl(failed)).id  # fmt: skip
        obj.update(status=status, **{f"{status}_at": int(time.time())})
        self.server.stats[f"batches_{status}"] += 1
        self.server.stats["batch_requests_failed"] += obj["request_counts"]["failed"]

    async def _answer(self, item: Item, rng: Random) -> dict[str, Any]:
        number = next(self._item_numbers)
        if rng.random() < self.server.faults.batch_share_failed:
            status = 500
            body = error_body("The server had an error (injected).", "server_error")
        else:
            status, body = await self.server.complete(
                item.messages, item.model, f"chatcmpl-batch-{number}", wait=False
            )
        return {
            "id": f"batch_req_{number:08d}",
            "custom_id": item.custom_id,
            "response": {"status_code": status, "request_id": f"req_sim_b{number:08d}",
                         "body": body},
            "error": None,
        }  # fmt: skip

    async def _retrieve(self, request: web.Request) -> web.Response:
        if (refused := self.server.refusal(request)) is not None:
            return refused
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return _not_found("Batch", request.match_info["id"])
        return web.json_response(batch.obj)

    async def _list(self, request: web.Request) -> web.Response:
        """Newest first, paged with ``after`` and ``limit`` like the provider's."""
        if (refused := self.server.refusal(request)) is not None:
            return refused
        try:
            limit = max(1, min(100, int(request.query.get("limit", "20"))))
        except ValueError:
            return _bad("limit must be an integer")
        ids = list(reversed(self.batches))
        after = request.query.get("after")
        if after in self.batches:
            ids = ids[ids.index(after) + 1 :]
        page = ids[:limit]
        return web.json_response(
            {
                "object": "list",
                "data": [self.batches[i].obj for i in page],
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
                "has_more": len(ids) > limit,
            }
        )

    async def _cancel(self, request: web.Request) -> web.Response:
        if (refused := self.server.refusal(request)) is not None:
            return refused
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return _not_found("Batch", request.match_info["id"])
        if batch.obj["status"] not in ACTIVE:
            return _bad(f"Cannot cancel a batch with status {batch.obj['status']}.", 409)
        if batch.obj["status"] != "cancelling":
            batch.obj.update(status="cancelling", cancelling_at=int(time.time()))
            batch.cancelled.set()
        return web.json_response(batch.obj)


async def _cancelled_before(cancelled: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds``; whether the batch was cancelled meanwhile."""
    if seconds > 0 and not cancelled.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(cancelled.wait(), seconds)
    else:
        await asyncio.sleep(0)
    return cancelled.is_set()


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
