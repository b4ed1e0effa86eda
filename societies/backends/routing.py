"""Routing calls over several replicas of one model server, keeping conversations together.

Model servers (vLLM, SGLang) keep the KV cache of prompts they have seen: a request whose
prefix a replica already holds skips most of its prefill. Every agent's conversation only grows
by appending, so its calls should all reach the replica that served the previous one. Across
independent replicas only the client can arrange that, from what the request itself contains:
the **conversation key** hashes the model name and the messages up to and including the first
user turn, the part every later call of the conversation repeats. A role-play opener (a first
user turn answered by a short acknowledgement such as "ok", the study's protocol) is shared by
every agent with that trait; the key then also covers the next user turn, the question. An
acknowledgement is a reply of at most 8 tokens that begins with ok, okay, understood, sure,
got it, yes or "I understand": a short answer such as "(B)" is not one.

Replicas are chosen by rendezvous (highest random weight) hashing of the key: each
conversation has a fixed order of preference over the replicas, and adding or losing one
moves only the conversations that preferred it. A call goes to the first replica in its order
that is up and below the per-replica concurrency limit, so it spills to the next one when its
own is saturated or failing. A replica that refuses a connection, or answers 5xx or times out
three times in a row, is left alone for a cool-down (1 s, doubling per further failure up to
30 s); after it calls try it again, and one more failure sends it back. When every replica is
down the preferred one is tried anyway: the caller's own retries and circuit breaker decide
when to give up.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import openai

from societies.backends.base import ChatMessage, estimate_tokens
from societies.backends.errors import Transient, classify

log = logging.getLogger(__name__)

Routing = Literal["affinity", "round_robin"]
Client = TypeVar("Client")

#: A first reply of at most this many tokens, beginning so, is an acknowledgement.
ACK_TOKENS = 8
ACK_WORDS = ("ok", "okay", "understood", "sure", "got it", "yes", "i understand")
#: Failures in a row (no success between) after which a replica is taken as down.
FAILURES_TO_DOWN = 3
COOLDOWN_FIRST = 1.0
COOLDOWN_MAX = 30.0


def conversation_key(model: str, messages: Sequence[ChatMessage]) -> str:
    """A stable id of the conversation a request belongs to (see the module docstring)."""
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    end = users[0] if users else len(messages) - 1
    if (
        len(users) > 1
        and users[0] + 1 < users[1]
        and messages[users[0] + 1]["role"] == "assistant"
        and _acknowledges(messages[users[0] + 1]["content"])
    ):
        end = users[1]
    digest = hashlib.blake2b(model.encode(), digest_size=16)
    for message in messages[: end + 1]:
        digest.update(b"\x00" + message["role"].encode() + b"\x00" + message["content"].encode())
    return digest.hexdigest()


def _acknowledges(reply: str) -> bool:
    words = reply.strip().lower()
    return estimate_tokens(words) <= ACK_TOKENS and words.startswith(ACK_WORDS)


def _weight(key: str, url: str) -> bytes:
    return hashlib.blake2b(f"{key}\x00{url}".encode(), digest_size=8).digest()


@dataclass
class Replica(Generic[Client]):
    url: str
    client: Client
    in_flight: int = 0
    failures: int = 0
    down_until: float = 0.0

    def up(self, now: float) -> bool:
        return self.down_until <= now


class ReplicaRouter(Generic[Client]):
    """Picks the replica of each call; ``route`` holds a slot on it while the call runs."""

    def __init__(
        self,
        urls: Sequence[str],
        make_client: Callable[[str], Client],
        *,
        limit: int | None = None,
        routing: Routing = "affinity",
    ) -> None:
        if not urls:
            raise ValueError("no replica URLs")
        self.replicas = [Replica(url, make_client(url)) for url in urls]
        self.limit = limit
        self.routing = routing
        self._turn = itertools.count()
        self._freed = asyncio.Condition()

    def preference(self, key: str) -> list[Replica[Client]]:
        """The replicas in the order this conversation tries them."""
        if self.routing == "round_robin" or len(self.replicas) == 1:
            start = next(self._turn) % len(self.replicas)
            return self.replicas[start:] + self.replicas[:start]
        return sorted(self.replicas, key=lambda r: _weight(key, r.url), reverse=True)

    def _choose(self, order: list[Replica[Client]]) -> Replica[Client] | None:
        now = time.monotonic()
        up = [r for r in order if r.up(now)] or order[:1]
        for replica in up:
            if self.limit is None or replica.in_flight < self.limit:
                return replica
        return None

    @asynccontextmanager
    async def route(self, key: str) -> AsyncIterator[Replica[Client]]:
        order = self.preference(key)
        replica = self._choose(order)
        while replica is None:  # every replica that is up is at its limit
            async with self._freed:
                await self._freed.wait()
            replica = self._choose(order)
        replica.in_flight += 1
        try:
            yield replica
        except BaseException as exc:
            fault = _replica_fault(exc)
            if fault is not None:
                self._failed(replica, refused=fault == "refused")
            else:
                replica.failures = 0
            raise
        else:
            replica.failures = 0
            replica.down_until = 0.0
        finally:
            replica.in_flight -= 1
            async with self._freed:
                self._freed.notify(1)

    def _failed(self, replica: Replica[Client], *, refused: bool) -> None:
        replica.failures += 1
        if refused or replica.failures >= FAILURES_TO_DOWN or replica.down_until > 0:
            steps = max(0, replica.failures - FAILURES_TO_DOWN)
            cooldown = min(COOLDOWN_MAX, COOLDOWN_FIRST * 2**steps)
            replica.down_until = time.monotonic() + cooldown
            log.info("replica %s down for %.0f s (%d failures)", replica.url, cooldown,
                     replica.failures)  # fmt: skip


def _replica_fault(exc: BaseException) -> Literal["refused", "failed"] | None:
    """A failure of the replica rather than of the request: ``refused`` when no connection
    could be made (a dead server: taken as down at once), ``failed`` for a 5xx or no answer in
    time (down after a few in a row), ``None`` for anything else."""
    if isinstance(exc, TimeoutError | asyncio.CancelledError):
        return "failed"
    if not isinstance(exc, openai.OpenAIError):
        return None
    error = classify(exc, ())
    if not isinstance(error, Transient) or (error.status is not None and error.status < 500):
        return None
    return "refused" if error.connection else "failed"
