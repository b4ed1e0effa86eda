"""From an experiment file to a validated plan the scheduler can run.

Loading happens in three passes, each reporting the first problem as one line with file, line
and field path: YAML (syntax) and pydantic (shape and types), both in the schema layer
(``societies.config.validate``), then resolution here (names that must exist: traits,
patterns, tasks, backends, data files, templates).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from societies.backends.base import get_backend_class
from societies.config.collab import Confederates, Weighted
from societies.config.models import (
    MAX_AGENTS,
    Experiment,
    JudgeSpec,
    ModelOverride,
    ModelSpec,
    SocietySpec,
    TaskSpec,
)
from societies.config.validate import Locator, pydantic_error, read_experiment
from societies.config.yaml_lines import PathKey, format_path
from societies.errors import ConfigError, DataError
from societies.plan.baselines import add_baselines
from societies.plan.plan import Overrides, Plan
from societies.society.agents import (
    CONFEDERATE_BACKEND,
    JUDGE_AGENT,
    Agent,
    Judge,
    Script,
    Society,
    expanded_names,
    merge_model,
    model_traits,
    pause_sweep,
)
from societies.society.patterns import BUILTIN_PATTERNS, PAUSE_PARAM, Pattern, Pause
from societies.society.prompts import PromptSet
from societies.society.questionnaire import PRE_NODE, Item, resolve_items
from societies.society.scripted import ScriptError, check_script
from societies.society.strategy import (
    Strategy,
    StrategyError,
    all_combinations,
    make_strategy,
    parse_strategy_string,
    plan_from_names,
)
from societies.society.topology import TopologyError, resolve_topology
from societies.society.traits import BUILTIN_TRAITS, Trait
from societies.tasks.agreement import stop_threshold
from societies.tasks.base import Case, Task, get_task_class

#: ``strategies: all`` makes 2^rounds strategies: 4,096 at 12 rounds.
MAX_ALL_ROUNDS = 12


def load_plans(file: Path, overrides: Overrides | None = None) -> list[Plan]:
    """Every run an experiment file asks for: one, or one per task with ``tasks:``."""
    overrides = overrides or Overrides()
    experiment, loc = read_experiment(file)
    experiment = _apply_overrides(experiment, overrides, loc)
    if experiment.task is not None:
        return [_resolve(experiment, file, loc, overrides, ("task",))]
    assert experiment.tasks is not None
    plans = []
    names = [t.name.rpartition(":")[2] for t in experiment.tasks]
    for i, spec in enumerate(experiment.tasks):
        name = names[i] if names.count(names[i]) == 1 else f"{names[i]}-{i}"
        single = experiment.model_copy(
            update={"task": spec, "tasks": None, "name": f"{experiment.name}-{name}"}
        )
        sub_out = dataclasses.replace(overrides, out=_output(experiment, file, overrides) / name)
        plans.append(_resolve(single, file, loc, sub_out, ("tasks", i)))
    return plans


def load_plan(file: Path, overrides: Overrides | None = None) -> Plan:
    """The run of a single-task experiment file."""
    plans = load_plans(file, overrides)
    if len(plans) != 1:
        raise ConfigError("this needs an experiment with a single `task`", file=str(file))
    return plans[0]


def resolve_stored(experiment: Experiment, source: Path, out: Path) -> Plan:
    """The plan of an experiment as a run directory stored it (overrides already applied),
    its relative paths read from the folder of the file it came from."""
    return _resolve(experiment, source, Locator(source, {}), Overrides(out=out), ("task",))


def _output(experiment: Experiment, file: Path, ov: Overrides) -> Path:
    if ov.out is not None:
        return ov.out
    if experiment.output is not None:
        return Path(os.path.normpath(file.parent / experiment.output))
    return Path("runs") / experiment.name


def _apply_overrides(experiment: Experiment, ov: Overrides, loc: Locator) -> Experiment:
    update: dict[str, Any] = {}
    if ov.concurrency is not None:
        update["concurrency"] = ov.concurrency
    if ov.model is not None or ov.model_options:
        model = experiment.model
        if ov.model is not None:
            backend, sep, name = ov.model.partition(":")
            if not sep or not backend or not name:
                raise ConfigError(f"--model: expected BACKEND:MODEL, got '{ov.model}'")
            # The override replaces every agent's backend and model; options for the old
            # backend would not fit the new one, so they are dropped too.
            model = ModelSpec(backend=backend, name=name, params=dict(model.params))
            update["societies"] = [_strip_models(s) for s in experiment.societies]
            update["baselines"] = [
                b.model_copy(update={"model": _strip(b.model)}) for b in experiment.baselines
            ]
        model = model.model_copy(update={"options": {**model.options, **ov.model_options}})
        update["model"] = model
    return experiment.model_copy(update=update) if update else experiment


def _strip(m: ModelOverride | None) -> ModelOverride | None:
    """An override without backend, model or options (``--model`` replaces those)."""
    return None if m is None else ModelOverride(params=dict(m.params))


def _strip_models(society: SocietySpec) -> SocietySpec:
    strip = _strip
    agents = society.agents
    if isinstance(agents, list):
        agents = [
            a if isinstance(a, str) else a.model_copy(update={"model": strip(a.model)})
            for a in agents
        ]
    judge = society.judge
    if judge is not None:
        judge = judge.model_copy(update={"model": strip(judge.model)})
    return society.model_copy(
        update={"agents": agents, "model": strip(society.model), "judge": judge}
    )


def _resolve(
    experiment: Experiment, file: Path, loc: Locator, ov: Overrides, task_path: PathKey
) -> Plan:
    base_dir = file.parent
    traits = dict(BUILTIN_TRAITS)
    for name, spec in experiment.traits.items():
        if spec.character is None and spec.persona is None:
            raise loc.error(("traits", name), "give the trait a character phrase or a persona")
        traits[name] = Trait(name, spec.character or "", spec.persona)
    patterns = dict(BUILTIN_PATTERNS)
    for name, pspec in experiment.patterns.items():
        clash = [p.name for p in patterns.values() if p.code == pspec.code]
        if clash:
            raise loc.error(
                ("patterns", name, "code"), f"code '{pspec.code}' is already used by {clash[0]}"
            )
        patterns[name] = Pattern(name, pspec.code, pspec.sees_peers, pspec.template)

    task_spec = experiment.task
    assert task_spec is not None
    try:
        task_cls = get_task_class(task_spec.name)
    except KeyError as exc:
        raise loc.error((*task_path, "name"), str(exc.args[0])) from None
    options = dict(task_spec.options)
    if ov.skip_invalid:
        options["skip_invalid"] = True
    try:
        task = task_cls(task_spec.extraction, options)
    except ConfigError as exc:  # a task validating its own options
        parts = exc.path.split(".") if exc.path else ["task", "options"]
        raise loc.error((*task_path, *parts[1:]), exc.message) from None
    data_path = _data_file(task_spec, base_dir, loc, task_path, ov.data_dir)
    cases = _load_cases(task_spec, task, data_path, loc, ov.limit, task_path)

    _check_backend(experiment.model, ("model",), loc)
    societies = _resolve_societies(experiment, traits, loc, base_dir)
    strategies, rounds = _resolve_strategies(experiment, societies, patterns, loc)
    used = {p for ss in strategies.values() for s in ss for plan in s.rounds for p in plan}
    prompts = PromptSet(experiment.prompts, base_dir)
    _check_briefings(experiment, prompts, task, cases, loc)
    _check_confederates(experiment, societies, prompts, task, cases, loc)
    _check_judges(experiment, societies, prompts, task, cases, loc)
    try:
        prompts.check(task, [patterns[p] for p in sorted(used)])
        if cases:
            prompts.trial_render(
                task,
                cases[0],
                [a for s in societies for a in s.model_agents],
                [patterns[p] for p in sorted(used)],
            )
    except ConfigError as exc:
        raise loc.error(("prompts",), exc.message) from None
    questionnaire = _questionnaire(experiment, patterns, prompts, loc)

    plan = Plan(
        experiment=experiment,
        source=file,
        output=_output(experiment, file, ov),
        data=data_path,
        task=task,
        cases=cases,
        societies=societies,
        strategies=strategies,
        patterns=patterns,
        prompts=prompts,
        rounds=rounds,
        questionnaire=questionnaire,
    )

    def model_for(override: ModelOverride | None, path: PathKey) -> ModelSpec:
        model = _paths_from(base_dir, merge_model(experiment.model, override))
        if override is not None:
            _check_backend(model, path, loc)
        return model

    return add_baselines(plan, traits, loc, model_for)


def _questionnaire(
    experiment: Experiment, patterns: dict[str, Pattern], prompts: PromptSet, loc: Locator
) -> tuple[Item, ...]:
    """The questionnaire's items, its prompt rendered once (a template that cannot render
    fails now), and the node its pre-debate calls are keyed on kept apart from node codes."""
    items = resolve_items(experiment.questionnaire)
    if not items:
        return items
    taken = next((n for n, p in patterns.items() if p.code == PRE_NODE), None)
    if taken is not None:
        raise loc.error(
            ("patterns", taken, "code"),
            f"'{PRE_NODE}' is reserved for the questionnaire asked before round 0",
        )
    try:
        for timing in ("pre", "post"):
            prompts.questionnaire(items, timing)
    except ConfigError as exc:
        raise loc.error(("questionnaire",), exc.message) from None
    return items


def _data_file(
    spec: TaskSpec, base_dir: Path, loc: Locator, task_path: PathKey, data_dir: Path | None
) -> Path:
    if data_dir is not None:
        path = data_dir / f"{spec.name}.jsonl"
        if not path.is_file():
            raise ConfigError(f"--data: {path} not found (a file per task: <task>.jsonl)")
        return path
    candidates = [spec.data] if isinstance(spec.data, str) else spec.data
    for candidate in candidates:
        path = Path(os.path.normpath(base_dir / candidate))
        if path.exists():  # a directory is a layout too (the MATH release)
            return path
    tried = ", ".join(str(base_dir / c) for c in candidates)
    raise loc.error((*task_path, "data"), f"data file not found: {tried}")


def _load_cases(
    spec: TaskSpec,
    task: Task,
    data_path: Path,
    loc: Locator,
    limit: int | None,
    task_path: PathKey,
) -> list[Case]:
    try:
        cases = task.load(data_path)
    except DataError as exc:
        raise DataError(f"{exc} ({format_path((*task_path, 'data'))} in {loc.file})") from None
    selection = spec.cases
    if isinstance(selection, int):
        if selection < 1:
            raise loc.error((*task_path, "cases"), "must be at least 1")
        cases = cases[:selection]
    elif isinstance(selection, list):
        by_id = {c.id: c for c in cases}
        missing = [i for i in selection if i not in by_id]
        if missing:
            raise loc.error((*task_path, "cases"), f"unknown case ids: {', '.join(missing[:5])}")
        cases = [by_id[i] for i in selection]
    if limit is not None:
        cases = cases[:limit]
    return cases


def _check_backend(spec: ModelSpec, path: PathKey, loc: Locator) -> None:
    try:
        cls = get_backend_class(spec.backend)
    except KeyError as exc:
        raise loc.error((*path, "backend"), str(exc.args[0])) from None
    try:
        cls.Options.model_validate(spec.options)
    except ValidationError as exc:
        raise pydantic_error(exc, spec.options, loc, prefix=(*path, "options")) from None


def _paths_from(base_dir: Path, spec: ModelSpec) -> ModelSpec:
    """One rule for every path in an experiment: relative to the experiment file (data,
    output, a prompt set's directory, and here a replay's ``source``)."""
    source = spec.options.get("source")
    if spec.backend != "replay" or not isinstance(source, str) or Path(source).is_absolute():
        return spec
    options = {**spec.options, "source": os.path.normpath(base_dir / source)}
    return spec.model_copy(update={"options": options})


def _resolve_societies(
    experiment: Experiment, traits: dict[str, Trait], loc: Locator, base_dir: Path
) -> list[Society]:
    societies: list[Society] = []
    known = ", ".join(sorted(traits))
    for s_index, spec in enumerate(experiment.societies):
        base: PathKey = ("societies", s_index)
        groups = _confederate_groups(spec, base, loc)
        sweep = pause_sweep(spec.pause)
        if not sweep:
            raise loc.error((*base, "pause"), "give at least one M (a number of pause tokens)")
        twice = sorted({m for m in sweep if sweep.count(m) > 1}, key=str)
        if twice:
            raise loc.error((*base, "pause"), f"lists M = {twice[0]} twice")
        # Checked before the names are made: a name is built from the agents' traits.
        checked = {k: _agent_specs(spec, k, base, loc) for k, _, _ in spec.expansions()}
        for name, k, count, tokens in expanded_names(spec):
            agent_specs = checked[k]
            agents_out: list[Agent] = []
            for a_index, a in enumerate(agent_specs):
                a_path: PathKey = (*base, "agents", a_index)
                trait_name = a if isinstance(a, str) else a.trait
                if trait_name not in traits:
                    where = a_path if isinstance(a, str) else (*a_path, "trait")
                    if isinstance(spec.agents, int):
                        where = (*base, "agents")
                    raise loc.error(where, f"unknown trait '{trait_name}' (known: {known})")
                override = None if isinstance(a, str) else a.model
                model = _paths_from(base_dir, merge_model(experiment.model, spec.model, override))
                if override is not None or spec.model is not None:
                    _check_backend(model, (*a_path, "model"), loc)
                model, pause = _paused(model, tokens)
                agents_out.append(
                    Agent(
                        index=a_index,
                        name=(None if isinstance(a, str) else a.name) or f"agent{a_index}",
                        trait=traits[trait_name],
                        role=None if isinstance(a, str) else a.role,
                        model=model,
                        briefing=(None if isinstance(a, str) else a.briefing) or spec.briefing,
                        pause=pause,
                    )
                )
            for group, n in groups:
                for _ in range(n if count is None else count):
                    i = len(agents_out)
                    script = Script(group.answer, group.reply)
                    agents_out.append(
                        Agent(i, f"confederate{i}", CONFEDERATE_TRAIT, None,
                              ModelSpec(backend=CONFEDERATE_BACKEND, name=script.label),
                              script=script)
                    )  # fmt: skip
            if any(s.name == name for s in societies):
                raise loc.error(
                    (*base, "name"), f"two societies are named '{name}'; name them apart"
                )
            judge = _judge(experiment, spec, traits, base, loc, base_dir)
            societies.append(_collab(spec, name, tuple(agents_out), judge, base, loc))
    return societies


def _paused(model: ModelSpec, tokens: int | None) -> tuple[ModelSpec, Pause | None]:
    """An agent's model and pause for M pause tokens: a backend with a pause token of its own
    receives M as a generation parameter (so it is stored and hashed with the params), any
    other the filler in its messages (see ``Pause``). M = 0 asks exactly what no pause asks."""
    if not tokens:
        return model, None
    if get_backend_class(model.backend).native_pause:
        params = {**model.params, PAUSE_PARAM: tokens}
        return model.model_copy(update={"params": params}), Pause(tokens, filler=False)
    return model, Pause(tokens, filler=True)


#: The trait a confederate is stored with (it has no persona: it never asks a model).
CONFEDERATE_TRAIT = Trait("confederate", "repeat a scripted answer")
#: The judge's trait when the file names none: no disposition beyond its role.
JUDGE_TRAIT = Trait("judge", "")


def _agent_specs(spec: SocietySpec, k: int | None, base: PathKey, loc: Locator) -> list[Any]:
    """The model agents of one expansion of ``spec`` (``k``: its easy_going value)."""
    if isinstance(spec.agents, int):
        if spec.agents < 1:
            raise loc.error((*base, "agents"), "a society needs at least one agent")
        if spec.agents > MAX_AGENTS:
            raise loc.error(
                (*base, "agents"),
                f"at most {MAX_AGENTS:,} agents in a society, got {spec.agents:,}"[:200],
            )
        k = k or 0
        if not 0 <= k <= spec.agents:
            raise loc.error((*base, "easy_going"), f"must be between 0 and {spec.agents}, got {k}")
        return model_traits(spec, k)
    if spec.easy_going is not None:
        raise loc.error(
            (*base, "easy_going"), "easy_going goes with a number of agents, not a list"
        )
    if not spec.agents:
        raise loc.error((*base, "agents"), "a society needs at least one agent")
    return list(spec.agents)


def _confederate_groups(
    spec: SocietySpec, base: PathKey, loc: Locator
) -> list[tuple[Confederates, int]]:
    """The society's confederate groups with their counts (a ``count`` list is expanded by
    ``SocietySpec.expansions``, each society taking one value)."""
    raw = spec.confederates
    if raw is None:
        return []
    path: PathKey = (*base, "confederates")
    items: list[tuple[PathKey, Confederates]]
    if isinstance(raw, Confederates):
        items = [(path, raw)]
    else:
        items = [((*path, i), g) for i, g in enumerate(raw)]
    out = []
    for where, group in items:
        counts = group.count if isinstance(group.count, list) else [group.count]
        if isinstance(group.count, list) and len(items) > 1:
            raise loc.error((*where, "count"), "a list of counts goes with a single group")
        if not counts:
            raise loc.error((*where, "count"), "give at least one count")
        for c in counts:
            if not 0 <= c <= MAX_AGENTS:
                raise loc.error((*where, "count"), f"must be between 0 and {MAX_AGENTS}, got {c}")
        out.append((group, counts[0]))
    return out


def _judge(
    experiment: Experiment,
    spec: SocietySpec,
    traits: dict[str, Trait],
    base: PathKey,
    loc: Locator,
    base_dir: Path,
) -> Judge | None:
    """The society's judge: ``decision: judge`` with the ``judge:`` settings (or defaults); a
    ``judge:`` under any other decision is refused (it would be paid for and never used)."""
    if spec.decision != "judge":
        if spec.judge is not None:
            protocol = spec.decision if isinstance(spec.decision, str) else "weighted"
            raise loc.error(
                (*base, "judge"),
                f"a judge needs `decision: judge` (this society decides by {protocol})",
            )
        return None
    js = spec.judge or JudgeSpec()
    path: PathKey = (*base, "judge")
    trait = JUDGE_TRAIT
    if js.trait is not None:
        if js.trait not in traits:
            known = ", ".join(sorted(traits))
            raise loc.error((*path, "trait"), f"unknown trait '{js.trait}' (known: {known})")
        trait = traits[js.trait]
    model = _paths_from(base_dir, merge_model(experiment.model, spec.model, js.model))
    if js.model is not None or spec.model is not None:
        _check_backend(model, (*path, "model"), loc)
    agent = Agent(JUDGE_AGENT, js.name, trait, js.role, model)
    return Judge(agent, js.after, js.template)


def _collab(
    spec: SocietySpec,
    name: str,
    agents: tuple[Agent, ...],
    judge: Judge | None,
    base: PathKey,
    loc: Locator,
) -> Society:
    """The society with its topology, stopping rule and judge; checks the decision's weights
    (one per model agent: confederates do not vote)."""
    n_model = sum(1 for a in agents if a.script is None)
    if not n_model:
        raise loc.error((*base, "agents"), "a society needs at least one model agent")
    try:
        topology = resolve_topology(spec.topology, len(agents))
    except TopologyError as exc:
        raise loc.error((*base, "topology", *exc.path), exc.message) from None
    if isinstance(spec.decision, Weighted) and len(spec.decision.weighted) != n_model:
        raise loc.error(
            (*base, "decision", "weighted"),
            f"gives {len(spec.decision.weighted)} weights, the society has {n_model} agents",
        )
    return Society(name, agents, topology, stop_threshold(spec.stop), judge)


def _resolve_strategies(
    experiment: Experiment,
    societies: Sequence[Society],
    patterns: dict[str, Pattern],
    loc: Locator,
) -> tuple[dict[str, list[Strategy]], int]:
    specs: list[tuple[PathKey, Any]]
    if experiment.strategies == "all":
        if experiment.rounds is None:
            raise loc.error(("rounds",), "strategies: all needs the number of rounds")
        if experiment.rounds > MAX_ALL_ROUNDS:
            raise loc.error(
                ("rounds",),
                f"strategies: all with {experiment.rounds} rounds is 2^{experiment.rounds} "
                f"strategies; at most {MAX_ALL_ROUNDS} rounds (or list the strategies)",
            )
        specs = [(("strategies",), s) for s in all_combinations(experiment.rounds, patterns)]
    else:
        specs = [(("strategies", i), s) for i, s in enumerate(experiment.strategies)]
        if not specs:
            raise loc.error(("strategies",), "give at least one strategy")
    rounds = experiment.rounds
    out: dict[str, list[Strategy]] = {}
    for society in societies:
        resolved: list[Strategy] = []
        for path, spec in specs:
            try:
                if isinstance(spec, str):
                    plan = parse_strategy_string(spec, patterns, society.size)
                    strategy = make_strategy(None, plan, patterns)
                else:
                    plan = plan_from_names(spec.rounds, patterns, society.size)
                    strategy = make_strategy(
                        spec.name, plan, patterns, random_reflector=spec.random_reflector
                    )
            except StrategyError as exc:
                raise loc.error(path, f"{exc} (society {society.name})") from None
            if rounds is None:
                rounds = len(strategy.rounds)
            if len(strategy.rounds) != rounds:
                raise loc.error(
                    path,
                    f"strategy '{strategy.code}' has {len(strategy.rounds)} rounds, "
                    f"expected {rounds}",
                )
            if any(s.name == strategy.name for s in resolved):
                raise loc.error(path, f"strategy '{strategy.name}' is listed twice")
            resolved.append(strategy)
        out[society.name] = resolved
    return out, rounds or 0


def _check_briefings(
    experiment: Experiment, prompts: PromptSet, task: Task, cases: Sequence[Case], loc: Locator
) -> None:
    """Render every briefing for every case before anything is written: a variable a case
    lacks is the file's error, found now rather than in the middle of a run."""
    for path, source in _briefing_templates(experiment):
        for case in cases:
            try:
                prompts.render_case(source, task, case)
            except ConfigError as exc:
                raise loc.error(path, f"case {case.id}: {exc.message}") from None


