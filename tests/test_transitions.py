"""Answer dynamics (analysis/transitions.py) and the stopping comparison, against values worked
out by hand on small grids: ties, no answer, a 10-agent society."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from societies.analysis import collab, metrics, stats, transitions
from tests.analysis_grids import Spec, make_grid, scorer

T = {"c1": "A", "c2": "B"}
N = None


def _table(turns: pd.DataFrame, by: tuple[str, ...]) -> Any:
    return transitions.transition_table(turns, by=by).set_index(["society", *by])


def test_transitions_per_round_trait_and_agent() -> None:
    spec: Spec = {
        # target A; round 1 debate, round 2 reflection.
        # agent 0: A→B (C→W), B→none (A→∅); agent 1: B→A (W→C), A→A (C→C);
        # agent 2: none→C (∅→W), C→A (W→C).
        ("s3", "01", 0, "c1"): [["A", "B", N], ["B", "A", "C"], [N, "A", "A"]],
        # 10 agents, target B: agent by agent B→B C→C, B→A C→W, B→B C→C, A→B W→C,
        # A→none A→∅, A→A W→W, none→none ∅→∅, none→B ∅→C, C→C W→W, B→B C→C.
        ("s10", "0", 0, "c2"): [
            ["B", "B", "B", "A", "A", "A", N, N, "C", "B"],
            ["B", "A", "B", "B", N, "A", N, "B", "C", "B"],
        ],
    }
    traits = {"s3": ["easy-going", "overconfident", "overconfident"], "s10": ["t"] * 10}
    turns = transitions.transition_turns(make_grid(spec, T, traits))
    assert len(turns) == 3 * 2 + 10
    table = _table(turns, ("round", "pattern", "trait"))
    row = table.loc[("s3", 1, "debate", "easy-going")]
    assert (row["turns"], row["C→W"]) == (1, 1)
    row = table.loc[("s3", 1, "debate", "overconfident")]
    assert (row["turns"], row["W→C"], row["∅→W"], row["C→C"]) == (2, 1, 1, 0)
    row = table.loc[("s3", 2, "reflection", "easy-going")]
    assert (row["turns"], row["A→∅"]) == (1, 1)
    row = table.loc[("s3", 2, "reflection", "overconfident")]
    assert (row["turns"], row["C→C"], row["W→C"]) == (2, 1, 1)
    ten = table.loc[("s10", 1, "debate", "t")]
    expected = {"C→C": 3, "C→W": 1, "W→C": 1, "W→W": 2, "A→∅": 1, "∅→C": 1, "∅→W": 0, "∅→∅": 1}
    assert {k: int(ten[k]) for k in transitions.TRANSITIONS} == expected
    assert ten["turns"] == 10
    agents = _table(turns, ("agent", "trait"))
    assert (agents.loc[("s3", 0, "easy-going"), ["C→W", "A→∅"]] == [1, 1]).all()
    assert (agents.loc[("s3", 2, "overconfident"), ["∅→W", "W→C"]] == [1, 1]).all()
    assert agents.loc[("s3", 1, "overconfident"), "turns"] == 2


def test_transitions_leave_out_missing_calls_and_stopped_rounds() -> None:
    spec: Spec = {("s", "00", 0, "c1"): [["A", "A", "B"], ["A", "A", "A"], ["A", "A", "A"]]}
    grid = make_grid(spec, T)
    grid.loc[(grid["round"] == 1) & (grid["agent"] == 0), "outcome"] = "missing"
    grid.loc[(grid["round"] == 2) & (grid["agent"] == 1), "outcome"] = "stopped"
    turns = transitions.transition_turns(grid)
    # round 1: agents 1, 2 (agent 0 missing); round 2: agent 2 only (agent 0's previous call
    # is missing, agent 1's round was not run)
    assert sorted(zip(turns["round"], turns["agent"], turns["transition"], strict=True)) == [
        (1, 1, "C→C"), (1, 2, "W→C"), (2, 2, "C→C"),
    ]  # fmt: skip


def _dynamics_grid() -> pd.DataFrame:
    spec: Spec = {
        # strategy 00, targets c1 = A, c2 = B. Per case: round-0 vote, final vote, whether an
        # agent was ever right, and the collapse category.
        # 1: vote A (right), final B (wrong, not unanimous); ever right: a gap.
        ("s", "00", 0, "c1"): [["A", "A", "B"], ["B", "B", "A"], ["B", "B", "A"]],
        # 2: vote tie (wrong), final B unanimous (right): gained, collapse to the right answer.
        ("s", "00", 0, "c2"): [["A", "B", "C"], ["B", "B", "B"], ["B", "B", "B"]],
        # 3: vote B (wrong), final A (right): gained.
        ("s", "00", 1, "c1"): [["A", "B", "B"], ["A", "A", "B"], ["A", "A", "B"]],
        # 4: agreed and right throughout.
        ("s", "00", 1, "c2"): [["B", "B", "B"], ["B", "B", "B"], ["B", "B", "B"]],
        # incomplete below: left out of every table.
        ("s", "00", 2, "c1"): [["A", "A", "A"], ["A", "A", "A"], ["A", "A", "A"]],
        # 5: nobody ever right; disagreement to unanimity on the wrong A: a collapse.
        ("s", "00", 2, "c2"): [["A", "A", "C"], ["A", "A", "A"], ["A", "A", "A"]],
        # 6: vote tie with a missing answer (wrong); final unanimous on no answer (neither
        # collapse); agent 0 was right in round 0: a gap.
        ("s", "00", 3, "c1"): [["A", N, "B"], [N, N, N], [N, N, N]],
        # 10 agents, one round: round 0 ties A/B at 3 (wrong), then all say B: a collapse and
        # a gap (three agents had A).
        ("s10", "0", 0, "c1"): [[*"AAABBBCCD", N], ["B"] * 10],
        # a baseline: round 0 only, no row in any table.
        ("b", "vote", 0, "c1"): [["A", "B", "A"]],
    }
    grid = make_grid(spec, T)
    grid.loc[(grid["repeat"] == 2) & (grid["case_id"] == "c1") & (grid["round"] == 1)
             & (grid["agent"] == 1), "outcome"] = "missing"  # fmt: skip
    return grid


def test_debate_vs_vote_pairs_cases_with_a_bootstrap_ci() -> None:
    votes = metrics.vote_table(_dynamics_grid(), scorer(T))
    table = transitions.debate_vs_vote(votes).set_index("society")
    assert set(table.index) == {"s", "s10"}
    row = table.loc["s"]
    assert (row["n"], row["round"], row["gained"], row["lost"]) == (6, 2, 2, 1)
    assert row["vote_accuracy"] == pytest.approx(2 / 6)
    assert row["final_accuracy"] == pytest.approx(3 / 6)
    assert row["difference"] == pytest.approx(1 / 6)
    # the paired per-case differences in (repeat, case) order, by hand: cases 1..6
    low, high = stats.bootstrap_ci([-1, 1, 1, 0, 0, 0])
    assert (row["ci_low"], row["ci_high"]) == (low, high)
    assert low < 1 / 6 < high
    ten = table.loc["s10"]
    assert (ten["n"], ten["vote_accuracy"], ten["final_accuracy"]) == (1, 0.0, 0.0)
    assert (ten["ci_low"], ten["ci_high"]) == (0.0, 0.0)


def test_oracle_gap_and_disagreement_collapse() -> None:
    grid = _dynamics_grid()
    votes = metrics.vote_table(grid, scorer(T))
    gap = transitions.oracle_gap(grid, votes).set_index("society")
    assert set(gap.index) == {"s", "s10"}
    row = gap.loc["s"]
    assert row["n"] == 6
    assert row["oracle"] == pytest.approx(5 / 6)  # all but case 5
    assert row["final_accuracy"] == pytest.approx(3 / 6)
    assert row["oracle_gap"] == pytest.approx(2 / 6)  # cases 1 and 6
    assert row["lost_share"] == pytest.approx(2 / 5)
    assert tuple(gap.loc["s10", ["oracle", "oracle_gap", "lost_share"]]) == (1.0, 1.0, 1.0)
    collapse = transitions.disagreement_collapse(votes).set_index("society")
    row = collapse.loc["s"]
    assert tuple(row[["n", "disagreed", "to_wrong", "to_right"]]) == (6, 5, 1, 1)
    assert row["collapse_rate"] == pytest.approx(1 / 6)
    assert row["collapse_share"] == pytest.approx(1 / 5)
    ten = collapse.loc["s10"]
    assert tuple(ten[["n", "disagreed", "to_wrong", "to_right"]]) == (1, 1, 1, 0)


def test_stopping_effect_against_the_twin_without_stopping() -> None:
    config = {
        "societies": [
            {"name": "plain", "agents": 3, "easy_going": 1},
            {"name": "early", "agents": 3, "easy_going": 1, "stop": "unanimous"},
            {"name": "other", "agents": 3, "easy_going": 2, "stop": 0.5},  # no twin
        ]
    }
    members = {
        "plain": ["easy-going", "overconfident", "overconfident"],
        "early": ["easy-going", "overconfident", "overconfident"],
        "other": ["easy-going", "easy-going", "overconfident"],
    }
    refs = collab.stopping_references(config, members)
    assert refs == {"early": "plain"}
    cell = {"run": "r", "task": "t", "strategy": "00", "round": 2}
    accuracy = pd.DataFrame(
        [{**cell, "society": "plain", "mean": 0.6}, {**cell, "society": "early", "mean": 0.7},
         {**cell, "society": "other", "mean": 0.5}, {**cell, "round": 1, "society": "plain",
                                                     "mean": 0.1}]
    )  # fmt: skip
    cost = pd.DataFrame(
        [{**cell, "society": "plain", "billed_per_case": 1000.0},
         {**cell, "society": "early", "billed_per_case": 400.0},
         {**cell, "society": "other", "billed_per_case": 300.0}]
    )  # fmt: skip
    table = collab.stopping_effect(accuracy, cost, {("r", k): v for k, v in refs.items()})
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["society"], row["reference"]) == ("early", "plain")
    assert row["difference"] == pytest.approx(0.1)
    assert row["tokens_saved"] == pytest.approx(0.6)


def test_settings_are_keyed_by_the_names_the_resolver_gives() -> None:
    """The stored experiment's societies expand to the names the plan gives them, whatever
    their order or naming (study shorthand, easy_going lists, explicit agents)."""
    from societies.analysis.baselines import baselines_of
    from societies.plan.resolve import load_plans
    from tests.helpers import REPO

    files = sorted((REPO / "experiments").rglob("*.yaml"))
    assert len(files) > 10
    for file in files:
        for plan in load_plans(file):
            config = plan.experiment.model_dump(mode="json")
            names = [*collab.expanded_specs(config), *baselines_of(config, pd.Series())]
            assert names == [s.name for s in plan.societies], file


def test_batched_bootstrap_intervals_are_bootstrap_ci_of_each_sample() -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    samples = [rng.integers(-1, 2, size=n).astype(float) for n in (5, 5, 5, 5, 7, 7, 1, 0)]
    got = stats.bootstrap_cis(samples)
    for sample, interval in zip(samples[:-1], got[:-1], strict=True):
        assert interval == pytest.approx(stats.bootstrap_ci(sample), abs=1e-12)
    assert all(v != v for v in got[-1])  # an empty sample: (nan, nan)
