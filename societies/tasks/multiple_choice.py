"""Multiple choice, MMLU-style: a question and four options A-D, one correct letter.

Layouts read: JSONL / JSON / parquet rows ``{question, choices[4], answer}`` where ``answer`` is
a letter or (Hugging Face ``cais/mmlu``) an index 0-3, with an optional ``subject`` or
``expert_role``; and the original MMLU CSV (``question, A, B, C, D, answer``, with or without a
header row) whose file name carries the subject (``high_school_biology_test.csv``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from random import Random
from typing import Any

from societies.errors import DataError
from societies.tasks.base import Case, case_pick, register_task
from societies.tasks.extract import paper_mmlu, robust_mmlu
from societies.tasks.rows import Located, Row, RowTask, field, read_csv_rows, read_rows

LETTERS = "ABCD"
_CSV_COLUMNS = ("question", "A", "B", "C", "D", "answer")
_SPLIT_SUFFIXES = ("_test", "_dev", "_val", "_validation", "_train", "_auxiliary_train")

_EXPLANATIONS = (
    "Weighing each option against the key facts, {text} is the one that holds up.",
    "Eliminating the options that contradict the definitions leaves {text}.",
    "Working it through step by step, the consistent choice is {text}.",
    "The other options each fail on a detail, so the best supported one is {text}.",
)


def subject_of_file(path: Path) -> str | None:
    """``high_school_biology_test.csv`` -> ``high school biology``."""
    stem = path.stem
    for suffix in _SPLIT_SUFFIXES:
        if stem.endswith(suffix):
            return stem[: -len(suffix)].replace("_", " ")
    return None


@register_task
class MultipleChoiceTask(RowTask):
    """MMLU-style multiple choice."""

    name = "mmlu"
    expert_role = "an expert in biology, chemistry, computer science, mathematics, physics"

    def rows(self, path: Path) -> Iterator[Located]:
        if path.suffix.lower() == ".csv":
            return self._csv_rows(path)
        return read_rows(path)

    def _csv_rows(self, path: Path) -> Iterator[Located]:
        subject = subject_of_file(path)
        first = True
        columns: tuple[str, ...] = _CSV_COLUMNS
        for line, values in read_csv_rows(path):
            if first:
                first = False
                lowered = [v.strip().lower() for v in values]
                if "question" in lowered and "answer" in lowered:
                    columns = tuple(
                        v.strip() if v.strip() in LETTERS else v.strip().lower() for v in values
                    )
                    continue
            where = f"{path}:{line}"
            if len(values) != len(columns):
                yield Located(
                    where, {}, f"{where}: expected {len(columns)} columns, found {len(values)}"
                )
                continue
            raw = dict(zip(columns, values, strict=True))
            row: Row = {
                "question": raw.get("question"),
                "choices": [raw.get(letter) for letter in LETTERS],
                "answer": (raw.get("answer") or "").strip(),
            }
            if raw.get("id"):
                row["id"] = raw["id"]
            if subject:
                row["subject"] = subject
            yield Located(where, row)

    def check_row(self, where: str, row: Row) -> Row:
        field(where, row, "question", str)
        choices = field(where, row, "choices", list)
        if len(choices) != 4 or not all(isinstance(c, str) for c in choices):
            raise DataError(f"{where}: choices: expected 4 strings, found {len(choices)} values")
        answer = field(where, row, "answer", (str, int))
        if isinstance(answer, int):
            if not 0 <= answer < 4:
                raise DataError(f"{where}: answer: index {answer} is not 0-3")
            answer = LETTERS[answer]
        elif answer.strip().upper() in LETTERS and len(answer.strip()) == 1:
            answer = answer.strip().upper()
        else:
            raise DataError(f"{where}: answer: {answer!r} is not one of A, B, C, D")
        out = dict(row, answer=answer, choices=list(choices))
        subject = row.get("subject")
        if not row.get("expert_role") and isinstance(subject, str) and subject.strip():
            out["expert_role"] = "an expert in " + subject.strip().replace("_", " ")
        return out

    def target_of(self, fields: Mapping[str, Any]) -> Any:
        return str(fields["answer"])

    def prompt_vars(self, case: Case) -> dict[str, Any]:
        return {
            "question": case.fields["question"],
            "choices": list(case.fields["choices"]),
            "letters": LETTERS,
        }

    def parse(self, reply: str) -> str | None:
        """Without the case, ``paper`` mode can only use the letter half of its rule."""
        if self.extraction == "paper":
            return paper_mmlu(reply, [])
        return robust_mmlu(reply)

    def parse_case(self, reply: str, case: Case) -> str | None:
        if self.extraction == "paper":
            return paper_mmlu(reply, [str(c) for c in case.fields["choices"]])
        return robust_mmlu(reply)

    def score(self, answer: str | None, case: Case) -> bool:
        return answer is not None and answer == case.target

    def right_answer(self, case: Case) -> str | None:
        return str(case.target)

    def wrong_answer(self, case: Case) -> str | None:
        return case_pick(case, [letter for letter in LETTERS if letter != case.target])

    def answer_options(self, case: Case) -> list[str] | None:
        return list(LETTERS)

    def option_text(self, case: Case, answer: str) -> str | None:
        if answer not in LETTERS:
            return None
        return str(case.fields["choices"][LETTERS.index(answer)])

    def answer_reply(self, case: Case, answer: str) -> str | None:
        text = self.option_text(case, answer)
        return f'I am sure of it: "{text}" is right. The answer is ({answer}).'

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
