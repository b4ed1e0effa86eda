"""The study's metrics as pure functions of an *answer grid*.

An answer grid is a DataFrame with one row per repeat x case x society x strategy x round x agent
and the columns ``run, task, repeat, case_id, society, strategy, round, agent, answer, correct``
(plus ``trait``, ``pattern`` and ``outcome`` where a metric needs them). ``answer`` is the parsed
answer or ``None`` (unparsed, or no reply). ``load_run`` builds the grid from a run store; the
tests build small grids by hand. Every function here is deterministic and reads nothing else, so
a metric can be checked against a hand-computed value.

Majority voting always goes through :func:`societies.analysis.accuracy.majority_vote`, the one
implementation of the study's rule.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from societies.analysis.accuracy import majority_vote

#: Scores a society's majority answer: (run, case_id, answer) -> correct?
Scorer = Callable[[str, str, str | None], bool]

CELL = ["run", "task", "society", "strategy", "round"]
CASE = ["run", "task", "repeat", "case_id", "society", "strategy"]
GROUP = [*CASE, "round"]
#: Outcomes that give a call an answer slot (``None`` when it has no parsed answer);
#: ``stopped``: a round a stopping rule left unrun, holding the answer that stopped it.
ANSWERED = ("ok", "context_exceeded", "stopped")
CONFORMITY_TYPES = ("T→F", "F→T", "T→T", "F→F")
BEHAVIOURS = (
    "fixes a mistake",
    "breaks a correct answer",
    "wavers",
    "stays correct",
    "stays wrong",
)


def clean_answers(values: Any) -> list[Any]:
    """Answers as Python objects with every kind of missing value turned into ``None``.

    ``majority_vote`` counts ``None`` as a value; a NaN would not compare equal to another NaN
    and would silently split the missing answers into separate votes.
    """
    return [None if (v is None or (isinstance(v, float) and v != v)) else v for v in values]


class _Grouped:
    """Rows of a frame gathered by key: ``heads`` (one row of keys per group, sorted) and, per
    group, ``slice(i)`` of any per-row list put in group order by ``take``."""

    def __init__(self, df: pd.DataFrame, keys: list[str]) -> None:
        codes = df.groupby(keys, sort=True, dropna=False, observed=True).ngroup().to_numpy()
        self.order = np.argsort(codes, kind="stable")
        sorted_codes = codes[self.order]
        boundary = np.r_[True, np.diff(sorted_codes) != 0] if len(codes) else np.zeros(0, bool)
        self.starts: list[int] = [int(i) for i in np.flatnonzero(boundary)]
        self.ends = [*self.starts[1:], len(codes)]
        self.heads = df.iloc[self.order[self.starts]][keys].reset_index(drop=True)

    def take(self, values: Any) -> list[Any]:
        return [values[i] for i in self.order]

    def all(self, flags: np.ndarray) -> np.ndarray:
        """Per group: whether every row's flag is set."""
        if not self.starts:
            return np.zeros(0, dtype=bool)
        return np.minimum.reduceat(flags[self.order].astype(np.int8), self.starts).astype(bool)


def _answered(df: pd.DataFrame) -> np.ndarray:
    if "outcome" not in df:
        return np.ones(len(df), dtype=bool)
    return df["outcome"].isin(ANSWERED).to_numpy()


def vote_table(answers: pd.DataFrame, score: Scorer, keys: Sequence[str] = GROUP) -> pd.DataFrame:
    """One row per society answer: the agents' majority vote and whether it is correct.

    Columns: the keys, ``n_agents``, ``majority`` (``None`` for a tie at the top, all answers
    different included), ``correct`` (a ``None`` majority is wrong), ``n_distinct`` (distinct
    answers, ``None`` counted as one value) and ``complete`` (every agent's call is stored with
    an outcome that gives it an answer slot; incomplete groups are a run still going or calls
    that failed for good, and the accuracy tables leave them out rather than score them wrong).
    """
    groups = _Grouped(answers, list(keys))
    values = groups.take(clean_answers(answers["answer"].to_numpy(dtype=object)))
    majority: list[str | None] = []
    n_distinct: list[int] = []
    for start, end in zip(groups.starts, groups.ends, strict=True):
        votes = values[start:end]
        majority.append(majority_vote(votes))
        n_distinct.append(len(set(votes)))
    out = groups.heads.assign(
        n_agents=np.subtract(groups.ends, groups.starts),
        majority=pd.Series(majority, dtype=object),
        n_distinct=n_distinct,
    )
    out["complete"] = groups.all(_answered(answers))
    run_col = out["run"].to_numpy(dtype=object) if "run" in out else [""] * len(out)
    cache: dict[tuple[Any, Any, Any], bool] = {}
    correct = []
    for run, case_id, answer in zip(
        run_col, out["case_id"].to_numpy(dtype=object), majority, strict=True
    ):
        key = (run, case_id, answer)
        if key not in cache:
            cache[key] = answer is not None and bool(score(str(run), str(case_id), answer))
        correct.append(cache[key])
    out["correct"] = correct
    return out


