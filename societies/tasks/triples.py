"""Fact triples and in-context edits: the knowledge-conflict pack.

After "Unveiling the Pitfalls of Knowledge Editing for Large Language Models" (ICLR 2024). A
record holds facts as (subject, relation, object) triples, each relation with its own question
template (``query``, "What is the capital of {}?") and statement (``prompt``, "The capital of
{} is"), and one or two edits ``(subject, relation, object -> new_object)``. Two layouts are
read, as JSON (a list of records) or JSONL (a record per line):

- ConflictEdit: ``{rule, triples: [{relation, subject, object}], prerequisites, type, edits:
  [{relation, subject, object, new_object}]}``; ``type`` is ``reverse`` (an edit, and one on
  the inverse relation of its new object), ``composite`` (two edits whose composition clashes:
  ``rule`` "r1&r2>r3" says a triple (s, r1, m) and (m, r2, o) imply (s, r3, o)) or any other;
- RoundEdit: ``{type, edit: {relation, subject, new_object, object}, true_objects}``: the
  object is edited away (to ``new_object``) and back; the relation may have several true
  objects, any of which answers its question.

Each record becomes one case per distinct question (subject, relation) it mentions. A case
knows what each edit implies for its question (``claim_a`` from the first edit, ``claim_b``
from the second; empty when it implies nothing), and how (``via_a``/``via_b``): ``direct``
(the edit's own question), ``inverse`` (the record pairs relation r with its inverse by two
triples (a, r, b), (b, r', a): an edit (s, r, -> n) implies r'(n) = s) or ``composite`` (by the
rule). ``probe`` is ``conflict`` (the edits imply different answers), ``edited`` (one edit
implies an answer), ``round`` (a round-trip edit), ``related`` (no edit touches it but it is
about an edited subject: an unedited fact of the same subject, for distortion) or
``background`` (any other fact). ``facts`` states the record's triples, ``edit_a``/``edit_b``
its edits, for briefings. The original answer is the triples' object (every true object for a
RoundEdit); a question no triple answers (the inverse question of a new object in the paper's
reverse data) has no original and is never scored correct.

An edit whose subject is in none of the record's facts (a triple's subject or object, or an
earlier edit's new object) is one line naming the record and the field. Scoring, parsing and
simulated replies are the ``jsonl`` task's (exact match after ``answer:``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from random import Random
from typing import Any

from societies.errors import DataError
from societies.tasks.base import Case, register_task
from societies.tasks.generic import GenericTask, normalise
from societies.tasks.rows import Located, Row, read_rows

PROBES = ("conflict", "edited", "round", "related", "background")
#: Entity key: the WikiData-style id when there is one, else the label.
Entity = tuple[str, str]


def _part(where: str, value: Any, path: str, kind: type = dict) -> Any:
    if value is None:
        raise DataError(f"{where}: {path}: missing")
    if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        shown = repr(value)[:60]
        raise DataError(f"{where}: {path}: invalid value {shown}")
    return value


def _entity(where: str, record: Mapping[str, Any], key: str, path: str) -> Entity:
    value = _part(where, record.get(key), f"{path}.{key}")
    label = _part(where, value.get("label"), f"{path}.{key}.label", str).strip()
    ident = value.get("id")
    return (str(ident) if ident not in (None, "") else label, label)


class _Relation:
    def __init__(self, where: str, record: Mapping[str, Any], path: str) -> None:
        value = _part(where, record.get("relation"), f"{path}.relation")
        self.query: str = _part(where, value.get("query"), f"{path}.relation.query", str)
        self.prompt: str = _part(where, value.get("prompt"), f"{path}.relation.prompt", str)
        for name, text in (("query", self.query), ("prompt", self.prompt)):
            if "{}" not in text:
                raise DataError(f"{where}: {path}.relation.{name}: no {{}} for the subject")
        self.label = str(value.get("label") or self.prompt.replace("{}", "").strip())
        self.id = str(value.get("id") or self.label)

    def question(self, subject: str) -> str:
        return self.query.replace("{}", subject)

    def statement(self, subject: str, obj: str) -> str:
        return f"{self.prompt.replace('{}', subject)} {obj}."


class _Fact:
    """A triple or an edit of a record."""

    def __init__(self, where: str, record: Mapping[str, Any], path: str, edit: bool) -> None:
        if not isinstance(record, Mapping):
            raise DataError(f"{where}: {path}: expected an object")
        self.relation = _Relation(where, record, path)
        self.subject = _entity(where, record, "subject", path)
        self.object = _entity(where, record, "object", path)
        self.new = _entity(where, record, "new_object", path) if edit else None

    def statement(self, obj: Entity | None = None) -> str:
        return self.relation.statement(self.subject[1], (obj or self.object)[1])


def _composite_rule(rule: Any) -> tuple[str, str, str] | None:
    """``r1&r2>r3`` as (r1, r2, r3)."""
    match = re.fullmatch(r"\s*([^&>]+?)\s*&\s*([^&>]+?)\s*>\s*([^&>]+?)\s*", str(rule or ""))
    return (match.group(1), match.group(2), match.group(3)) if match else None


def conflict_cases(where: str, item: str, record: Mapping[str, Any]) -> list[Row]:
    """The questions of one ConflictEdit record, each with what every edit implies for it."""
    raw_triples = _part(where, record.get("triples"), "triples", list)
    raw_edits = _part(where, record.get("edits"), "edits", list)
    if not raw_triples:
        raise DataError(f"{where}: triples: empty")
    if not raw_edits:
        raise DataError(f"{where}: edits: empty")
    triples = [_Fact(where, t, f"triples[{i}]", False) for i, t in enumerate(raw_triples)]
    edits = [_Fact(where, e, f"edits[{i}]", True) for i, e in enumerate(raw_edits)]
    known = {t.subject[0] for t in triples} | {t.object[0] for t in triples}
    for i, edit in enumerate(edits):
        if edit.subject[0] not in known:
            raise DataError(
                f"{where}: edits[{i}].subject: {edit.subject[1]!r} is not in the facts (a "
                "triple's subject or object, or an earlier edit's new object)"
            )
        assert edit.new is not None
        known.add(edit.new[0])
    # Relation r' is the inverse of r when the record holds (a, r, b) and (b, r', a).
    inverse = {
        (t.relation.id, u.relation.id)
        for t in triples
        for u in triples
        if t.subject == u.object and t.object == u.subject and t is not u
    }
    rule = _composite_rule(record.get("rule")) if record.get("type") == "composite" else None
    questions: dict[tuple[str, str], tuple[_Relation, Entity]] = {}
    for fact in (*triples, *edits):
        questions.setdefault((fact.subject[0], fact.relation.id), (fact.relation, fact.subject))

    def implied(edit: _Fact, subject: Entity, relation: str) -> tuple[str, str]:
        assert edit.new is not None
        if edit.subject[0] == subject[0] and edit.relation.id == relation:
            return edit.new[1], "direct"
        if edit.new[0] == subject[0] and (edit.relation.id, relation) in inverse:
            return edit.subject[1], "inverse"
        if rule is not None and relation == rule[2] and edit.relation.id == rule[1]:
            hops = (t for t in triples if t.subject[0] == subject[0] and t.relation.id == rule[0])
            if any(t.object[0] == edit.subject[0] for t in hops):
                return edit.new[1], "composite"
        return "", ""

    edited = {e.subject[0] for e in edits}
    facts = " ".join(dict.fromkeys(t.statement() for t in triples))
    statements = [e.statement(e.new) for e in edits[:2]] + ["", ""]
    rows: list[Row] = []
    for j, ((subject_key, relation_id), (relation, subject)) in enumerate(questions.items()):
        answers = list(
            dict.fromkeys(
                t.object[1]
                for t in triples
                if t.subject[0] == subject_key and t.relation.id == relation_id
            )
        )
        claims = [implied(e, subject, relation_id) for e in edits[:2]] + [("", "")]
        (claim_a, via_a), (claim_b, via_b) = claims[0], claims[1]
        if claim_a and claim_b and normalise(claim_a, False) != normalise(claim_b, False):
            probe = "conflict"
        elif claim_a or claim_b:
            probe = "edited"
        else:
            probe = "related" if subject_key in edited else "background"
        rows.append(
            {"id": f"{item}-{j}", "item": item, "type": str(record.get("type") or ""),
             "probe": probe, "subject": subject[1], "relation": relation.label,
             "question": relation.question(subject[1]), "answer": answers[0] if answers else "",
             "answers": answers, "claim_a": claim_a, "via_a": via_a, "claim_b": claim_b,
             "via_b": via_b, "facts": facts, "edit_a": statements[0], "edit_b": statements[1]}
        )  # fmt: skip
    return rows


def round_cases(where: str, item: str, record: Mapping[str, Any]) -> list[Row]:
    """A RoundEdit record: one question, its true objects, and the edit away and back."""
    edit = _part(where, record.get("edit"), "edit")
    relation = _Relation(where, edit, "edit")
    subject = _entity(where, edit, "subject", "edit")
    back = _entity(where, edit, "object", "edit")
    away = _entity(where, edit, "new_object", "edit")
    true = _part(where, record.get("true_objects"), "true_objects", list)
    answers = [_entity(where, {"o": t}, "o", f"true_objects[{i}]")[1] for i, t in enumerate(true)]
    if not answers:
        raise DataError(f"{where}: true_objects: empty")
    facts = " ".join(relation.statement(subject[1], a) for a in answers)
    edit_a = (
        f"{relation.statement(subject[1], away[1])} Later corrected: "
        f"{relation.statement(subject[1], back[1])}"
    )
    return [
        {"id": f"{item}-0", "item": item, "type": str(record.get("type") or "round"),
         "probe": "round", "subject": subject[1], "relation": relation.label,
         "question": relation.question(subject[1]), "answer": answers[0], "answers": answers,
         "claim_a": back[1], "via_a": "round", "claim_b": "", "via_b": "", "facts": facts,
         "edit_a": edit_a, "edit_b": ""}
    ]  # fmt: skip


def record_cases(where: str, item: str, record: Mapping[str, Any]) -> list[Row]:
    """The cases of one record of either layout."""
    if "edit" in record and "true_objects" in record:
        return round_cases(where, item, record)
    if "triples" in record or "edits" in record:
        return conflict_cases(where, item, record)
    raise DataError(
        f"{where}: triples: missing (a ConflictEdit record has triples and edits; a RoundEdit "
        "record has edit and true_objects)"
    )


def expand_records(path: Path) -> Iterator[Located]:
    """Every record of ``path`` as its cases (a bad record as one row error)."""
    for number, located in enumerate(read_rows(path)):
        if located.error is not None:
            yield located
            continue
        record = located.row
        item = str(record.get("id") or f"{path.stem}-{number}")
        try:
            cases = record_cases(located.where, item, record)
        except DataError as exc:
            yield Located(located.where, {}, str(exc))
            continue
        for case in cases:
            yield Located(located.where, case)


@register_task
class TriplesTask(GenericTask):
    """Questions over fact triples with in-context edits (see the module docstring)."""

    name = "triples"

    def rows(self, path: Path) -> Iterator[Located]:
        return expand_records(path)

    def check_row(self, where: str, row: Row) -> Row:
        return row

    def target_of(self, fields: Mapping[str, Any]) -> Any:
        answers = [str(a) for a in fields.get("answers") or []]
        return answers[0] if len(answers) == 1 else frozenset(answers) if answers else ""

    def score(self, answer: str | None, case: Case) -> bool:
        if answer is None:
            return False
        target = case.target
        targets = [target] if isinstance(target, str) else sorted(target)
        wanted = {normalise(str(t), self.config.case_sensitive) for t in targets}
        return answer in wanted - {""}

    def sim_answer(self, case: Case, correct: bool, rng: Random) -> str:
        target = case.target
        targets = [target] if isinstance(target, str) else sorted(target)
        targets = [t for t in targets if t]
        if correct and targets:
            return normalise(rng.choice(targets), self.config.case_sensitive)
        return normalise(rng.choice(("unknown", "none of these")), self.config.case_sensitive)
