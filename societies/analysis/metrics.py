"""The study's metrics as pure functions of an *answer grid*.

An answer grid is a DataFrame with one row per repeat x case x society x strategy x round x agent
and the columns ``run, task, repeat, case_id, society, strategy, round, agent, answer, correct``
(plus ``trait``, ``sees_peers`` and ``outcome`` where a metric needs them). ``answer`` is the
parsed answer or ``None`` (unparsed, or no reply). Optional columns: ``vote``, the answer as
the round's vote counts it (a task's vote rule applied to the round, see
``Task.vote_rule``; default: ``answer``), and ``extraction``, ``"paper"`` for a run graded
with the study's rules (default: ``"robust"``).

Where the study's code and this project's definitions differ, ``paper`` rows follow the
study's code (quirks included, said at each function) and ``robust`` rows ours.

``load_run`` builds the grid from a run store; the tests build small grids by hand. Every
function here is deterministic and reads nothing else, so a metric can be checked against a
hand-computed value.

Majority voting always goes through :func:`societies.analysis.accuracy.majority_codes` (its
one-group form ``majority_vote``), the one implementation of the study's rule. Per-row work is
done on integer codes of the answers (see ``accuracy.factorize``), so that a grid of millions
of rows costs seconds: Python-level work is per distinct answer, not per row.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from societies.analysis.accuracy import factorize, majority_codes

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
    "other changes",
    "stays correct",
    "stays wrong",
)
#: The study's wavering strings (four rounds), exactly as its ``evaluate.py`` lists them.
PAPER_WAVERS = frozenset({"1010", "1001", "0110", "0101"})


def clean_answers(values: Any) -> list[Any]:
    """Answers as Python objects with every kind of missing value turned into ``None``.

    ``majority_vote`` counts ``None`` as a value; a NaN would not compare equal to another NaN
    and would silently split the missing answers into separate votes.
    """
    return [None if (v is None or (isinstance(v, float) and v != v)) else v for v in values]


def _votes(df: pd.DataFrame) -> np.ndarray:
    """The answers as the vote counts them: ``vote`` when the grid has it, else ``answer``
    (an object array; a missing value may be ``None`` or NaN: ``factorize`` makes it ``None``)."""
    return np.asarray(df["vote" if "vote" in df else "answer"].to_numpy(dtype=object))


def _keys(codes: np.ndarray, values: list[Any], paper: np.ndarray) -> np.ndarray:
    """Each vote's code as answers are compared (``codes``/``values`` from ``factorize``):
    the vote itself, or for ``paper`` rows its :func:`paper_key` (codes of their own: the two
    kinds never share a group)."""
    keys, _ = factorize([paper_key(v) for v in values])
    paper_codes = keys[codes] + len(values) if len(values) else codes
    return np.where(paper, paper_codes, codes)


def _paper(df: pd.DataFrame) -> np.ndarray:
    if "extraction" not in df:
        return np.zeros(len(df), dtype=bool)
    return (df["extraction"] == "paper").to_numpy()


def paper_key(answer: str | None) -> str:
    """How the study's conformity and consistency code compares answers: ``str(answer)``
    lower-cased and stripped, so a missing answer is the string ``"none"`` (and agrees with
    another missing answer, or with a reply whose answer is "None")."""
    return str(answer).lower().strip()


def _unique_sorted(values: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting (numpy's hash-based path is much slower on millions of int64)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


class _Grouped:
    """Rows of a frame gathered by key: ``codes`` (each row's group, numbered in key order),
    ``heads`` (one row of keys per group, sorted) and, per group, ``slice(i)`` of any per-row
    list put in group order by ``take``."""

    def __init__(self, df: pd.DataFrame, keys: list[str]) -> None:
        codes = df.groupby(keys, sort=True, dropna=False, observed=True).ngroup().to_numpy()
        self.codes = codes.astype(np.int64, copy=False)
        self.order = np.argsort(codes, kind="stable")
        sorted_codes = codes[self.order]
        boundary = np.r_[True, np.diff(sorted_codes) != 0] if len(codes) else np.zeros(0, bool)
        self.starts: list[int] = [int(i) for i in np.flatnonzero(boundary)]
        self.ends = [*self.starts[1:], len(codes)]
        self.heads = df.iloc[self.order[self.starts]][keys].reset_index(drop=True)

    def take(self, values: Any) -> list[Any]:
        return [values[i] for i in self.order]

    def first(self, values: np.ndarray) -> np.ndarray:
        """Per group: the value of its first row."""
        return np.asarray(values)[self.order[self.starts]]

    def distinct(self, codes: np.ndarray) -> np.ndarray:
        """Per group: how many distinct codes its rows hold."""
        if not self.starts:
            return np.zeros(0, dtype=np.int64)
        width = int(codes.max()) + 1
        pairs = _unique_sorted(self.codes * width + codes)
        return np.bincount(pairs // width, minlength=len(self.starts))

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
    answers, ``None`` counted as one value; ``paper`` rows compare them as :func:`paper_key`
    does, as the study's consistency code did), ``extraction`` and ``complete`` (every agent's
    call is stored with an outcome that gives it an answer slot; incomplete groups are a run
    still going or calls that failed for good, and the accuracy tables leave them out rather
    than score them wrong).
    """
    groups = _Grouped(answers, list(keys))
    votes = _votes(answers)
    codes, values = factorize(votes)
    winners = majority_codes(groups.codes, codes, len(groups.starts))
    majority = [None if w < 0 else values[w] for w in winners]
    paper = _paper(answers)
    keys_codes = _keys(codes, values, paper)
    out = groups.heads.assign(
        n_agents=np.subtract(groups.ends, groups.starts),
        majority=pd.Series(majority, dtype=object),
        n_distinct=groups.distinct(keys_codes),
        extraction=np.where(groups.first(paper), "paper", "robust").astype(object),
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

    Only complete groups count; ``n_cases`` says how many did and ``n_incomplete`` how many
    groups were left out (calls not stored or failed). A cell with no complete group has no
    row.
    """
    keys = [*CELL, "repeat"]
    done = votes[votes["complete"]]
    grouped = done.groupby(keys, observed=True)["correct"]
    out = grouped.agg(accuracy="mean", n_cases="size").reset_index()
    out["accuracy"] = out["accuracy"].astype(float)
    missing = (~votes["complete"]).groupby([votes[k] for k in keys], observed=True).sum()
    out = out.merge(missing.rename("n_incomplete").reset_index(), on=keys, how="left")
    out["n_incomplete"] = out["n_incomplete"].fillna(0).astype(int)
    return out


def accuracy_summary(by_repeat: pd.DataFrame, ddof: int = 1) -> pd.DataFrame:
    """Mean ± std of the per-repeat accuracy of every cell (society x strategy x round).

    ``std`` is the sample std over repeats (``ddof=1``), as the study's tables print it (two
    repeats at 0.5 and 0.6 give 0.0707); one repeat gives NaN, since one repeat says nothing
    about spread. ``ddof=0`` gives the population std. ``n_incomplete`` counts the groups left
    out of the cell because their calls are not all stored.
    """
    grouped = by_repeat.groupby(CELL, observed=True)
    out = grouped["accuracy"].agg(
        mean="mean",
        std=lambda s: float(np.std(s, ddof=ddof)) if len(s) > ddof else float("nan"),
    )
    out["n_repeats"] = grouped.size()
    out["n_cases"] = grouped["n_cases"].sum()
    if "n_incomplete" in by_repeat:
        out["n_incomplete"] = grouped["n_incomplete"].sum()
    return out.reset_index()


def majority_set(answers: Sequence[str | None]) -> frozenset[str]:
    """The majority answers of a round for conformity: every answer with the top count, when
    that count is at least 2. ``None`` (no answer) is nothing to conform to and never counts
    (``paper`` rows compare :func:`paper_key` strings, where no answer is ``"none"``)."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return frozenset()
    top = max(counts.values())
    return frozenset(a for a, n in counts.items() if n == top) if top >= 2 else frozenset()


def conformity(answers: pd.DataFrame, score: Scorer | None = None) -> pd.DataFrame:
    """Conformity in peer-seeing rounds, per agent turn (one row per agent, strategy and round
    ≥ 1 whose pattern ``sees_peers``: the study's debate, or any user pattern that shows the
    other agents' replies).

    An agent conforms in round r when its round-r answer is among the majority answers of round
    r-1 (every agent of its society, itself included; see :func:`majority_set`). A conforming
    turn is typed by the agent's own correctness before and after: T→F, F→T, T→T or F→F (so
    T→T includes an agent that keeps a correct majority answer). Answers are compared as the
    vote counts them (``vote``: for the study's MATH rule, unified within each round only, so
    a ``{0}`` never meets the previous round's ``0``).

    ``robust`` rows: a round-r answer of ``None`` never conforms and ``None`` is never part of
    a majority; correctness is the ``correct`` column. ``paper`` rows follow the study's
    ``conformity_and_consistency.py``: answers compared as :func:`paper_key` (a missing answer
    is ``"none"``, so an agent with no answer conforms to a round where two agents had none),
    correctness by ``score`` of the stripped answer (``None``: wrong).

    Turns are counted per strategy, as the study counted them from one result file per
    strategy: a node shared by several strategies counts once for each. A turn whose own call
    has no answer slot (not stored, or failed) or whose round r-1 group is incomplete is left
    out: what it conformed to is unknown.
    """
    votes = _votes(answers)
    paper = _paper(answers)
    codes, values = factorize(votes)
    keys = _keys(codes, values, paper)
    # A robust row's missing answer is nothing to conform to: no key.
    if None in values:
        keys = np.where(~paper & (codes == values.index(None)), -1, keys)
    ok = _correct_for_conformity(answers, (codes, values), paper, score)
    groups = _Grouped(answers, GROUP)
    n_groups = len(groups.starts)
    complete = groups.all(_answered(answers))
    # Per group and key: how many of its rows hold that key (``pairs``, sorted), and the
    # group's top count.
    width = int(keys.max()) + 1 if len(keys) else 1
    counted = keys >= 0
    pairs, counts = np.unique(groups.codes[counted] * width + keys[counted], return_counts=True)
    top = np.zeros(n_groups, dtype=np.int64)
    if len(pairs):
        first = np.flatnonzero(np.r_[True, np.diff(pairs // width) != 0])
        top[pairs[first] // width] = np.maximum.reduceat(counts, first)
    prev_row = _previous_rows(answers, groups)
    mask = (
        answers["sees_peers"].fillna(False).astype(bool).to_numpy()
        & (answers["round"] > 0).to_numpy()
    )
    if "outcome" in answers:
        mask &= answers["outcome"].isin(ANSWERED).to_numpy()
    mask &= prev_row >= 0
    rows = np.flatnonzero(mask)
    pg = groups.codes[prev_row[rows]]
    rows = rows[complete[pg]]  # what a turn conformed to is unknown when round r-1 is not
    pg, key = groups.codes[prev_row[rows]], keys[rows]
    wanted = pg * width + key
    look = np.minimum(np.searchsorted(pairs, wanted), max(len(pairs) - 1, 0))
    if len(pairs):
        held = np.where((key >= 0) & (pairs[look] == wanted), counts[look], 0)
    else:
        held = np.zeros(len(rows), dtype=np.int64)
    conforms = (held > 0) & (top[pg] >= 2) & (held == top[pg])
    extra = [c for c in ("trait", "pattern", "answer", "correct") if c in answers]
    merged: pd.DataFrame = answers.iloc[rows][[*GROUP, "agent"]].reset_index(drop=True)
    merged["vote"] = pd.Series(np.asarray(values, dtype=object)[codes[rows]], dtype=object)
    for column in extra:
        merged[column] = answers[column].iloc[rows].reset_index(drop=True)
    merged["conforms"] = conforms
    before = np.where(ok[prev_row[rows]], "T", "F")
    after = np.where(ok[rows], "T", "F")
    merged["type"] = np.where(conforms, np.char.add(np.char.add(before, "→"), after), "")
    return merged


def _previous_rows(answers: pd.DataFrame, groups: _Grouped) -> np.ndarray:
    """Per row: the position of the same agent's row in the round before (same run, task,
    repeat, case, society and strategy), or -1 when there is none."""
    heads = groups.heads
    if heads.empty:
        return np.full(len(answers), -1, dtype=np.int64)
    # Groups are numbered in key order with ``round`` last: a group's previous round, when
    # it exists, is the group just before it.
    case = heads.groupby(CASE, sort=False, dropna=False, observed=True).ngroup().to_numpy()
    rounds = heads["round"].to_numpy(dtype=np.int64)
    has_prev = np.r_[False, (case[1:] == case[:-1]) & (rounds[1:] - 1 == rounds[:-1])]
    prev_group = np.where(has_prev, np.arange(len(heads)) - 1, -1)[groups.codes]
    agents = answers["agent"].to_numpy(dtype=np.int64)
    span = int(agents.max()) + 1
    row_key = groups.codes * span + agents
    order = np.argsort(row_key, kind="stable")
    wanted = prev_group * span + agents
    at = np.minimum(np.searchsorted(row_key[order], wanted), len(order) - 1)
    hit = (prev_group >= 0) & (row_key[order][at] == wanted)
    return np.where(hit, order[at], -1)


def _correct_for_conformity(
    answers: pd.DataFrame,
    votes: tuple[np.ndarray, list[Any]],
    paper: np.ndarray,
    score: Scorer | None,
) -> np.ndarray:
    """Each row's correctness as conformity types it: the ``correct`` column, or for ``paper``
    rows (when a scorer is given) the score of the stripped vote, as the study graded it
    (scored once per distinct run, case and vote; ``votes``: codes and values)."""
    correct = answers["correct"].fillna(False).astype(bool).to_numpy().copy()
    if score is None or not paper.any():
        return correct
    rows = np.flatnonzero(paper)
    run_codes, runs = pd.factorize(answers["run"].to_numpy(dtype=object)[rows])
    case_codes, cases = pd.factorize(answers["case_id"].to_numpy(dtype=object)[rows])
    codes, values = votes
    combined = (run_codes.astype(np.int64) * len(cases) + case_codes) * len(values) + codes[rows]
    distinct, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    verdict = np.zeros(len(distinct), dtype=bool)
    for i, at in enumerate(first):
        vote = values[codes[rows[at]]]
        run, case = runs[run_codes[at]], cases[case_codes[at]]
        verdict[i] = vote is not None and bool(score(str(run), str(case), str(vote).strip()))
    correct[rows] = verdict[inverse.reshape(-1)]
    return correct


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
    done = votes[votes["complete"]].assign(
        share=lambda d: d["n_distinct"] / d["n_agents"], one=lambda d: d["n_distinct"] == 1
    )
    grouped = done.groupby(CELL, observed=True)
    out = grouped.agg(
        distinct=("n_distinct", "mean"),
        distinct_share=("share", "mean"),
        unanimous=("one", "mean"),
        n=("n_distinct", "size"),
    )
    out["unanimous"] = out["unanimous"].astype(float)
    return out.reset_index()


_FIX = re.compile(r"^0+1+$")
_BREAK = re.compile(r"^1+0+$")


def behaviour_category(pattern: str, paper: bool = False) -> str:
    """The category of a correctness string across rounds ("0111": wrong in round 0, then right).

    One change from wrong to right fixes a mistake (0111, 0011, 0001 for 3 rounds); one change
    from right to wrong breaks a correct answer (1000, 1100, 1110); no change stays correct or
    stays wrong. A single round cannot change. Two or more changes: ``robust`` calls every
    such string "wavers"; ``paper`` keeps the study's list, exactly 1010, 1001, 0110 and 0101,
    and puts the strings it left out of every category (0010, 0100, 1011, 1101, and any other
    length) under "other changes".
    """
    if set(pattern) <= {"1"}:
        return "stays correct"
    if set(pattern) <= {"0"}:
        return "stays wrong"
    if _FIX.match(pattern):
        return "fixes a mistake"
    if _BREAK.match(pattern):
        return "breaks a correct answer"
    if paper and pattern not in PAPER_WAVERS:
        return "other changes"
    return "wavers"


def behaviour(votes: pd.DataFrame) -> pd.DataFrame:
    """Per case and strategy, the society's correctness string across rounds and its category.

    A case with an incomplete group in any round, or a missing round, is left out: its string
    would not say what the society did.
    """
    ordered = votes.sort_values([*CASE, "round"])
    if "extraction" not in ordered:
        ordered = ordered.assign(extraction="robust")
    grouped = ordered.groupby(CASE, observed=True, sort=False)
    out = grouped.agg(
        complete=("complete", "all"),
        rounds=("round", "size"),
        last_round=("round", "max"),
        extraction=("extraction", "first"),
    ).reset_index()
    # The correctness string of each group, its rows in round order (groups come out in the
    # order they first appear, as ``sort=False`` lists them).
    codes = grouped.ngroup().to_numpy()
    order = np.argsort(codes, kind="stable")
    bits = "".join(np.where(ordered["correct"].to_numpy(dtype=bool)[order], "1", "0"))
    ends = np.cumsum(np.bincount(codes, minlength=len(out)))
    starts = np.r_[0, ends[:-1]] if len(ends) else ends
    out["pattern"] = [bits[a:b] for a, b in zip(starts, ends, strict=True)]
    out = out[out["complete"] & (out["rounds"] == out["last_round"] + 1)]
    kinds: dict[tuple[str, bool], str] = {}
    categories = []
    for key in zip(
        out["pattern"].to_numpy(dtype=object),
        out["extraction"].to_numpy(dtype=object) == "paper",
        strict=True,
    ):
        if key not in kinds:
            kinds[key] = behaviour_category(*key)
        categories.append(kinds[key])
    out = out.assign(category=categories)
    drop = ["complete", "rounds", "last_round", "extraction"]
    return out.drop(columns=drop).reset_index(drop=True)


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
