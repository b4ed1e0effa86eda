"""The experiment file, as pydantic models.

Models are strict (``extra="forbid"``) so that a typo is an error rather than a silently ignored
setting, and frozen so that a loaded experiment cannot drift while it runs. The JSON Schema
printed by ``societies schema`` is generated from these classes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from societies.config.collab import Confederates, Decision, Stop, Topology

# Upper bounds that protect the machine (the size guard, scheduler/estimate.py, bounds the
# product): a number beyond these is a typo or an attack, not an experiment.
MAX_AGENTS = 1_000
MAX_ROUNDS = 64
MAX_REPEATS = 100_000
MAX_CONCURRENCY = 10_000
#: The most pause tokens before an answer: thousands before every answer is a typo, not a delay.
MAX_PAUSE = 4096

#: M, a number of pause tokens: an integer (strictly: 2.5, "2" or true are errors) from 0.
PauseTokens = Annotated[int, Field(ge=0, le=MAX_PAUSE, strict=True)]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(Frozen):
    """Which model answers, and how it is sampled."""

    backend: str = Field("sim", description="Backend name: sim, openai, replay, transformers, ...")
    name: str = Field("default", description="Model id as the backend knows it.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Generation parameters sent with every call (temperature, max_tokens, ...).",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Backend settings (base_url, api_key_env, simulation parameters, ...).",
    )


class ModelOverride(Frozen):
    """Per-agent model: any field given replaces the experiment's; params and options merge."""

    backend: str | None = None
    name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)


class TraitSpec(Frozen):
    """A user-defined trait: a character phrase for the built-in persona templates, or a
    persona template of its own (rendered in a sandbox with role and character)."""

    character: str | None = None
    persona: str | None = None


class PatternSpec(Frozen):
    """A user-defined thinking pattern, usable in strategies by name or by its one-letter code."""

    code: str = Field(min_length=1, max_length=1)
    sees_peers: bool = Field(
        False, description="Whether the turn shows the other agents' latest replies."
    )
    template: str | None = Field(
        None, description="Inline template; otherwise <prompt set>/<task>/<name>.j2."
    )


class BriefingSpec(Frozen):
    """Private information for one agent (the hidden-profile paradigm): a template rendered per
    case over the case's fields, shown to this agent only."""

    template: str = Field(min_length=1, description="jinja2 over the case's fields.")
    placement: Literal["system", "turn"] = Field(
        "system",
        description="'system': appended to the agent's persona; 'turn': a user turn of its own "
        "before the first question.",
    )
    answer: str | None = Field(
        None,
        description="The answer the briefing supports (a template over the case's fields); "
        "the simulated model answers it with probability briefing_trust. Never sent to a model.",
    )


class AgentSpec(Frozen):
    trait: str
    role: str | None = Field(None, description="Expertise; defaults to the task's expert role.")
    name: str | None = None
    model: ModelOverride | None = None
    briefing: BriefingSpec | None = Field(None, description="Private to this agent.")


class JudgeSpec(Frozen):
    """The judge of ``decision: judge``: it does not debate; it reads every agent's latest
    reply and gives the society's answer."""

    name: str = "judge"
    trait: str | None = Field(None, description="A trait whose character the judge holds.")
    role: str = Field("an impartial judge", description="The judge's expertise.")
    model: ModelOverride | None = Field(None, description="Default: the society's model.")
    after: Literal["last", "every"] = Field(
        "last",
        description="'last': after the last round (or the round a stopping rule ends a "
        "branch at); 'every': after every round, round 0 included.",
    )
    template: str | None = Field(
        None,
        description="Inline jinja2 for the judge's prompt; default: <prompt set>/judge.j2.",
    )


class Expansion(NamedTuple):
    """One society a spec stands for: its ``easy_going`` value, confederate count and M."""

    easy_going: int | None
    confederates: int | None
    pause: int | None


