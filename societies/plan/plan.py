"""The plan: a resolved experiment, everything the scheduler needs, checked before any call."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from societies.config.models import Experiment
from societies.society.agents import Society
from societies.society.patterns import Pattern
from societies.society.prompts import PromptSet
from societies.society.questionnaire import Item
from societies.society.strategy import Strategy, realize
from societies.tasks.base import Case, Task


@dataclass(frozen=True)
class Overrides:
    """Command-line settings that take precedence over the file."""

    out: Path | None = None
    concurrency: int | None = None
    limit: int | None = None
    model: str | None = None  # "BACKEND:MODEL"
    model_options: dict[str, Any] = field(default_factory=dict)
    skip_invalid: bool = False  # leave unusable data rows out, with a warning
    #: A folder holding <task>.jsonl for every task (the study's file names), used instead of
    #: the files the experiment names.
    data_dir: Path | None = None


@dataclass(frozen=True)
class Plan:
    """A resolved experiment: everything the scheduler needs, checked before any call."""

    experiment: Experiment
    source: Path
    output: Path
    #: The data file used (the first existing one of the candidates).
    data: Path
    task: Task
    cases: list[Case]
    societies: list[Society]
    #: Strategies per society name (per-agent strategies depend on the society's size).
    strategies: dict[str, list[Strategy]]
    patterns: dict[str, Pattern]
    prompts: PromptSet
    rounds: int
    #: The societies that are ``baselines:`` (after the experiment's own): name → how k was
    #: chosen ("fixed", "estimate" or the stored run it was measured in).
    baselines: dict[str, str] = field(default_factory=dict)
    #: The manipulation check's items (empty: no questionnaire).
    questionnaire: tuple[Item, ...] = ()

    def strategies_for(self, society: Society, case: Case, repeat: int) -> list[Strategy]:
        """The strategies as run on one case: random-reflector strategies are drawn here."""
        strategies = self.strategies[society.name]
        if not any(s.random_reflector for s in strategies):
            return strategies
        seed = f"{self.experiment.seed}|{repeat}|{case.id}|{society.name}"
        return [realize(s, seed, self.patterns) for s in strategies]
