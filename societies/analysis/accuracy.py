"""The society's vote: the study's majority, the one rule every accuracy (CLI, ``load_run``,
report) goes through, and the other decision protocols an experiment may choose."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """The most common answer, with the study's rules.

    A missing answer (``None``) counts as a value like any other; when two or more values tie
    for the most votes (all answers different included) there is no answer, scored wrong. A
    single agent's answer is its own majority. (One group through :func:`majority_codes`.)
    """
    if not answers:
        return None
    codes, values = factorize(answers)
    winner = int(majority_codes(np.zeros(len(codes), dtype=np.int64), codes, 1)[0])
    return None if winner < 0 else values[winner]


def factorize(answers: Any) -> tuple[np.ndarray, list[Any]]:
    """Each answer's code and the distinct answers (``None`` a value of its own, as the vote
    counts it; any missing value is ``None``)."""
    codes, uniques = pd.factorize(np.asarray(answers, dtype=object), use_na_sentinel=False)
    values = [None if pd.isna(u) else u for u in uniques]
    return codes.astype(np.int64, copy=False), values


def majority_codes(groups: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """The study's majority rule over many groups at once, the one implementation of it: per
    group, the code of its most common value, or -1 when two or more values tie for the most
    (all different included). ``groups``: each answer's group in ``0..n_groups-1``;
    ``codes``: each answer's value (>= 0; see :func:`factorize`)."""
    out = np.full(n_groups, -1, dtype=np.int64)
    if len(codes) == 0:
        return out
    width = int(codes.max()) + 1
    pairs, counts = np.unique(groups.astype(np.int64) * width + codes, return_counts=True)
    group_of = pairs // width
    starts = np.flatnonzero(np.r_[True, np.diff(group_of) != 0])
    lengths = np.diff(np.r_[starts, len(pairs)])
    top = np.repeat(np.maximum.reduceat(counts, starts), lengths)
    at_top = counts == top
    n_top = np.add.reduceat(at_top.astype(np.int64), starts)
    first_top = starts + _first_true(at_top, starts)  # every group has a value at its top
    single = n_top == 1
    out[group_of[starts[single]]] = (pairs % width)[first_top[single]]
    return out


def _first_true(flags: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per segment (from each start to the next), the offset of its first true flag."""
    hits = np.flatnonzero(flags)
    first = np.searchsorted(hits, starts)
    offsets: np.ndarray = hits[np.minimum(first, len(hits) - 1)] - starts
    return offsets


def unanimity_vote(answers: Sequence[str | None]) -> str | None:
    """The answer every agent gives; otherwise (or when it is no answer) no answer."""
    if not answers or len(set(answers)) != 1:
        return None
    return answers[0]


def weighted_vote(answers: Sequence[str | None], weights: Sequence[float]) -> str | None:
    """The answer with the largest total weight; a tie at the top is no answer. A missing
    answer is a value like any other, as in :func:`majority_vote`."""
    totals: dict[str | None, float] = {}
    for answer, weight in zip(answers, weights, strict=True):
        totals[answer] = totals.get(answer, 0.0) + weight
    if not totals:
        return None
    ranked = sorted(totals.values(), reverse=True)
    if len(ranked) > 1 and abs(ranked[0] - ranked[1]) < 1e-12:
        return None
    return max(totals, key=lambda a: totals[a])


def decide(protocol: Any, answers: Sequence[str | None]) -> str | None:
    """A society's answer under its decision protocol as the experiment file spells it:
    ``"majority"``, ``"unanimity"`` or ``{"weighted": [w0, w1, ...]}``."""
    if isinstance(protocol, Mapping):
        return weighted_vote(answers, protocol["weighted"])
    if protocol == "unanimity":
        return unanimity_vote(answers)
    return majority_vote(answers)
