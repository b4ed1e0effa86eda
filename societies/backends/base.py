"""The model backend interface: one abstract async ``generate``, capabilities as defaults.

A backend turns a chat request into a reply and its usage. Errors are classified here, once,
so the scheduler can treat every backend alike: a context overflow is a result to record, a
permanent error stops the run, anything else the backend could not recover from is recorded
as an ``error`` outcome and redone on resume.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from societies.config.models import ModelSpec
from societies.errors import ModelError
from societies.society.patterns import FILLER_ENDS, split_filler
from societies.store.records import CallKey, Step

__all__ = ["CallKey", "Step"]  # re-exported: backends name calls by them

ChatMessage = Mapping[str, str]
OptionsT = TypeVar("OptionsT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    """What a model is asked: the messages, the model name and the generation parameters."""

    messages: Sequence[ChatMessage]
    model: str
    params: Mapping[str, Any]
    #: Where the call sits in the experiment (``None`` outside a run). Only backends that
    #: answer by position read it (replay, scripted fakes, the dry run's stand-in); it holds
    #: no ground truth.
    key: CallKey | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class GenerateResult:
    text: str
    usage: Usage
    model: str | None = None
    request_id: str | None = None
    attempts: int = 1


class ContextExceededError(Exception):
    """The request does not fit the model's context window; recorded, never retried."""


class CallFailedError(Exception):
    """The call failed after the backend's own retries; recorded as an ``error`` outcome."""

    def __init__(self, message: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts


class CallRefusedError(Exception):
    """The call was not made (a budget would be exceeded): nothing is recorded, and the
    scheduler starts no new calls; the run can be resumed later."""


class PermanentModelError(ModelError):
    """Retrying cannot help (bad key, unknown model, exhausted quota): the run stops."""


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelBackend(ABC, Generic[OptionsT]):
    """Subclass as ``ModelBackend[MyOptions]``, set ``name`` and ``Options = MyOptions``
    (the pydantic model ``model.options`` is validated with), implement ``generate``."""

    name: ClassVar[str]
    #: Validated from ``model.options`` in the experiment file; the type parameter names it
    #: for the type checker, so ``self.options`` is typed in every backend.
    Options: ClassVar[type[BaseModel]] = NoOptions
    #: Options that change how requests travel (server address, timeouts, retries, pacing)
    #: but never a request or its reply: a run may resume after they change.
    transport_options: ClassVar[frozenset[str]] = frozenset()
    #: Answers cost nothing and are remade identically (the simulator): the runner then need
    #: not commit each answer before admitting the next call.
    free: ClassVar[bool] = False
    #: The backend appends pause tokens of its own after the prompt (the pause pattern,
    #: ``society.patterns.Pause``): M then reaches it as the ``pause_tokens`` generation
    #: parameter; any other backend gets M filler periods in the turn's message instead.
    native_pause: ClassVar[bool] = False

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.options: OptionsT = cast(OptionsT, self.Options.model_validate(spec.options))

    @abstractmethod
    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """Answer one chat request. Raise the errors above; anything else is a bug."""

    @classmethod
    def preflight(cls, spec: ModelSpec) -> None:
        """Check what can be checked before a run directory is created (an API key's
        environment variable); raise ``ConfigError``."""

    async def aclose(self) -> None:
        """Release connections; called once when the run ends."""

    def max_concurrency(self) -> int | None:
        """A ceiling on calls in flight that the backend needs, below the run's own limit."""
        return None


AnyBackend = ModelBackend[Any]
_REGISTRY: dict[str, type[AnyBackend]] = {}
_B = TypeVar("_B", bound=type[AnyBackend])


def register_backend(cls: _B) -> _B:
    _REGISTRY[cls.name] = cls
    return cls


#: Built-in backends whose module imports a heavy client library: imported on first use, so
#: that a run on the simulated model does not pay for loading the openai package.
_LAZY = {"openai": "societies.backends.openai_backend"}


def _load_builtin_backends() -> None:
    import societies.backends.replay
    import societies.backends.sim
    import societies.backends.transformers_backend  # noqa: F401  (all register on import)


def backend_names() -> list[str]:
    _load_builtin_backends()
    return sorted(set(_REGISTRY) | set(_LAZY))


def get_backend_class(name: str) -> type[AnyBackend]:
    _load_builtin_backends()
    if name not in _REGISTRY and name in _LAZY:
        importlib.import_module(_LAZY[name])
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown backend '{name}' (known: {', '.join(backend_names())})") from None


def create_backend(spec: ModelSpec) -> AnyBackend:
    return get_backend_class(spec.backend)(spec)


def estimate_tokens(text: str) -> int:
    """About four characters per token, the usual rule of thumb for English with BPE
    tokenizers; used where no tokenizer is at hand (the simulated model, dry-run estimates)."""
    return (len(text) + 3) // 4


def estimate_prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    """Content tokens plus OpenAI's documented overhead of ~3 tokens per message and 3 to
    prime the reply. A pause filler (``society.patterns.Pause``) counts one token per filler
    period, not four characters a token: it is spaced so that tokenizers cannot merge it."""
    total = 3
    for m in messages:
        content = m["content"]
        if content.endswith(FILLER_ENDS):  # rare: checked before any other work
            content, pause = split_filler(content)
            total += pause
        total += 3 + (len(content) + 3) // 4  # estimate_tokens, inlined: called on every call
    return total
