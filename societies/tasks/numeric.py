"""Free-form numeric answers, GSM8K-style (and the generated arithmetic problems).

Rows ``{id?, question, answer}``; ``answer`` is a number or a GSM8K solution ending in
``#### 72``. Answers are compared as exact decimals, so ``18``, ``18.0`` and ``$18`` agree.

``paper`` follows Du et al.'s debate code (the study ran no numeric task): the last number
anywhere in the reply. ``robust`` takes an explicit statement — ``\\boxed{N}``, ``#### N``,
"the answer is N", "Answer: N" — else a number standing alone on the last line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from random import Random
from typing import Any

from societies.errors import DataError
from societies.tasks.base import Case, case_pick, register_task
from societies.tasks.extract import last_boxed
from societies.tasks.rows import Row, RowTask, field

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_STATED = re.compile(
    r"(?:answer is|answer:|answer =|####)[ \t]*(?:\*+[ \t]*)?(?:\$[ \t]*)?(-?[\d.][\d,.]*)"
)


def number(text: str) -> str | None:
    """A canonical decimal string (``1,000.50`` -> ``1000.5``), or None if not a number."""
    cleaned = text.strip().replace(",", "").replace("$", "").rstrip(".")
    if not cleaned or len(cleaned) > 64:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def last_number(text: str) -> str | None:
    found = _NUMBER.findall(text)
    return number(found[-1]) if found else None


def robust_number(text: str) -> str | None:
    boxed = last_boxed(text)
    if boxed is not None:
        return number(boxed) or last_number(boxed)
    stated = _STATED.findall(text.lower())
    if stated:
        return number(stated[-1])
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return None
    found = _NUMBER.findall(lines[-1])
    return number(found[0]) if len(found) == 1 else None


_REASONS = (
    "Working through the quantities one step at a time",
    "Following the order of operations carefully",
    "Adding up each part and checking the total",
)


@register_task
class NumericTask(RowTask):
    name = "gsm8k"
    expert_role = "an expert skilled in solving math word problems"

    def check_row(self, where: str, row: Row) -> Row:
        field(where, row, "question", str)
        raw = field(where, row, "answer", (str, int, float))
        text = str(raw)
        if "####" in text:
            text = text.rsplit("####", 1)[1]
        value = number(text)
        if value is None:
            raise DataError(f"{where}: answer: {str(raw)[-40:]!r} does not end in a number")
        return dict(row, target=value)

    def target_of(self, fields: Mapping[str, Any]) -> Any:
        return str(fields["target"])

    def prompt_vars(self, case: Case) -> dict[str, Any]:
        return {"question": case.fields["question"]}

    def parse(self, reply: str) -> str | None:
        return last_number(reply) if self.extraction == "paper" else robust_number(reply)

    def score(self, answer: str | None, case: Case) -> bool:
        if answer is None:
            return False
        try:
            return Decimal(answer) == Decimal(str(case.target))
        except InvalidOperation:
            return False

    def right_answer(self, case: Case) -> str | None:
        return number(str(case.target))

    def wrong_answer(self, case: Case) -> str | None:
        target = Decimal(str(case.target))
        return number(str(target + Decimal(case_pick(case, ["-10", "-2", "-1", "1", "2", "10"]))))

    def answer_reply(self, case: Case, answer: str) -> str | None:
        return f"I checked every step of the calculation. The answer is {answer}."

    def sim_answer(self, case: Case, correct: bool, rng: Random) -> str:
        target = Decimal(str(case.target))
        if correct:
            return str(case.target)
        return number(str(target + rng.choice((-10, -2, -1, 1, 2, 10)))) or "0"

    def sim_reply(self, case: Case, answer: str | None, rng: Random) -> str:
        reason = rng.choice(_REASONS)
        if answer is None:
            return f"{reason}, I get two different totals and cannot tell which is right."
        return f"{reason} gives the total. The answer is {answer}."
