"""Token cost, the study's way and the billed way, and the self-consistency baseline.

Two numbers answer two questions. The study's cost of a case is, for a strategy, the sum over
agents of the total tokens (prompt + completion) of each agent's *last* call: since every call
re-sends the whole conversation, the last call's prompt is roughly everything the agent read.
The billed cost is what a provider charges: every call of the strategy's path (the role-play
turn, round 0, every round up to r), each re-sending the conversation. Both are given per
strategy as if it ran alone; the run itself shares round prefixes between strategies, and what
it really billed is ``run_billed`` (every stored call once).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from societies.analysis.metrics import CASE, CELL, accuracy_by_repeat, accuracy_summary
from societies.config.models import Price
from societies.cost import find_price


def call_usd(calls: pd.DataFrame, table: Mapping[str, Price]) -> pd.Series:
    """Dollars of each call, priced as the run's budget prices it (``societies.cost``): the
    model's longest listed prefix in ``table``, input / cached / output prices per million
    tokens. NaN for a model the table does not price."""
    usd = pd.Series(np.nan, index=calls.index, dtype=float)
    for model in calls["model"].dropna().unique():
        price = find_price(table, str(model))
        if price is None:
            continue
        rows = calls["model"] == model
        sub = calls.loc[rows]
        prompt = sub["prompt_tokens"].astype(float).fillna(0.0)
        cached = np.minimum(sub["cached_tokens"].astype(float).fillna(0.0), prompt)
        cached_price = price.input if price.cached is None else price.cached
        usd.loc[rows] = (
            (prompt - cached) * price.input
            + cached * cached_price
            + sub["completion_tokens"].astype(float).fillna(0.0) * price.output
        ) / 1e6
    return usd


def cost_per_agent(
    answers: pd.DataFrame, persona: pd.DataFrame, value: str = "total_tokens"
) -> pd.DataFrame:
    """Per strategy, round and agent: ``last_call`` (``value`` of the agent's call at that
    round) and ``billed`` (its calls of rounds 0..r plus its role-play call, if any).

    ``answers`` carries ``value`` per row; ``persona`` has one row per role-play call with
    ``run, repeat, case_id, society, agent`` and ``value`` (empty when the prompt set asks no
    role-play turn). A call with no reply counts its recorded tokens (usually 0).
    """
    cols = [*CASE, "round", "agent", value]
    out = answers[cols].sort_values([*CASE, "agent", "round"])
    out = out.rename(columns={value: "last_call"})
    out["last_call"] = out["last_call"].astype(float).fillna(0.0)
    out["billed"] = out.groupby([*CASE, "agent"], observed=True)["last_call"].cumsum()
    if len(persona):
        keys = ["run", "repeat", "case_id", "society", "agent"]
        extra = persona.groupby(keys, observed=True)[value].sum().rename("persona")
        out = out.merge(extra.reset_index(), on=keys, how="left")
        out["billed"] += out["persona"].astype(float).fillna(0.0)
        out = out.drop(columns=["persona"])
    return out.reset_index(drop=True)


def cost_table(per_agent: pd.DataFrame) -> pd.DataFrame:
    """Per cell: mean per case of the study's cost and of the billed cost, and their sums over
    every case and repeat."""
    per_case = per_agent.groupby([*CASE, "round"], observed=True)[["last_call", "billed"]].sum()
    per_case = per_case.rename(columns={"last_call": "study"}).reset_index()
    grouped = per_case.groupby(CELL, observed=True)
    out = grouped.agg(
        study_per_case=("study", "mean"),
        billed_per_case=("billed", "mean"),
        study_total=("study", "sum"),
        billed_total=("billed", "sum"),
        n=("study", "size"),
    )
    return out.reset_index()


def cost_by_agent(per_agent: pd.DataFrame) -> pd.DataFrame:
    """Per cell and agent: mean per case of the agent's last call and of its billed calls."""
    grouped = per_agent.groupby([*CELL, "agent"], observed=True)
    out = grouped.agg(last_call_per_case=("last_call", "mean"), billed_per_case=("billed", "mean"))
    return out.reset_index()


def run_billed(calls: pd.DataFrame, value: str = "total_tokens") -> pd.DataFrame:
    """What each run and society really billed: every stored call once, by step."""
    out = calls.groupby(["run", "task", "society", "step"], observed=True)[value].sum()
    return out.unstack("step", fill_value=0).reset_index().rename_axis(columns=None)


def self_consistency(votes: pd.DataFrame, costs: pd.DataFrame, ddof: int = 1) -> pd.DataFrame:
    """The self-consistency baseline: the majority of the agents' round-0 answers, before any
    collaboration. Round 0 is shared by every strategy, so one strategy's row is taken per
    case. Its cost is the round-0 cost (study and billed) of the same table."""
    first = votes[votes["round"] == 0]
    one = first[first["strategy"] == first.groupby(["run", "society"])["strategy"].transform("min")]
    acc = accuracy_summary(accuracy_by_repeat(one), ddof=ddof).drop(columns=["strategy", "round"])
    zero = costs[costs["round"] == 0]
    zero = zero[zero["strategy"] == zero.groupby(["run", "society"])["strategy"].transform("min")]
    cost = zero[["run", "task", "society", "study_per_case", "billed_per_case"]]
    return acc.merge(cost, on=["run", "task", "society"], how="left")


def pareto_front(cost: np.ndarray, accuracy: np.ndarray) -> list[int]:
    """Positions of the points no other point dominates: none is at most as costly and at
    least as accurate with one of the two strictly better. Equal points are all kept."""
    front = []
    for i in range(len(cost)):
        dominated = (
            (cost <= cost[i])
            & (accuracy >= accuracy[i])
            & ((cost < cost[i]) | (accuracy > accuracy[i]))
        )
        if not dominated.any():
            front.append(i)
    return front


def cache_use(calls: pd.DataFrame) -> pd.DataFrame:
    """Per run, society, agent and round: prompt tokens, those the provider served from its
    prompt cache, their share, and with prices ``usd_saved``, what the calls would have cost
    with nothing cached minus what they cost (cached tokens at the cached rate)."""
    keys = ["run", "task", "society", "agent", "round"]
    sums = ["prompt_tokens", "cached_tokens"]
    priced = "usd" in calls and "usd_uncached" in calls
    if priced:
        calls = calls.assign(usd_saved=calls["usd_uncached"] - calls["usd"])
        sums.append("usd_saved")
    out = calls.groupby(keys, observed=True)[sums].sum(min_count=1).reset_index()
    prompt = out["prompt_tokens"].astype(float)
    out.insert(len(keys) + 2, "cached_share", out["cached_tokens"] / prompt.where(prompt > 0))
    return out
