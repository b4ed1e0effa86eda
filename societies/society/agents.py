"""Agents and societies as the scheduler sees them: resolved, validated, immutable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from societies.config.models import ModelOverride, ModelSpec
from societies.society.patterns import Pause
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
    #: M pause tokens before each of its replies (``None``: no pause, the study's requests).
    pause: Pause | None = None


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


def pause_sweep(pause: int | list[int] | None) -> list[int | None]:
    """A society spec's pause values, one per society it expands to (``None``: no pause)."""
    return list(pause) if isinstance(pause, list) else [pause]


def pause_name(name: str, pause: int | list[int] | None, tokens: int | None) -> str:
    """A society's name within a sweep over M: ``<name>-pause<M>`` when ``pause`` is a list."""
    return f"{name}-pause{tokens}" if isinstance(pause, list) else name


def expand_specs(specs: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], int | None]]:
    """Each society spec of an experiment (as stored with a run) once per society it stands
    for, with that society's M, in the order the plan resolver builds them: one per
    ``easy_going`` value, each of them once per ``pause`` value."""
    out: list[tuple[Mapping[str, Any], int | None]] = []
    for spec in specs:
        ks = spec.get("easy_going")
        for _ in ks if isinstance(ks, list) else [ks]:
            out.extend((spec, m) for m in pause_sweep(spec.get("pause")))
    return out


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
