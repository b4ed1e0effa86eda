"""The manipulation check: rating items each agent answers before round 0 and after its last
round, on a branch of its conversation the debate never sees.

One place for what an item is (the built-in short set and the user's, resolved from the
experiment file), how a rating is read back from a reply, and how a questionnaire call is
keyed: the scheduler asks, the simulated model answers, analysis reads, all through this
module, so a reply is parsed one way everywhere.

Keying: calls are unique on (society, repeat, case, node, agent, step). All items go in one
call per agent and timing. The pre call is keyed on ``PRE_NODE`` (``^``, "before the first
node", which no node code holds: a pattern may not use it as its code when a questionnaire
is set); a post call on the node where the agent's branch ends (a leaf, or the node a
stopping rule ended it at). Keying the pre call on the round-0 node ``""`` would collide with
a post call there (``rounds: 0``, or a branch stopped at round 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from societies.config.models import QuestionnaireItemSpec, QuestionnaireSpec

#: The node a pre-debate questionnaire call is keyed on (see the module doc).
PRE_NODE = "^"

Timing = Literal["pre", "post"]
Measure = Literal["confidence", "openness"]


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    text: str
    lo: int
    hi: int
    #: Labels of scale points, in scale order.
    anchors: tuple[tuple[int, str], ...] = ()
    #: What the item measures (read by the simulated model; ``None``: nothing it knows).
    measures: Measure | None = None


def _builtin(id_: str, text: str, low: str, high: str, measures: Measure) -> Item:
    return Item(id_, text, 1, 7, ((1, low), (7, high)), measures)


#: The built-in short set (``questionnaire: standard``): two items on confidence, two on
#: openness to persuasion, each on a 1-7 scale with labelled ends.
STANDARD: tuple[Item, ...] = (
    _builtin("confident", "How confident are you that your own answers are right?",
             "not at all confident", "completely confident", "confidence"),
    _builtin("hold_ground", "When another agent disagrees with you, how firmly do you keep your "
             "answer?", "not at all firmly", "completely firmly", "confidence"),
    _builtin("persuadable", "How willing are you to change your answer when another agent gives "
             "a good argument?", "not at all willing", "completely willing", "openness"),
    _builtin("weigh_others", "How much weight do you give to the other agents' answers?",
             "no weight at all", "a great deal of weight", "openness"),
)  # fmt: skip


def resolve_items(spec: QuestionnaireSpec | str | None) -> tuple[Item, ...]:
    """The items an experiment asks (none without a questionnaire)."""
    if spec is None:
        return ()
    if isinstance(spec, str) or spec.items == "standard":
        return STANDARD
    return tuple(_item(i) for i in spec.items)


def _item(spec: QuestionnaireItemSpec) -> Item:
    anchors = tuple(sorted(spec.scale.anchors.items()))
    return Item(spec.id, spec.text, spec.scale.min, spec.scale.max, anchors, spec.measures)


# -- reading ratings back --------------------------------------------------------------------
#: Why a rating is missing: no number, several different numbers, a number off the scale, or
#: no reply at all (the call failed or overflowed).
Problem = Literal["missing", "ambiguous", "out_of_scale", "no_reply"]

_NUMBER = r"-?\d+(?:\.\d+)?"
#: "2: 5", "2. 5", "Q2) 5", "**2.** 5"; not "2.5" (a decimal is not a label).
_LABEL = re.compile(
    r"^[\s*#>_-]*(?:q(?:uestion)?|item)?\s*(\d{1,3})\s*(?:[:)\]]|\.(?!\d))\s*(.*)$", re.I
)
#: A labelled item further along a line: "1: 5, 2: 3".
_SPLIT = re.compile(r"[;,]\s*(?=(?:q(?:uestion)?\s*)?\d{1,3}\s*[:)]\s*\S)", re.I)
_FRACTION = re.compile(rf"({_NUMBER})\s*(?:/|out\s+of\b)\s*\d+", re.I)
_ASIDES = (
    re.compile(r"\([^()]*\)"),  # parenthesised asides: anchors, scale reminders
    re.compile(rf"\b(?:on\s+)?(?:a\s+)?scale\s+(?:of|from)\s+{_NUMBER}\s*(?:to|-|–)\s*{_NUMBER}",
               re.I),
    re.compile(rf"\bfrom\s+{_NUMBER}\s*(?:to|-|–)\s*{_NUMBER}", re.I),
    re.compile(rf"\bbetween\s+{_NUMBER}\s+and\s+{_NUMBER}", re.I),
    re.compile(rf"{_NUMBER}\s*=\s*[^,;\n]*"),  # an echoed anchor: "7 = completely"
)  # fmt: skip
_NUMBERS = re.compile(rf"(?<![\w.]){_NUMBER}(?![\w%])")
_WORDS = {
    w: i
    for i, w in enumerate(
        ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    )
}
_WORD = re.compile(r"\b(" + "|".join(_WORDS) + r")\b", re.I)


@dataclass(frozen=True, slots=True)
class Rating:
    value: float | None
    problem: Problem | None = None


def read_rating(text: str, lo: int, hi: int) -> Rating:
    """One rating from the text about one item: "5", "5/7", "I'd say 5 out of 7", "five".
    Scale reminders and echoed anchors are ignored; two different numbers are ambiguous,
    and a number off the scale is not a rating (both recorded as missing, with the reason)."""
    text = text.replace("*", " ")
    fraction = _FRACTION.search(text)
    if fraction is not None:
        value = float(fraction.group(1))
    else:
        for aside in _ASIDES:
            text = aside.sub(" ", text)
        found = {float(n) for n in _NUMBERS.findall(text)}
        if not found:
            found = {float(_WORDS[w.lower()]) for w in _WORD.findall(text)}
        if not found:
            return Rating(None, "missing")
        if len(found) > 1:
            return Rating(None, "ambiguous")
        value = found.pop()
    if not lo <= value <= hi:
        return Rating(None, "out_of_scale")
    return Rating(value)


def read_ratings(reply: str | None, items: tuple[Item, ...]) -> list[Rating]:
    """Each item's rating in a reply to the questionnaire: the line labelled with its number
    ("2: 5", "2. 5", "Q2) 5") or its id ("persuadable: 5"); a single item may also be
    answered by the whole reply. The first label of an item wins."""
    if reply is None:
        return [Rating(None, "no_reply") for _ in items]
    by_id = {item.id.lower(): n for n, item in enumerate(items, 1)}
    found: dict[int, str] = {}
    for line in reply.splitlines():
        for part in _SPLIT.split(line):
            n, rest = _labelled(part, by_id)
            if n is not None and 1 <= n <= len(items):
                found.setdefault(n, rest)
    if len(items) == 1 and 1 not in found:
        found[1] = reply
    return [
        read_rating(found[n], item.lo, item.hi) if n in found else Rating(None, "missing")
        for n, item in enumerate(items, 1)
    ]


def _labelled(part: str, by_id: dict[str, int]) -> tuple[int | None, str]:
    match = _LABEL.match(part)
    if match is not None:
        return int(match.group(1)), match.group(2)
    head, sep, rest = part.strip(" \t*#>-_").partition(":")
    if sep and head.strip(" *_").lower() in by_id:
        return by_id[head.strip(" *_").lower()], rest
    return None, ""
