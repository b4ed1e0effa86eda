"""Confederates: what a scripted agent answers for a case, and the reply it gives.

A confederate never asks a model. Its answer comes from the task (``Task.right_answer`` /
``Task.wrong_answer``) or is fixed by the experiment, and its reply is the experiment's template
or the task's built-in ``answer_reply``. Everything is checked for every case before a run
starts: an answer the task cannot produce, or a reply the task does not read back as that
answer, is the experiment's error, not a surprise mid-run.
"""

from __future__ import annotations

from societies.config.collab import Fixed
from societies.errors import ConfigError
from societies.society.agents import Script
from societies.society.prompts import PromptSet
from societies.tasks.base import Case, Task


class ScriptError(ValueError):
    """A confederate that cannot say what its script asks on some case; ``field`` is the
    setting at fault (``answer`` or ``reply``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def scripted_answer(script: Script, task: Task, case: Case) -> str:
    """The answer the confederate gives on ``case`` (the same in every round)."""
    answer = script.answer
    if isinstance(answer, Fixed):
        options = task.answer_options(case)
        if options is not None and answer.fixed not in options:
            raise ScriptError(
                "answer",
                f"task {task.name} cannot give the answer '{answer.fixed}' "
                f"(case {case.id} admits {', '.join(options)})",
            )
        return answer.fixed
    found = task.right_answer(case) if answer == "right" else task.wrong_answer(case)
    if found is None:
        raise ScriptError(
            "answer", f"task {task.name} cannot give a {answer} answer (case {case.id})"
        )
    return found


def scripted_reply(
    prompts: PromptSet, script: Script, task: Task, case: Case, round_index: int
) -> tuple[str, str | None]:
    """The confederate's reply on ``case`` in a round, and the answer the task reads in it."""
    answer = scripted_answer(script, task, case)
    if script.reply is None:
        text = task.answer_reply(case, answer)
        if text is None:
            raise ScriptError(
                "reply", f"task {task.name} has no built-in confederate reply: give `reply`"
            )
    else:
        extra = {"answer": answer, "round": round_index, "option": task.option_text(case, answer)}
        try:
            text = prompts.render_case(script.reply, task, case, extra)
        except ConfigError as exc:
            raise ScriptError("reply", f"case {case.id}: {exc.message}") from None
    return text, task.parse_case(text, case)


def check_script(prompts: PromptSet, script: Script, task: Task, case: Case) -> None:
    """Refuse a script whose reply does not read back as its answer on ``case`` (a wrong
    answer that scores right, a fixed answer the task parses as another or as none)."""
    answer = scripted_answer(script, task, case)
    text, parsed = scripted_reply(prompts, script, task, case, 1)
    field = "answer" if script.reply is None else "reply"
    if parsed is None:
        raise ScriptError(
            field, f"case {case.id}: the reply {text[:80]!r} gives no answer the task reads"
        )
    if script.answer == "wrong" and task.score(parsed, case):
        raise ScriptError(field, f"case {case.id}: the wrong answer's reply reads as right")
    if script.answer == "right" and not task.score(parsed, case):
        raise ScriptError(field, f"case {case.id}: the right answer's reply reads as wrong")
    if isinstance(script.answer, Fixed) and parsed != answer:
        raise ScriptError(field, f"case {case.id}: the reply reads as '{parsed}', not '{answer}'")
