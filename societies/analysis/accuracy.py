"""The society's vote: the study's majority, the one rule every accuracy (CLI, ``load_run``,
report) goes through, and the other decision protocols an experiment may choose."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """The most common answer, with the study's rules.

    A missing answer (``None``) counts as a value like any other; when two or more values tie
    for the most votes (all answers different included) there is no answer, scored wrong. A
    single agent's answer is its own majority.
    """
    if not answers:
        return None
    ranked = Counter(answers).most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


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
