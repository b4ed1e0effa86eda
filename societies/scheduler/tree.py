"""The prefix tree of a case's strategies: a round shared by several strategies runs once.

With n agents and a set of strategies, a case costs ``n * (p + N)`` model calls, where N is the
number of distinct prefixes (round 0 included) and p is 1 when the prompt set asks each agent a
role-play turn first (machinesom), else 0. For every combination of R debate/reflection rounds,
N = 2^(R+1) - 1: with 3 agents and 3 rounds, 3 * (1 + 15) = 48 calls in machinesom mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from societies.society.strategy import RoundPlan, Strategy

if TYPE_CHECKING:
    from societies.plan.plan import Plan


@dataclass(eq=False)
class Node:
    #: Prefix code of the rounds leading here: ``""`` for round 0, ``"01"`` after two rounds.
    code: str
    round: int
    #: Each agent's pattern in this round; ``None`` at the root (the first answer).
    plan: RoundPlan | None
    children: list[Node] = field(default_factory=list)

    def walk(self) -> list[Node]:
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


def build_tree(strategies: Sequence[Strategy]) -> Node:
    root = Node("", 0, None)
    for strategy in strategies:
        node = root
        for r, plan in enumerate(strategy.rounds, start=1):
            code = strategy.node_codes[r]
            child = next((c for c in node.children if c.code == code), None)
            if child is None:
                child = Node(code, r, plan)
                node.children.append(child)
            node = child
    return root


def calls_per_tree(
    n_agents: int, strategies: Sequence[Strategy], persona_call: bool, judge: str | None = None
) -> int:
    """Model calls for one case and society: ``n * (p + distinct prefixes)``, ``n`` counting
    the model agents only (a confederate makes no call), plus the judge's calls: one per node
    (``judge="every"``) or one per leaf (``"last"``; at most, as a stopping rule that ends a
    branch early judges once where the branch stops)."""
    nodes = build_tree(strategies).walk()
    judged = 0
    if judge == "every":
        judged = len(nodes)
    elif judge == "last":
        judged = sum(1 for node in nodes if not node.children)
    return n_agents * (int(persona_call) + len(nodes)) + judged


def planned_calls(plan: Plan) -> int:
    """Every call of a plan: the tree formula over repeats, cases and societies (and the
    questionnaire's calls, ``scheduler/questionnaire.py``)."""
    total = sum(
        calls_per_tree(
            len(s.model_agents),
            plan.strategies_for(s, case, repeat),
            plan.prompts.persona_call,
            None if s.judge is None else s.judge.after,
        )
        for repeat in range(plan.experiment.repeats)
        for case in plan.cases
        for s in plan.societies
    )
    if plan.questionnaire:
        from societies.scheduler.questionnaire import questionnaire_calls

        total += sum(
            questionnaire_calls(
                plan, build_tree(plan.strategies_for(s, case, repeat)), len(s.model_agents)
            )
            for repeat in range(plan.experiment.repeats)
            for case in plan.cases
            for s in plan.societies
        )
    return total


def calls_all_combinations(n_agents: int, n_rounds: int, persona_call: bool) -> int:
    """Closed form for every debate/reflection combination of ``n_rounds`` rounds."""
    return n_agents * (int(persona_call) + (1 << (n_rounds + 1)) - 1)
