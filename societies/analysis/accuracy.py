"""Accuracy by majority vote, the study's way, straight from a run store."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from societies.store.db import RunStore
from societies.tasks.base import Task, get_task_class


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


@dataclass(frozen=True, slots=True)
class AccuracyCell:
    society: str
    strategy: str
    round: int
    correct: int
    total: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else float("nan")


def task_of_store(store: RunStore) -> Task:
    run = store.run_row()
    if run is None:
        raise ValueError(f"{store.path}: no run recorded")
    config = json.loads(run["config_json"])
    return get_task_class(run["task"])(run["extraction"], config["task"].get("options"))


def accuracy_table(store: RunStore, task: Task | None = None) -> list[AccuracyCell]:
    """Accuracy of the agents' majority per society x strategy x round, over cases and repeats.

    A node whose calls are not all stored (an interrupted run) is left out of its cell.
    """
    task = task or task_of_store(store)
    cases = {
        cid: task.case_from_stored(cid, idx, json.loads(fields))
        for cid, idx, fields in store.con.execute("SELECT case_id, idx, fields_json FROM cases")
    }
    sizes = dict(store.con.execute("SELECT society, COUNT(*) FROM agents GROUP BY society"))
    votes: dict[tuple[int, str, str, str], list[str | None]] = defaultdict(list)
    for repeat, case_id, society, node, answer in store.con.execute(
        "SELECT repeat, case_id, society, node, answer FROM calls WHERE step = 'answer' "
        "ORDER BY agent"
    ):
        votes[(repeat, case_id, society, node)].append(answer)
    cells: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0])
    for repeat, case_id, society, strategy, round_index, node in store.con.execute(
        "SELECT repeat, case_id, society, strategy, round, node FROM strategy_nodes"
    ):
        answers = votes.get((repeat, case_id, society, node))
        if answers is None or len(answers) != sizes.get(society) or case_id not in cases:
            continue
        cell = cells[(society, strategy, round_index)]
        cell[0] += int(task.score(majority_vote(answers), cases[case_id]))
        cell[1] += 1
    return [
        AccuracyCell(society, strategy, r, c, t)
        for (society, strategy, r), (c, t) in sorted(cells.items())
    ]
