"""Baselines at equal budget: the single-agent and self-consistency societies of ``baselines:``
beside the experiment's own, and the k that would match a society's token cost.

A baseline is stored as a society with one strategy of no rounds, so every table has its rows
(round 0 only); this module names them and sets them beside the societies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from societies.society.baselines import BASELINE_STRATEGY, baseline_name, budget_k

__all__ = ["BASELINE_STRATEGY", "baseline_table", "baselines_of", "equal_budget"]

#: Per baseline name: ``k`` (its stored agents) and ``match`` (the society whose budget it
#: matches, or ``None``).
Baselines = Mapping[str, Mapping[str, Any]]


def baselines_of(config: Mapping[str, Any], sizes: pd.Series) -> dict[str, dict[str, Any]]:
    """Per baseline of a run's stored experiment, by name: its k (the agents the run stored,
    ``sizes``: agents per society) and the society it matches."""
    out = {}
    for spec in config.get("baselines") or []:
        k = spec.get("k", 1)
        match = k.get("match") if isinstance(k, Mapping) else None
        name = baseline_name(spec.get("name"), None if match else int(k), match)
        out[name] = {"k": int(sizes.get(name, 0)), "match": match}
    return out


def equal_budget(
    cost: pd.DataFrame, per_agent: pd.DataFrame, baselines: Mapping[str, Baselines]
) -> pd.DataFrame:
    """Per run and society (baselines aside): its billed tokens per case for one strategy at
    the last round (mean over its strategies), the billed tokens of one first answer (round 0,
    persona turn included, mean over agents and cases), and ``k``, the number of independent
    answers that cost the same (``budget_k``): what ``k: {match: <society>, run: <this run>}``
    uses."""
    cols = ["run", "task", "society", "tokens_per_case", "sample_tokens", "k"]
    rows = []
    for (run, task, society), part in cost.groupby(["run", "task", "society"], observed=True):
        if society in baselines.get(str(run), {}):
            continue
        last = part[part["round"] == part["round"].max()]
        tokens = float(last["billed_per_case"].mean())
        mine = per_agent[
            (per_agent["run"] == run)
            & (per_agent["society"] == society)
            & (per_agent["round"] == 0)
        ]
        sample = float(mine["billed"].mean()) if len(mine) else float("nan")
        rows.append((run, task, society, tokens, sample, budget_k(tokens, sample)))
    return pd.DataFrame(rows, columns=cols)


def baseline_table(
    accuracy: pd.DataFrame, cost: pd.DataFrame, baselines: Mapping[str, Baselines]
) -> pd.DataFrame:
    """Per baseline: k, the society it matches, accuracy (mean ± std over repeats, bootstrap
    95% CI, as every accuracy cell), its billed tokens per case and, when it matches a society,
    that society's (one strategy at the last round, mean over strategies)."""
    cols = ["run", "task", "baseline", "k", "match", "mean", "std", "ci_low", "ci_high",
            "n_cases", "billed_per_case", "match_billed_per_case"]  # fmt: skip
    rows = []
    for run, named in baselines.items():
        acc = accuracy[accuracy["run"] == run].set_index("society")
        bill = cost[cost["run"] == run]
        last = bill[bill["round"] == bill["round"].max()]
        for name, info in named.items():
            if name not in acc.index:
                continue
            a = acc.loc[[name]].iloc[0]
            mine = bill[(bill["society"] == name) & (bill["round"] == 0)]["billed_per_case"]
            match = info["match"]
            other = last[last["society"] == match]["billed_per_case"]
            rows.append(
                (run, a["task"], name, info["k"], match, a["mean"], a["std"], a["ci_low"],
                 a["ci_high"], a["n_cases"], float(mine.mean()) if len(mine) else float("nan"),
                 float(other.mean()) if len(other) else float("nan"))
            )  # fmt: skip
    return pd.DataFrame(rows, columns=cols)
