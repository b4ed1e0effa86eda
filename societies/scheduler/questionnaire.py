"""Questionnaire calls in the prefix tree (the manipulation check).

Each agent answers the questionnaire twice per tree, on a leaf call off its conversation that
no later call continues, so the debate never sees it: before round 0 (off its persona: the
role-play turn, or the system message) and after its last round (off its whole conversation,
at each node where its branch ends). Keys: ``societies.society.questionnaire``. A tree of n
agents whose strategies end in L distinct nodes adds ``n * (1 + L)`` calls; a stopping rule
that ends a branch early asks there instead, once for all the leaves below it.
"""

from __future__ import annotations

from societies.backends.base import ChatMessage
from societies.plan.plan import Plan
from societies.scheduler.tree import Node


def leaves(node: Node) -> int:
    """Nodes of the subtree at ``node`` where a branch ends."""
    return sum(1 for n in node.walk() if not n.children)


def questionnaire_calls(plan: Plan, tree: Node, n_agents: int) -> int:
    """Questionnaire calls of one tree at most (a stopping rule can only save some)."""
    return n_agents * (1 + leaves(tree)) if plan.questionnaire else 0


class QuestionnaireTurns:
    """The two user turns of a run, rendered once."""

    def __init__(self, plan: Plan) -> None:
        prompts, items = plan.prompts, plan.questionnaire
        self.pre: ChatMessage = {"role": "user", "content": prompts.questionnaire(items, "pre")}
        self.post: ChatMessage = {"role": "user", "content": prompts.questionnaire(items, "post")}
