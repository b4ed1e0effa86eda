"""Re-parse and re-score a stored run under an extraction mode, without any model call.

Every stored reply is read again by the task's parser and scored again; the run's recorded
extraction mode becomes the new one, so that later analysis grades majority answers the
same way as the individual ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from societies.analysis.stored import stored_task
from societies.store.db import RunStore
from societies.tasks.base import Extraction


@dataclass(frozen=True, slots=True)
class RescoreSummary:
    replies: int
    changed_answers: int
    unparsed_before: int
    unparsed_after: int
    correct_before: int
    correct_after: int


def rescore(store: RunStore, extraction: Extraction) -> RescoreSummary:
    task, cases, _ = stored_task(store, extraction)
    rows = store.replies()
    updates = []
    changed = unparsed_before = unparsed_after = correct_before = correct_after = 0
    for call_id, case_id, reply, old_answer, old_correct in rows:
        case = cases[case_id]
        answer = task.parse_case(reply, case)
        correct = int(task.score(answer, case))
        changed += answer != old_answer
        unparsed_before += old_answer is None
        unparsed_after += answer is None
        correct_before += bool(old_correct)
        correct_after += correct
        updates.append((answer, correct, call_id))
    store.update_answers(updates, extraction)
    return RescoreSummary(
        len(rows), changed, unparsed_before, unparsed_after, correct_before, correct_after
    )


@dataclass(frozen=True, slots=True)
class UnparsedCell:
    society: str
    agent: int
    round: int
    unparsed: int
    replies: int


def unparsed_rates(store: RunStore) -> list[UnparsedCell]:
    """Replies that commit to no answer, per society x agent x round (calls that returned a
    reply only; failed and overflowing calls are outcomes of their own)."""
    return [UnparsedCell(*row) for row in store.unparsed_counts()]