def accuracy_by_repeat(votes: pd.DataFrame) -> pd.DataFrame:
    """Accuracy of each cell in each repeat: the share of cases whose majority is correct.

    Only complete groups count; ``n_cases`` says how many did. A cell with no complete group
    has no row.
    """
    done = votes[votes["complete"]]
    grouped = done.groupby([*CELL, "repeat"], observed=True)["correct"]
    out = grouped.agg(accuracy="mean", n_cases="size").reset_index()
    out["accuracy"] = out["accuracy"].astype(float)
    return out


def accuracy_summary(by_repeat: pd.DataFrame, ddof: int = 0) -> pd.DataFrame:
    """Mean ± std of the per-repeat accuracy of every cell (society x strategy x round).

    ``std`` is the population std over repeats (``ddof=0``, numpy's default) so that one repeat
    gives 0 rather than NaN; pass ``ddof=1`` for the sample std.
    """
    grouped = by_repeat.groupby(CELL, observed=True)
    out = grouped["accuracy"].agg(mean="mean", std=lambda s: float(np.std(s, ddof=ddof)))
    out["n_repeats"] = grouped.size()
    out["n_cases"] = grouped["n_cases"].sum()
    return out.reset_index()


def pooled_accuracy(votes: pd.DataFrame) -> dict[tuple[str, str, int], float]:
    """Per society x strategy x round: the share of complete society answers that are correct,
    over every case and repeat (the end-of-run table of ``societies run``)."""
    done = votes[votes["complete"]]
    pooled = done.groupby(["society", "strategy", "round"], observed=True)["correct"].mean()
    out: dict[tuple[str, str, int], float] = {}
    for key, value in pooled.to_dict().items():
        society, strategy, round_index = cast(tuple[str, str, int], key)
        out[(str(society), str(strategy), int(round_index))] = float(value)
    return out


