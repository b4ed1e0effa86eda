"""When a round's answers count as agreement: the stopping rule's test.

It lives with the tasks, the layer below both its users: the scheduler, which ends a branch of
the prefix tree when it holds, and analysis, which carries the stopped answers to the rounds
that were not run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def stop_threshold(stop: str | float | None) -> float | None:
    """``unanimous`` is a share of 1; ``None`` never stops."""
    if stop is None:
        return None
    return 1.0 if stop == "unanimous" else float(stop)


def agreed(answers: Sequence[str | None], threshold: float) -> bool:
    """Whether the most common answer is held by at least ``threshold`` of the agents.

    A missing answer (``None``) agrees with nothing, so agents that all failed to answer never
    stop a branch. With a threshold of 1/2 or less, two answers may tie at the top and both pass.
    """
    counts = Counter(a for a in answers if a is not None)
    if not answers or not counts:
        return False
    return max(counts.values()) >= threshold * len(answers) - 1e-9
