"""Every metric against values computed by hand on small answer grids."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from societies.analysis import metrics
from societies.analysis.accuracy import majority_vote
from societies.analysis.cost import cost_by_agent, cost_per_agent, cost_table
from tests.analysis_grids import Spec, make_grid, scorer

T = {"c1": "A", "c2": "B"}


def votes_of(grid: pd.DataFrame) -> pd.DataFrame:
    return metrics.vote_table(grid, scorer(T))


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["A", "A", "B"], "A"),
        (["A", "B", "C"], None),  # all different: no answer
        (["A", "B"], None),  # 2 agents disagreeing: a tie at the top
        (["A", "A"], "A"),
        ([None, None, "A"], None),  # no answer counts as a value, and wins here
        ([None, "A", "B"], None),
        (["A"], "A"),
        (list("AAAABBBCCC"), "A"),  # 10 agents, plurality of 4
        (list("AAABBBCCDD"), None),  # 10 agents, tie at the top
        ([None, None, None, "A", "A", "B", "B", "C", "D", "E"], None),  # 10: None wins
    ],
)
def test_majority_vote_rules(answers: list[str | None], expected: str | None) -> None:
    assert majority_vote(answers) == expected


def test_vote_table_scores_majorities_and_counts_distinct_answers() -> None:
    grid = make_grid(
        {
            ("s3", "0", 0, "c1"): [["A", "A", "B"], ["A", "A", "A"]],
            ("s3", "0", 0, "c2"): [[None, None, "B"], ["B", "C", "D"]],
        },
        T,
    )
    votes = votes_of(grid).set_index(["case_id", "round"])
    assert votes.loc[("c1", 0), "majority"] == "A" and votes.loc[("c1", 0), "correct"]
    assert votes.loc[("c1", 1), "n_distinct"] == 1
    assert votes.loc[("c2", 0), "majority"] is None and not votes.loc[("c2", 0), "correct"]
    assert votes.loc[("c2", 0), "n_distinct"] == 2  # None and B
    assert votes.loc[("c2", 1), "majority"] is None  # all different
    assert votes["complete"].all()


def test_nan_answers_count_as_one_missing_value() -> None:
    grid = make_grid({("s", "0", 0, "c1"): [["A", None, None]]}, T)
    grid["answer"] = pd.Series(["A", np.nan, float("nan")], dtype=object)
    votes = votes_of(grid)
    assert votes["majority"].iloc[0] is None and votes["n_distinct"].iloc[0] == 2


def test_accuracy_leaves_out_incomplete_groups_and_averages_repeats() -> None:
    spec = {
        ("s", "0", 0, "c1"): [["A", "A", "B"]],  # right
        ("s", "0", 0, "c2"): [["A", "A", "B"]],  # wrong (target B)
        ("s", "0", 1, "c1"): [["A", "B", "A"]],  # right
        ("s", "0", 1, "c2"): [["B", "B", "B"]],  # right
        ("s", "0", 2, "c1"): [["A", "A", "A"]],  # incomplete below: left out
    }
    grid = make_grid(spec, T)
    grid.loc[(grid["repeat"] == 2) & (grid["agent"] == 1), "outcome"] = "missing"
    by_repeat = metrics.accuracy_by_repeat(votes_of(grid))
    assert list(by_repeat["accuracy"]) == [0.5, 1.0]
    summary = metrics.accuracy_summary(by_repeat).iloc[0]
    assert summary["mean"] == pytest.approx(0.75)
    # the study's sample std (ddof=1) of (0.5, 1.0): sqrt(2 * 0.25**2 / 1)
    assert summary["std"] == pytest.approx(0.25 * 2**0.5)
    assert summary["n_repeats"] == 2 and summary["n_cases"] == 4
    sample = metrics.accuracy_summary(by_repeat, ddof=1).iloc[0]
    assert sample["std"] == pytest.approx(np.std([0.5, 1.0], ddof=1))


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["A", "A", "B"], {"A"}),
        (["A", "B", "C"], set()),  # no answer given twice: no majority to conform to
        (["A", "B"], set()),  # 2 agents disagreeing
        (["A", "A"], {"A"}),
        ([None, None, "A"], set()),  # None is nothing to conform to
        (list("AAAABBBBCC"), {"A", "B"}),  # 10 agents, tied majorities
        (list("AABBCCDDEF"), {"A", "B", "C", "D"}),
    ],
)
def test_majority_set(answers: list[str | None], expected: set[str]) -> None:
    assert metrics.majority_set(answers) == expected


def test_conformity_types_per_round_and_trait() -> None:
    traits = {"s": ["easy-going", "overconfident", "overconfident"]}
    spec = {
        # target A. Round 0 majority {A}; round 1 debate: everyone says A.
        # agent0 A->A T→T, agent1 A->A T→T, agent2 B->A F→T.
        # Round 2 debate, previous majority {A}: agent0 B (no), agent1 A T→T, agent2 C (no).
        ("s", "00", 0, "c1"): [["A", "A", "B"], ["A", "A", "A"], ["B", "A", "C"]],
        # target B. Reflection in round 1 counts nothing; round 2 debate after [C, C, B]:
        # majority {C}: agent0 C->C F→F, agent1 C->C F→F, agent2 B->C T→F.
        ("s", "10", 0, "c2"): [["A", "A", "B"], ["C", "C", "B"], ["C", "C", "C"]],
    }
    turns = metrics.conformity(make_grid(spec, T, traits))
    assert len(turns) == 9  # 3 debate rounds x 3 agents
    table: Any = metrics.conformity_table(turns).set_index(["round", "trait"])
    r1_over = table.loc[(1, "overconfident")]
    assert (r1_over["debate_turns"], r1_over["conform"]) == (2, 2)
    assert (r1_over["T→T"], r1_over["F→T"]) == (1, 1)
    r2_easy = table.loc[(2, "easy-going")]
    assert (r2_easy["debate_turns"], r2_easy["conform"], r2_easy["F→F"]) == (2, 1, 1)
    r2_over = table.loc[(2, "overconfident")]
    assert (r2_over["debate_turns"], r2_over["conform"]) == (4, 3)
    assert (r2_over["T→T"], r2_over["F→F"], r2_over["T→F"]) == (1, 1, 1)
    assert r2_over["conformity_rate"] == pytest.approx(0.75)


def test_conformity_leaves_out_turns_after_an_incomplete_round() -> None:
    spec: Spec = {("s", "00", 0, "c1"): [["A", "A", "B"], ["A", "A", "A"], ["A", "A", "A"]]}
    grid = make_grid(spec, T)
    grid.loc[(grid["round"] == 1) & (grid["agent"] == 2), "outcome"] = "missing"
    turns = metrics.conformity(grid)
    # round 1: agents 0 and 1 (agent 2's own turn is missing); round 2: nothing, since the
    # round-1 majority it would conform to is not known
    assert sorted(zip(turns["round"], turns["agent"], strict=True)) == [(1, 0), (1, 1)]


def test_conformity_two_and_ten_agents() -> None:
    spec: Spec = {
        # 2 agents never have a majority unless they already agree.
        ("two", "0", 0, "c1"): [["A", "B"], ["B", "A"]],
        ("two", "0", 0, "c2"): [["B", "B"], ["B", "C"]],
        # 10 agents, tied majorities {A, B}: the C agents that move to B conform (F→F),
        # the agent that moves from A to None does not.
        ("ten", "0", 0, "c1"): [list("AAAABBBBCC"), [*"AAA", None, *"BBBB", "B", "B"]],
    }
    turns = metrics.conformity(make_grid(spec, T))
    table = metrics.conformity_table(turns, by=("round",)).set_index("society")
    assert table.loc["two", "debate_turns"] == 4 and table.loc["two", "conform"] == 1
    assert table.loc["two", "T→T"] == 1  # c2 agent0 keeps B with the majority
    assert table.loc["ten", "debate_turns"] == 10 and table.loc["ten", "conform"] == 9
    assert table.loc["ten", "T→T"] == 3 and table.loc["ten", "F→F"] == 6


def test_consensus_counts_distinct_answers_and_share() -> None:
    spec: Spec = {
        ("s", "0", 0, "c1"): [["A", "B", "C"], ["A", "A", "A"]],
        ("s", "0", 0, "c2"): [["A", None, None], ["B", "B", None]],
        ("ten", "0", 0, "c1"): [list("AAAAABBBCD"), list("A" * 10)],
    }
    table = metrics.consensus(votes_of(make_grid(spec, T))).set_index(["society", "round"])
    assert table.loc[("s", 0), "distinct"] == pytest.approx(2.5)  # 3 and 2
    assert table.loc[("s", 0), "distinct_share"] == pytest.approx((1 + 2 / 3) / 2)
    assert table.loc[("s", 1), "distinct"] == pytest.approx(1.5)
    assert table.loc[("s", 1), "unanimous"] == pytest.approx(0.5)
    assert table.loc[("ten", 0), "distinct"] == 4
    assert table.loc[("ten", 0), "distinct_share"] == pytest.approx(0.4)
    assert table.loc[("ten", 1), "distinct_share"] == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("pattern", "category"),
    [
        ("0111", "fixes a mistake"),
        ("0011", "fixes a mistake"),
        ("0001", "fixes a mistake"),
        ("1000", "breaks a correct answer"),
        ("1100", "breaks a correct answer"),
        ("1110", "breaks a correct answer"),
        ("1111", "stays correct"),
        ("0000", "stays wrong"),
        ("0101", "wavers"),
        ("1011", "wavers"),
        ("0110", "wavers"),
        ("1", "stays correct"),
        ("01", "fixes a mistake"),
    ],
)
def test_behaviour_category(pattern: str, category: str) -> None:
    assert metrics.behaviour_category(pattern) == category


def test_behaviour_per_case_and_table() -> None:
    spec = {
        ("s", "00", 0, "c1"): [["B", "B", "A"], ["A", "A", "B"], ["A", "A", "A"]],  # 011 fix
        ("s", "00", 0, "c2"): [["B", "B", "A"], ["A", "A", "B"], ["B", "C", "D"]],  # 100 break
        ("s", "00", 1, "c1"): [["A", "B", "C"], ["A", "A", "B"], ["B", "B", "A"]],  # 010 waver
        ("s", "00", 1, "c2"): [["B", "B", "B"], ["B", "B", "A"], ["B", "B", "A"]],  # 111
    }
    grid = make_grid(spec, T)
    cases = metrics.behaviour(votes_of(grid)).set_index(["repeat", "case_id"])
    assert cases.loc[(0, "c1"), "pattern"] == "011"
    assert cases.loc[(0, "c2"), "pattern"] == "100"
    assert cases.loc[(1, "c1"), "pattern"] == "010"
    table = metrics.behaviour_table(metrics.behaviour(votes_of(grid))).iloc[0]
    assert table["fixes a mistake"] == 1 and table["breaks a correct answer"] == 1
    assert table["wavers"] == 1 and table["stays correct"] == 1 and table["stays wrong"] == 0
    assert table["n_cases"] == 4
    # A case missing an agent's round-2 call says nothing about behaviour.
    grid.loc[(grid["repeat"] == 0) & (grid["round"] == 2) & (grid["agent"] == 0), "outcome"] = (
        "missing"
    )
    assert len(metrics.behaviour(votes_of(grid))) == 2


def test_parse_failures_count_only_returned_answer_calls() -> None:
    calls = pd.DataFrame(
        {
            "run": "r",
            "task": "t",
            "society": "s",
            "agent": [0, 0, 0, 0, 1, 1],
            "round": [0, 0, 0, 0, 0, 0],
            "step": ["persona", "answer", "answer", "answer", "answer", "answer"],
            "outcome": ["ok", "ok", "ok", "context_exceeded", "ok", "error"],
            "answer": pd.Series([None, "A", None, None, "B", None], dtype=object),
        }
    )
    table = metrics.parse_failures(calls).set_index("agent")
    assert (table.loc[0, "calls"], table.loc[0, "failures"]) == (2, 1)
    assert table.loc[0, "rate"] == pytest.approx(0.5)
    assert (table.loc[1, "calls"], table.loc[1, "failures"]) == (1, 0)


def test_token_cost_study_definition_and_billed_total() -> None:
    spec = {("s", "01", 0, "c1"): [["A", "A"], ["A", "A"], ["A", "A"]]}
    grid = make_grid(spec, T)
    # agent 0: 100, 250, 400 tokens by round; agent 1: 110, 260, 420
    tokens = {(0, 0): 100, (0, 1): 250, (0, 2): 400, (1, 0): 110, (1, 1): 260, (1, 2): 420}
    grid["total_tokens"] = [
        tokens[(a, r)] for a, r in zip(grid["agent"], grid["round"], strict=True)
    ]
    persona = pd.DataFrame(
        {"run": "r", "repeat": 0, "case_id": "c1", "society": "s", "agent": [0, 1],
         "total_tokens": [30, 40]}
    )  # fmt: skip
    per_agent = cost_per_agent(grid, persona)
    last = per_agent[(per_agent["round"] == 2)].set_index("agent")
    assert last.loc[0, "last_call"] == 400 and last.loc[0, "billed"] == 30 + 100 + 250 + 400
    table = cost_table(per_agent).set_index("round")
    assert table.loc[2, "study_per_case"] == 400 + 420  # each agent's last call
    assert table.loc[2, "billed_per_case"] == (30 + 100 + 250 + 400) + (40 + 110 + 260 + 420)
    assert table.loc[0, "study_per_case"] == 210
    assert table.loc[0, "billed_per_case"] == 280
    agents: Any = cost_by_agent(per_agent).set_index(["round", "agent"])
    assert agents.loc[(2, 1), "last_call_per_case"] == 420
    assert agents.loc[(2, 1), "billed_per_case"] == 40 + 110 + 260 + 420


def test_accuracy_of_two_and_ten_agent_societies() -> None:
    spec: Spec = {
        # 2 agents: agreement is needed for an answer.
        ("two", "0", 0, "c1"): [["A", "B"], ["A", "A"]],  # tie (wrong), then A (right)
        ("two", "0", 0, "c2"): [["B", None], [None, None]],  # tie, then no answer: wrong twice
        # 10 agents: a plurality wins, a tie at the top does not.
        ("ten", "0", 0, "c1"): [list("AAAABBBCCD"), list("AAABBBCCDD")],  # A, then tie
        ("ten", "0", 0, "c2"): [[*"BBB", *[None] * 4, *"ACD"], list("BBBBBAAAAC")],  # None, B
    }
    by_repeat = metrics.accuracy_by_repeat(votes_of(make_grid(spec, T)))
    acc = by_repeat.set_index(["society", "round"])["accuracy"]
    assert acc[("two", 0)] == 0.0 and acc[("two", 1)] == 0.5
    assert acc[("ten", 0)] == 0.5 and acc[("ten", 1)] == 0.5


def test_context_exceeded_is_an_answer_slot_without_an_answer() -> None:
    grid = make_grid({("s", "0", 0, "c1"): [["A", "A", "B"], ["A", None, None]]}, T)
    grid.loc[(grid["round"] == 1) & (grid["agent"] > 0), "outcome"] = "context_exceeded"
    votes = votes_of(grid).set_index("round")
    assert votes.loc[1, "complete"]
    assert votes.loc[1, "majority"] is None and not votes.loc[1, "correct"]  # None x2 wins


def test_behaviour_of_a_two_agent_society() -> None:
    spec = {("two", "00", 0, "c1"): [["A", "B"], ["A", "A"], ["B", "A"]]}  # 0 1 0: wavers
    cases = metrics.behaviour(votes_of(make_grid(spec, T)))
    assert cases["pattern"].tolist() == ["010"] and cases["category"].tolist() == ["wavers"]


def test_majority_codes_over_many_groups_is_the_study_rule_per_group() -> None:
    """The array form of the majority (what vote_table uses) gives, group by group, what the
    study's rule gives: the most common answer, ``None`` counted as a value, a tie at the top
    (all different included) no answer. The reference here is a plain Counter."""
    import random
    from collections import Counter

    from societies.analysis.accuracy import factorize, majority_codes

    rng = random.Random(7)
    groups = [
        [rng.choice(["A", "B", "C", None]) for _ in range(rng.randint(1, 7))] for _ in range(500)
    ]
    flat = [a for g in groups for a in g]
    ids = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    order = rng.sample(range(len(flat)), len(flat))  # rows need not be grouped together
    codes, values = factorize([flat[i] for i in order])
    winners = majority_codes(ids[order], codes, len(groups))
    for group, winner in zip(groups, winners, strict=True):
        ranked = Counter(group).most_common()
        tie = len(ranked) > 1 and ranked[0][1] == ranked[1][1]
        assert (None if winner < 0 else values[winner]) == (None if tie else ranked[0][0])
        assert (winner < 0) == tie  # a majority of missing answers is a code, not a tie
