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
#: or ``{weighted: [w0, w1, ...]}``.
Decision = Literal["majority", "unanimity"] | Weighted
