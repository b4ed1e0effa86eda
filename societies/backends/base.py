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
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from societies.config.models import ModelSpec
from societies.errors import ModelError

if TYPE_CHECKING:
    from societies.society.agents import Agent
    from societies.tasks.base import Case, Task

ChatMessage = Mapping[str, str]
Step = Literal["persona", "answer"]


@dataclass(frozen=True, slots=True)
class CallContext:
    """What the scheduler knows about a call. Real backends ignore it; the simulated model
    uses it to play a society member who knows the ground truth."""

    key: str
    task: Task
    case: Case
    agent: Agent
    round: int
    step: Step
    #: Pattern of this round for this agent; ``None`` for round 0.
    pattern: str | None
    peer_replies: tuple[str, ...]
    seed: int
    repeat: int


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    messages: Sequence[ChatMessage]
    model: str
    params: Mapping[str, Any]
    context: CallContext | None = None


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


class ModelBackend(ABC):
    """Subclass, set ``name`` (and ``Options`` for settings), implement ``generate``."""

    name: ClassVar[str]
    #: Validated from ``model.options`` in the experiment file.
    Options: ClassVar[type[BaseModel]] = NoOptions
    #: Options that change how requests travel (server address, timeouts, retries, pacing)
    #: but never a request or its reply: a run may resume after they change.
    transport_options: ClassVar[frozenset[str]] = frozenset()
    #: Answers cost nothing and are remade identically (the simulator): the runner then need
    #: not commit each answer before admitting the next call.
    free: ClassVar[bool] = False

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.options: Any = self.Options.model_validate(spec.options)

    @abstractmethod
    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """Answer one chat request. Raise the errors above; anything else is a bug."""

    @classmethod  # noqa: B027  (optional hook, not abstract)
    def preflight(cls, spec: ModelSpec) -> None:
        """Check what can be checked before a run directory is created (an API key's
        environment variable); raise ``ConfigError``."""

    async def aclose(self) -> None:  # noqa: B027  (optional hook, not abstract)
        """Release connections; called once when the run ends."""

    def max_concurrency(self) -> int | None:
        """A ceiling on calls in flight that the backend needs, below the run's own limit."""
        return None


_REGISTRY: dict[str, type[ModelBackend]] = {}


def register_backend(cls: type[ModelBackend]) -> type[ModelBackend]:
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


def get_backend_class(name: str) -> type[ModelBackend]:
    _load_builtin_backends()
    if name not in _REGISTRY and name in _LAZY:
        importlib.import_module(_LAZY[name])
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown backend '{name}' (known: {', '.join(backend_names())})") from None


def create_backend(spec: ModelSpec) -> ModelBackend:
    return get_backend_class(spec.backend)(spec)


def estimate_tokens(text: str) -> int:
    """About four characters per token, the usual rule of thumb for English with BPE
    tokenizers; used where no tokenizer is at hand (the simulated model, dry-run estimates)."""
    return (len(text) + 3) // 4


def estimate_prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    """Content tokens plus OpenAI's documented overhead of ~3 tokens per message and 3 to
    prime the reply."""
    return 3 + sum(3 + estimate_tokens(m["content"]) for m in messages)