def _check_confederates(
    experiment: Experiment,
    societies: Sequence[Society],
    prompts: PromptSet,
    task: Task,
    cases: Sequence[Case],
    loc: Locator,
) -> None:
    """Every confederate's answer and reply on every case, before anything is written: an
    answer the task cannot produce, or a reply it does not read as that answer, is one line
    naming the group's field."""
    spec_of = _society_specs(experiment, societies)
    done: set[tuple[int, int]] = set()
    for society in societies:
        s_index = spec_of[society.name]
        raw = experiment.societies[s_index].confederates
        if raw is None:
            continue
        groups = raw if isinstance(raw, list) else [raw]
        for g, group in enumerate(groups):
            if (s_index, g) in done:
                continue
            done.add((s_index, g))
            path: PathKey = ("societies", s_index, "confederates")
            path = (*path, g) if isinstance(raw, list) else path
            script = Script(group.answer, group.reply)
            for case in cases:
                try:
                    check_script(prompts, script, task, case)
                except ScriptError as exc:
                    raise loc.error((*path, exc.field), exc.message) from None


def _check_judges(
    experiment: Experiment,
    societies: Sequence[Society],
    prompts: PromptSet,
    task: Task,
    cases: Sequence[Case],
    loc: Locator,
) -> None:
    """The judge's prompt renders for every case: a failure of the file's own template is
    one line naming it, a prompt set without ``judge.j2`` names ``prompts``."""
    spec_of = _society_specs(experiment, societies)
    for society in societies:
        judge = society.judge
        if judge is None:
            continue
        where: PathKey = ("prompts",)
        if judge.template is not None:
            where = ("societies", spec_of[society.name], "judge", "template")
        for case in cases if judge.template is not None else cases[:1]:
            try:
                prompts.judge_prompt(judge, task, case, ("(a reply)",), 1)
            except ConfigError as exc:
                raise loc.error(where, f"case {case.id}: {exc.message}") from None


def _society_specs(experiment: Experiment, societies: Sequence[Society]) -> dict[str, int]:
    """Per resolved society: the index of the spec it expands from (in order)."""
    order = [i for i, spec in enumerate(experiment.societies) for _ in spec.expansions()]
    return {s.name: i for s, i in zip(societies, order, strict=True)}


def _briefing_templates(experiment: Experiment) -> Iterator[tuple[PathKey, str]]:
    """Each briefing template of the file (its text and its answer) with its field path."""
    for s_index, spec in enumerate(experiment.societies):
        society_path: PathKey = ("societies", s_index, "briefing")
        briefings = [(society_path, spec.briefing)]
        if isinstance(spec.agents, list):
            briefings += [
                (("societies", s_index, "agents", a_index, "briefing"), a.briefing)
                for a_index, a in enumerate(spec.agents)
                if not isinstance(a, str)
            ]
        for path, briefing in briefings:
            if briefing is None:
                continue
            yield (*path, "template"), briefing.template
            if briefing.answer is not None:
                yield (*path, "answer"), briefing.answer
