"""Fictitious facts with clashing edits, in the ConflictEdit/RoundEdit layouts.

Nothing is downloaded: countries, cities, people, novels and firms are made up, so a model
cannot know them and a society knows only what its briefings say. Records cycle through the
three kinds of the knowledge-editing study (``societies.tasks.triples`` reads them):

- reverse: a country's capital (or a person's novel) edited to a city that is another
  country's capital, and an edit of that city's country (the inverse relation) to a third
  country: the first edit implies the city's country is the first country, the second says
  otherwise;
- composite: a person works for a firm, the firm is based in a city, so the person works in
  that city (rule ``employer&headquarters>works_in``); the firm's city is edited, and the
  person's city is edited to another one: the composition and the second edit clash;
- round: a person plays some instruments; one of them is edited away and back.

Every record also states two unedited facts of its subject (the related facts whose answers
distortion compares against a control society).
"""

from __future__ import annotations

from random import Random
from typing import Any

from societies.errors import DataError
from societies.tasks.rows import Row

_COUNTRIES = ("Tarvolia", "Brennmark", "Ilvaria", "Sundgard", "Maracel", "Oskeria", "Pellandor",
              "Quessany", "Vantrope", "Elbria", "Dorvath", "Kestrany")  # fmt: skip
_CITIES = ("Port Aldane", "Vessik", "Coralmouth", "Dunhallow", "Irenbrook", "Marrowgate",
           "Ostwyn", "Quillon", "Rhosk", "Sablecross", "Umberlee", "Varnholt", "Wrenfield",
           "Lisk")  # fmt: skip
_LANGUAGES = ("Tarvish", "Ossic", "Belmarin", "Quenyal", "Dravic", "Sollen")
_CURRENCIES = ("the crown", "the florin", "the mark", "the sol", "the tallar", "the rand")
_FIRST = ("Ilsa", "Tomas", "Mira", "Jonah", "Alba", "Rufus", "Sunniva", "Caius", "Petra", "Oren",
          "Yara", "Dario", "Liesl", "Bram")  # fmt: skip
_LAST = ("Varga", "Oyelaran", "Castellane", "Prewitt", "Korhonen", "Denholm", "Achterberg",
         "Mbeki", "Lindqvist", "Abernathy", "Solberg", "Feltmann")  # fmt: skip
_NOVELS = ("The Glass Harbor", "Salt Lighthouse", "The Amber Orchard", "Northern Tide",
           "The Velvet Archive", "Iron Meridian", "The Paper Compass", "Hollow Garden",
           "The Drifting Canal", "Crimson Atlas")  # fmt: skip
_FIRMS = ("Halcyon Freight", "Brightwater Mills", "Corvane Systems", "Ledger & Finch",
          "Morrow Optics", "Tallis Dynamics", "Umber Works", "Quayside Labs")  # fmt: skip
_INSTRUMENTS = ("cello", "oboe", "harp", "banjo", "sitar", "tuba", "viola", "bassoon")
_PETS = ("parrot", "tortoise", "ferret", "goldfish", "iguana", "rabbit")


def _rel(ident: str, query: str, prompt: str, label: str) -> dict[str, str]:
    return {"id": ident, "prompt": prompt, "query": query, "label": label}


CAPITAL = _rel("capital", "What is the capital of {}?", "The capital of {} is", "capital")
CAPITAL_OF = _rel("capital_of", "Which country has {} as its capital?", "{} is the capital of",
                  "country whose capital is")  # fmt: skip
NOVEL = _rel("novel", "Which novel did {} write?", "The novel written by {} is", "novel")
AUTHOR = _rel("author", "Who wrote the novel {}?", "The author of the novel {} is", "author")
LANGUAGE = _rel("language", "What is the official language of {}?",
                "The official language of {} is", "official language")  # fmt: skip
CURRENCY = _rel("currency", "What is the currency of {}?", "The currency of {} is", "currency")
EMPLOYER = _rel("employer", "Which firm does {} work for?", "{} works for", "employer")
HEADQUARTERS = _rel("headquarters", "In which city is {} based?", "{} is based in",
                    "headquarters")  # fmt: skip
