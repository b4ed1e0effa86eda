"""``baselines:``: single-agent and self-consistency societies added to a resolved plan.

Each baseline becomes a society of k agents with one strategy of no rounds
(``societies.society.baselines``). ``k: {match: <society>}`` picks k so that the baseline's
tokens per case match one strategy of that society: from a stored run when ``run`` names one
(measured tokens, ``load_run(...).equal_budget``), else from this plan's dry-run estimate on
its first case. Either way k is fixed by the file and the data, so resuming a run gives the
same k.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from societies.config.models import BudgetMatch, ModelOverride, ModelSpec
from societies.config.validate import Locator
from societies.config.yaml_lines import PathKey
from societies.errors import SocietiesError
from societies.plan.plan import Plan
from societies.society.agents import Agent, Society
from societies.society.baselines import BASELINE_STRATEGY, baseline_name, budget_k
from societies.society.strategy import make_strategy
from societies.society.traits import Trait

#: Builds an agent's model from an override, checking it (``path`` names the field).
ModelFor = Callable[[ModelOverride | None, PathKey], ModelSpec]


def add_baselines(plan: Plan, traits: dict[str, Trait], loc: Locator, model_for: ModelFor) -> Plan:
    """The plan with its baselines' societies after the experiment's own."""
    specs = plan.experiment.baselines
    if not specs:
        return plan
    societies = list(plan.societies)
    own = {s.name: s for s in plan.societies}
    strategies = dict(plan.strategies)
    vote = make_strategy(BASELINE_STRATEGY, (), plan.patterns)
    chosen: dict[str, str] = {}
    for i, spec in enumerate(specs):
        path: PathKey = ("baselines", i)
        if spec.trait not in traits:
            known = ", ".join(sorted(traits))
            raise loc.error((*path, "trait"), f"unknown trait '{spec.trait}' (known: {known})")
        model = model_for(spec.model, (*path, "model"))
        sample = Agent(0, "sample0", traits[spec.trait], spec.role, model)
        if isinstance(spec.k, BudgetMatch):
            if spec.k.match not in own:
                raise loc.error(
                    (*path, "k", "match"),
                    f"no society named '{spec.k.match}' (societies: {', '.join(own)})",
                )
            k = _matched_k(plan, own[spec.k.match], sample, spec.k, loc, (*path, "k"))
            name = baseline_name(spec.name, None, spec.k.match)
            how = f"budget of {spec.k.match}, " + (
                "from the dry-run estimate" if spec.k.run is None else f"measured in {spec.k.run}"
            )
        else:
            k, name, how = spec.k, baseline_name(spec.name, spec.k, None), "fixed"
        if any(s.name == name for s in societies):
            raise loc.error((*path, "name"), f"the name '{name}' is taken; name it apart")
        agents = tuple(dataclasses.replace(sample, index=j, name=f"sample{j}") for j in range(k))
        societies.append(Society(name, agents))
        strategies[name] = [vote]
        chosen[name] = f"k={k} ({how})"
    return dataclasses.replace(plan, societies=societies, strategies=strategies, baselines=chosen)


def _matched_k(
    plan: Plan, society: Society, sample: Agent, spec: BudgetMatch, loc: Locator, path: PathKey
) -> int:
    if spec.run is None:
        if not plan.cases:
            return 1
        from societies.scheduler.estimate import budget_estimate

        return budget_k(*budget_estimate(plan, society, sample))
    run = Path(os.path.normpath(plan.source.parent / spec.run))
    return stored_k(run, society.name, loc, (*path, "run"))


def stored_k(run: Path, society: str, loc: Locator, path: PathKey) -> int:
    """The equal-budget k of ``society`` measured in the stored run ``run``."""
    from societies.analysis.load import load_run  # pandas: only when a stored run is named

    try:
        budget = load_run(run).equal_budget
    except (SocietiesError, ValueError) as exc:
        raise loc.error(path, f"cannot read the run {run}: {exc}") from None
    row = budget[budget["society"] == society]
    if row.empty:
        raise loc.error(path, f"the run {run} has no society '{society}' with stored costs")
    return int(row["k"].iloc[0])
