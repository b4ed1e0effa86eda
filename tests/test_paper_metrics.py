"""``paper`` metrics equal the reference's evaluation code, on hand-written transcripts.

Each transcript below is written here, in the reference's result-file layout, and imported
with ``societies import machinesom``. Every expected value is worked out by hand, in the
comments, from the reference's rules as ``societies/tasks/extract.py``,
``societies/tasks/math.py`` and ``societies/analysis/metrics.py`` document them (its
``src/evaluate.py`` and ``src/conformity_and_consistency.py``) — never from this code's output.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

import societies
from societies.analysis.load import Analysis
from societies.analysis.rescore import rescore
from societies.importers.machinesom import import_machinesom
from societies.store.db import RunStore

#: Per agent, the four replies (round 0, then rounds 1-3).
Replies = list[list[str]]


def _write(folder: Path, case: int, replies: Replies, strategy: str = "000") -> None:
    """One reference result file: society 1 easy-going + 2 overconfident, 3 rounds."""
    folder.mkdir(parents=True, exist_ok=True)
    convos = []
    for own in replies:
        convo = [
            {"role": "user", "content": "Imagine you are an expert. If you understand say ok."},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "The question."},
            {"role": "assistant", "content": own[0]},
        ]
        for r, digit in enumerate(strategy, start=1):
            turn = "These are the solutions of other agents." if digit == "0" else "Double check."
            convo += [{"role": "user", "content": turn}, {"role": "assistant", "content": own[r]}]
        convos.append(convo)
    name = f"1_harmony_3_agents_3_turns_{strategy}_strategy_case_{case}.pkl"
    (folder / name).write_bytes(pickle.dumps(convos))


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _import(tmp: Path, task: str, data: Path, folders: list[Path]) -> Analysis:
    import_machinesom(folders, task_name=task, data=data, out=tmp / f"run-{task}")
    return societies.load_run(tmp / f"run-{task}")


def _by_agent(rounds: list[list[str]]) -> Replies:
    """Replies written per round (a row per round, a column per agent) -> per agent."""
    return [list(column) for column in zip(*rounds, strict=True)]


# -- MMLU --------------------------------------------------------------------------------------

MMLU_ROWS: list[dict[str, object]] = [
    {"id": "m1", "question": "q1", "choices": ["Sunlight", "S", "Water", "Carbon"], "answer": "B"},
    {"id": "m2", "question": "q2", "answer": "C",
     "choices": ["Mitochondria", "Nucleus", "Ribosome", "Golgi"]},
]  # fmt: skip

#: m1: "(A)" is the only X) token, so the letter half reads A; the option-text half finds
#: option B ("S", lower-cased "s") at the "s" of "considering" (the only option text found);
#: the two disagree and the option text wins: B, the right answer. Every agent, every round.
M1 = [["Considering it all, (A)."] * 4] * 3
#: m2, repeat 0. "combined answer" in a reply gives no answer (the rule's first line).
#: round 0: [none, none, A]  round 1: [none, C, A]  round 2: [C, C, C]  round 3: [C, C, C]
NONE = "My combined answer is withheld."
M2 = _by_agent([
    [NONE, NONE, "It is (A)."],
    ["Still no combined answer.", "It is (C).", "It is (A)."],
    ["It is (C)."] * 3,
    ["It is (C)."] * 3,
])  # fmt: skip
#: m2, repeat 1: the same, but round 3 is [D, D, D].
M2_R1 = _by_agent([
    [NONE, NONE, "It is (A)."],
    ["Still no combined answer.", "It is (C).", "It is (A)."],
    ["It is (C)."] * 3,
    ["It is (D)."] * 3,
])  # fmt: skip


@pytest.fixture
def mmlu(tmp_path: Path) -> Analysis:
    data = _jsonl(tmp_path / "mmlu.jsonl", MMLU_ROWS)
    first, second = tmp_path / "repeat1", tmp_path / "repeat2"
    _write(first, 0, M1)
    _write(first, 1, M2)
    _write(second, 0, M1)
    _write(second, 1, M2_R1)
    return _import(tmp_path, "mmlu", data, [first, second])


def test_item1_mmlu_import_reads_the_option_text_half(mmlu: Analysis) -> None:
    answers = mmlu.answers
    assert answers.loc[answers["case_id"] == "m1", "answer"].tolist() == ["B"] * 2 * 4 * 3
    # m2 round 0 / 1, as worked out above (repeat 0)
    m2 = answers[(answers["case_id"] == "m2") & (answers["repeat"] == 0)]
    by_round = m2.sort_values(["round", "agent"]).groupby("round")["answer"].apply(list)
    assert by_round.tolist() == [[None, None, "A"], [None, "C", "A"], ["C"] * 3, ["C"] * 3]
    acc = mmlu.accuracy_by_repeat.set_index(["repeat", "round"])["accuracy"]
    # m1 right in every round (B); m2 repeat 0: majority none (two missing answers count
    # as one value), tie, C, C -> wrong, wrong, right, right
    assert [acc[(0, r)] for r in range(4)] == [0.5, 0.5, 1.0, 1.0]
    assert [acc[(1, r)] for r in range(4)] == [0.5, 0.5, 1.0, 0.5]


def test_item2_paper_conformity_counts_a_missing_answer_as_none(mmlu: Analysis) -> None:
    turns = mmlu.conformity_turns
    m2 = turns[(turns["case_id"] == "m2") & (turns["repeat"] == 0)]
    # round 1: previous [none, none, a] -> majority {none}; agent 0 answers none again and
    # conforms, graded "none" before and after: F→F. Agents 1 (c) and 2 (a) do not.
    # round 2: previous [none, c, a] -> every answer once -> no majority, nobody conforms.
    # round 3: previous [c, c, c] -> {c}; all three answer c: T→T.
    conforming = m2[m2["conforms"]].sort_values(["round", "agent"])
    assert list(zip(conforming["round"], conforming["agent"], conforming["type"], strict=True)) == [
        (1, 0, "F→F"), (3, 0, "T→T"), (3, 1, "T→T"), (3, 2, "T→T"),
    ]  # fmt: skip
    assert len(m2) == 9


def test_item4_paper_wavers_are_exactly_the_reference_list(mmlu: Analysis) -> None:
    cases = mmlu.behaviour_cases.set_index(["repeat", "case_id"])
    # m1 1111; m2 repeat 0: 0011 (fixes); m2 repeat 1: 0010, listed in none of the
    # reference's categories (its wavering list is 1010, 1001, 0110, 0101)
    assert cases.loc[(0, "m1"), "category"] == "stays correct"
    assert (cases.loc[(0, "m2"), "pattern"], cases.loc[(0, "m2"), "category"]) == (
        "0011", "fixes a mistake",
    )  # fmt: skip
    assert (cases.loc[(1, "m2"), "pattern"], cases.loc[(1, "m2"), "category"]) == (
        "0010", "other changes",
    )  # fmt: skip
    table = mmlu.behaviour.iloc[0]
    assert (table["wavers"], table["other changes"], table["n_cases"]) == (0, 1, 4)


def test_item5_std_over_repeats_is_the_sample_std(mmlu: Analysis) -> None:
    last = mmlu.accuracy.set_index("round").loc[3]
    # last-round accuracy 1.0 (repeat 0) and 0.5 (repeat 1): mean 0.75, sample std
    # sqrt(((0.25)^2 + (0.25)^2) / (2 - 1)) = 0.35355 (the population std would be 0.25)
    assert last["mean"] == pytest.approx(0.75)
    assert last["std"] == pytest.approx(0.3535533905932738)
    table2 = mmlu.tables()["table2"].iloc[0]
    assert table2["std"] == pytest.approx(0.3535533905932738)


# -- MATH --------------------------------------------------------------------------------------

MATH_ROWS: list[dict[str, object]] = [
    {"id": "x0", "problem": "p0", "answer": "0"},
    {"id": "x1", "problem": "p1", "answer": "2520"},
    {"id": "x2", "problem": "p2", "answer": "979121"},
    {"id": "x3", "problem": "p3", "answer": "12"},
]
PRODUCT = "2^3 \\times 3^2 \\times 5 \\times 7"


def _boxed(*contents: str) -> list[str]:
    return [f"So the answer is $\\boxed{{{c}}}$." for c in contents]


#: x0 raw answers (the content of the last \boxed{, braces kept):
#: r0 [0, 0, 0]  r1 [{0}, 5, 7]  r2 [{0}, 0, 0] -> unified within the round: [{0}, {0}, {0}]
#: r3 [{0}, 0, {0}] -> [{0}, {0}, {0}]
X0 = _by_agent([_boxed("0", "0", "0"), _boxed("{0}", "5", "7"), _boxed("{0}", "0", "0"),
                _boxed("{0}", "0", "{0}")])  # fmt: skip
#: x1: r0 the product without inner braces (graded as the string itself: wrong); r1-r3 with
#: them, "{2^3 ...}", the one spelling the reference rewrites to 2520 (right).
X1 = _by_agent([_boxed(PRODUCT, PRODUCT, PRODUCT)] + [_boxed(*["{" + PRODUCT + "}"] * 3)] * 3)
#: x2: 979,121 is graded with its comma removed; "x = " is one of the unit strings removed
#: before the vote.
X2 = _by_agent([_boxed("979,121", "979,121", "x = 979,121")] + [_boxed(*["979,121"] * 3)] * 3)
#: x3: r0 [{12}, {{12}}, 5] -> {12} becomes its peer's {{12}}: majority {{12}}, graded 12
#: (right); r1 [12, 5, 5] -> 5 (wrong); r2 as r0 (right); r3 as r1 (wrong).
X3 = _by_agent([_boxed("{12}", "{{12}}", "5"), _boxed("12", "5", "5")] * 2)


@pytest.fixture
def math_run(tmp_path: Path) -> Analysis:
    data = _jsonl(tmp_path / "math.jsonl", MATH_ROWS)
    folder = tmp_path / "results"
    for case, replies in enumerate([X0, X1, X2, X3]):
        _write(folder, case, replies)
    return _import(tmp_path, "math", data, [folder])


def test_item6_math_grading_and_the_vote_follow_the_reference(math_run: Analysis) -> None:
    votes = math_run.votes.set_index(["case_id", "round"])
    # x0: 0 | all different | {0} | {0}
    assert votes.loc[("x0", 0), "majority"] == "0"
    assert votes.loc[("x0", 1), "majority"] is None
    assert votes.loc[("x0", 2), "majority"] == "{0}" and votes.loc[("x0", 3), "majority"] == "{0}"
    assert votes.loc[("x1", 0), "majority"] == PRODUCT and not votes.loc[("x1", 0), "correct"]
    assert votes.loc[("x1", 1), "correct"]
    assert votes.loc[("x2", 0), "majority"] == "979,121" and votes.loc[("x2", 0), "correct"]
    assert votes.loc[("x3", 0), "majority"] == "{{12}}" and votes.loc[("x3", 0), "correct"]
    # distinct answers as the reference's consistency code counts them: x3 r0 {{12}}, 5
    assert votes.loc[("x3", 0), "n_distinct"] == 2
    acc = math_run.accuracy.set_index("round")["mean"]
    # per round over x0..x3: r0 1,0,1,1  r1 0,1,1,0  r2 1,1,1,1  r3 1,1,1,0
    assert acc.tolist() == [0.75, 0.5, 1.0, 0.75]


def test_item3_math_conformity_unifies_braces_within_a_round_only(math_run: Analysis) -> None:
    turns = math_run.conformity_turns
    hits = turns[turns["conforms"]]
    per_case = hits.groupby("case_id")["type"].apply(sorted).to_dict()
    # x0: r1 {0} vs the previous majority 0: different strings, no conformity; r2: previous
    #     [{0}, 5, 7] has no majority; r3: previous [{0}]*3, all three answer {0}: T→T x 3
    # x1: r1 {2^3...} vs the previous 2^3... (no braces): no; r2, r3: T→T x 3 each
    # x2: every round after the first: T→T x 3
    # x3: r1 [12, 5, 5] vs {{12}}: no; r2 agent 2 keeps 5, the previous majority: F→F;
    #     r3 [12, 5, 5] vs {{12}}: no
    assert per_case == {"x0": ["T→T"] * 3, "x1": ["T→T"] * 6, "x2": ["T→T"] * 9, "x3": ["F→F"]}
    assert len(turns) == 4 * 3 * 3


def test_item4_math_behaviour_paper_and_robust(math_run: Analysis, tmp_path: Path) -> None:
    cases = math_run.behaviour_cases.set_index("case_id")
    assert cases["pattern"].to_dict() == {"x0": "1011", "x1": "0111", "x2": "1111", "x3": "1010"}
    assert cases["category"].to_dict() == {
        "x0": "other changes", "x1": "fixes a mistake", "x2": "stays correct", "x3": "wavers",
    }  # fmt: skip
    # robust mode: every string with two or more changes wavers (x0 1011 included)
    store = RunStore(tmp_path / "run-math" / "store.sqlite")
    try:
        rescore(store, "robust")
    finally:
        store.close()
    robust = societies.load_run(tmp_path / "run-math").behaviour_cases.set_index("case_id")
    assert robust.loc["x0", "category"] == "wavers"


# -- the study's 150 questions -------------------------------------------------------------------


def test_paper_rules_on_the_studys_questions(shared_dir: Path) -> None:
    """On the study's MMLU and MATH questions, the paper parser and grader agree with the
    reference's rules written out independently (``tests/reference_rules.py``)."""
    from societies.tasks.math import MathTask
    from societies.tasks.multiple_choice import MultipleChoiceTask
    from tests import reference_rules

    folder = shared_dir / "benchmarks" / "machinesom"
    task = MultipleChoiceTask("paper")
    overridden = 0
    for case in task.load(folder / "mmlu.jsonl"):
        options = list(case.fields["choices"])
        for i, letter in enumerate("ABCD"):
            for reply in (
                f"Considering all of this, the answer is ({letter}).",
                f"It must be {options[i]}. So ({letter})",
                f"Not {options[(i + 1) % 4]}; the answer is ({letter}).",
            ):
                expected = reference_rules.mmlu(reply, options)
                assert task.parse_case(reply, case) == expected, reply
                overridden += expected != letter
    assert overridden > 0  # the option-text half decides some of these replies
    math = MathTask("paper")
    cases = math.load(folder / "math.jsonl")
    assert len(cases) == 50 and any(c.target == "2520" for c in cases)
    for case in cases:
        for box in (case.target, "{" + case.target + "}", "x = " + case.target, "7"):
            answer = math.parse(f"So $\\boxed{{{box}}}$.")
            assert answer == box
            assert math.score(answer, case) is reference_rules.math_grade(box, case.target)
    product = "2^3 \\times 3^2 \\times 5 \\times 7"
    (c2520,) = [c for c in cases if c.target == "2520"]
    assert not math.score(product, c2520) and math.score("{" + product + "}", c2520)