WORKS_IN = _rel("works_in", "In which city does {} work?", "{} works in the city of", "works in")
INSTRUMENT = _rel("instrument", "Name an instrument that {} plays.", "{} plays the",
                  "instrument")  # fmt: skip
PET = _rel("pet", "What pet does {} keep?", "The pet {} keeps is a", "pet")


def _e(label: str) -> dict[str, str]:
    return {"id": label.lower().replace(" ", "_"), "label": label}


def _triple(s: str, relation: dict[str, str], o: str) -> dict[str, Any]:
    return {"relation": relation, "subject": _e(s), "object": _e(o)}


def _edit(s: str, relation: dict[str, str], o: str, new: str) -> dict[str, Any]:
    return {**_triple(s, relation, o), "new_object": _e(new)}


def _person(rng: Random, taken: set[str]) -> str:
    while True:
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        if name not in taken:
            taken.add(name)
            return name


def _reverse(rng: Random, i: int) -> dict[str, Any]:
    if i % 2 == 0:  # countries and their capitals
        s, d, s2 = rng.sample(_COUNTRIES, 3)
        o, o1 = rng.sample(_CITIES, 2)
        forward, back = CAPITAL, CAPITAL_OF
        related = [_triple(s, LANGUAGE, rng.choice(_LANGUAGES)),
                   _triple(s, CURRENCY, rng.choice(_CURRENCIES))]  # fmt: skip
    else:  # people and their novels
        taken: set[str] = set()
        s, d, s2 = (_person(rng, taken) for _ in range(3))
        o, o1 = rng.sample(_NOVELS, 2)
        forward, back = NOVEL, AUTHOR
        related = [_triple(s, INSTRUMENT, rng.choice(_INSTRUMENTS)),
                   _triple(s, PET, rng.choice(_PETS))]  # fmt: skip
    triples = [_triple(s, forward, o), _triple(o, back, s), _triple(d, forward, o1),
               _triple(o1, back, d), *related]  # fmt: skip
    edits = [_edit(s, forward, o, o1), _edit(o1, back, s, s2)]
    rule = f"{forward['id']}>{back['id']}"
    return {"rule": rule, "triples": triples, "prerequisites": [], "type": "reverse",
            "edits": edits}  # fmt: skip


def _composite(rng: Random) -> dict[str, Any]:
    person = _person(rng, set())
    firm = rng.choice(_FIRMS)
    city, moved, other = rng.sample(_CITIES, 3)
    triples = [_triple(person, EMPLOYER, firm), _triple(firm, HEADQUARTERS, city),
               _triple(person, WORKS_IN, city), _triple(person, INSTRUMENT,
               rng.choice(_INSTRUMENTS)), _triple(person, PET, rng.choice(_PETS))]  # fmt: skip
    edits = [_edit(firm, HEADQUARTERS, city, moved), _edit(person, WORKS_IN, city, other)]
    return {"rule": "employer&headquarters>works_in", "triples": triples, "prerequisites": [0],
            "type": "composite", "edits": edits}  # fmt: skip


def _round(rng: Random) -> dict[str, Any]:
    person = _person(rng, set())
    k = rng.choice((2, 3))
    *plays, away = rng.sample(_INSTRUMENTS, k + 1)
    edit = {"relation": INSTRUMENT, "subject": _e(person), "new_object": _e(away),
            "object": _e(plays[0])}  # fmt: skip
    return {"type": f"1-{k}@instrument", "edit": edit, "true_objects": [_e(p) for p in plays]}


def generate_conflict(n: int, seed: int) -> list[Row]:
    """``n`` records cycling reverse, composite and round-trip edits (seeded)."""
    if n > 10_000:
        raise DataError("--n: at most 10000 records")
    rng = Random(seed)
    rows: list[Row] = []
    for i in range(n):
        kind = i % 3
        record = _reverse(rng, i // 3) if kind == 0 else _composite(rng) if kind == 1 else (
            _round(rng)
        )  # fmt: skip
        rows.append({"id": f"conflict-{i}", **record})
    return rows
