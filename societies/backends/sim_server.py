"""``serve-sim``: the simulated model behind an OpenAI-compatible HTTP API, with faults on demand.

Real backends are tested end to end against this server, over real HTTP on 127.0.0.1: the
official client, its connection pool, its error classes, our retries and rate limits.

Over HTTP there is no scheduler ``GroundTruth`` (the ground truth the sim model plays with),
so the server reconstructs one. Started with an experiment (``--experiment X.yaml``) it loads
the task's cases and finds the case whose question text appears in the conversation; the
agent's trait is the one whose persona message opens it; the round is the number of assistant
turns after the question; peers are the lines of the latest user message that the task's
``parse`` reads an answer from. It then answers exactly as the in-process sim model would, with
a random generator seeded by a hash of the messages, so a run over HTTP is as deterministic as
one in-process. Without an experiment (or for a question it does not know) it answers
plausibly in the multiple-choice format with no ground truth: a letter drawn from the hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from random import Random
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from societies.backends.base import (
    ChatMessage,
    ContextExceededError,
    GenerateRequest,
    estimate_prompt_tokens,
    estimate_tokens,
)
from societies.backends.sim import SimBackend
from societies.backends.sim_cache import PrefixCache
from societies.backends.simulated import GroundTruth
from societies.config.models import ModelSpec
from societies.plan.plan import Plan
from societies.plan.resolve import load_plans
from societies.society.agents import Agent
from societies.society.patterns import split_filler
from societies.society.traits import BUILTIN_TRAITS, Trait
from societies.tasks.base import Case

log = logging.getLogger(__name__)


class Faults(BaseModel):
    """What the server does besides answering. Shares are probabilities per request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(0.0, ge=0, description="Mean latency of an answer.")
    latency_distribution: Literal["fixed", "uniform", "exponential", "lognormal"] = "fixed"
    latency_spread: float = Field(
        0.5, ge=0, description="uniform: +- this share of the mean; lognormal: sigma."
    )
    share_429: float = Field(0.0, ge=0, le=1)
    retry_after: float = Field(1.0, ge=0, description="Seconds sent in Retry-After with a 429.")
    share_500: float = Field(0.0, ge=0, le=1)
    share_hang: float = Field(0.0, ge=0, le=1, description="Requests never answered.")
    share_malformed: float = Field(0.0, ge=0, le=1, description="200 with a broken JSON body.")
    share_empty: float = Field(0.0, ge=0, le=1, description="200 with an empty choice list.")
    context_limit: int | None = Field(
        None, ge=1, description="Prompt tokens above which a context_length_exceeded 400 is sent."
    )
    rpm: int | None = Field(None, ge=1, description="Requests per minute; more get a 429.")
    rpm_window: float = Field(60.0, gt=0, description="Seconds of the sliding RPM window.")
    api_key: str | None = Field(None, description="If set, other bearer tokens get a 401.")
    quota_exhausted: bool = Field(False, description="Answer every request insufficient_quota.")
    prefix_cache_tokens: int | None = Field(
        None,
        ge=1,
        description="Model this replica's KV prefix cache, of this many tokens (LRU): "
        "cached_tokens then report what it holds. Unset: OpenAI's rule (every prefix of at "
        "least 1,024 tokens before the latest message is cached).",
    )
    prefill_ms_per_1k: float = Field(
        0.0, ge=0, description="Added latency per 1,000 prompt tokens not served from cache."
    )
    slots: int | None = Field(
        None,
        ge=1,
        description="Requests this replica works on at once (a GPU's batch); more queue.",
    )
    batch_api: bool = Field(
        True, description="Serve the Files and Batches APIs (off: 404, as many servers do)."
    )
    batch_delay: float = Field(
        0.0, ge=0, description="Seconds a batch takes from creation to completion."
    )
    batch_share_failed: float = Field(
        0.0, ge=0, le=1, description="Share of batch items answered with a 500 error."
    )
    expire_batches: tuple[int, ...] = Field(
        (), description="Numbers (1 = the first created) of batches that expire half done."
    )
    batch_max_requests: int = Field(50_000, ge=1, description="Most requests per batch file.")
    seed: int = 0


