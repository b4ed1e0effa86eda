"""Agents and societies as the scheduler sees them: resolved, validated, immutable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from societies.config.models import ModelOverride, ModelSpec
from societies.society.topology import FULL, CommGraph
from societies.society.traits import Trait

if TYPE_CHECKING:
    from societies.config.models import BriefingSpec


@dataclass(frozen=True, slots=True)
class Agent:
    index: int
    name: str
    trait: Trait
    #: The agent's expertise; ``None`` lets the prompt set pick the task's or the case's role.
    role: str | None
    model: ModelSpec
    #: Private information rendered per case for this agent only.
    briefing: BriefingSpec | None = None


@dataclass(frozen=True, slots=True)
class Society:
    name: str
    agents: tuple[Agent, ...]
    #: Whose replies a debating agent sees.
    topology: CommGraph = FULL
    #: Share of agents that must hold the most common answer to end a branch; ``None``: never.
    stop: float | None = None

    @property
    def size(self) -> int:
        return len(self.agents)


_TRAIT_ABBREV = {"easy-going": "eg", "overconfident": "oc"}


def default_society_name(traits: list[str]) -> str:
    """``['easy-going', 'overconfident', 'overconfident']`` -> ``1eg-2oc`` (study societies)."""
    if all(t in _TRAIT_ABBREV for t in traits):
        counts = [(traits.count(t), a) for t, a in _TRAIT_ABBREV.items()]
        return "-".join(f"{n}{a}" for n, a in counts if n)
    return "-".join(traits)


def merge_model(base: ModelSpec, *overrides: ModelOverride | None) -> ModelSpec:
    """Layer overrides on ``base``: scalars replace, params and options merge key by key."""
    out = base
    for ov in overrides:
        if ov is None:
            continue
        out = ModelSpec(
            backend=ov.backend or out.backend,
            name=ov.name or out.name,
            params={**out.params, **ov.params},
            options={**out.options, **ov.options},
        )
    return out
