"""Edit adoption: does information given privately to some agents spread to the others?

A briefing's ``answer`` (see ``BriefingSpec``) is the answer it supports: in an edit-spread
experiment, the edited object. For every society with at least one agent so briefed, each
round's adoption is the share of its other agents whose answer the task scores as that answer
(the claim), over (repeat, case); its bootstrap CI resamples the (repeat, case) shares. Which
agents are briefed comes from the experiment stored with the run: societies are listed in the
store in the file's order, and a society spec with an ``easy_going`` list stands for one society
per value, as when the run was planned.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from societies.analysis.metrics import CELL
from societies.analysis.stats import bootstrap_ci
from societies.society.prompts import PromptSet
from societies.tasks.base import Case, Task

CLAIM_COLUMNS = ["run", "society", "agent", "case_id", "claim"]
ADOPTION_COLUMNS = [*CELL, "groups", "adoption", "ci_low", "ci_high"]


def briefing_answers(
    config: Mapping[str, Any], societies: Sequence[str]
) -> Iterator[tuple[str, int, str]]:
    """(society, agent, answer template) of every agent whose briefing supports an answer
    (a briefing without one, such as common background, makes no claim to adopt)."""
    expanded: list[Mapping[str, Any]] = []
    for spec in config.get("societies") or []:
        ks = spec.get("easy_going")
        expanded.extend([spec] * (len(ks) if isinstance(ks, list) else 1))
    for name, spec in zip(societies, expanded, strict=False):
        shared = spec.get("briefing")
        agents = spec["agents"]
        if isinstance(agents, int):
            specs: list[Any] = [None] * agents
        else:
            specs = [None if isinstance(a, str) else a.get("briefing") for a in agents]
        for index, own in enumerate(specs):
            briefing = own or shared
            if briefing is not None and briefing.get("answer") is not None:
                yield name, index, str(briefing["answer"])


def claim_table(
    run: str,
    config: Mapping[str, Any],
    societies: Sequence[str],
    task: Task,
    cases: Mapping[str, Case],
) -> pd.DataFrame:
    """One row per claiming agent and case: the answer its briefing supports (a briefing whose
    answer renders empty for a case claims nothing there, as the simulated model reads it)."""
    prompts = PromptSet("default", Path("."))
    rows = []
    for society, agent, source in briefing_answers(config, societies):
        for case_id, case in cases.items():
            claim = prompts.render_case(source, task, case)
            if claim:
                rows.append((run, society, agent, case_id, claim))
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def edit_adoption(answers: pd.DataFrame, claims: pd.DataFrame, adopts: Any) -> pd.DataFrame:
    """Per cell: the mean share of unbriefed agents holding their society's claim, over the
    (repeat, case) groups that have a claim and an unbriefed agent. ``adopts(run, case_id,
    answer, claim)`` says whether an answer is the claim (the task's scoring)."""
    if claims.empty or answers.empty:
        return pd.DataFrame(columns=ADOPTION_COLUMNS)
    per_case = claims.groupby(["run", "society", "case_id"])["claim"].first().reset_index()
    briefed = claims[["run", "society", "agent"]].drop_duplicates().assign(briefed=True)
    grid = answers.merge(briefed, on=["run", "society", "agent"], how="left")
    grid = grid[grid["briefed"].isna()].merge(per_case, on=["run", "society", "case_id"])
    if grid.empty:
        return pd.DataFrame(columns=ADOPTION_COLUMNS)
    grid["adopted"] = [
        float(adopts(r, c, a, claim))
        for r, c, a, claim in zip(grid["run"], grid["case_id"], grid["answer"], grid["claim"],
                                  strict=True)
    ]  # fmt: skip
    shares = grid.groupby([*CELL, "repeat", "case_id"], sort=True)["adopted"].mean()
    rows = []
    for cell, group in shares.reset_index().groupby(CELL, sort=True):
        low, high = bootstrap_ci(group["adopted"].to_numpy())
        rows.append((*cell, len(group), group["adopted"].mean(), low, high))
    return pd.DataFrame(rows, columns=ADOPTION_COLUMNS)
