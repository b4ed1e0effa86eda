"""The ``replay`` backend: answers from a recorded run (a run store or a JSONL transcript).

An experiment can so be re-run, re-scored, or extended (one more round, one more strategy)
paying only for the calls not recorded. A recorded reply is found by what was asked, not by
where: the key is the requested model plus the exact messages (``match: messages`` drops the
model), so a different experiment that happens to ask the same thing gets the same reply, and
generation parameters may change (they are not part of the key). When several recorded calls
asked the same thing (identical first turns in two societies, or repeats), the one at the same
call position (repeat, case, society, node, agent, step) wins, then one at the same position in
another society (an experiment with other society names), then one of the same repeat; a
request asked in a repeat the recording does not have is unmatched, so that extra repeats
sample anew instead of copying.

An unmatched request stops the run with a message naming it, unless ``fallback`` names a
backend to ask instead (e.g. the real model, for the calls an extension adds).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from societies.backends.base import (
    CallKey,
    ChatMessage,
    ContextExceededError,
    GenerateRequest,
    GenerateResult,
    PermanentModelError,
    Usage,
    create_backend,
    register_backend,
)
from societies.backends.simulated import GroundTruth, SimulatedBackend, ask
from societies.config.models import ModelSpec
from societies.errors import ConfigError, DataError
from societies.store.db import STORE_FILE, RunStore


class ReplayOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(description="A run directory, its store.sqlite, or a JSONL transcript.")
    match: Literal["model+messages", "messages"] = "model+messages"
    fallback: ModelSpec | None = Field(None, description="Backend for requests not recorded.")


@dataclass(frozen=True, slots=True)
class Recorded:
    key: CallKey | None
    repeat: int | None
    reply: str | None
    outcome: str
    usage: Usage
    model: str | None
    request_id: str | None


def request_key(model: str | None, messages: Sequence[ChatMessage]) -> str:
    text = json.dumps(
        [model, [[m["role"], m["content"]] for m in messages]],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@register_backend
class ReplayBackend(SimulatedBackend[ReplayOptions]):
    """Recorded replies; a request not recorded goes to the fallback, with the ground truth
    when the fallback is a simulated model."""

    name = "replay"
    Options = ReplayOptions

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        opts = self.options
        self.by_model = opts.match == "model+messages"
        self.records: dict[str, list[Recorded]] = {}
        for model, messages, record in _load(Path(opts.source)):
            key = request_key(model if self.by_model else None, messages)
            self.records.setdefault(key, []).append(record)
        self.fallback = create_backend(opts.fallback) if opts.fallback is not None else None
        self.replayed = 0

    def max_concurrency(self) -> int | None:
        return self.fallback.max_concurrency() if self.fallback is not None else None

    async def aclose(self) -> None:
        if self.fallback is not None:
            await self.fallback.aclose()

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        return await self._answer(request, None)

    async def simulate(self, request: GenerateRequest, truth: GroundTruth) -> GenerateResult:
        return await self._answer(request, truth)

    async def _answer(self, request: GenerateRequest, truth: GroundTruth | None) -> GenerateResult:
        key = request_key(request.model if self.by_model else None, request.messages)
        record = self._pick(self.records.get(key, ()), request)
        if record is None:
            if self.fallback is not None:
                return await ask(self.fallback, request, truth)
            where = request.key.text if request.key is not None else "a request"
            last = request.messages[-1]["content"] if request.messages else ""
            raise PermanentModelError(
                f"replay: no recorded reply for call {where} (model {request.model}, "
                f"{len(request.messages)} messages, last: {last[:60]!r}); add a fallback "
                "backend to the replay options to ask a model for it"
            )
        self.replayed += 1
        if record.outcome == "context_exceeded":
            raise ContextExceededError("recorded: the context was exceeded")
        assert record.reply is not None
        return GenerateResult(record.reply, record.usage, record.model, record.request_id)

    @staticmethod
    def _pick(candidates: Iterable[Recorded], request: GenerateRequest) -> Recorded | None:
        found = list(candidates)
        if not found:
            return None
        key = request.key
        if key is None:
            return found[0]
        for record in found:
            if record.key == key:
                return record
        position = _position(key)
        for record in found:
            if record.key is not None and _position(record.key) == position:
                return record
        for record in found:
            if record.repeat is None or record.repeat == key.repeat:
                return record
        return None


def _position(key: CallKey) -> tuple[int, str, str, int, str]:
    """A call key without its society: where in the tree, for whom, in which repeat."""
    return (key.repeat, key.case_id, key.node, key.agent, key.step)


def _load(path: Path) -> Iterable[tuple[str | None, list[ChatMessage], Recorded]]:
    if path.is_dir():
        path = path / STORE_FILE
    if not path.exists():
        raise ConfigError(f"replay: source not found: {path}")
    if path.suffix == ".jsonl":
        return _load_jsonl(path)
    return _load_store(path)


def _load_store(path: Path) -> list[tuple[str | None, list[ChatMessage], Recorded]]:
    store = RunStore(path, readonly=True)
    out: list[tuple[str | None, list[ChatMessage], Recorded]] = []
    try:
        for r in store.recorded_calls():
            usage = Usage(r.prompt_tokens, r.completion_tokens, r.cached_tokens)
            record = Recorded(r.key, r.key.repeat, r.reply, r.outcome, usage, r.model, r.request_id)
            out.append((r.asked_model or r.model, list(r.messages), record))
    except sqlite3.DatabaseError as exc:
        raise DataError(f"replay: {path}: cannot read calls ({exc})") from None
    finally:
        store.close()
    return out


def _load_jsonl(path: Path) -> list[tuple[str | None, list[ChatMessage], Recorded]]:
    """Rows ``{"messages": [...], "reply": "...", "model"?, "repeat"?, "call"?, "usage"?}``,
    ``call`` the position ``{repeat, case_id, society, node, agent, step}``; without it,
    identical requests (two agents with the same persona) get one reply."""
    from societies.tasks.base import read_jsonl, require

    out = []
    for number, row in read_jsonl(path):
        messages = require(path, number, row, "messages", _is_messages)
        reply = require(path, number, row, "reply", lambda v: isinstance(v, str))
        usage: dict[str, Any] = row.get("usage") or {}
        call = row.get("call")
        if call is not None and not _is_call(call):
            raise DataError(
                f"{path}:{number}: call: expected {{repeat, case_id, society, node, agent, step}}"
            )
        key = CallKey(**call) if call is not None else None
        record = Recorded(
            key,
            row.get("repeat", key.repeat if key else None),
            reply,
            "ok",
            Usage(
                int(usage.get("prompt_tokens", 0)),
                int(usage.get("completion_tokens", 0)),
                int(usage.get("cached_tokens", 0)),
            ),
            row.get("model"),
            None,
        )
        out.append((row.get("model"), messages, record))
    return out


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in value
    )


def _is_call(value: Any) -> bool:
    fields = {"repeat": int, "case_id": str, "society": str, "node": str, "agent": int, "step": str}
    return (
        isinstance(value, dict)
        and set(value) == set(fields)
        and all(isinstance(value[k], t) for k, t in fields.items())
        and value["step"] in ("persona", "answer")
    )
