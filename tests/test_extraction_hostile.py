"""Hostile replies never crash or hang a parser: megabytes, deep nesting, no answer at all.

The parsers are written to be linear; these tests feed them inputs that make backtracking
regular expressions or recursive parsers blow up, at sizes where a quadratic parser would not
finish within the test run.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from societies.tasks.extract import (
    boxed_contents,
    last_boxed,
    paper_boxed,
    paper_chess,
    paper_mmlu,
    paper_paren_tokens,
    robust_chess,
    robust_mmlu,
)
from societies.tasks.generic import GenericTask
from societies.tasks.math import canonical, strip_outer_braces
from societies.tasks.numeric import last_number, robust_number

#: A linear parser finishes these in seconds even on a loaded machine; a quadratic one would
#: take hours, so it fails here instead of stalling the run.
pytestmark = pytest.mark.timeout(60)

OPTIONS = ["Ribosome", "Mitochondrion", "Golgi apparatus", "Lysosome"]
PARSERS: dict[str, Callable[[str], object]] = {
    "robust_mmlu": robust_mmlu,
    "paper_mmlu": lambda t: paper_mmlu(t, OPTIONS),
    "last_boxed": last_boxed,
    "paper_boxed": paper_boxed,
    "canonical": canonical,
    "robust_chess": robust_chess,
    "paper_chess": paper_chess,
    "robust_number": robust_number,
    "last_number": last_number,
    "generic": GenericTask().parse,
}
FRAGMENTS = [
    "\\boxed{", "\\fbox{", "{", "}", "\\{", "\\}", "(", ")", "A", "B)", "(C)", "x", "_",
    "final answer", "Final Answer:", "answer is", "the answer is ", "Answer:", "####", " ",
    "\t", "\n", "*", "e4", "f1c4", "Bc4", "9", "1,", ".5", "-", "$", "combined answer", "é",
    "\\frac{1}{2}", "^\\circ", "x = ", "\\text{ cm}", "ribosome",
]  # fmt: skip
MB = 1_000_000


def _hostile(size: int = MB) -> dict[str, str]:
    deep = 10_000
    return {
        "spaces after a marker": "the answer is" + " " * size + "x",
        "tabs after a marker": "Final answer:" + "\t" * size,
        "a run of word characters": "a" * size,
        "a run of digits": "1" * size + "x",
        "digits and commas": "1," * (size // 2) + "x",
        "open parentheses": "(" * size,
        "words before a parenthesis": "word " * (size // 5) + ")",
        "braces nested 10,000 deep": "\\boxed{" + "{" * deep + "x" + "}" * deep + "}",
        "boxes nested 10,000 deep": "\\boxed{" * deep + "1" + "}" * deep,
        "boxes never closed": "\\boxed{" * (size // 7),
        "braces only opened": "{" * size,
        "braces only closed": "}" * size,
        "repeated final answers": "final answer " * (size // 13),
        "repeated markers with squares": "final answer: i9 " * (size // 17),
        "repeated answer statements": "The answer is " * (size // 14),
        "newlines": "\n" * size,
        "nothing": "",
    }


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_megabyte_inputs_do_not_hang_or_crash(name: str) -> None:
    parse = PARSERS[name]
    for text in _hostile().values():
        result = parse(text)
        assert result is None or isinstance(result, str)


def test_deep_nesting_is_read_without_recursion() -> None:
    deep = 10_000
    text = "\\boxed{" + "{" * deep + "42" + "}" * deep + "}"
    assert last_boxed(text) == "{" * deep + "42" + "}" * deep
    assert canonical(last_boxed(text) or "") == "42"
    assert paper_boxed(text) == "{" * deep + "42" + "}" * deep
    boxes = "\\boxed{" * deep + "7" + "}" * deep
    contents = boxed_contents(boxes)
    assert len(contents) == deep and contents[0] == "7"
    assert strip_outer_braces("{" * deep + "a}{b" + "}" * deep) == "{a}{b}"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=60), st.integers(1, 3000))
def test_any_mixture_of_fragments(parts: list[str], repeat: int) -> None:
    text = "".join(parts) * (repeat if len("".join(parts)) * repeat <= 200_000 else 1)
    for parse in PARSERS.values():
        result = parse(text)
        assert result is None or isinstance(result, str)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_unicode(text: str) -> None:
    for parse in PARSERS.values():
        result = parse(text)
        assert result is None or isinstance(result, str)


_REFERENCE_TOKENS = re.compile(r"\((\w+)\)|(\w+)\)")


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(["(", ")", " ", "A", "b", "_", "é", "1", "\n"]), st.text()),
        max_size=40,
    )
)
def test_paren_tokens_equal_the_reference_regex(parts: list[str]) -> None:
    """The linear scanner returns exactly what the reference's backtracking regex finds."""
    text = "".join(parts)
    expected = [a or b for a, b in _REFERENCE_TOKENS.findall(text)]
    assert paper_paren_tokens(text) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["\\boxed{", "{", "}", "a", "1", " "]), max_size=50))
def test_boxed_contents_are_balanced(parts: list[str]) -> None:
    text = "".join(parts)
    for content in boxed_contents(text):
        depth = 0
        for ch in content.replace("\\boxed{", "{"):
            depth += (ch == "{") - (ch == "}")
            assert depth >= 0
        assert depth == 0
