"""Fake models for tests, the project's and users' alike.

``FunctionModel`` answers through a Python function that sees the request and the ground
truth (it is a simulated model); ``ScriptedModel`` answers from a script keyed by call
position and fails loudly on any call the script does not expect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from societies.backends.base import (
    CallKey,
    GenerateRequest,
    GenerateResult,
    ModelBackend,
    NoOptions,
    Usage,
    estimate_prompt_tokens,
    estimate_tokens,
)
from societies.backends.simulated import GroundTruth, SimulatedBackend
from societies.config.models import ModelSpec


class UnexpectedCallError(AssertionError):
    """A scripted model was asked something its script does not cover."""


@dataclass(frozen=True, slots=True)
class Asked:
    """One call a ``FunctionModel`` answered: the request and the scheduler's ground truth."""

    request: GenerateRequest
    truth: GroundTruth


def _result(request: GenerateRequest, out: str | GenerateResult) -> GenerateResult:
    if isinstance(out, GenerateResult):
        return out
    return GenerateResult(
        out, Usage(estimate_prompt_tokens(request.messages), estimate_tokens(out))
    )


class FunctionModel(SimulatedBackend[NoOptions]):
    name = "function"

    def __init__(
        self, fn: Callable[[Asked], str | GenerateResult], spec: ModelSpec | None = None
    ) -> None:
        super().__init__(spec or ModelSpec(backend="function", name="function"))
        self.fn = fn
        self.requests: list[Asked] = []

    async def simulate(self, request: GenerateRequest, truth: GroundTruth) -> GenerateResult:
        asked = Asked(request, truth)
        self.requests.append(asked)
        return _result(request, self.fn(asked))


class ScriptedModel(ModelBackend[NoOptions]):
    """Replies keyed by the call's position (``CallKey``)."""

    name = "scripted"

    def __init__(self, script: Mapping[CallKey, str], spec: ModelSpec | None = None) -> None:
        super().__init__(spec or ModelSpec(backend="scripted", name="scripted"))
        self.script = dict(script)
        self.used: set[CallKey] = set()

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        key = request.key
        if key is None or key not in self.script:
            raise UnexpectedCallError(f"unexpected call {key.text if key else '(no position)'}")
        self.used.add(key)
        return _result(request, self.script[key])

    def unused(self) -> set[CallKey]:
        return set(self.script) - self.used
