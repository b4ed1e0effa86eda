"""Data the project makes itself, so that nothing has to be downloaded: seeded and
deterministic (the same arguments give the same bytes on every machine)."""

from __future__ import annotations

from collections.abc import Callable
from random import Random

from societies.tasks.chess import generate_games
from societies.tasks.reversal import generate_reversal
from societies.tasks.rows import Row
from societies.tasks.triples_data import generate_conflict


def generate_arithmetic(n: int, seed: int, high: int = 30) -> list[Row]:
    """Du et al.'s debate arithmetic: ``a+b*c+d-e*f`` with operands drawn from [0, high)."""
    rng = Random(seed)
    rows: list[Row] = []
    for i in range(n):
        a, b, c, d, e, f = (rng.randrange(high) for _ in range(6))
        rows.append(
            {
                "id": f"arith-{i}",
                "question": f"What is the result of {a}+{b}*{c}+{d}-{e}*{f}?",
                "answer": str(a + b * c + d - e * f),
            }
        )
    return rows


_PEOPLE = ("Ilsa Varga", "Tomas Oyelaran", "Mira Castellane", "Jonah Prewitt", "Alba Korhonen",
           "Rufus Denholm", "Sunniva Achterberg", "Caius Mbeki", "Petra Lindqvist",
           "Oren Abernathy", "Yara Solberg", "Dario Feltmann")  # fmt: skip
#: (relation, question template, possible objects): fictitious facts about fictitious people.
_RELATIONS = (
    ("works in the city of", "In which city does {s} work?",
     ("Lisbon", "Oslo", "Nairobi", "Quito", "Hanoi", "Tallinn")),
    ("plays the", "Which instrument does {s} play?",
     ("cello", "oboe", "harp", "banjo", "sitar", "tuba")),
    ("keeps a pet", "What pet does {s} keep?",
     ("parrot", "tortoise", "ferret", "goldfish", "iguana", "rabbit")),
)  # fmt: skip


def generate_facts(n: int, seed: int) -> list[Row]:
    """Fictitious facts, each with an in-context edit (a different object, in ``new_object``
    and stated in ``edit``): the questions of an edit-spread experiment, where some agents are
    briefed with the edit and the others are not."""
    rng = Random(seed)
    rows: list[Row] = []
    for i in range(n):
        person = rng.choice(_PEOPLE)
        relation, question, objects = rng.choice(_RELATIONS)
        old, new = rng.sample(objects, 2)
        rows.append(
            {
                "id": f"fact-{i}",
                "subject": person,
                "relation": relation,
                "object": old,
                "new_object": new,
                "question": question.format(s=person),
                "fact": f"{person} {relation} {old}.",
                "edit": f"{person} {relation} {new}.",
            }
        )
    return rows


#: Generator name -> (function(n, seed), the task its rows are for).
GENERATORS: dict[str, tuple[Callable[[int, int], list[Row]], str]] = {
    "chess": (generate_games, "chess"),
    "arithmetic": (generate_arithmetic, "gsm8k"),
    "reversal": (generate_reversal, "reversal"),
    "facts": (generate_facts, "jsonl"),
    "conflict": (generate_conflict, "triples"),
}
