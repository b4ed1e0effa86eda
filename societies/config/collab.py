"""How a society's agents talk and decide: topology, stopping rule, decision protocol.

Kept apart from ``models.py`` so that each setting is one small model with its own schema.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: ``full``: every agent sees every other (the study); ``ring``: agent i sees i-1 and i+1;
#: ``none``: nobody sees anybody (independent agents).
TopologyName = Literal["full", "ring", "star", "none"]


class Star(_Frozen):
    """A star: the centre sees every agent, every other agent sees only the centre."""

    star: int = Field(ge=0, description="Index of the centre agent.")


class Neighbours(_Frozen):
    """Explicit neighbour lists: ``neighbours[i]`` are the agents whose replies agent i sees."""

    neighbours: list[list[int]]


OneTopology = TopologyName | Star | Neighbours


class PerRound(_Frozen):
    """A topology per round after the first answer; the last one holds for later rounds."""

    rounds: list[OneTopology] = Field(min_length=1)


Topology = OneTopology | PerRound


def _fraction(value: str | float) -> str | float:
    if isinstance(value, float | int) and not 0 < value <= 1:
        raise ValueError(f"a fraction in (0, 1] or 'unanimous', got {value}")
    return value


#: ``unanimous``, or the share of agents (in (0, 1]) that must hold the most common answer.
Stop = Annotated[Literal["unanimous"] | float, AfterValidator(_fraction)]


class Weighted(_Frozen):
    """A weighted vote: each agent's answer counts its weight; a tie at the top is no answer."""

    weighted: list[Annotated[float, Field(ge=0)]]


#: ``majority`` (the study's rule), ``unanimity`` (an answer only when every agent gives it),
#: ``judge`` (a judge agent that reads the replies and answers for the society), or
#: ``{weighted: [w0, w1, ...]}``.
Decision = Literal["majority", "unanimity", "judge"] | Weighted


class Fixed(_Frozen):
    """One fixed answer, the same for every case (it must be an answer the task can give)."""

    fixed: str = Field(min_length=1)


#: What a confederate answers: the case's wrong answer (``Task.wrong_answer``), its right one,
#: or a fixed one.
ConfederateAnswer = Literal["wrong", "right"] | Fixed


class Confederates(_Frozen):
    """Scripted agents that make no model call (the Asch paradigm): each answers
    ``answer`` in every round, with a reply rendered from ``reply`` (or the task's own)."""

    count: int | list[int] = Field(
        1,
        description="How many; a list expands to one society per value (0: none, a control).",
    )
    answer: ConfederateAnswer = Field(
        "wrong", description="'wrong', 'right' or {fixed: answer}: the same in every round."
    )
    reply: str | None = Field(
        None,
        description="jinja2 over the case's fields, `answer`, `round` and `option` (the "
        "option's text, for multiple choice); default: the task's built-in reply.",
    )
