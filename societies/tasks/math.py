"""MATH (Hendrycks et al.): competition problems whose answer is the last ``\\boxed{}``.

Layouts: the MATH release (a directory of one JSON per problem, or any JSON / JSONL of such
records, ``{problem, level, type, solution}`` — the answer is the last ``\\boxed{}`` of the
solution) and JSONL with an explicit ``answer``.

``paper`` reads and grades as the reference did: an answer is the raw content of the last
``\\boxed{`` (braces kept, so ``\\boxed{{12}}`` reads ``{12}``); the answers of one society
round are unified before the vote (``MathTask.vote_rule``); a voted answer is graded by
stripping the reference's unit strings, removing braces, lower-casing and comparing exactly.
``robust`` canonicalises the boxed answer (so that votes on ``0.5`` and ``\\frac{1}{2}``
agree) and grades by mathematical equivalence with math-verify.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from random import Random
from typing import Any

from societies.errors import DataError
from societies.tasks.base import Case, VoteRule, case_pick, register_task
from societies.tasks.extract import last_boxed, paper_boxed
from societies.tasks.rows import Located, Row, RowTask, field, read_rows

log = logging.getLogger(__name__)

#: Strings the reference removes from an answer before voting and grading (its units and
#: variable prefixes, in its order).
PAPER_STRIP = (
    " \\text{ positive integers, } 12 \\text{ negative integers}",
    " \\, \\text{cm}",
    "\\, \\text{cm}",
    "^\\circ",
    "{\\text{Degree of }} g(x) = ",
    "°",
    " \\text{ cm}",
    "\\text{ cm}",
    "b = ",
    "r = ",
    "x = ",
    "m+n = ",
    "\\text{ degrees}",
    "x + y + z = ",
)
#: Answers the reference rewrote by hand before grading: only this exact string, braces
#: included (what ``\\boxed{{...}}`` reads); without the inner braces it is graded wrong.
_PAPER_SPECIAL = {"{2^3 \\times 3^2 \\times 5 \\times 7}": "2520"}
#: Comma-separated values the reference graded with the commas removed.
_PAPER_COMMAS = ("978,121", "99,940,009", "979,121")

#: Longest answer handed to math-verify; longer ones are compared as canonical strings only,
#: so a hostile reply cannot make sympy work without bound.
MAX_VERIFY_CHARS = 200

#: Only strings this short are tried as numbers (the number patterns are not linear-time).
_NUMERIC_CHARS = 64
_SPACING = re.compile(r"\\[,;:! ]|\\left|\\right|~")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_DECIMAL = re.compile(r"^-?(?:\d+\.?\d*|\.\d+)$")
_FRACTION = re.compile(r"^(-?)\\frac\{(-?\d+)\}\{(\d+)\}$|^(-?\d+)/(\d+)$")


def paper_unify(answers: Sequence[str | None]) -> list[str | None]:
    """The reference's clean-up of one society round before its vote (and before conformity).

    First every unit string of ``PAPER_STRIP`` is removed from every answer. Then, agent by
    agent in order, an answer ``x`` is replaced by another agent's ``{x}`` when one exists,
    looking at the other agents in order and using the answers as already replaced: so in
    ``["12", "{12}", "{{12}}"]`` every answer becomes ``{{12}}``. Only answers of the same
    round are unified (a ``{0}`` in round 2 never meets the ``0`` of round 1), and an answer
    never loses braces (``{12}`` does not become ``12``). ``None`` stays ``None``.
    """
    out: list[str | None] = []
    for answer in answers:
        if answer is not None:
            for junk in PAPER_STRIP:
                answer = answer.replace(junk, "")
        out.append(answer)
    for i in range(len(out)):
        for j in range(len(out)):
            current, other = out[i], out[j]
            if i != j and current is not None and other == "{" + current + "}":
                out[i] = other
    return out


def strip_outer_braces(text: str) -> str:
    """``{{x}}`` -> ``x`` but ``{a}{b}`` unchanged, in one pass however deep the nesting."""
    n = len(text)
    k = 0
    while k < n // 2 and text[k] == "{" and text[n - 1 - k] == "}":
        k += 1
    if k == 0:
        return text
    depth, layers = 0, k
    for i, ch in enumerate(text):
        depth += (ch == "{") - (ch == "}")
        if depth < 0:
            return text
        if k - 1 <= i <= n - k - 1:
            layers = min(layers, depth)
    return text if depth != 0 else text[layers : n - layers]


def paper_grade(answer: str, target: str) -> bool:
    """The reference's grading of one (voted) answer against the dataset's string."""
    answer = _PAPER_SPECIAL.get(answer, answer)
    for junk in PAPER_STRIP:
        answer = answer.replace(junk, "")
    answer = answer.replace("{", "").replace("}", "")
    if answer in _PAPER_COMMAS:
        answer = answer.replace(",", "")
    return answer.lower() == target.lower()


def canonical(answer: str) -> str | None:
    """A canonical spelling of a boxed answer, so that equal answers vote together: layout
    spacing, ``\\dfrac``, degree marks and ``$`` go; plain numbers become integers or reduced
    ``\\frac{p}{q}``. Empty means no answer."""
    text = answer.strip().strip("$").strip()
    text = _SPACING.sub("", text)
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("{,}", ",")
    text = text.replace("^{\\circ}", "").replace("^\\circ", "").replace("°", "")
    text = text.replace("\\boxed", "").replace("\\fbox", "")
    text = "".join(text.split()).rstrip(".")
    text = strip_outer_braces(text)
    if not text:
        return None
    if len(text) > _NUMERIC_CHARS:
        return text
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    value: Fraction | None = None
    if _DECIMAL.match(text):
        value = Fraction(text)
    else:
        m = _FRACTION.match(text)
        if m:
            sign, num, den = (m.group(1), m.group(2), m.group(3)) if m.group(2) else (
                "", m.group(4), m.group(5)
            )  # fmt: skip
            if int(den) != 0:
                value = Fraction(int(num), int(den)) * (-1 if sign else 1)
    if value is None:
        return text
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


@lru_cache(maxsize=65536)
def equivalent(answer: str, target: str) -> bool:
    """Mathematical equivalence by math-verify, on answers short enough to be safe.

    math-verify's own timeout uses ``signal.alarm``, which only the main thread may set; off
    the main thread it runs without one, and the length bound is the guard.
    """
    if answer == target:
        return True
    if len(answer) > MAX_VERIFY_CHARS or len(target) > MAX_VERIFY_CHARS:
        return False
    from math_verify import parse, verify

    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    try:
        gold = parse(f"${target}$", parsing_timeout=timeout)
        pred = parse(f"${answer}$", parsing_timeout=timeout)
        if not gold or not pred:
            return False
        return bool(verify(gold, pred, timeout_seconds=timeout))
    except Exception as exc:  # math-verify and sympy raise many kinds on odd input
        log.debug("math-verify failed on %r vs %r: %s", answer, target, exc)
        return False


_WRONG_OFFSETS = (-3, -2, -1, 1, 2, 3, 5, 10)
_REASONS = (
    "Simplifying step by step and checking the result against the conditions",
    "Setting up the equation and solving it carefully",
    "Working through the algebra and verifying each step",
    "Breaking the problem into cases and combining them",
)


@register_task
class MathTask(RowTask):
    name = "math"
    expert_role = "an expert skilled in solving mathematical problems"

    def rows(self, path: Path) -> Iterator[Located]:
        for located in read_rows(path):
            if path.is_dir() and "id" not in located.row and located.error is None:
                rel = Path(located.where).relative_to(path).with_suffix("")
                located = Located(located.where, dict(located.row, id=rel.as_posix()))
            yield located

    def check_row(self, where: str, row: Row) -> Row:
        field(where, row, "problem", str)
        answer = row.get("answer")
        if answer is None or (isinstance(answer, str) and not answer.strip()):
            solution = row.get("solution")
            if not isinstance(solution, str):
                raise DataError(f"{where}: answer: missing (and no solution to take it from)")
            answer = last_boxed(solution)
            if answer is None or not answer.strip():
                raise DataError(f"{where}: solution: has no \\boxed{{}} answer")
        if isinstance(answer, int | float) and not isinstance(answer, bool):
            answer = str(answer)
        if not isinstance(answer, str):
            raise DataError(f"{where}: answer: invalid value {answer!r}")
        return dict(row, answer=answer.strip())

    def target_of(self, fields: Mapping[str, Any]) -> Any:
        return str(fields["answer"])

    def prompt_vars(self, case: Case) -> dict[str, Any]:
        return {"problem": case.fields["problem"], "question": case.fields["problem"]}

    def parse(self, reply: str) -> str | None:
        if self.extraction == "paper":
            return paper_boxed(reply)
        boxed = last_boxed(reply)
        return None if boxed is None else canonical(boxed)

    def vote_rule(self) -> VoteRule | None:
        return paper_unify if self.extraction == "paper" else None

    def score(self, answer: str | None, case: Case) -> bool:
        if answer is None:
            return False
        target = str(case.target)
        if self.extraction == "paper":
            return paper_grade(answer, target)
        gold = canonical(target) or target
        return answer == gold or equivalent(answer, gold)

    def right_answer(self, case: Case) -> str | None:
        return canonical(str(case.target)) or str(case.target)

    def wrong_answer(self, case: Case) -> str | None:
        target = canonical(str(case.target)) or str(case.target)
        try:
            value = Fraction(target) if _DECIMAL.match(target) else None
        except (ValueError, ZeroDivisionError):
            value = None
        if value is not None:
            offset = Fraction(case_pick(case, [str(o) for o in _WRONG_OFFSETS]))
            return canonical(str(value + offset)) or None
        return None  # a symbolic answer: no wrong answer the task can vouch for

    def answer_reply(self, case: Case, answer: str) -> str | None:
        return f"I verified each step. The answer is $\\boxed{{{answer}}}$."

    def sim_answer(self, case: Case, correct: bool, rng: Random) -> str:
        target = canonical(str(case.target)) or str(case.target)
        if correct:
            return target
        try:
            value = Fraction(target) if _DECIMAL.match(target) else None
        except (ValueError, ZeroDivisionError):
            value = None
        if value is not None:
            return canonical(str(value + rng.choice(_WRONG_OFFSETS))) or "0"
        return rng.choice(["0", "1", "2", f"2{target}", f"-{target}"])

    def sim_reply(self, case: Case, answer: str | None, rng: Random) -> str:
        reason = rng.choice(_REASONS)
        if answer is None:
            return f"{reason} leads to two candidate values, and I cannot tell which is right."
        return f"{reason} gives the result. The answer is $\\boxed{{{answer}}}$."
