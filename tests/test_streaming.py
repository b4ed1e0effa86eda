"""The streaming scheduler: trees enter in order as capacity frees up, so the trees in memory
do not grow with the number of cases, and the first cases are finished first."""

from __future__ import annotations

import asyncio
from pathlib import Path

from societies.backends.base import GenerateRequest, GenerateResult, ModelBackend, NoOptions, Usage
from societies.config.models import ModelSpec
from tests.helpers import experiment, run, same_backend, write

PER_TREE = 3 * (1 + 7)  # 3 agents, machinesom role-play turn, 2 rounds: 7 tree nodes


class Tracking(ModelBackend[NoOptions]):
    """Answers after a loop turn, recording which trees (repeat, case, society) are open."""

    name = "tracking"

    def __init__(self) -> None:
        super().__init__(ModelSpec(backend="tracking", name="tracking"))
        self.left: dict[tuple[int, str, str], int] = {}
        self.open_trees: set[tuple[int, str, str]] = set()
        self.most_open = 0
        self.first_seen: list[tuple[int, str, str]] = []
        self.finished: list[tuple[int, str, str]] = []

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        key = request.key
        assert key is not None
        tree = (key.repeat, key.case_id, key.society)
        if tree not in self.left:
            self.left[tree] = PER_TREE
            self.first_seen.append(tree)
        self.open_trees.add(tree)
        self.most_open = max(self.most_open, len(self.open_trees))
        await asyncio.sleep(0)
        self.left[tree] -= 1
        if self.left[tree] == 0:
            self.open_trees.discard(tree)
            self.finished.append(tree)
        return GenerateResult("I pick (A).", Usage(1, 1))


def tracked_run(tmp_path: Path, cases: int, name: str) -> Tracking:
    exp = experiment(rounds=2, concurrency=4)
    exp["task"]["cases"] = cases
    model = Tracking()
    _, summary = run(write(tmp_path, exp, f"{name}.yaml"), tmp_path / name, same_backend(model))
    assert summary.made == cases * 2 * PER_TREE
    return model


def test_trees_in_flight_do_not_grow_with_the_number_of_cases(tmp_path: Path) -> None:
    few = tracked_run(tmp_path, 3, "few")
    many = tracked_run(tmp_path, 30, "many")
    # The limit is 4 calls; trees are admitted while fewer calls than that are ready.
    assert many.most_open <= 2 * 4
    assert many.most_open <= max(few.most_open, 4) + 1
    # Trees enter in order: repeat, then case (data order), then society.
    societies = ["3oc", "2eg-1oc"]  # easy_going: [0, 2], in the experiment's order
    expected = [(0, f"qs-{c:02d}", s) for c in range(1, 31) for s in societies]
    assert many.first_seen == expected


def test_the_first_cases_are_finished_before_the_last_ones_start(tmp_path: Path) -> None:
    model = tracked_run(tmp_path, 30, "order")
    first_tree_done = model.finished.index(model.first_seen[0])
    last_tree_started = model.first_seen[-1]
    # The first tree is complete long before the last one is asked anything.
    assert first_tree_done < len(model.finished) // 4
    assert last_tree_started not in model.finished[: len(model.finished) // 2]