class SocietySpec(Frozen):
    """Either an explicit list of agents (or trait names), or the study's shorthand:
    ``agents: 3`` with ``easy_going: k`` (easy-going agents first, then overconfident).
    ``easy_going`` may be a list, which expands to one society per value."""

    name: str | None = None
    #: At most MAX_AGENTS (a number is checked when the society is resolved, where the
    #: message can say so rather than pydantic's union errors).
    agents: Annotated[list[AgentSpec | str], Field(max_length=MAX_AGENTS)] | int
    easy_going: int | list[int] | None = None
    briefing: BriefingSpec | None = Field(
        None, description="Given to each agent of the society that has no briefing of its own."
    )
    model: ModelOverride | None = Field(None, description="Model for every agent of the society.")
    topology: Topology = Field(
        "full",
        description="Whose replies a debating agent sees: full, ring, none, {star: centre}, "
        "{neighbours: [[...], ...]}, or {rounds: [...]} for one per round.",
    )
    stop: Stop | None = Field(
        None,
        description="End a branch once the agents agree: 'unanimous', or the share of agents "
        "holding the most common answer (in (0, 1]).",
    )
    decision: Decision = Field(
        "majority",
        description="The society's answer: majority (the study's), unanimity, judge, or "
        "{weighted: [one weight per agent]}; the majority is always reported beside it.",
    )
    judge: JudgeSpec | None = Field(None, description="The judge of `decision: judge`.")
    confederates: Confederates | list[Confederates] | None = Field(
        None,
        description="Scripted agents after the model agents: one group, or a list of groups "
        "(each with a fixed count).",
    )

    pause: PauseTokens | list[PauseTokens] | None = Field(
        None,
        description="The pause pattern: M pause tokens before every answer of every agent "
        "(the transformers backend appends M <pause> tokens after the prompt; other backends "
        "get M filler periods at the end of the turn's message). A list expands to one "
        "society per value, named <name>-pause<M>.",
    )

    def expansions(self) -> list[Expansion]:
        """The societies this spec stands for, in order: per ``easy_going`` value (``None``
        without a list), per confederate count of a ``count`` list (``None`` without one), per
        ``pause`` value (``None``: no pause). The resolver and analysis (which maps a run's
        societies back to their specs) share it."""
        ks: list[int | None] = (
            list(self.easy_going) if isinstance(self.easy_going, list) else [self.easy_going]
        )
        counts: list[int | None] = [None]
        group = self.confederates
        if isinstance(group, Confederates) and isinstance(group.count, list):
            counts = list(group.count)
        pauses: list[int | None] = (
            list(self.pause) if isinstance(self.pause, list) else [self.pause]
        )
        return [Expansion(k, c, m) for k in ks for c in counts for m in pauses]


class BudgetMatch(Frozen):
    """k chosen so that the baseline costs, per case, what one strategy of a society costs."""

    match: str = Field(description="The society whose token cost per case the k samples match.")
    run: str | None = Field(
        None,
        description="A stored run holding that society (relative to the experiment file): k "
        "from its measured tokens; default: from this experiment's dry-run token estimate.",
    )


class BaselineSpec(Frozen):
    """A society without a debate, run beside the experiment's societies on the same cases:
    k agents answer once, independently, and their majority vote is the answer (k = 1: a
    single agent; k > 1: self-consistency)."""

    name: str | None = Field(
        None, description="Default: 'single' (k = 1), 'sc-<k>', or 'sc-<society>' (matched)."
    )
    k: Annotated[int, Field(ge=1, le=MAX_AGENTS)] | BudgetMatch = Field(
        1, description="Independent samples: a number, or {match: <society>} for equal budget."
    )
    trait: str = Field("overconfident", description="The trait every sample's agent holds.")
    role: str | None = None
    model: ModelOverride | None = Field(None, description="Model for the baseline's agents.")


class TaskSpec(Frozen):
    name: str = Field(description="A registered task (mmlu, ...) or 'package.module:Class'.")
    data: str | list[str] = Field(
        description="Data file, relative to the experiment file; a list gives candidates, the "
        "first that exists is used (e.g. the study's files, then the project's own)."
    )
    cases: Literal["all"] | int | list[str] = Field(
        "all", description="'all', the first N, or a list of case ids."
    )
    extraction: Literal["robust", "paper"] = "robust"
    options: dict[str, Any] = Field(default_factory=dict)


class StrategySpec(Frozen):
    """A named strategy: per round a pattern name, or a list with one pattern per agent."""

    name: str | None = None
    rounds: list[str | list[str]]
    random_reflector: bool = Field(
        False,
        description="In each all-debate round one agent, drawn at random per case (seeded), "
        "reflects while the others debate and see only each other.",
    )


