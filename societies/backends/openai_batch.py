"""The OpenAI Batch API on the official client: input files, batches, their result files.

The JSONL format is the provider's (and vLLM ``run-batch``'s): one request line per call,
``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}``, and one result
line per call, ``{"custom_id", "response": {"status_code", "request_id", "body"}, "error"}``.
A request's body is exactly what the interactive backend posts, so a deterministic server
answers a batch item as it answers the same call made interactively.

Failures are classified as the interactive ones are (``societies.backends.errors``); a server
without the Files API (404 on ``/v1/files``, as most local servers) is one clear refusal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

import openai

from societies.backends.base import (
    ContextExceededError,
    GenerateRequest,
    GenerateResult,
    PermanentModelError,
    Usage,
)
from societies.backends.errors import Transient, classify, is_context_overflow
from societies.backends.routing import conversation_key

ENDPOINT: Final = "/v1/chat/completions"
#: Final states of a provider batch.
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


class BatchUnsupportedError(PermanentModelError):
    """The server has no Files/Batches API: batch mode cannot run against it."""


def chat_body(request: GenerateRequest, *, prompt_cache_key: bool = False) -> dict[str, Any]:
    """The body of a chat completion request, as the interactive backend sends it."""
    params = dict(request.params)
    extra_body = dict(params.pop("extra_body", None) or {})
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [dict(m) for m in request.messages],
    }
    if prompt_cache_key:
        body["prompt_cache_key"] = conversation_key(request.model, request.messages)
    body.update(params)
    body.update(extra_body)
    return body


def request_line(custom_id: str, body: Mapping[str, Any]) -> bytes:
    """One line of a batch input file (newline included)."""
    line = {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def body_hash(line: bytes) -> str:
    return hashlib.blake2b(line, digest_size=16).hexdigest()


def parse_completion(data: object, model: str, request_id: str | None) -> GenerateResult:
    """The reply and usage of a chat completion body; a broken body is a transient error."""
    if not isinstance(data, dict):
        raise Transient("the response is not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise Transient("the response has no choices")
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise Transient("the response's first choice has no text content")
    usage: dict[str, Any] = data.get("usage") or {}
    details: dict[str, Any] = usage.get("prompt_tokens_details") or {}
    return GenerateResult(
        text=content,
        usage=Usage(
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
            int(details.get("cached_tokens") or 0),
        ),
        model=str(data.get("model") or model),
        request_id=request_id,
    )


def parse_result_line(line: Mapping[str, Any], model: str) -> GenerateResult:
    """One result line: the answer, or ``Transient`` (retry it in a later batch) or
    ``ContextExceededError`` (recorded, never retried)."""
    response = line.get("response")
    error = line.get("error")
    if isinstance(response, dict):
        status = response.get("status_code")
        body = response.get("body")
        if status == 200:
            request_id = response.get("request_id")
            return parse_completion(body, model, None if request_id is None else str(request_id))
        detail = body.get("error") if isinstance(body, dict) else None
        if isinstance(detail, dict):
            message, code = str(detail.get("message", "")), detail.get("code")
            if status in (400, 413, 422) and is_context_overflow(
                None if code is None else str(code), message
            ):
                raise ContextExceededError(message)
            raise Transient(f"HTTP {status}: {message[:200]}", status=status)
        raise Transient(f"HTTP {status}")
    if isinstance(error, dict):
        raise Transient(f"{error.get('code')}: {str(error.get('message', ''))[:200]}")
    raise Transient("a result line with neither a response nor an error")


class BatchAPI:
    """Files and Batches on one server (the first replica of a list)."""

    def __init__(self, client: openai.AsyncOpenAI, secrets: list[str]) -> None:
        self.client = client
        self._secrets = secrets
        self.where = str(client.base_url).rstrip("/")

    def _error(self, exc: openai.OpenAIError, what: str) -> Exception:
        if isinstance(exc, openai.NotFoundError) and what == "upload":
            return BatchUnsupportedError(
                f"openai: the server at {self.where} has no Batches API (HTTP 404 on /v1/files); "
                "run without --batch (batch: false), or export the level with "
                "`societies batch export`"
            )
        error = classify(exc, self._secrets)
        if isinstance(error, PermanentModelError):
            return PermanentModelError(f"{error} ({what})")
        return error

    async def upload(self, name: str, data: bytes) -> str:
        try:
            uploaded = await self.client.files.create(file=(name, data), purpose="batch")
        except openai.OpenAIError as exc:
            raise self._error(exc, "upload") from None
        return uploaded.id

    async def create(self, input_file_id: str, metadata: dict[str, str]) -> tuple[str, str]:
        try:
            batch = await self.client.batches.create(
                input_file_id=input_file_id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata=metadata,
            )
        except openai.OpenAIError as exc:
            raise self._error(exc, "create a batch") from None
        return batch.id, batch.status

    async def find(self, input_file_id: str) -> tuple[str, str] | None:
        """The batch created from this input file, if one was (newest first, as listed)."""
        try:
            async for batch in self.client.batches.list(limit=100):
                if batch.input_file_id == input_file_id:
                    return batch.id, batch.status
        except openai.OpenAIError as exc:
            raise self._error(exc, "list batches") from None
        return None

    async def retrieve(self, batch_id: str) -> tuple[str, str | None, str | None]:
        """(status, output file id, error file id)."""
        try:
            batch = await self.client.batches.retrieve(batch_id)
        except openai.OpenAIError as exc:
            raise self._error(exc, f"poll batch {batch_id}") from None
        return batch.status, batch.output_file_id, batch.error_file_id

    async def lines(self, file_id: str | None) -> list[dict[str, Any]]:
        """The result lines of an output or error file (a broken line is skipped: its item
        counts as not answered and is retried)."""
        if file_id is None:
            return []
        try:
            content = await self.client.files.content(file_id)
        except openai.OpenAIError as exc:
            raise self._error(exc, f"download {file_id}") from None
        out = []
        for text in content.text.splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if isinstance(line, dict) and isinstance(line.get("custom_id"), str):
                out.append(line)
        return out
