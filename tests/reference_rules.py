"""The reference's answer rules written out for the tests, independently of the project's
code: straight from their description in ``societies/tasks/extract.py`` and
``societies/tasks/math.py`` (the study's ``src/evaluate.py``), with its own regular
expression where it used one. Fine on short test replies only (the regex backtracks)."""

from __future__ import annotations

import re

UNITS = (
    " \\text{ positive integers, } 12 \\text{ negative integers}", " \\, \\text{cm}",
    "\\, \\text{cm}", "^\\circ", "{\\text{Degree of }} g(x) = ", "°", " \\text{ cm}",
    "\\text{ cm}", "b = ", "r = ", "x = ", "m+n = ", "\\text{ degrees}", "x + y + z = ",
)  # fmt: skip


def mmlu(text: str, options: list[str]) -> str | None:
    """ "combined answer" gives nothing; the last ``X)`` token whose upper case sorts within
    "A".."D"; the option whose text occurs last (lower-cased) wins when there is one."""
    if "combined answer" in text.lower():
        return None
    letter = None
    for a, b in reversed(re.findall(r"\((\w+)\)|(\w+)\)", text)):
        if "A" <= (a or b).upper() <= "D":
            letter = (a or b).upper()
            break
    found = [text.lower().rfind(o.lower().strip()) for o in options]
    return "ABCD"[found.index(max(found))] if max(found) >= 0 else letter


def math_grade(answer: str, target: str) -> bool:
    """The special product spelling is 2520; units stripped; braces removed; three comma
    numbers lose their commas; lower-cased exact match."""
    if answer == "{2^3 \\times 3^2 \\times 5 \\times 7}":
        answer = "2520"
    for unit in UNITS:
        answer = answer.replace(unit, "")
    answer = answer.replace("{", "").replace("}", "")
    if answer in ("978,121", "99,940,009", "979,121"):
        answer = answer.replace(",", "")
    return answer.lower() == target.lower()
