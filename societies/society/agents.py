"""Agents and societies as the scheduler sees them: resolved, validated, immutable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from societies.config.collab import ConfederateAnswer, Confederates, Fixed
from societies.config.models import ModelOverride, ModelSpec, SocietySpec
from societies.society.patterns import Pause
from societies.society.topology import FULL, CommGraph
from societies.society.traits import Trait

if TYPE_CHECKING:
    from societies.config.models import BriefingSpec


#: The agent index of a society's judge in the store (its calls are step ``judge``): apart
#: from the debaters' 0..n-1, so no reader mistakes it for one of them.
JUDGE_AGENT = -1
#: The ``backend`` a confederate is stored with in the agents table: it has no model.
CONFEDERATE_BACKEND = "confederate"


@dataclass(frozen=True, slots=True)
class Script:
    """What a confederate says in every round: its answer and the template of its reply."""

    answer: ConfederateAnswer
    #: jinja2 over the case's fields, ``answer``, ``round`` and ``option``; ``None``: the
    #: task's built-in reply (``Task.answer_reply``).
    reply: str | None = None

    @property
    def label(self) -> str:
        """``wrong``, ``right`` or ``fixed:<answer>``: the confederate's "model" in the store."""
        return f"fixed:{self.answer.fixed}" if isinstance(self.answer, Fixed) else self.answer


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
    #: A confederate's script: it makes no model call and answers as scripted.
    script: Script | None = None

    @property
    def confederate(self) -> bool:
        return self.script is not None


@dataclass(frozen=True, slots=True)
class Judge:
    """A society's judge: reads every agent's latest reply and answers for the society."""

    #: Its trait, role and model (index ``JUDGE_AGENT``).
    agent: Agent
    after: Literal["last", "every"] = "last"
    #: Inline template of its prompt; ``None``: the prompt set's ``judge.j2``.
    template: str | None = None


@dataclass(frozen=True, slots=True)
class Society:
    name: str
    agents: tuple[Agent, ...]
    #: Whose replies a debating agent sees.
    topology: CommGraph = FULL
    #: Share of agents that must hold the most common answer to end a branch; ``None``: never.
    stop: float | None = None
    judge: Judge | None = None

    @property
    def size(self) -> int:
        """Every agent that takes a turn, confederates included (what topologies index)."""
        return len(self.agents)

    @property
    def model_agents(self) -> tuple[Agent, ...]:
        """The agents that ask a model (not the confederates): they are scored and counted."""
        return tuple(a for a in self.agents if a.script is None)

    @property
    def callers(self) -> tuple[Agent, ...]:
        """Every agent that makes model calls: the model agents and the judge."""
        judge = () if self.judge is None else (self.judge.agent,)
        return (*self.model_agents, *judge)


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
    for, with that society's M, in the order the plan resolver builds them
    (``SocietySpec.expansions``: easy_going values x confederate counts x pause values)."""
    out: list[tuple[Mapping[str, Any], int | None]] = []
    for spec in specs:
        try:
            pauses = [e.pause for e in SocietySpec.model_validate(spec).expansions()]
        except ValidationError:  # a store written by another version: the older rule
            ks = spec.get("easy_going")
            pauses = [m for _ in (ks if isinstance(ks, list) else [ks])
                      for m in pause_sweep(spec.get("pause"))]  # fmt: skip
        out.extend((spec, m) for m in pauses)
    return out


def model_traits(spec: SocietySpec, k: int | None) -> list[str]:
    """The trait names of one expansion's model agents (``k``: its easy_going value): the
    study's shorthand ``agents: n`` is k easy-going agents, then n - k overconfident ones."""
    if isinstance(spec.agents, int):
        k = k or 0
        return ["easy-going"] * k + ["overconfident"] * (spec.agents - k)
    return [a if isinstance(a, str) else a.trait for a in spec.agents]


def expanded_names(
    spec: SocietySpec,
) -> list[tuple[str, int | None, int | None, int | None]]:
    """Each society ``spec`` stands for (``SocietySpec.expansions``, in order) as (name,
    easy_going value, confederate count, M). One rule for the resolver, which names the
    societies it plans, and analysis, which finds a stored society's spec by its name: the
    given name, with ``-<k>eg`` for a list of ``easy_going`` values and ``-<c>c`` for a list
    of confederate counts; unnamed, the study's default from the model agents' traits (and
    ``-<c>c``, its confederates, when it has any); then ``-pause<M>`` for a list of M."""
    groups: list[Confederates] = []
    if isinstance(spec.confederates, Confederates):
        groups = [spec.confederates]
    elif spec.confederates is not None:
        groups = list(spec.confederates)
    out = []
    for k, count, tokens in spec.expansions():
        if spec.name is None:
            name = default_society_name(model_traits(spec, k))
            if spec.confederates is not None:
                name = f"{name}-{sum(_group_size(g, count) for g in groups)}c"
        else:
            name = spec.name
            if isinstance(spec.easy_going, list):
                name = f"{name}-{k}eg"
            if count is not None:
                name = f"{name}-{count}c"
        out.append((pause_name(name, spec.pause, tokens), k, count, tokens))
    return out


def _group_size(group: Confederates, count: int | None) -> int:
    """How many confederates a group seats in the expansion taking ``count`` from a list."""
    if count is not None:
        return count
    return group.count if isinstance(group.count, int) else next(iter(group.count), 0)


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
