"""Multiple choice, MMLU-style: a question and four options A-D, one correct letter."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from random import Random
from typing import Any

from societies.errors import DataError
from societies.tasks.base import Case, Task, read_jsonl, register_task, require

LETTERS = "ABCD"

# "(B)" anywhere; the study's protocol asks for "(X) at the end of your response".
_PAREN = re.compile(r"\(([A-Da-d])\)")
# Explicit statements: "the answer is B", "Answer: (C)", "final answer: D".
_STATED = re.compile(r"(?i:final\s+answer|answer\s+is|answer\s*:)\s*\(?\s*([A-D])\b\)?")

_EXPLANATIONS = (
    "Weighing each option against the key facts, {text} is the one that holds up.",
    "Eliminating the options that contradict the definitions leaves {text}.",
    "Working it through step by step, the consistent choice is {text}.",
    "The other options each fail on a detail, so the best supported one is {text}.",
)


@register_task
class MultipleChoiceTask(Task):
    """MMLU-style multiple choice from JSONL rows ``{id, question, choices[4], answer}``."""

    name = "mmlu"
    expert_role = "an expert in biology, chemistry, computer science, mathematics, physics"

    def load(self, path: Path) -> list[Case]:
        cases: list[Case] = []
        seen: set[str] = set()
        for number, row in read_jsonl(path):
            require(path, number, row, "question", lambda v: isinstance(v, str) and bool(v.strip()))
            require(
                path,
                number,
                row,
                "choices",
                lambda v: (
                    isinstance(v, list) and len(v) == 4 and all(isinstance(c, str) for c in v)
                ),
            )
            require(path, number, row, "answer", lambda v: isinstance(v, str) and v in LETTERS)
            case_id = str(row.get("id", f"{path.stem}-{len(cases)}"))
            if case_id in seen:
                raise DataError(f"{path}:{number}: id: duplicate id {case_id!r}")
            seen.add(case_id)
            fields = dict(row, id=case_id)
            cases.append(Case(case_id, len(cases), fields, self.target_of(fields)))
        return cases

    def target_of(self, fields: Mapping[str, Any]) -> Any:
        return str(fields["answer"])

    def prompt_vars(self, case: Case) -> dict[str, Any]:
        return {
            "question": case.fields["question"],
            "choices": list(case.fields["choices"]),
            "letters": LETTERS,
        }

    def parse(self, reply: str) -> str | None:
        if self.extraction == "paper":
            return self._parse_paper(reply)
        stated = _STATED.findall(reply)
        if stated:
            return str(stated[-1]).upper()
        paren = _PAREN.findall(reply)
        return str(paren[-1]).upper() if paren else None

    def _parse_paper(self, reply: str) -> str | None:
        # The reference's rule: the last "(X)" letter; a reply mentioning "combined answer"
        # commits to none. (Option-text matching arrives with the full task issue.)
        if "combined answer" in reply.lower():
            return None
        for match in reversed(_PAREN.findall(reply)):
            return str(match).upper()
        return None

    def score(self, answer: str | None, case: Case) -> bool:
        return answer is not None and answer == case.target

    def sim_answer(self, case: Case, correct: bool, rng: Random) -> str:
        if correct:
            return str(case.target)
        return rng.choice([letter for letter in LETTERS if letter != case.target])

    def sim_reply(self, case: Case, answer: str | None, rng: Random) -> str:
        if answer is None:
            return "Several of these options look defensible and I cannot settle on one."
        text = case.fields["choices"][LETTERS.index(answer)]
        explanation = rng.choice(_EXPLANATIONS).format(text=f'"{text}"')
        return f"{explanation} The answer is ({answer})."
