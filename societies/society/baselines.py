"""Baselines: societies of k agents that answer once, independently, and vote.

A baseline is an ordinary society with a single strategy of no rounds (``BASELINE_STRATEGY``),
so its calls go through the prefix tree, the store and resume like any other: per case it
costs ``k * (p + 1)`` calls. Its answer is the majority of the k first answers (k = 1: the
single agent's answer; k > 1: self-consistency).
"""

from __future__ import annotations

import math

#: The name of a baseline's only strategy (no rounds after the first answer).
BASELINE_STRATEGY = "vote"


def baseline_name(name: str | None, k: int | None, match: str | None) -> str:
    """The baseline's society name: the given one, ``single`` for one agent, ``sc-<k>``, or
    ``sc-<society>`` when k matches a society's budget."""
    if name:
        return name
    if match is not None:
        return f"sc-{match}"
    return "single" if k == 1 else f"sc-{k}"


def budget_k(society_tokens: float, sample_tokens: float) -> int:
    """The k whose mean token cost per case is closest to a society's: the society's tokens
    per case over the tokens of one independent answer (its persona turn included), rounded
    half up, at least 1."""
    if sample_tokens <= 0 or society_tokens != society_tokens:
        return 1
    return max(1, math.floor(society_tokens / sample_tokens + 0.5))
