"""The hook of simulated models: the ground truth a real model never sees.

A real backend is handed a request (messages, model, parameters) and nothing else. A
simulated model (the built-in ``sim``, the test fakes) plays a society member who knows the
case's answer, its own trait and the round it is in: it subclasses ``SimulatedBackend`` and
the scheduler hands it a ``GroundTruth`` with each request. The task it simulates must know
how to write a reply in its own format: the ``SimulatedTask`` protocol, which a task
implements only if it is to run on the simulated model.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from random import Random
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from societies.backends.base import (
    GenerateRequest,
    GenerateResult,
    ModelBackend,
    PermanentModelError,
    Step,
)

if TYPE_CHECKING:
    from societies.society.agents import Agent
    from societies.society.questionnaire import Item
    from societies.tasks.base import Case, Task

OptionsT = TypeVar("OptionsT", bound=BaseModel)


@runtime_checkable
class SimulatedTask(Protocol):
    """What the simulated model needs of a task beyond parsing and scoring: replies in the
    format the task's prompts ask for."""

    def sim_answer(self, case: Case, correct: bool, rng: Random) -> str:
        """A correct answer, or a plausible wrong one."""
        ...

    def sim_reply(self, case: Case, answer: str | None, rng: Random) -> str:
        """A short reply with an explanation that ``parse`` reads as ``answer``;
        ``answer=None`` asks for a reply that commits to no answer (a parse failure)."""
        ...


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """What the scheduler knows about a call beyond its request."""

    #: The call's position as text: the seed of the simulated draws (a hash of the messages
    #: where there is no scheduler, as in serve-sim).
    position: str
    task: Task
    case: Case
    agent: Agent
    round: int
    step: Step
    #: This agent's pattern in this round; ``None`` for round 0.
    pattern: str | None
    peer_replies: tuple[str, ...]
    seed: int
    #: The answer this agent's private briefing supports, if it has one.
    briefed_answer: str | None = None
    #: The items a questionnaire call asks (step ``questionnaire``).
    questionnaire: tuple[Item, ...] = ()


class SimulatedBackend(ModelBackend[OptionsT]):
    """A backend that answers from the ground truth: ``simulate`` instead of ``generate``.

    Wrappers that may hold a simulated model (replay's fallback, the budget meter) subclass
    it too, to pass the ground truth on; their ``generate`` still serves bare requests.
    """

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        raise PermanentModelError(
            f"the {self.name} backend simulates a society member and needs the scheduler's "
            "ground truth; it cannot answer a bare request"
        )

    @abstractmethod
    async def simulate(self, request: GenerateRequest, truth: GroundTruth) -> GenerateResult:
        """Answer one request knowing the ground truth."""


async def ask(
    backend: ModelBackend[Any], request: GenerateRequest, truth: GroundTruth | None
) -> GenerateResult:
    """Ask ``backend``: a simulated model with the ground truth (when there is one), a real
    model with the request alone."""
    if truth is not None and isinstance(backend, SimulatedBackend):
        return await backend.simulate(request, truth)
    return await backend.generate(request)


@lru_cache(maxsize=64)
def simulated_task(task: Any) -> SimulatedTask:
    """``task`` as a simulated task, or a permanent error naming what it lacks. Cached per
    task object: an ``isinstance`` against a runtime protocol inspects every attribute, and the
    simulated model asks on every call."""
    if not isinstance(task, SimulatedTask):
        raise PermanentModelError(
            f"task '{getattr(task, 'name', task)}' cannot run on the simulated model: it has no "
            "sim_answer/sim_reply methods"
        )
    return task
