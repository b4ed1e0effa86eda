"""A task configured entirely in the experiment file, for a user's own JSONL data.

    task:
      name: jsonl
      data: data/capitals.jsonl
      options:
        question: "What is the capital of {{ country }}?"   # jinja2 over the row's fields
        answer_field: capital
        scoring: exact          # exact | regex | numeric
        marker: "answer:"       # the reply's answer follows the last occurrence of this

With ``scoring: regex`` the answer field holds a regular expression the answer must match in
full; ``numeric`` compares numbers exactly (``tolerance`` allows a relative difference).
The answer is the rest of the line after the last marker; with no marker, ``robust`` reads no
answer and ``paper`` (lenient, as the study's parsers were) takes the last non-empty line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from random import Random
from typing import Any, Literal

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from societies.errors import ConfigError, DataError
from societies.tasks.base import Case, Extraction, register_task
from societies.tasks.numeric import last_number, number
from societies.tasks.rows import Row, RowTask, field

#: Answers longer than this are not matched against a user's pattern (a pattern we did not
#: write may backtrack; bounding its input bounds its time).
MAX_ANSWER_CHARS = 1000


class GenericOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str = Field("{{ question }}", description="jinja2 template over the row's fields.")
    answer_field: str = "answer"
    scoring: Literal["exact", "regex", "numeric"] = "exact"
    case_sensitive: bool = False
    tolerance: float = Field(0.0, ge=0, description="Relative tolerance for numeric scoring.")
    marker: str = Field("answer:", min_length=1)
    expert_role: str = "an expert"
    skip_invalid: bool = False


def normalise(text: str, case_sensitive: bool) -> str:
    text = " ".join(text.split()).strip(" .*`'\"")
    return text if case_sensitive else text.casefold()


@register_task
class GenericTask(RowTask):
    name = "jsonl"

    def __init__(
        self, extraction: Extraction = "robust", options: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(extraction, options)
        try:
            self.config = GenericOptions.model_validate(dict(options or {}))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in ("task", "options", *err["loc"]))
            raise ConfigError(err["msg"], path=where) from None
        env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
        try:
            self.template = env.from_string(self.config.question)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"template: {exc.message}", path="task.options.question") from None
        self.expert = self.config.expert_role

    @property
    def expert_role(self) -> str:  # type: ignore[override]
        return self.expert

    def check_row(self, where: str, row: Row) -> Row:
        answer = field(where, row, self.config.answer_field, (str, int, float))
        if self.config.scoring == "regex":
            try:
                re.compile(str(answer))
            except re.error as exc:
                raise DataError(
                    f"{where}: {self.config.answer_field}: bad pattern ({exc})"
                ) from None
        if self.config.scoring == "numeric" and number(str(answer)) is None:
            raise DataError(f"{where}: {self.config.answer_field}: {answer!r} is not a number")
        try:
            question = self.template.render(row)
        except jinja2.UndefinedError as exc:
            raise DataError(f"{where}: question template: {exc.message}") from None
        except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError,
                RecursionError) as exc:  # fmt: skip
            raise DataError(f"{where}: question template: {type(exc).__name__}: {exc}") from None
        return dict(row, question=question)

    def target_of(self, fields: Mapping[str, Any]) -> Any:
        return str(fields[self.config.answer_field])

    def prompt_vars(self, case: Case) -> dict[str, Any]:
        return {"question": case.fields["question"]}

    def parse(self, reply: str) -> str | None:
        lowered = reply.lower()
        pos = lowered.rfind(self.config.marker.lower())
        if pos != -1:
            rest = reply[pos + len(self.config.marker) :].lstrip()
            line = rest.split("\n", 1)[0]
        elif self.extraction == "paper":
            lines = [x for x in reply.split("\n") if x.strip()]
            line = lines[-1] if lines else ""
        else:
            return None
        if self.config.scoring == "numeric":
            return last_number(line)
        answer = normalise(line, self.config.case_sensitive)
        return answer or None

    def score(self, answer: str | None, case: Case) -> bool:
        if answer is None:
            return False
        target = str(case.target)
        if self.config.scoring == "numeric":
            want = number(target)
            if want is None:
                return False
            a, b = Decimal(answer), Decimal(want)
            return abs(a - b) <= Decimal(str(self.config.tolerance)) * abs(b)
        if self.config.scoring == "regex":
            if len(answer) > MAX_ANSWER_CHARS:
                return False
            flags = 0 if self.config.case_sensitive else re.IGNORECASE
            return re.fullmatch(target, answer, flags) is not None
        return answer == normalise(target, self.config.case_sensitive)

    def right_answer(self, case: Case) -> str | None:
        if self.config.scoring == "regex":
            example = case.fields.get("example")
            return None if example is None else normalise(str(example), self.config.case_sensitive)
        if self.config.scoring == "numeric":
            return number(str(case.target))
        return normalise(str(case.target), self.config.case_sensitive) or None

    def wrong_answer(self, case: Case) -> str | None:
        if self.config.scoring == "numeric":
            value = number(str(case.target))
            return None if value is None else number(str(Decimal(value) + 1))
        if self.config.scoring == "regex":
            return None  # a pattern's complement cannot be vouched for
        return normalise(f"not {case.target}", self.config.case_sensitive)

    def answer_reply(self, case: Case, answer: str) -> str | None:
        return f"I am certain of this one.\n{self.config.marker} {answer}"

    def sim_answer(self, case: Case, correct: bool, rng: Random) -> str:
        target = str(case.target)
        if self.config.scoring == "regex":
            target = str(case.fields.get("example", target))
        if self.config.scoring == "numeric":
            value = number(target) or "0"
            if correct:
                return value
            return number(str(Decimal(value) + rng.choice((-2, -1, 1, 2)))) or "0"
        answer = target if correct else rng.choice(("unknown", "none of these", f"not {target}"))
        return normalise(answer, self.config.case_sensitive)

    def sim_reply(self, case: Case, answer: str | None, rng: Random) -> str:
        if answer is None:
            return "I am not sure about this one."
        return f"Thinking it over, I am fairly confident.\nAnswer: {answer}"
