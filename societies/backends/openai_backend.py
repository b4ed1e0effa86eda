"""The ``openai`` backend: OpenAI and every server that speaks its chat API (vLLM, Ollama,
llama.cpp, LM Studio, ...), on the official AsyncOpenAI client.

The client's own retries are off (``max_retries=0``) so that ours, with tenacity, are the only
ones: they honour Retry-After, are bounded in attempts and in total wait, and classify every
failure once (see ``societies.backends.errors``). Requests and tokens per minute are paced
with aiolimiter on top of the run's concurrency limit. A 429 delays its own call by the
Retry-After the server sends; only a run of 429s in a row pauses every call of the backend.
Attempt timeouts follow the server's answer times and a circuit breaker stops a run against
a dead server within seconds (see ``societies.backends.health``).

The API key is read from the environment variable named in the options and handed to the
client only: it is never part of the options, the store, a log line or an error message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from typing import Any, Literal

import httpx2
import openai
from aiolimiter import AsyncLimiter
from pydantic import BaseModel, ConfigDict, Field, field_validator
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
)

from societies.backends.base import (
    CallFailedError,
    GenerateRequest,
    GenerateResult,
    ModelBackend,
    PermanentModelError,
    estimate_prompt_tokens,
    register_backend,
)
from societies.backends.errors import Transient, classify, redact
from societies.backends.health import AttemptTimeout, CircuitBreaker
from societies.backends.openai_batch import BatchAPI, chat_body, parse_completion
from societies.backends.routing import ReplicaRouter, Routing, conversation_key
from societies.config.models import ModelSpec
from societies.errors import ConfigError

log = logging.getLogger(__name__)

OPENAI_URL = "https://api.openai.com/v1"
#: 429s in a row (no other answer between) after which every call of the backend pauses.
PAUSE_AFTER_429 = 8


class OpenAIOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | list[str] | None = Field(
        None,
        description="Default: OpenAI's API. A list: replicas of one server, each conversation "
        "kept on one of them (see societies.backends.routing).",
    )
    routing: Routing = Field(
        "affinity",
        description="With several base URLs: affinity (a conversation keeps to one replica) "
        "or round_robin.",
    )
    replica_concurrency: int | None = Field(
        None, ge=1, description="Calls in flight per replica; more spill to the next replica."
    )
    prompt_cache_key: bool = Field(
        False,
        description="Send each conversation's key as `prompt_cache_key`, so that OpenAI's "
        "prompt cache routes its calls together.",
    )
    api_key_env: str | None = Field(
        "OPENAI_API_KEY",
        description="Environment variable holding the key; null for servers without keys.",
    )
    organization: str | None = None
    project: str | None = None
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers.")
    timeout: float = Field(
        120.0, gt=0, description="Longest an attempt may take, seconds (see adaptive_timeout)."
    )
    adaptive_timeout: bool = Field(
        True,
        description="Once 20 calls have answered, abandon an attempt after 8x the 95th "
        "percentile of answer times (at least 1 s), doubling per retry, at most `timeout`.",
    )
    down_after: float = Field(
        5.0,
        gt=0,
        description="Seconds of failed connections on every attempt after which the server "
        "is taken as down and the run stops (resumable).",
    )
    max_attempts: int = Field(8, ge=1, description="Attempts per call, the first included.")
    max_wait: float = Field(300.0, ge=0, description="Total seconds of back-off per call.")
    backoff_initial: float = Field(0.5, gt=0, description="First back-off, seconds.")
    backoff_max: float = Field(30.0, gt=0, description="Longest single back-off, seconds.")
    rpm: float | None = Field(None, gt=0, description="Requests per minute, paced.")
    tpm: float | None = Field(None, gt=0, description="Tokens per minute (prompt + max_tokens).")
    max_concurrency: int | None = Field(
        None, ge=1, description="Calls in flight to this backend, below the run's limit."
    )
    batch: bool = Field(
        False,
        description="Send the run's calls through the provider's Batch API, level by level "
        "(half price at OpenAI; see societies.scheduler.batch). CLI: --batch.",
    )
    batch_poll: float = Field(
        30.0, gt=0, description="Seconds between two looks at a batch in progress."
    )
    batch_max_requests: int = Field(
        50_000, ge=1, description="Most requests per batch (the provider's limit)."
    )
    batch_max_bytes: int = Field(
        200_000_000, ge=1_000, description="Largest batch input file, bytes (the provider's)."
    )
    transport: Literal["aiohttp", "httpx"] = Field(
        "aiohttp",
        description="The client's HTTP transport: aiohttp (the client's DefaultAioHttpClient, "
        "about half the CPU per call) or httpx (its default).",
    )

    @field_validator("base_url")
    @classmethod
    def _some_url(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and not value:
            raise ValueError("an empty list of base URLs names no server")
        return value


@register_backend
class OpenAIBackend(ModelBackend[OpenAIOptions]):
    name = "openai"
    Options = OpenAIOptions
    # Everything but what selects the model's answers (none of these options do).
    transport_options = frozenset(OpenAIOptions.model_fields)

    @classmethod
    def preflight(cls, spec: ModelSpec) -> None:
        opts = OpenAIOptions.model_validate(spec.options)
        if opts.api_key_env and opts.base_url is None and not os.environ.get(opts.api_key_env):
            raise ConfigError(
                f"openai: the environment variable {opts.api_key_env} is not set "
                "(it must hold the API key)"
            )

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        opts = self.options
        key = os.environ.get(opts.api_key_env) if opts.api_key_env else None
        if not key:
            if opts.api_key_env and opts.base_url is None:
                raise PermanentModelError(
                    f"openai: the environment variable {opts.api_key_env} is not set "
                    "(it must hold the API key)"
                )
            key = "EMPTY"  # servers without keys (vLLM, Ollama, ...) still want a bearer token
        self._secrets = [key] if key != "EMPTY" else []

        def client(url: str) -> openai.AsyncOpenAI:
            return openai.AsyncOpenAI(
                api_key=key,
                organization=opts.organization,
                project=opts.project,
                base_url=url,
                timeout=opts.timeout,
                max_retries=0,
                default_headers=opts.headers or None,
                http_client=openai.DefaultAioHttpClient() if opts.transport == "aiohttp" else None,
            )

        urls = opts.base_url if isinstance(opts.base_url, list) else [opts.base_url or OPENAI_URL]
        self.router = ReplicaRouter(
            urls, client, limit=opts.replica_concurrency, routing=opts.routing
        )
        self.client = self.router.replicas[0].client
        # Almost no bursts, so that a server's sliding window never sees more than the limit
        # (plus this tiny burst); a burst of one would lose the timer's overshoot on every
        # request (~5% of the rate), a burst of a few absorbs it.
        burst = max(1, min(5, round(opts.rpm / 600))) if opts.rpm else 1
        self._rpm = AsyncLimiter(burst, burst * 60 / opts.rpm) if opts.rpm else None
        self._tpm = AsyncLimiter(opts.tpm, 60) if opts.tpm else None
        self._paused_until = 0.0
        self._consecutive_429 = 0
        self._rng = random.Random()
        self._timeout = AttemptTimeout(opts.timeout, adaptive=opts.adaptive_timeout)
        self._breaker = CircuitBreaker(f"openai at {', '.join(urls)}", opts.down_after)

    def max_concurrency(self) -> int | None:
        limit: int | None = self.options.max_concurrency
        return limit

    def batch_api(self) -> BatchAPI:
        """The Files and Batches API of this backend's (first) server, for batch mode."""
        return BatchAPI(self.client, self._secrets)

    def batch_body(self, request: GenerateRequest) -> dict[str, Any]:
        """A batch item's body: exactly what ``generate`` would post."""
        return chat_body(request, prompt_cache_key=self.options.prompt_cache_key)

    async def aclose(self) -> None:
        for replica in self.router.replicas:
            await replica.client.close()

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        opts = self.options
        attempts = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(opts.max_attempts) | stop_before_delay(opts.max_wait),
            wait=self._wait,
            retry=retry_if_exception_type(Transient),
            reraise=True,
            sleep=self._breaker.sleep,
            before_sleep=_log_retry,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    self._breaker.check()
                    result = await self._once(request, attempts)
                    return GenerateResult(
                        result.text, result.usage, result.model, result.request_id, attempts
                    )
        except Transient as exc:
            raise CallFailedError(
                f"gave up after {attempts} attempts: {redact(exc.reason, self._secrets)}", attempts
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _wait(self, state: RetryCallState) -> float:
        """Exponential back-off with jitter, or the server's Retry-After when that is longer."""
        opts = self.options
        ceiling = min(opts.backoff_max, opts.backoff_initial * 2 ** (state.attempt_number - 1))
        wait = self._rng.uniform(opts.backoff_initial / 2, ceiling)
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, Transient) and exc.retry_after is not None:
            wait = max(wait, exc.retry_after * (1 + 0.1 * self._rng.random()))
        return wait

    async def _pace(self, request: GenerateRequest) -> None:
        while (delay := self._paused_until - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        if self._rpm is not None:
            await self._rpm.acquire()
        if self._tpm is not None:
            max_tokens = request.params.get("max_tokens") or request.params.get(
                "max_completion_tokens", 0
            )
            tokens = estimate_prompt_tokens(request.messages) + int(max_tokens or 0)
            await self._tpm.acquire(min(tokens, self._tpm.max_rate))

    async def _once(self, request: GenerateRequest, attempt: int) -> GenerateResult:
        await self._pace(request)
        key = conversation_key(request.model, request.messages)
        body = chat_body(request, prompt_cache_key=self.options.prompt_cache_key)
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        started = time.monotonic()
        limit = self._timeout.ceiling
        try:
            async with self._timeout.attempt(attempt) as limit, self.router.route(key) as replica:
                # The client's generic ``post`` with the body already encoded: the typed
                # ``chat.completions.create`` re-walks every message through its schema
                # transform and copies it, a few milliseconds per call that would cap a run's
                # throughput.
                response = await replica.client.post(
                    "/chat/completions", cast_to=httpx2.Response, content=content
                )
                text = (await response.aread()).decode("utf-8", errors="replace")
        except TimeoutError:
            raise Transient(f"no answer within {limit:.1f} s (attempt {attempt})") from None
        except openai.OpenAIError as exc:
            error = classify(exc, self._secrets)
            if isinstance(error, Transient) and error.connection:
                self._breaker.failed_to_connect()
            else:
                self._breaker.answered()
                self._after_status(error)
            raise error from None
        self._breaker.answered()
        self._consecutive_429 = 0
        self._timeout.observe(time.monotonic() - started)
        request_id = response.headers.get("x-request-id")
        return _parse_completion(text, request.model, request_id)

    def _after_status(self, error: Exception) -> None:
        """The 429 rule: a 429 delays only its own call's retry, by the Retry-After the
        server sent; every call of the backend pauses only when the server refuses
        ``PAUSE_AFTER_429`` requests in a row (it is saturated, not choosing requests)."""
        if not (isinstance(error, Transient) and error.status == 429):
            self._consecutive_429 = 0
            return
        self._consecutive_429 += 1
        if self._consecutive_429 >= PAUSE_AFTER_429:
            pause = error.retry_after if error.retry_after is not None else 1.0
            if time.monotonic() + pause > self._paused_until:
                log.info(
                    "openai: %d 429s in a row; pausing every call %.1f s",
                    self._consecutive_429,
                    pause,
                )
            self._paused_until = max(self._paused_until, time.monotonic() + pause)


def _log_retry(state: RetryCallState) -> None:
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.info("openai: attempt %d failed (%s); retrying in %.1f s", state.attempt_number, exc, wait)


def _parse_completion(text: str, model: str, request_id: str | None) -> GenerateResult:
    """The reply and usage of a chat completion body; a broken body is a transient error."""
    try:
        data = json.loads(text)
    except ValueError:
        raise Transient(f"malformed JSON in the response ({text[:80]!r})") from None
    return parse_completion(data, model, request_id)