class Price(Frozen):
    """US dollars per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached: float | None = Field(None, ge=0, description="Cached input; default: input price.")
    batch_input: float | None = Field(
        None, ge=0, description="Input through the Batch API; default: the input price."
    )
    batch_output: float | None = Field(
        None, ge=0, description="Output through the Batch API; default: the output price."
    )


class Scale(Frozen):
    """A rating scale: whole numbers from ``min`` to ``max``."""

    min: int
    max: int
    anchors: dict[int, str] = Field(
        default_factory=dict,
        description="Labels of scale points, e.g. {1: not at all, 7: completely}.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        if self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        outside = [k for k in self.anchors if not self.min <= k <= self.max]
        if outside:
            raise ValueError(f"anchor {outside[0]} is outside the scale {self.min}-{self.max}")
        return self


class QuestionnaireItemSpec(Frozen):
    """One rating item of the manipulation check."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    text: str = Field(min_length=1, description="The question, as the agent reads it.")
    scale: Scale
    measures: Literal["confidence", "openness"] | None = Field(
        None,
        description="What the item measures, read only by the simulated model (confidence: "
        "high for a trait that rarely conforms; openness: high for one that often does).",
    )


def _some_items(items: list[QuestionnaireItemSpec]) -> list[QuestionnaireItemSpec]:
    if not items:
        raise ValueError("list at least one item, or use the built-in set: items: standard")
    ids = [i.id for i in items]
    twice = next((i for i in ids if ids.count(i) > 1), None)
    if twice is not None:
        raise ValueError(f"two items have the id '{twice}'")
    return items


class QuestionnaireSpec(Frozen):
    """Rating items asked of every agent before round 0 and after its last round, on a branch
    of its conversation that the debate never sees (the manipulation check)."""

    items: (
        Annotated[list[QuestionnaireItemSpec], AfterValidator(_some_items)] | Literal["standard"]
    ) = Field(
        "standard",
        description="'standard' (built in: confidence and openness to persuasion, 1-7), or "
        "a list of items, each with its scale.",
    )


class Experiment(Frozen):
    """One experiment: every society x strategy x case x repeat, on one task (or on each of
    several tasks, each into its own run directory)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    seed: int = 0
    repeats: int = Field(1, ge=1, le=MAX_REPEATS)
    output: str | None = Field(
        None, description="Run directory, relative to the experiment file; default runs/<name>."
    )
    concurrency: int = Field(
        32, ge=1, le=MAX_CONCURRENCY, description="Model calls in flight at once."
    )
    task: TaskSpec | None = None
    tasks: list[TaskSpec] | None = Field(
        None, description="Several tasks: one run per task, in <output>/<task name>."
    )
    prompts: str = Field(
        "default", description="Prompt set: 'default', 'machinesom', or a directory of templates."
    )
    model: ModelSpec = Field(default_factory=lambda: ModelSpec())
    traits: dict[str, TraitSpec] = Field(default_factory=dict)
    patterns: dict[str, PatternSpec] = Field(default_factory=dict)
    societies: list[SocietySpec] = Field(min_length=1)
    baselines: list[BaselineSpec] = Field(
        default_factory=list,
        description="Single-agent and self-consistency baselines, scored beside the societies.",
    )
    rounds: int | None = Field(
        None, ge=0, le=MAX_ROUNDS, description="Rounds after the first answer."
    )
    strategies: Literal["all"] | list[str | StrategySpec] = Field(
        "all",
        description="'all' (every debate/reflection combination of `rounds` rounds), or strings "
        "like '010' (0 = debate, 1 = reflection; '(010)' gives one pattern per agent for a "
        "round), or named strategies.",
    )
    prices: dict[str, Price] = Field(
        default_factory=dict,
        description="Per model id (or id prefix), added to the built-in price table.",
    )
    questionnaire: Literal["standard"] | QuestionnaireSpec | None = Field(
        None,
        description="Manipulation check: rating items every agent answers before round 0 and "
        "after its last round, apart from the debate ('standard': the built-in set).",
    )

    @model_validator(mode="after")
    def _one_of_task_or_tasks(self) -> Experiment:
        if (self.task is None) == (self.tasks is None):
            raise ValueError("give either `task` or `tasks`")
        if self.tasks is not None and not self.tasks:
            raise ValueError("`tasks` lists no task")
        return self