def majority_set(answers: Sequence[str | None]) -> frozenset[str]:
    """The majority answers of a round for conformity: every answer with the top count, when
    that count is at least 2. ``None`` (no answer) is nothing to conform to and never counts."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return frozenset()
    top = max(counts.values())
    return frozenset(a for a, n in counts.items() if n == top) if top >= 2 else frozenset()


def conformity(answers: pd.DataFrame, debate: str = "debate") -> pd.DataFrame:
    """Conformity in debate rounds, per agent turn (one row per agent, strategy and round ≥ 1).

    An agent conforms in round r when it debates in round r and its round-r answer is among the
    majority answers of round r-1 (every agent of its society, itself included; see
    :func:`majority_set`). A conforming turn is typed by the agent's own correctness before and
    after: T→F, F→T, T→T or F→F (so T→T includes an agent that keeps a correct majority answer).
    A round-r answer of ``None`` never conforms. Turns are counted per strategy, as the study
    counted them from one result file per strategy: a debate node shared by several strategies
    counts once for each. A turn whose own call has no answer slot (not stored, or failed) or
    whose round r-1 group is incomplete is left out: what it conformed to is unknown.
    """
    cols = [*GROUP, "agent", "answer", "correct"]
    prev = answers[cols].copy()
    prev["round"] = prev["round"] + 1
    groups = _Grouped(prev, GROUP)
    values = groups.take(clean_answers(prev["answer"].to_numpy(dtype=object)))
    sets = [majority_set(values[a:b]) for a, b in zip(groups.starts, groups.ends, strict=True)]
    heads = groups.heads.assign(majority_prev=pd.Series(sets, dtype=object))
    heads = heads[groups.all(_answered(answers))]
    turns = answers[answers["pattern"] == debate]
    if "outcome" in answers:
        turns = turns[turns["outcome"].isin(ANSWERED)]
    keep = [*GROUP, "agent", "answer", "correct"]
    keep += [c for c in ("trait",) if c in turns]
    merged = turns[keep].merge(
        prev[[*GROUP, "agent", "correct"]].rename(columns={"correct": "correct_prev"}),
        on=[*GROUP, "agent"],
    )
    merged = merged.merge(heads, on=GROUP)
    new = clean_answers(merged["answer"].to_numpy(dtype=object))
    merged["conforms"] = [
        a is not None and a in s for a, s in zip(new, merged["majority_prev"], strict=True)
    ]
    before = np.where(merged["correct_prev"].astype(bool), "T", "F")
    after = np.where(merged["correct"].astype(bool), "T", "F")
    merged["type"] = np.where(merged["conforms"], np.char.add(np.char.add(before, "→"), after), "")
    return merged.drop(columns=["majority_prev"])


def conformity_table(turns: pd.DataFrame, by: Sequence[str] = ("round", "trait")) -> pd.DataFrame:
    """Counts of debate turns, conforming turns and each conformity type, with their rates."""
    keys = ["run", "task", "society", *by]
    base = turns.groupby(keys, observed=True)
    out = base.agg(debate_turns=("conforms", "size"), conform=("conforms", "sum"))
    for kind in CONFORMITY_TYPES:
        out[kind] = (
            turns.assign(hit=turns["type"] == kind).groupby(keys, observed=True)["hit"].sum()
        )
    out["conformity_rate"] = out["conform"] / out["debate_turns"]
    return out.reset_index()


def consensus(votes: pd.DataFrame) -> pd.DataFrame:
    """Distinct answers per round (``None`` is one value), mean over cases and repeats; the
    share divides by the number of agents, which compares societies of different sizes
    (1/n = full agreement, 1 = every agent different). Incomplete groups are left out."""
    done = votes[votes["complete"]].assign(share=lambda d: d["n_distinct"] / d["n_agents"])
    grouped = done.groupby(CELL, observed=True)
    out = grouped.agg(
        distinct=("n_distinct", "mean"),
        distinct_share=("share", "mean"),
        unanimous=("n_distinct", lambda s: float((s == 1).mean())),
        n=("n_distinct", "size"),
    )
    return out.reset_index()


_FIX = re.compile(r"^0+1+$")
_BREAK = re.compile(r"^1+0+$")


def behaviour_category(pattern: str) -> str:
    """The category of a correctness string across rounds ("0111": wrong in round 0, then right).

    One change from wrong to right fixes a mistake (0111, 0011, 0001 for 3 rounds); one change
    from right to wrong breaks a correct answer (1000, 1100, 1110); no change stays correct or
    stays wrong; two or more changes waver (0101, 1011, ...). A single round cannot change.
    """
    if set(pattern) <= {"1"}:
        return "stays correct"
    if set(pattern) <= {"0"}:
        return "stays wrong"
    if _FIX.match(pattern):
        return "fixes a mistake"
    if _BREAK.match(pattern):
        return "breaks a correct answer"
    return "wavers"


def behaviour(votes: pd.DataFrame) -> pd.DataFrame:
    """Per case and strategy, the society's correctness string across rounds and its category.

    A case with an incomplete group in any round, or a missing round, is left out: its string
    would not say what the society did.
    """
    ordered = votes.sort_values([*CASE, "round"])
    grouped = ordered.groupby(CASE, observed=True, sort=False)
    out = grouped.agg(
        complete=("complete", "all"),
        rounds=("round", "size"),
        last_round=("round", "max"),
        pattern=("correct", lambda s: "".join("1" if v else "0" for v in s)),
    ).reset_index()
    out = out[out["complete"] & (out["rounds"] == out["last_round"] + 1)]
    out = out.assign(category=[behaviour_category(p) for p in out["pattern"]])
    return out.drop(columns=["complete", "rounds", "last_round"]).reset_index(drop=True)


def behaviour_table(cases: pd.DataFrame) -> pd.DataFrame:
    """Share of cases in each behaviour category per run, task, society and strategy."""
    keys = ["run", "task", "society", "strategy"]
    counts = cases.groupby([*keys, "category"], observed=True).size().unstack(fill_value=0)
    counts = counts.reindex(columns=list(BEHAVIOURS), fill_value=0)
    counts.columns.name = None
    total = counts.sum(axis=1)
    out = counts.astype(int)
    out["n_cases"] = total
    return out.reset_index()


def parse_failures(
    calls: pd.DataFrame, by: Sequence[str] = ("society", "agent", "round")
) -> pd.DataFrame:
    """Share of answer calls that came back (outcome ok) but whose reply committed to no answer.

    Calls that never returned (context exceeded, error) are not parse failures and are left
    out; persona calls ask for no answer and are left out too.
    """
    keys = ["run", "task", *by]
    ok = calls[(calls["step"] == "answer") & (calls["outcome"] == "ok")]
    failed = ok.assign(failed=ok["answer"].isna())
    out = failed.groupby(keys, observed=True)["failed"].agg(calls="size", failures="sum")
    out["rate"] = out["failures"] / out["calls"]
    return out.reset_index()