class CaseIndex:
    """Finds the case, agent trait and round of a conversation from its text alone."""

    def __init__(self, experiments: Sequence[Path] = ()) -> None:
        self.needles: list[tuple[str, Case, Plan]] = []
        self.sims: dict[str, SimBackend] = {}
        self._personas: dict[tuple[str, str], dict[str, Trait]] = {}
        self._found: dict[str, tuple[Case, Plan] | None] = {}
        #: The questionnaire turns of the experiments (pre and post) and whose they are.
        self.questionnaires: dict[str, Plan] = {}
        for experiment in experiments:
            for plan in load_plans(experiment):
                for timing in ("pre", "post") if plan.questionnaire else ():
                    turn = plan.prompts.questionnaire(plan.questionnaire, timing)
                    self.questionnaires[turn] = plan
                options: dict[str, Any] = {}
                if plan.experiment.model.backend == "sim":
                    options = dict(plan.experiment.model.options, latency_ms=0)
                self.sims[plan.experiment.name] = SimBackend(
                    ModelSpec(backend="sim", name="serve-sim", options=options)
                )
                for case in plan.cases:
                    variables = plan.task.prompt_vars(case).values()
                    strings = [v for v in variables if isinstance(v, str)]
                    if strings:
                        self.needles.append((max(strings, key=len), case, plan))

    def case_of(self, messages: Sequence[ChatMessage]) -> tuple[Case, Plan, int] | None:
        """The case, its experiment, and the index of the message that asks its question."""
        for i, message in enumerate(messages):
            if message["role"] != "user":
                continue
            content = message["content"]
            if content not in self._found:
                if len(self._found) > 100_000:
                    self._found.clear()  # a long-running server must not grow without bound
                self._found[content] = next(
                    ((c, p) for n, c, p in self.needles if n in content), None
                )
            found = self._found[content]
            if found is not None:
                return found[0], found[1], i
        return None

    def trait_of(self, plan: Plan, case: Case, first: str) -> Trait:
        key = (plan.experiment.name, case.id)
        personas = self._personas.get(key)
        if personas is None:
            personas = {}
            traits = {a.trait.name: a.trait for s in plan.societies for a in s.agents}
            for trait in traits.values():
                agent = Agent(0, "agent", trait, None, ModelSpec())
                personas[plan.prompts.persona(agent, plan.task, case)] = trait
            self._personas[key] = personas
        return personas.get(first, next(iter(personas.values()), BUILTIN_TRAITS["easy-going"]))

    async def reply(self, messages: Sequence[ChatMessage]) -> str:
        digest = hashlib.blake2b(
            json.dumps(messages, sort_keys=True).encode(), digest_size=16
        ).hexdigest()
        rates = self.questionnaires.get(messages[-1]["content"]) if messages else None
        if rates is not None:
            return await self._ratings(rates, messages, digest)
        found = self.case_of(messages) if self.needles else None
        if found is None:
            return _plain_reply(messages, digest)
        case, plan, at = found
        round_index = sum(1 for m in messages[at + 1 :] if m["role"] == "assistant")
        peers: tuple[str, ...] = ()
        if round_index:
            lines = messages[-1]["content"].splitlines()
            peers = tuple(line for line in lines if plan.task.parse(line) is not None)
        persona, _ = split_filler(messages[0]["content"])  # a paused role-play turn
        agent = Agent(0, "agent", self.trait_of(plan, case, persona), None, ModelSpec())
        truth = GroundTruth(
            digest, plan.task, case, agent, round_index, "answer", None, peers,
            plan.experiment.seed,
        )  # fmt: skip
        sim = self.sims[plan.experiment.name]
        result = await sim.simulate(GenerateRequest(messages, "serve-sim", {}), truth)
        return result.text

    async def _ratings(self, plan: Plan, messages: Sequence[ChatMessage], digest: str) -> str:
        """A questionnaire turn: rated as the sim does, for the trait whose character phrase
        the persona holds (the built-in persona templates quote it)."""
        first = messages[0]["content"]
        traits = (a.trait for s in plan.societies for a in s.agents)
        trait = next((t for t in traits if t.character and t.character in first), None)
        agent = Agent(0, "agent", trait or BUILTIN_TRAITS["easy-going"], None, ModelSpec())
        truth = GroundTruth(digest, plan.task, plan.cases[0], agent, 0, "questionnaire", None, (),
                            plan.experiment.seed, None, plan.questionnaire)  # fmt: skip
        sim = self.sims[plan.experiment.name]
        return (await sim.simulate(GenerateRequest(messages, "serve-sim", {}), truth)).text


