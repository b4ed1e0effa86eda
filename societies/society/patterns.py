"""Thinking patterns: what an agent is asked to do in a round after its first answer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pattern:
    name: str
    #: One character used in strategy strings ("010").
    code: str
    #: Debate-like patterns show the agent the latest replies of the other agents that use a
    #: peer-seeing pattern in the same round (the study's Figure 5 setting).
    sees_peers: bool
    template: str | None = None


#: The study's patterns; strategy digit 0 = debate, 1 = reflection.
BUILTIN_PATTERNS: dict[str, Pattern] = {
    "debate": Pattern("debate", "0", sees_peers=True),
    "reflection": Pattern("reflection", "1", sees_peers=False),
}
