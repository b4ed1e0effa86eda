"""Fake models for tests, the project's and users' alike.

``FunctionModel`` answers through a Python function; ``ScriptedModel`` answers from a script
keyed by call and fails loudly on any call the script does not expect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from societies.backends.base import (
    GenerateRequest,
    GenerateResult,
    ModelBackend,
    Usage,
    estimate_prompt_tokens,
    estimate_tokens,
)
from societies.config.models import ModelSpec


class UnexpectedCallError(AssertionError):
    """A scripted model was asked something its script does not cover."""


class FunctionModel(ModelBackend):
    name = "function"

    def __init__(
        self,
        fn: Callable[[GenerateRequest], str | GenerateResult],
        spec: ModelSpec | None = None,
    ) -> None:
        super().__init__(spec or ModelSpec(backend="function", name="function"))
        self.fn = fn
        self.requests: list[GenerateRequest] = []

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        self.requests.append(request)
        out = self.fn(request)
        if isinstance(out, GenerateResult):
            return out
        return GenerateResult(
            out, Usage(estimate_prompt_tokens(request.messages), estimate_tokens(out))
        )


class ScriptedModel(FunctionModel):
    """Replies keyed by the scheduler's call key ``repeat|case|society|node|agent|step``."""

    name = "scripted"

    def __init__(self, script: Mapping[str, str], spec: ModelSpec | None = None) -> None:
        self.script = dict(script)
        self.used: set[str] = set()
        super().__init__(self._reply, spec)

    def _reply(self, request: GenerateRequest) -> str:
        if request.context is None or request.context.key not in self.script:
            key = request.context.key if request.context else "(no context)"
            raise UnexpectedCallError(f"unexpected call {key}")
        self.used.add(request.context.key)
        return self.script[request.context.key]

    def unused(self) -> set[str]:
        return set(self.script) - self.used