def _plain_reply(messages: Sequence[ChatMessage], digest: str) -> str:
    last = messages[-1]["content"] if messages else ""
    if "ok only" in last.lower():
        return "ok"
    letter = "ABCD"[int(digest[:8], 16) % 4]
    return f"Weighing the options against what I know, I settle on one. The answer is ({letter})."


def error_body(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _error(status: int, message: str, kind: str, code: str | None = None) -> web.Response:
    return web.json_response(error_body(message, kind, code), status=status)


class SimServer:
    """The server, in the caller's event loop (``async with``) or in a thread of its own."""

    def __init__(
        self,
        faults: Faults | None = None,
        *,
        experiments: Sequence[Path] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        models: Sequence[str] = ("sim-model",),
    ) -> None:
        self.faults = faults or Faults()
        self.index = CaseIndex(experiments)
        self.host, self.port = host, port
        self.models = list(models)
        self.stats: Counter[str] = Counter()
        self._rng = Random(self.faults.seed)
        self._accepted: deque[float] = deque()
        self._in_flight = 0
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._request_number = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        capacity = self.faults.prefix_cache_tokens
        self.cache = PrefixCache(capacity) if capacity is not None else None
        self._slots = asyncio.Semaphore(self.faults.slots) if self.faults.slots else None
        from societies.backends.sim_batches import BatchService  # it builds on this module

        self.batches = BatchService(self)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> SimServer:
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/stats", self._stats)
        if self.faults.batch_api:
            self.batches.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        log.info("serve-sim listening on %s", self.base_url)
        return self

    async def stop(self) -> None:
        self._stopping.set()
        await self.batches.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start_in_thread(self) -> SimServer:
        """Serve from a thread with its own event loop (for tests that run the CLI)."""
        ready = threading.Event()

        def serve() -> None:
            loop = self._loop = asyncio.new_event_loop()
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=serve, name="serve-sim", daemon=True)
        self._thread.start()
        ready.wait()
        return self

    def __enter__(self) -> SimServer:
        return self if self._thread is not None else self.start_in_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop_thread()

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._thread = self._loop = None

    # -- handlers -------------------------------------------------------------------------
    async def _models(self, request: web.Request) -> web.Response:
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "societies"} for m in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(dict(self.stats, in_flight=self._in_flight))

    def _latency(self) -> float:
        f = self.faults
        mean = f.latency_ms / 1000
        if mean == 0 or f.latency_distribution == "fixed":
            return mean
        if f.latency_distribution == "uniform":
            return max(0.0, mean * (1 + f.latency_spread * (2 * self._rng.random() - 1)))
        if f.latency_distribution == "exponential":
            return self._rng.expovariate(1 / mean)
        # lognormal with the given mean: mu = ln(mean) - sigma^2 / 2
        sigma = f.latency_spread
        return self._rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)

    def _rpm_refusal(self) -> float | None:
        """Seconds until a slot frees up, or None when this request is admitted."""
        f = self.faults
        if f.rpm is None:
            return None
        now = time.monotonic()
        allowed = max(1, round(f.rpm * f.rpm_window / 60))
        while self._accepted and self._accepted[0] <= now - f.rpm_window:
            self._accepted.popleft()
        if len(self._accepted) >= allowed:
            return self._accepted[0] + f.rpm_window - now
        self._accepted.append(now)
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.stats["requests"] += 1
        self._request_number += 1
        number = self._request_number
        self._in_flight += 1
        self.stats["max_in_flight"] = max(self.stats["max_in_flight"], self._in_flight)
        try:
            response = await self._answer(request, number)
        finally:
            self._in_flight -= 1
        self.stats[f"status_{response.status}"] += 1
        return response

    def refusal(self, request: web.Request) -> web.Response | None:
        """A 401 for a request without the key, when the server wants one."""
        f = self.faults
        if f.api_key is not None and request.headers.get("Authorization") != f"Bearer {f.api_key}":
            return _error(
                401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
        return None

    async def _answer(self, request: web.Request, number: int) -> web.StreamResponse:
        f = self.faults
        refused = self.refusal(request)
        if refused is not None:
            return refused
        try:
            messages, model = parse_chat(await request.json())
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, f"invalid request body: {exc}", "invalid_request_error")
        if f.quota_exhausted:
            return _error(
                429, "You exceeded your current quota.", "insufficient_quota", "insufficient_quota"
            )
        wait = self._rpm_refusal()
        if wait is not None:
            self.stats["rpm_refused"] += 1
            return self._too_many(wait, "Rate limit reached: requests per minute.")
        kind = self._draw_fault()
        if kind == "429":
            return self._too_many(f.retry_after, "Rate limit reached (injected).")
        if kind == "500":
            return _error(500, "The server had an error (injected).", "server_error")
        if kind == "hang":
            self.stats["hangs"] += 1
            await self._stopping.wait()
            return _error(503, "server stopping", "server_error")
        headers = {"x-request-id": f"req_sim_{number:08d}"}
        status, payload = await self.complete(messages, model, f"chatcmpl-{number}", wait=True)
        if kind == "malformed" and status == 200:
            return web.Response(
                text='{"id": "broken", "choices": [', content_type="application/json",
                headers=headers,
            )  # fmt: skip
        if kind == "empty" and status == 200:
            payload["choices"] = []
        if status == 200:
            self.stats["answered"] += 1
        return web.json_response(payload, status=status, headers=headers)

    async def complete(
        self, messages: list[ChatMessage], model: str, completion_id: str, *, wait: bool
    ) -> tuple[int, dict[str, Any]]:
        """The status and body of the answer to one chat request: what /v1/chat/completions
        sends and what a batch item's result holds, alike. ``wait``: take the latency."""
        f = self.faults
        prompt_tokens = estimate_prompt_tokens(messages)
        if f.context_limit is not None and prompt_tokens > f.context_limit:
            return 400, error_body(
                f"This model's maximum context length is {f.context_limit} tokens. However, your "
                f"messages resulted in {prompt_tokens} tokens. Please reduce the length of the "
                "messages.",
                "invalid_request_error",
                "context_length_exceeded",
            )
        cached = self.cache.lookup(model, messages) if self.cache else _cached(messages)
        latency = self._latency() + f.prefill_ms_per_1k * (prompt_tokens - cached) / 1e6
        if wait and latency:
            if self._slots is None:
                await asyncio.sleep(latency)
            else:
                async with self._slots:
                    await asyncio.sleep(latency)
        try:
            text = await self.index.reply(messages)
        except ContextExceededError as exc:
            return 400, error_body(str(exc), "invalid_request_error", "context_length_exceeded")
        if self.cache is not None:
            self.cache.store(model, messages, text)
        self.stats["prompt_tokens"] += prompt_tokens
        self.stats["cached_tokens"] += cached
        completion = estimate_tokens(text)
        return 200, {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [_choice(text)],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": prompt_tokens + completion,
                "prompt_tokens_details": {"cached_tokens": cached},
            },
        }

    def _draw_fault(self) -> str:
        f = self.faults
        draw = self._rng.random()
        for share, kind in (
            (f.share_429, "429"),
            (f.share_500, "500"),
            (f.share_hang, "hang"),
            (f.share_malformed, "malformed"),
            (f.share_empty, "empty"),
        ):
            if draw < share:
                return kind
            draw -= share
        return "ok"

    def _too_many(self, seconds: float, message: str) -> web.Response:
        self.stats["429"] += 1
        response = _error(429, message, "requests", "rate_limit_exceeded")
        response.headers["Retry-After"] = str(max(0, round(seconds)))
        response.headers["retry-after-ms"] = str(max(0, round(seconds * 1000)))
        return response


def parse_chat(body: Any) -> tuple[list[ChatMessage], str]:
    """The messages and model of a chat request body; KeyError or TypeError when malformed."""
    messages: list[ChatMessage] = [
        {"role": str(m["role"]), "content": str(m["content"])} for m in body["messages"]
    ]
    return messages, str(body["model"])


def _choice(text: str) -> dict[str, Any]:
    return {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": "stop",
        "logprobs": None,
    }


def _cached(messages: Sequence[Mapping[str, str]]) -> int:
    """Like OpenAI's prompt caching: whole 128-token blocks of the prompt's prefix before the
    latest message count as cached once the prefix is at least 1,024 tokens."""
    prefix = estimate_prompt_tokens(messages[:-1]) if len(messages) > 1 else 0
    return 0 if prefix < 1024 else prefix // 128 * 128
