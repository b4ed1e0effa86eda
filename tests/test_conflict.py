"""The knowledge-conflict pack: the triples task on hand-written ConflictEdit and RoundEdit
files, bad records, the generator, every metric against a hand-computed grid, and the
edit-conflict example on the sim."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from societies.analysis.conflict import (
    conflict_outcome,
    consistency,
    distortion,
    item_table,
    js_divergence,
    round_divergence,
)
from societies.analysis.load import load_run
from societies.cli.main import cli
from societies.errors import DataError
from societies.tasks.triples import TriplesTask

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "experiments" / "seeds" / "edit-conflict.yaml"


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def _rel(ident: str, query: str, prompt: str) -> dict[str, str]:
    return {"id": ident, "prompt": prompt, "query": query, "label": ident}


CAP = _rel("P36", "What is the capital of {}?", "The capital of {} is")
CAP_OF = _rel("P1376", "Which country has {} as its capital?", "{} is the capital of")


def _ent(label: str) -> dict[str, str]:
    return {"id": "Q" + label, "label": label}


def _t(s: str, r: dict[str, str], o: str, new: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"relation": r, "subject": _ent(s), "object": _ent(o)}
    if new is not None:
        out["new_object"] = _ent(new)
    return out


REVERSE: dict[str, Any] = {
    "rule": "P36>P1376",
    "triples": [_t("Norland", CAP, "Aston"), _t("Aston", CAP_OF, "Norland")],
    "prerequisites": [],
    "type": "reverse",
    "edits": [_t("Norland", CAP, "Aston", "Brill"), _t("Brill", CAP_OF, "Norland", "Sudmark")],
}
EMP = _rel("P108", "Who employs {}?", "{} is employed by")
HQ = _rel("P159", "Where is {} based?", "{} is based in")
CITY = _rel("P937", "Where does {} work?", "{} works in")
COMPOSITE: dict[str, Any] = {
    "rule": "P108&P159>P937",
    "triples": [_t("Ada", EMP, "Acme"), _t("Acme", HQ, "Aston"), _t("Ada", CITY, "Aston")],
    "prerequisites": [0],
    "type": "composite",
    "edits": [_t("Acme", HQ, "Aston", "Brill"), _t("Ada", CITY, "Aston", "Cray")],
}
PLAYS = _rel("P1303", "Name an instrument {} plays.", "{} plays the")
ROUND = {
    "type": "1-2@P1303",
    "edit": {"relation": PLAYS, "subject": _ent("Ada"), "new_object": _ent("tuba"),
             "object": _ent("harp")},
    "true_objects": [_ent("harp"), _ent("oboe")],
}  # fmt: skip


def _cases(path: Path) -> list[tuple[Any, ...]]:
    keys = ("probe", "question", "claim_a", "via_a", "claim_b", "via_b")
    return [(c.id, *(c.fields[k] for k in keys), c.target) for c in TriplesTask().load(path)]


def test_a_reverse_edit_in_the_papers_json_layout(tmp_path: Path) -> None:
    path = tmp_path / "reverse_edit.json"
    path.write_text(json.dumps([REVERSE]), encoding="utf-8")
    assert _cases(path) == [
        ("reverse_edit-0-0", "edited", "What is the capital of Norland?", "Brill", "direct", "",
         "", "Aston"),
        ("reverse_edit-0-1", "background", "Which country has Aston as its capital?", "", "",
         "", "", "Norland"),
        # the clash: edit A implies Brill is Norland's capital, edit B says it is Sudmark's;
        # no triple says whose capital Brill was, so there is no original answer
        ("reverse_edit-0-2", "conflict", "Which country has Brill as its capital?", "Norland",
         "inverse", "Sudmark", "direct", ""),
    ]  # fmt: skip
    fields = TriplesTask().load(path)[2].fields
    assert fields["facts"] == "The capital of Norland is Aston. Aston is the capital of Norland."
    assert fields["edit_a"] == "The capital of Norland is Brill."
    assert fields["edit_b"] == "Brill is the capital of Sudmark."
    # a question without an original answer is never scored correct
    case = TriplesTask().load(path)[2]
    assert not TriplesTask().score("", case) and not TriplesTask().score("norland", case)


def test_a_composite_edit_as_jsonl_and_a_round_trip_edit(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    rows = [{"id": "c1", **COMPOSITE}, {"id": "r1", **ROUND}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert _cases(path) == [
        ("c1-0", "related", "Who employs Ada?", "", "", "", "", "Acme"),
        ("c1-1", "edited", "Where is Acme based?", "Brill", "direct", "", "", "Aston"),
        # Ada works for Acme, Acme moved to Brill: so Ada works in Brill; edit B says Cray
        ("c1-2", "conflict", "Where does Ada work?", "Brill", "composite", "Cray", "direct",
         "Aston"),
        ("r1-0", "round", "Name an instrument Ada plays.", "harp", "round", "", "",
         frozenset({"harp", "oboe"})),
    ]  # fmt: skip
    round_case = TriplesTask().load(path)[3]
    assert round_case.fields["edit_a"] == "Ada plays the tuba. Later corrected: Ada plays the harp."
    task = TriplesTask()
    assert task.score("oboe", round_case) and task.score("harp", round_case)
    assert not task.score("tuba", round_case)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({**REVERSE, "edits": [REVERSE["edits"][0], _t("Elsewhere", CAP_OF, "Norland", "X")]},
         "edits[1].subject: 'Elsewhere' is not in the facts"),
        ({**REVERSE, "triples": [{**REVERSE["triples"][0], "relation": {"id": "P36"}}]},
         "triples[0].relation.query: missing"),
        ({**REVERSE, "edits": []}, "edits: empty"),
        ({"type": "1-2@P1303", "edit": ROUND["edit"], "true_objects": []}, "true_objects: empty"),
        ({"rule": "x"}, "triples: missing"),
    ],
)  # fmt: skip
def test_a_bad_record_names_file_record_and_field(
    tmp_path: Path, record: dict[str, Any], expected: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(COMPOSITE) + "\n" + json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        TriplesTask().load(path)
    assert str(err.value).startswith(f"{path}:2: {expected}")
    # skip_invalid keeps the good record
    assert len(TriplesTask(options={"skip_invalid": True}).load(path)) == 3


def test_a_run_with_an_edit_outside_the_facts_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "edits.json"
    bad = {**COMPOSITE, "edits": [COMPOSITE["edits"][0], _t("Bob", CITY, "Aston", "Cray")]}
    data.write_text(json.dumps([REVERSE, bad], indent=1), encoding="utf-8")
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["task"]["data"] = str(data)
    file = tmp_path / "exp.yaml"
    file.write_text(yaml.safe_dump(spec), encoding="utf-8")
    out = tmp_path / "run"
    code, _, err = _invoke("run", str(file), "--out", str(out), "--quiet")
    assert code == 2
    assert err.strip().splitlines() == [
        f"{data}#2: edits[1].subject: 'Bob' is not in the facts (a triple's subject or "
        f"object, or an earlier edit's new object) (task.data in {file})"
    ]
    assert not out.exists()


def test_generator_is_seeded_and_every_record_clashes(tmp_path: Path) -> None:
    code, first, _ = _invoke("data", "generate", "conflict", "--n", "6", "--seed", "3")
    _, again, _ = _invoke("data", "generate", "conflict", "--n", "6", "--seed", "3")
    _, other, _ = _invoke("data", "generate", "conflict", "--n", "6", "--seed", "4")
    assert code == 0 and first == again != other
    records = [json.loads(line) for line in first.splitlines()]
    kinds = [r["type"] if r["type"] in ("reverse", "composite") else r["type"][:2] for r in records]
    assert kinds == ["reverse", "composite", "1-"] * 2
    path = tmp_path / "gen.jsonl"
    path.write_text(first, encoding="utf-8")
    cases = TriplesTask().load(path)
    by_item: dict[str, list[str]] = {}
    for case in cases:
        by_item.setdefault(case.fields["item"], []).append(case.fields["probe"])
    for record in records:
        probes = by_item[record["id"]]
        if "edits" in record:  # reverse and composite: one clash, two unedited related facts
            assert probes.count("conflict") == 1 and probes.count("related") >= 2
        else:
            assert probes == ["round"]
    # the conflict question has an original answer distinct from both claims
    for case in cases:
        if case.fields["probe"] == "conflict":
            f = case.fields
            assert len({case.target, f["claim_a"], f["claim_b"]}) == 3
    committed = (REPO / "experiments" / "data" / "conflict.jsonl").read_text(encoding="utf-8")
    _, regenerated, _ = _invoke("data", "generate", "conflict", "--n", "30", "--seed", "0")
    assert regenerated == committed


def _holds(run: str, case_id: str, answer: str | None, claim: str) -> bool:
    return answer is not None and answer == claim


ITEMS = item_table(
    [
        ("r", "f", "i1", "edited", "brill", "direct", "", ""),
        ("r", "b", "i1", "conflict", "norland", "inverse", "sudmark", "direct"),
        ("r", "x", "i1", "related", "", "", "", ""),
        ("r", "y", "i1", "round", "harp", "round", "", ""),
    ]
)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    base = {"run": "r", "task": "triples", "strategy": "0"}
    return pd.DataFrame([{**base, **row} for row in rows])


def test_conflict_outcome_against_a_hand_computed_grid() -> None:
    votes = _frame([
        # round 0 of society s: repeat 0 holds A, repeat 1 B, repeat 2 the original, 3 none
        {"society": "s", "round": 0, "repeat": 0, "case_id": "b", "majority": "norland",
         "correct": False, "complete": True},
        {"society": "s", "round": 0, "repeat": 1, "case_id": "b", "majority": "sudmark",
         "correct": False, "complete": True},
        {"society": "s", "round": 0, "repeat": 2, "case_id": "b", "majority": "kell",
         "correct": True, "complete": True},
        {"society": "s", "round": 0, "repeat": 3, "case_id": "b", "majority": None,
         "correct": False, "complete": True},
        # an incomplete answer and a question that is not a conflict are left out
        {"society": "s", "round": 0, "repeat": 4, "case_id": "b", "majority": "norland",
         "correct": False, "complete": False},
        {"society": "s", "round": 0, "repeat": 0, "case_id": "f", "majority": "brill",
         "correct": False, "complete": True},
    ])  # fmt: skip
    (row,) = conflict_outcome(votes, ITEMS, _holds).to_dict("records")
    assert row["n"] == 4
    assert (row["a"], row["b"], row["original"], row["none"]) == (0.25, 0.25, 0.25, 0.25)
    assert 0 <= row["a_low"] <= 0.25 <= row["a_high"] <= 0.75


def test_consistency_against_a_hand_computed_grid() -> None:
    def answer(agent: int, case: str, value: str | None, repeat: int = 0) -> dict[str, Any]:
        return {"society": "s", "round": 1, "repeat": repeat, "case_id": case, "agent": agent,
                "answer": value}  # fmt: skip

    answers = _frame([
        answer(0, "f", "brill"), answer(0, "b", "norland"),  # holds A on both: consistent
        answer(1, "f", "aston"), answer(1, "b", "kell"),  # on neither: consistent
        answer(2, "f", "brill"), answer(2, "b", "sudmark"),  # forward only: inconsistent
        answer(3, "f", None), answer(3, "b", "norland"),  # no forward answer: left out
        answer(0, "f", "aston", 1), answer(0, "b", "norland", 1),  # inverse only: inconsistent
    ])  # fmt: skip
    (row,) = consistency(answers, ITEMS, _holds).to_dict("records")
    # units (repeat, item): repeat 0 is 2 of 3 agents, repeat 1 is 0 of 1
    assert (row["groups"], row["pairs"]) == (2, 4)
    assert row["consistency"] == pytest.approx((2 / 3 + 0) / 2)
    assert row["ci_low"] == 0.0 and row["ci_high"] == pytest.approx(2 / 3)


def test_distortion_and_round_divergence_against_hand_computed_grids() -> None:
    def answer(society: str, agent: int, case: str, value: str | None, ok: bool) -> dict[str, Any]:
        return {"society": society, "round": 0, "repeat": 0, "case_id": case, "agent": agent,
                "answer": value, "correct": ok}  # fmt: skip

    answers = _frame([
        answer("control", 0, "x", "cello", True), answer("control", 1, "x", "cello", True),
        answer("edited", 0, "x", "unknown", False), answer("edited", 1, "x", "cello", True),
        answer("control", 0, "y", "harp", True), answer("control", 1, "y", "oboe", True),
        answer("edited", 0, "y", "harp", True), answer("edited", 1, "y", "harp", True),
    ])  # fmt: skip
    (row,) = distortion(answers, ITEMS, {"r": "control"}).to_dict("records")
    assert (row["society"], row["control"], row["groups"]) == ("edited", "control", 1)
    assert row["changed"] == 0.5 and row["distortion"] == 0.5  # one agent of two
    (div,) = round_divergence(answers, ITEMS, {"r": "control"}).to_dict("records")
    # p = (harp 1), q = (harp 1/2, oboe 1/2), m = (3/4, 1/4):
    # JS = 1/2 log2(4/3) + 1/2 (1/2 log2(2/3) + 1/2 log2(2)) = 0.311278
    assert div["divergence"] == pytest.approx(0.311278, abs=1e-6)
    assert js_divergence({"a": 1}, {"a": 3}) == 0.0
    assert js_divergence({"a": 1}, {"b": 1}) == pytest.approx(1.0)
    assert distortion(answers, ITEMS, {}).empty


def _run(tmp_path: Path, name: str, limit: int = 12, **options: float) -> Path:
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["task"]["data"] = str(REPO / "experiments" / "data" / "conflict.jsonl")
    spec["model"]["options"].update(options)
    file = tmp_path / f"{name}.yaml"
    file.write_text(yaml.safe_dump(spec), encoding="utf-8")
    out = tmp_path / name
    code, stdout, err = _invoke("run", str(file), "--out", str(out), "--limit", str(limit))
    assert code == 0, err
    (out / "stdout.txt").write_text(stdout, encoding="utf-8")
    return out


def test_edit_conflict_example_runs_and_reports(tmp_path: Path) -> None:
    code, out, err = _invoke("run", str(EXAMPLE), "--out", str(tmp_path / "run"), "--limit", "12")
    assert code == 0, err
    analysis = load_run(tmp_path / "run")
    assert analysis.control_society == {"edit-conflict": "control"}
    tables = analysis.tables()
    for name in ("conflict_outcome", "consistency", "distortion", "round_divergence"):
        assert name in tables and len(tables[name])
    outcome = analysis.conflict_outcome.set_index(["society", "strategy", "round"])
    # 12 cases = 3 records: 2 conflict questions x 3 repeats per cell
    assert set(outcome["n"]) == {6}
    # the control holds no edit; in round 0 of a clash each edit has one holder of three, so
    # neither can be a majority
    assert (outcome.loc["control", ["a", "b"]] == 0).all().all()
    assert (outcome.loc[("clash", "000", 0), ["a", "b"]] == 0).all()
    consistent = analysis.consistency.set_index("society")
    assert (consistent.loc["control", "consistency"] == 1.0).all()
    lines = [line for line in out.splitlines() if line.startswith("conflict, round 3")]
    assert len(lines) == 10  # 5 societies x 2 strategies


def test_the_sim_distorts_facts_beside_an_edit(tmp_path: Path) -> None:
    run = _run(tmp_path, "distort", edit_distortion=1.0, unparsed_rate=0.0, accuracy=1.0)
    analysis = load_run(run)
    answers = analysis.answers.merge(analysis.triples, on=["run", "case_id"])
    first = answers[(answers["round"] == 0) & (answers["probe"] == "related")]
    by_society = first.groupby(["society", "agent"])["correct"].mean()
    # agent 0 of one-edited holds edit A and no claim on the related facts: always wrong;
    # the control's agent and the unbriefed agents always right
    assert by_society[("one-edited", 0)] == 0.0
    assert by_society[("control", 0)] == 1.0 and by_society[("one-edited", 2)] == 1.0
    table = analysis.distortion
    row = table[(table["society"] == "one-edited") & (table["round"] == 0)]
    assert row["distortion"].tolist() == pytest.approx([1 / 3, 1 / 3])  # strategies 000, 111
