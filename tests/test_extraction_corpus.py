"""The hand-written reply corpora: every reply reads as expected in both extraction modes."""

from __future__ import annotations

import pytest

from societies.tasks.base import Case
from societies.tasks.chess import ChessTask
from societies.tasks.generic import GenericTask
from societies.tasks.math import MathTask
from societies.tasks.multiple_choice import MultipleChoiceTask
from societies.tasks.numeric import NumericTask
from tests import corpus_chess, corpus_generic, corpus_math, corpus_mmlu, corpus_numeric


def test_corpora_are_large_enough() -> None:
    assert len(corpus_mmlu.CORPUS) >= 60
    assert len(corpus_math.CORPUS) >= 60
    assert len(corpus_chess.CORPUS) >= 60
    assert len(corpus_numeric.CORPUS) >= 60
    assert len(corpus_generic.CORPUS) >= 60


@pytest.mark.parametrize(("options", "reply", "paper", "robust"), corpus_mmlu.CORPUS)
def test_mmlu(options: list[str], reply: str, paper: str | None, robust: str | None) -> None:
    case = Case("q", 0, {"question": "?", "choices": options, "answer": "B"}, "B")
    assert MultipleChoiceTask("paper").parse_case(reply, case) == paper
    assert MultipleChoiceTask("robust").parse_case(reply, case) == robust
    for mode, expected in (("paper", paper), ("robust", robust)):
        task = MultipleChoiceTask(mode)  # type: ignore[arg-type]
        assert task.score(task.parse_case(reply, case), case) == (expected == "B")


@pytest.mark.parametrize(
    ("reply", "target", "paper", "paper_ok", "robust", "robust_ok"), corpus_math.CORPUS
)
def test_math(
    reply: str,
    target: str,
    paper: str | None,
    paper_ok: bool,
    robust: str | None,
    robust_ok: bool,
) -> None:
    fields = {"problem": "?", "answer": target}
    for mode, answer, ok in (("paper", paper, paper_ok), ("robust", robust, robust_ok)):
        task = MathTask(mode)  # type: ignore[arg-type]
        case = Case("m", 0, fields, task.target_of(fields))
        parsed = task.parse(reply)
        assert parsed == answer, mode
        assert task.score(parsed, case) is ok, mode


@pytest.mark.parametrize(("reply", "paper", "robust"), corpus_chess.CORPUS)
def test_chess(reply: str, paper: str | None, robust: str | None) -> None:
    fields = {"input": corpus_chess.GAME, "target": sorted(corpus_chess.LEGAL)}
    for mode, expected in (("paper", paper), ("robust", robust)):
        task = ChessTask(mode)  # type: ignore[arg-type]
        case = Case("c", 0, fields, task.target_of(fields))
        assert task.parse(reply) == expected, mode
        assert task.score(expected, case) is (expected in corpus_chess.LEGAL)


@pytest.mark.parametrize(("reply", "paper", "robust"), corpus_numeric.CORPUS)
def test_numeric(reply: str, paper: str | None, robust: str | None) -> None:
    case = Case("n", 0, {"question": "?", "target": "330"}, "330")
    for mode, expected in (("paper", paper), ("robust", robust)):
        task = NumericTask(mode)  # type: ignore[arg-type]
        answer = task.parse(reply)
        assert answer == expected, mode
        assert task.score(answer, case) is (expected == "330")


GENERIC_TARGETS = {"exact": "Paris", "regex": "paris( france)?", "numeric": "100"}
GENERIC_CORRECT = {"exact": {"paris"}, "regex": {"paris", "paris france"}, "numeric": {"100"}}


@pytest.mark.parametrize(("scoring", "reply", "paper", "robust"), corpus_generic.CORPUS)
def test_generic(scoring: str, reply: str, paper: str | None, robust: str | None) -> None:
    fields = {"question": "?", "answer": GENERIC_TARGETS[scoring]}
    for mode, expected in (("paper", paper), ("robust", robust)):
        task = GenericTask(mode, {"scoring": scoring})  # type: ignore[arg-type]
        case = Case("g", 0, fields, task.target_of(fields))
        answer = task.parse(reply)
        assert answer == expected, mode
        assert task.score(answer, case) is (expected in GENERIC_CORRECT[scoring])
