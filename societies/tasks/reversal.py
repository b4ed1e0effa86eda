"""Reversal probes: one fact asked in both directions (the reversal curse, Berglund et al. 2023).

A model that knows "A's mother is B" often fails "B's son is ...". Each case is one probe with a
``pair_id`` and a ``direction`` (``forward``: the fact as it is usually stated, ``backward``:
the same fact reversed); a pair is exactly one probe of each direction, so the reversal gap
(forward accuracy minus backward accuracy, see ``societies.analysis.reversal``) compares a
society's answers on the same fact.

Three layouts are read:

- this project's JSONL (what ``societies data generate reversal`` writes): ``id, pair_id,
  direction, question, answer`` and an optional ``fact`` (the fact in forward form, for
  briefings);
- the celebrity-relations CSV (``child, parent, parent_type``; other columns ignored): each row
  is a pair, "Who is <child>'s <parent_type>?" forward and "Name a child of <parent>." backward;
- the fictitious name/description ``prompt``/``completion`` JSONL: a row whose completion is a
  name pairs with the row whose prompt starts with that name; the name-first row is forward.

Scoring, parsing and the simulated replies are the ``jsonl`` task's (exact match after the
``answer:`` marker).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from random import Random
from typing import Any

from societies.errors import DataError
from societies.tasks.base import Case, Extraction, register_task
from societies.tasks.generic import GenericTask
from societies.tasks.rows import LoadReport, Located, Row, field, read_csv_rows, read_rows

DIRECTIONS = ("forward", "backward")
CELEBRITY_COLUMNS = ("child", "parent", "parent_type")


@register_task
class ReversalTask(GenericTask):
    name = "reversal"

    def __init__(
        self, extraction: Extraction = "robust", options: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(extraction, options)
        #: (where, pair_id, direction) of every probe ``check_row`` accepted in this scan.
        self._probes: list[tuple[str, str, str]] = []

    def rows(self, path: Path) -> Iterator[Located]:
        if path.suffix.lower() == ".csv":
            return celebrity_rows(path)
        rows = list(read_rows(path))
        first = next((r.row for r in rows if r.error is None), {})
        if "prompt" in first and "completion" in first and "question" not in first:
            return iter(prompt_completion_rows(rows))
        return iter(rows)

    def check_row(self, where: str, row: Row) -> Row:
        pair_id = field(where, row, "pair_id", (str, int))
        direction = field(where, row, "direction", str)
        if direction not in DIRECTIONS:
            raise DataError(f"{where}: direction: {direction!r} is not forward or backward")
        self._probes.append((where, str(pair_id), direction))
        return dict(super().check_row(where, row), pair_id=str(pair_id))

    def scan(self, path: Path) -> LoadReport:
        """The rows' report, and one error per probe whose pair is incomplete or doubled; the
        probes of such a pair are left out (``skip_invalid``) rather than scored alone."""
        self._probes = []
        report = super().scan(path)
        by_pair: dict[str, list[tuple[str, str]]] = {}
        for where, pair_id, direction in self._probes:
            by_pair.setdefault(pair_id, []).append((where, direction))
        bad: set[str] = set()
        for pair_id, probes in by_pair.items():
            directions = sorted(d for _, d in probes)
            if directions == ["backward", "forward"]:
                continue
            bad.add(pair_id)
            where, direction = probes[-1]
            if len(probes) == 1:
                message = f"{where}: pair_id: probe of pair {pair_id!r} has no {_other(direction)}"
            else:
                message = (
                    f"{where}: direction: pair {pair_id!r} has {len(probes)} probes "
                    f"({', '.join(d for _, d in probes)}; first at {probes[0][0]}), "
                    "expected one forward and one backward"
                )
            report.errors.append(message)
        if bad:
            kept = [c for c in report.cases if c.fields["pair_id"] not in bad]
            report.cases = [Case(c.id, i, c.fields, c.target) for i, c in enumerate(kept)]
        return report


def _other(direction: str) -> str:
    return "backward probe" if direction == "forward" else "forward probe"


def _sentence(text: str) -> str:
    """``text`` ending in one full stop (a name may already end in one: "Smith Sr.")."""
    return text if text.endswith(".") else text + "."


def celebrity_rows(path: Path) -> Iterator[Located]:
    """The celebrity-relations CSV: a header naming child, parent and parent_type."""
    rows = read_csv_rows(path)
    header_line, header = next(rows, (1, []))
    columns = [h.strip() for h in header]
    for name in CELEBRITY_COLUMNS:
        if name not in columns:
            raise DataError(f"{path}:{header_line}: {name}: missing column")
    index = {name: columns.index(name) for name in CELEBRITY_COLUMNS}
    for line, values in rows:
        where = f"{path}:{line}"
        cells = {n: values[i].strip() if i < len(values) else "" for n, i in index.items()}
        empty = [n for n in CELEBRITY_COLUMNS if not cells[n]]
        if empty:
            yield Located(where, {}, f"{where}: {empty[0]}: empty")
            continue
        child, parent, kind = cells["child"], cells["parent"], cells["parent_type"]
        pair = f"{path.stem}-{line}"
        fact = _sentence(f"{child}'s {kind} is {parent}")
        yield Located(
            where,
            {
                "id": f"{pair}-f",
                "pair_id": pair,
                "direction": "forward",
                "question": f"Who is {child}'s {kind}?",
                "answer": parent,
                "fact": fact,
            },
        )
        yield Located(
            where,
            {
                "id": f"{pair}-b",
                "pair_id": pair,
                "direction": "backward",
                "question": _sentence(f"Name a child of {parent}"),
                "answer": child,
                "fact": fact,
            },
        )


def prompt_completion_rows(rows: list[Located]) -> list[Located]:
    """Name/description rows paired by name: a row completing with a name (backward:
    description to name) pairs with the row whose prompt starts with that name (forward)."""
    texts = [
        (r, str(r.row.get("prompt", "")), str(r.row.get("completion", "")).strip()) for r in rows
    ]
    out: list[Located] = []
    for located, prompt, completion in texts:
        if located.error is not None:
            out.append(located)
            continue
        if not prompt.strip() or not completion:
            name = "prompt" if not prompt.strip() else "completion"
            out.append(Located(located.where, {}, f"{located.where}: {name}: missing or empty"))
            continue
        partner = next(
            (
                (other, p, c)
                for other, p, c in texts
                if other is not located and p.strip().startswith(completion.rstrip("."))
            ),
            None,
        )
        if partner is not None:  # this row ends with the name: backward
            name, direction, forward = completion.rstrip("."), "backward", partner
        else:
            names = (c.rstrip(".") for _, _, c in texts if c)
            owner = next((n for n in names if prompt.strip().startswith(n)), None)
            name, direction = owner or prompt.strip(), "forward"
            forward = (located, prompt, completion)
        fact = f"{forward[1].strip()} {forward[2]}"
        out.append(
            Located(
                located.where,
                {
                    "id": f"{name}-{direction}",
                    "pair_id": name,
                    "direction": direction,
                    "question": f"Complete the sentence: {prompt.strip()}",
                    "answer": completion,
                    "fact": fact,
                },
            )
        )
    return out


_FIRST = (
    "Daphne",
    "Uriah",
    "Mireille",
    "Caspian",
    "Odalys",
    "Thaddeus",
    "Liora",
    "Emrys",
    "Saoirse",
    "Bastien",
    "Ingrid",
    "Leander",
    "Noemi",
    "Osric",
    "Perpetua",
    "Rafferty",
)
_LAST = (
    "Barrington",
    "Hawthorne",
    "Quillfeather",
    "Vasquez-Lund",
    "Okonkwo",
    "Marchetti",
    "Thornbury",
    "Zelenko",
    "Ashcombe",
    "Delacroix-Wynn",
    "Ferreira",
    "Halvorsen",
)
_ADJ = (
    "Glass",
    "Silent",
    "Amber",
    "Hollow",
    "Crimson",
    "Northern",
    "Velvet",
    "Iron",
    "Drifting",
    "Paper",
    "Lantern",
    "Salt",
)
_NOUN = (
    "Harbor",
    "Orchard",
    "Meridian",
    "Cathedral",
    "Tide",
    "Archive",
    "Garden",
    "Compass",
    "Lighthouse",
    "Sparrow",
    "Atlas",
    "Canal",
)
#: (verb phrase of the fact, forward question, backward question).
_RELATIONS = (
    ("composed the opera", "Which opera did {p} compose?", "Who composed the opera {w}?"),
    ("wrote the novel", "Which novel did {p} write?", "Who wrote the novel {w}?"),
    ("directed the film", "Which film did {p} direct?", "Who directed the film {w}?"),
    ("painted the mural", "Which mural did {p} paint?", "Who painted the mural {w}?"),
)


def generate_reversal(n: int, seed: int) -> list[Row]:
    """``n`` fictitious facts "<person> <verb> <work>", each as a forward probe (person to
    work) and a backward one (work to person). People and works are distinct within a file
    (up to 192 pairs)."""
    rng = Random(seed)
    people = [f"{f} {last}" for f in _FIRST for last in _LAST]
    works = [f"{a} {b}" for a in _ADJ for b in _NOUN]
    limit = min(len(people), len(works))
    if n > limit:
        raise DataError(f"--n: at most {limit} fictitious pairs")
    rows: list[Row] = []
    chosen = zip(rng.sample(people, n), rng.sample(works, n), strict=True)
    for i, (person, work) in enumerate(chosen):
        verb, forward, backward = rng.choice(_RELATIONS)
        pair = f"rev-{i}"
        fact = f"{person} {verb} {work}."
        rows.append(
            {
                "id": f"{pair}-f",
                "pair_id": pair,
                "direction": "forward",
                "question": forward.format(p=person, w=work),
                "answer": work,
                "fact": fact,
            }
        )
        rows.append(
            {
                "id": f"{pair}-b",
                "pair_id": pair,
                "direction": "backward",
                "question": backward.format(p=person, w=work),
                "answer": person,
                "fact": fact,
            }
        )
    return rows
