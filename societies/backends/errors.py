"""How a failed call to an OpenAI-compatible server is classified, in one place.

- retried: 408, 409, 429 (not for exhausted quota), 5xx, timeouts, connection errors, and
  replies that cannot be read (malformed JSON, no choices);
- ``context_exceeded``: OpenAI's ``context_length_exceeded`` code and the messages vLLM,
  llama.cpp, Ollama and others send for the same thing;
- permanent (the run stops): 401, 403, 404, any other 4xx, exhausted quota.

Error text from a server may quote the credential it was given (OpenAI echoes part of a bad
key), so every message is redacted before it leaves this module.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import openai

from societies.backends.base import ContextExceededError, PermanentModelError

RETRY_STATUSES = frozenset({408, 409, 429})

_CONTEXT_PATTERNS = re.compile(
    "|".join(
        (
            r"maximum context length",  # OpenAI, vLLM
            r"context length exceeded",
            r"context_length_exceeded",
            r"exceeds? the (?:available )?context size",  # llama.cpp server
            r"exceed_context_size",  # llama.cpp error type
            r"longer than the model'?s context length",  # vLLM (newer)
            r"prompt is too long",  # Anthropic-compatible proxies
            r"too many tokens",
            r"context window",
            r"input length .* exceeds",
        )
    ),
    re.IGNORECASE,
)
_KEYLIKE = re.compile(r"\b(sk|key|api[-_]?key)[-_][A-Za-z0-9_\-*]{6,}", re.IGNORECASE)


class Transient(Exception):
    """A failure worth another attempt."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        connection: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        #: No HTTP response at all (refused, reset, unreachable): what the circuit breaker counts.
        self.connection = connection


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _KEYLIKE.sub("[redacted]", text)


def retry_after_seconds(headers: object) -> float | None:
    """``retry-after-ms`` (OpenAI's, precise) or ``Retry-After`` in seconds; HTTP dates are
    rare from these servers and are ignored."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue
        if 0 <= seconds <= 600:
            return seconds
    return None


def is_context_overflow(code: str | None, message: str) -> bool:
    return code == "context_length_exceeded" or bool(_CONTEXT_PATTERNS.search(message))


def _refused_connection(exc: BaseException) -> BaseException | None:
    """The OS-level connection error behind a "timeout": the client's aiohttp transport
    reports a refused connection as a connect timeout."""
    seen: BaseException | None = exc.__cause__ or exc.__context__
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, OSError) and not isinstance(seen, TimeoutError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def classify(exc: openai.OpenAIError, secrets: Sequence[str]) -> Exception:
    """The exception to raise in place of ``exc``."""
    if isinstance(exc, openai.APITimeoutError):
        refused = _refused_connection(exc)
        if refused is None:
            return Transient("timed out")
        return Transient(f"connection error: {redact(str(refused), secrets)}", connection=True)
    if isinstance(exc, openai.APIConnectionError):
        reason = redact(str(exc.__cause__ or exc), secrets)
        return Transient(f"connection error: {reason}", connection=True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        message = redact(str(exc.message), secrets)
        code = exc.code
        kind = exc.type
        if status == 429 and "insufficient_quota" in (code, kind):
            return PermanentModelError(f"openai: HTTP 429 insufficient_quota: {message}")
        if status in RETRY_STATUSES or status >= 500:
            retry_after = retry_after_seconds(exc.response.headers)
            return Transient(f"HTTP {status}: {message}", status=status, retry_after=retry_after)
        if status in (400, 413, 422) and is_context_overflow(code, message):
            return ContextExceededError(message)
        hint = {
            401: " (check the API key's environment variable)",
            403: " (no access to this model or organization)",
            404: " (unknown model or wrong base_url)",
        }.get(status, "")
        return PermanentModelError(f"openai: HTTP {status}{hint}: {message}")
    return Transient(f"{type(exc).__name__}: {redact(str(exc), secrets)}")
