"""Agent traits: the social disposition each agent is told to hold."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Trait:
    name: str
    character: str
    #: A persona template owned by the trait itself; ``None`` uses the prompt set's template.
    persona: str | None = None


#: The study's two traits, with its exact character phrases (MachineSoM, src/prompt.py).
BUILTIN_TRAITS: dict[str, Trait] = {
    "easy-going": Trait(
        "easy-going",
        "are objective and unbiased, and you can be persuaded if other agent's answers make sense",
    ),
    "overconfident": Trait(
        "overconfident",
        "are confident in your answer and often persuades other agents to believe in you",
    ),
}
