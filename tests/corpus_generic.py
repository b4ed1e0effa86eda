"""Realistic replies for the YAML-configured JSONL task (marker "answer:").

Written for this project. Each entry: (scoring, reply, paper answer, robust answer). The target
is "Paris" for exact scoring, the pattern "paris( france)?" for regex, and 100 for numeric.
Both modes read the rest of the line after the last marker; without one, ``paper`` takes the
last non-empty line and ``robust`` reads nothing.
"""

from __future__ import annotations

Entry = tuple[str, str, str | None, str | None]

CORPUS: list[Entry] = [
    # -- exact ----------------------------------------------------------------------
    ("exact", "Answer: Paris", "paris", "paris"),
    ("exact", "The capital is on the Seine.\nAnswer: Paris", "paris", "paris"),
    ("exact", "answer: paris", "paris", "paris"),
    ("exact", "ANSWER: PARIS", "paris", "paris"),
    ("exact", "Answer: **Paris**", "paris", "paris"),
    ("exact", "Answer: Paris.", "paris", "paris"),
    ("exact", "Answer:   Paris   ", "paris", "paris"),
    ("exact", "Answer: 'Paris'", "paris", "paris"),
    ("exact", 'Answer: "Paris"', "paris", "paris"),
    ("exact", "Answer: `Paris`", "paris", "paris"),
    ("exact", "Answer:\nParis", "paris", "paris"),
    ("exact", "Final answer: Paris", "paris", "paris"),
    ("exact", "My answer: Paris", "paris", "paris"),
    ("exact", "Answer: Paris\nIt has been the capital since the 10th century.", "paris", "paris"),
    ("exact", "Answer: Lyon", "lyon", "lyon"),
    ("exact", "Answer: Paris, France", "paris, france", "paris, france"),
    ("exact", "Answer: The capital is Paris", "the capital is paris", "the capital is paris"),
    (
        "exact",
        "Answer: Paris (the City of Light)",
        "paris (the city of light)",
        "paris (the city of light)",
    ),
    ("exact", "Other agents said Lyon. Answer: Paris", "paris", "paris"),
    ("exact", "Answer: Lyon\nOn reflection, Answer: Paris", "paris", "paris"),
    ("exact", "The answer: Paris", "paris", "paris"),
    ("exact", "Paris", "paris", None),
    ("exact", "It is Paris.", "it is paris", None),
    ("exact", "The capital of France is Paris.\n\nParis", "paris", None),
    ("exact", "I don't know.", "i don't know", None),
    ("exact", "", None, None),
    ("exact", "Answer:", None, None),
    ("exact", "Answer: ", None, None),
    ("exact", "Answer:\n\n", None, None),
    ("exact", "Answer: ...", None, None),
    ("exact", "Answer: paris\u00a0", "paris", "paris"),
    ("exact", "Answer: Pa ris", "pa ris", "pa ris"),
    ("exact", "answers: Paris", "answers: paris", None),
    # -- regex ------------------------------------------------------------------------
    ("regex", "Answer: Paris", "paris", "paris"),
    ("regex", "Answer: Paris France", "paris france", "paris france"),
    ("regex", "Answer: Paris, France", "paris, france", "paris, france"),
    ("regex", "Answer: paris", "paris", "paris"),
    ("regex", "Answer: Parisian", "parisian", "parisian"),
    ("regex", "Answer: Lyon", "lyon", "lyon"),
    ("regex", "Paris France", "paris france", None),
    ("regex", "Answer: **Paris France**", "paris france", "paris france"),
    ("regex", "Answer:  Paris   France ", "paris france", "paris france"),
    ("regex", "No idea, sorry.", "no idea, sorry", None),
    ("regex", "Answer: P", "p", "p"),
    # -- numeric ------------------------------------------------------------------------
    ("numeric", "Answer: 100", "100", "100"),
    ("numeric", "Answer: 100.0", "100", "100"),
    ("numeric", "Answer: 1e2", "2", "2"),
    ("numeric", "Answer: $100", "100", "100"),
    ("numeric", "Answer: 100 meters", "100", "100"),
    ("numeric", "Answer: about 99 or 100", "100", "100"),
    ("numeric", "Answer: 100 (50 + 50)", "50", "50"),
    ("numeric", "Answer: 1,000", "1000", "1000"),
    ("numeric", "Answer: -100", "-100", "-100"),
    ("numeric", "Answer: one hundred", None, None),
    ("numeric", "50 + 50 = 100", "100", None),
    ("numeric", "Answer: 100.\nDone in 3 steps.", "100", "100"),
    ("numeric", "Answer: 101", "101", "101"),
    ("numeric", "Answer: 99.5", "99.5", "99.5"),
    ("numeric", "", None, None),
    ("numeric", "100", "100", None),
]
