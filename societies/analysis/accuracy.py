"""The study's majority vote: the one rule every accuracy (CLI, ``load_run``, report) goes
through."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


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
