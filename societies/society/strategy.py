"""Strategies: a thinking pattern per round, optionally one per agent.

A strategy string has one character per round (``010``); a parenthesised group gives one
character per agent for that round (``0(100)1``: in round 2 agent 0 reflects, the others debate).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from random import Random

from societies.society.patterns import Pattern

#: One round: the pattern name of each agent, in agent order.
RoundPlan = tuple[str, ...]


class StrategyError(ValueError):
    """A strategy that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Strategy:
    name: str
    #: The strategy written with pattern codes; equals ``name`` unless the user named it.
    code: str
    #: ``rounds[r]`` is the plan of round r+1 (round 0 is everyone's first answer).
    rounds: tuple[RoundPlan, ...]
    #: ``node_codes[r]`` identifies the tree node reached after r rounds (``""`` is round 0).
    node_codes: tuple[str, ...]
    #: In each all-debate round one agent, drawn per case (seeded), reflects instead.
    random_reflector: bool = False


def round_code(plan: RoundPlan, codes: Mapping[str, str]) -> str:
    first = plan[0]
    if all(p == first for p in plan):
        return codes[first]
    return "(" + "".join(codes[p] for p in plan) + ")"


def parse_strategy_string(
    text: str, patterns: Mapping[str, Pattern], n_agents: int
) -> tuple[RoundPlan, ...]:
    by_code = {p.code: p.name for p in patterns.values()}
    known = ", ".join(f"{c}={n}" for c, n in by_code.items())
    rounds: list[RoundPlan] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "(":
            end = text.find(")", i)
            if end < 0:
                raise StrategyError(f"strategy '{text}': unclosed '(' at position {i}")
            group = text[i + 1 : end]
            if len(group) != n_agents:
                raise StrategyError(
                    f"strategy '{text}': group '({group})' has {len(group)} patterns, "
                    f"the society has {n_agents} agents"
                )
            plan = []
            for j, g in enumerate(group):
                if g not in by_code:
                    raise StrategyError(
                        f"strategy '{text}': bad character '{g}' at position {i + 1 + j} "
                        f"(known: {known})"
                    )
                plan.append(by_code[g])
            rounds.append(tuple(plan))
            i = end + 1
        elif ch in by_code:
            rounds.append((by_code[ch],) * n_agents)
            i += 1
        else:
            raise StrategyError(
                f"strategy '{text}': bad character '{ch}' at position {i} (known: {known})"
            )
    return tuple(rounds)


def make_strategy(
    name: str | None,
    rounds: tuple[RoundPlan, ...],
    patterns: Mapping[str, Pattern],
    *,
    random_reflector: bool = False,
) -> Strategy:
    codes = {p.name: p.code for p in patterns.values()}
    prefixes = [""]
    for plan in rounds:
        prefixes.append(prefixes[-1] + round_code(plan, codes))
    return Strategy(name or prefixes[-1], prefixes[-1], rounds, tuple(prefixes), random_reflector)


def realize(strategy: Strategy, seed: str, patterns: Mapping[str, Pattern]) -> Strategy:
    """The concrete strategy of one case: each all-debate round of a random-reflector strategy
    gets one reflecting agent. The draw is seeded by the realised prefix, so strategies that
    share a prefix still share its tree nodes (and its calls)."""
    if not strategy.random_reflector:
        return strategy
    codes = {p.name: p.code for p in patterns.values()}
    rounds: list[RoundPlan] = []
    prefix = ""
    for plan in strategy.rounds:
        if all(p == "debate" for p in plan) and len(plan) > 1:
            digest = hashlib.blake2b(f"{seed}|{prefix}".encode(), digest_size=8).digest()
            k = Random(int.from_bytes(digest, "big")).randrange(len(plan))
            plan = tuple("reflection" if i == k else p for i, p in enumerate(plan))
        rounds.append(plan)
        prefix += round_code(plan, codes)
    realized = make_strategy(strategy.name, tuple(rounds), patterns)
    return dataclasses.replace(realized, random_reflector=True)


def plan_from_names(
    spec: Sequence[str | Sequence[str]], patterns: Mapping[str, Pattern], n_agents: int
) -> tuple[RoundPlan, ...]:
    rounds: list[RoundPlan] = []
    for r, item in enumerate(spec):
        names = [item] * n_agents if isinstance(item, str) else list(item)
        if len(names) != n_agents:
            raise StrategyError(
                f"round {r + 1} lists {len(names)} patterns, the society has {n_agents} agents"
            )
        for name in names:
            if name not in patterns:
                raise StrategyError(
                    f"unknown pattern '{name}' (known: {', '.join(sorted(patterns))})"
                )
        rounds.append(tuple(names))
    return tuple(rounds)


def all_combinations(n_rounds: int, patterns: Mapping[str, Pattern]) -> list[str]:
    """Every debate/reflection string of ``n_rounds`` rounds in binary order: 2^R strategies."""
    codes = [patterns["debate"].code, patterns["reflection"].code]
    return ["".join(c) for c in itertools.product(codes, repeat=n_rounds)]
