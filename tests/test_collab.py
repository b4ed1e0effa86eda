"""Topology, stopping rules and decision protocols: who sees whom, which calls are made, and
what the society answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from societies.analysis.accuracy import decide, unanimity_vote, weighted_vote
from societies.analysis.load import load_run
from societies.backends.fake import Asked, FunctionModel
from societies.cli.main import cli
from societies.tasks.agreement import agreed
from tests.helpers import REPO, experiment, run, same_backend, write
from tests.test_bad_input import GOOD, assert_one_line, run_cli


def _tagged(asked: Asked) -> str:
    truth, key = asked.truth, asked.request.key
    assert key is not None
    return f"agent {truth.agent.index} node {key.node!r} (A)"


def _society(agents: int, **settings: Any) -> dict[str, Any]:
    return {"name": "s", "agents": ["overconfident"] * agents, **settings}


@pytest.mark.parametrize(
    ("topology", "expected"),
    [
        ("full", [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]),
        ("ring", [[1, 3], [0, 2], [1, 3], [0, 2]]),
        ({"star": 2}, [[2], [2], [0, 1, 3], [2]]),
        ("none", [[], [], [], []]),
        ({"neighbours": [[3, 1], [], [0], [0, 1, 2]]}, [[1, 3], [], [0], [0, 1, 2]]),
    ],
)
def test_a_debater_sees_its_neighbours_replies_in_index_order(
    tmp_path: Path, topology: Any, expected: list[list[int]]
) -> None:
    exp = experiment(prompts="default", rounds=None, strategies=["00"])
    exp["task"]["cases"] = 2
    exp["societies"] = [_society(4, topology=topology)]
    model = FunctionModel(_tagged)
    _, summary = run(write(tmp_path, exp), tmp_path / "out", same_backend(model))
    # The topology changes what is read, never which calls are made: n x 3 nodes per case.
    assert summary.made == 2 * 4 * 3
    debates = [a for a in model.requests if a.truth.round > 0]
    assert len(debates) == 2 * 4 * 2
    for asked in debates:
        t = asked.truth
        parent = repr("0" * (t.round - 1))
        want = tuple(f"agent {j} node {parent} (A)" for j in expected[t.agent.index])
        assert t.peer_replies == want


def test_a_topology_per_round_with_the_last_holding_later(tmp_path: Path) -> None:
    exp = experiment(prompts="default", rounds=None, strategies=["000"])
    exp["task"]["cases"] = 1
    exp["societies"] = [_society(3, topology={"rounds": ["none", "full"]})]
    model = FunctionModel(_tagged)
    run(write(tmp_path, exp), tmp_path / "out", same_backend(model))
    seen = {(a.truth.round, a.truth.agent.index): len(a.truth.peer_replies) for a in model.requests}
    assert [seen[(1, i)] for i in range(3)] == [0, 0, 0]
    assert [seen[(r, i)] for r in (2, 3) for i in range(3)] == [2] * 6


def test_sparse_topologies_read_fewer_input_tokens(tmp_path: Path) -> None:
    tokens = {}
    for topology in ("full", "ring", "none"):
        exp = experiment(prompts="default", rounds=2, strategies=["00"])
        exp["societies"] = [_society(6, topology=topology)]
        out = tmp_path / topology
        run(write(tmp_path, exp), out)
        calls = load_run(out).calls
        tokens[topology] = int(calls["prompt_tokens"].sum())
    assert tokens["none"] < tokens["ring"] < tokens["full"]


# -- stopping ------------------------------------------------------------------------------
def _agree_after_debate(asked: Asked) -> str:
    """Case qs-01: everyone says (B) from the start. Case qs-02: round 0 split A/B/C; after a
    debate round everyone says (A); after a reflection each keeps its own letter."""
    t, key = asked.truth, asked.request.key
    assert key is not None
    if t.case.id == "qs-01":
        return "(B)"
    if key.node.endswith("0"):
        return "(A)"
    return f"({'ABC'[t.agent.index]})"


def test_stopping_calls_are_exactly_the_tree_nodes_reached(tmp_path: Path) -> None:
    exp = experiment(prompts="default", rounds=2, strategies="all")
    exp["task"]["cases"] = 2
    exp["societies"] = [_society(3, stop="unanimous")]
    model = FunctionModel(_agree_after_debate)
    _, summary = run(write(tmp_path, exp), tmp_path / "out", same_backend(model))
    # qs-01 stops at the root: 3 calls, 6 nodes x 3 saved. qs-02: root, "0" (agrees: 00, 01
    # saved), "1", "10" (agrees, a leaf), "11": 5 nodes x 3 = 15 calls, 2 x 3 saved.
    assert summary.made == 3 + 15
    assert summary.saved == 18 + 6
    assert summary.planned == summary.made + summary.saved == 2 * 3 * 7
    # The expectation formula n * sum over nodes of P(no ancestor stopped), with these
    # indicator probabilities, gives the same figure.
    assert summary.made == 3 * (1 + 0 * 6) + 3 * (1 + 2 + 2 * 0 + 2 * 1)
    # A second invocation makes nothing and saves the same calls again.
    _, again = run(write(tmp_path, exp), tmp_path / "out", same_backend(model))
    assert again.made == 0 and again.saved == 24

    a = load_run(tmp_path / "out")
    qs1 = a.answers[a.answers["case_id"] == "qs-01"]
    late = qs1[qs1["round"] > 0]
    assert set(late["outcome"]) == {"stopped"} and set(late["answer"]) == {"B"}
    assert late["correct"].all()
    assert late["total_tokens"].sum() == 0
    # Every group is complete: the stopped answer is scored in every later round, and the
    # run is not reported incomplete for the calls it did not need.
    assert a.votes["complete"].all()
    assert a.incomplete == {}
    acc = a.accuracy.set_index(["strategy", "round"])["mean"]
    # qs-01: (B) carried, right. qs-02 (answer A): "01" carries node "0"'s unanimous (A),
    # right; "11" ends split A/B/C, no majority, wrong.
    assert acc[("11", 2)] == pytest.approx(0.5)
    assert acc[("01", 2)] == pytest.approx(1.0)
    stop = a.stopping.set_index("society").loc["s"]
    assert stop["calls_made"] == 18 and stop["calls_saved"] == 24
    assert stop["tokens_saved_est"] > 0


def test_a_stopping_fraction_stops_on_a_two_of_three_majority(tmp_path: Path) -> None:
    def two_agree(asked: Asked) -> str:
        return "(A)" if asked.truth.agent.index < 2 else "(C)"

    exp = experiment(prompts="default", rounds=2, strategies="all")
    exp["task"]["cases"] = 1
    exp["societies"] = [_society(3, stop=0.6), _society(3, stop=0.7, name="t")]
    _, summary = run(write(tmp_path, exp), tmp_path / "out", same_backend(FunctionModel(two_agree)))
    assert summary.made == 3 + 3 * 7  # 2/3 >= 0.6 stops at once; 2/3 < 0.7 runs the tree


@pytest.mark.parametrize(
    ("answers", "threshold", "expected"),
    [(["A", "A", "A"], 1.0, True), (["A", "A", None], 1.0, False), ([None, None], 0.5, False),
     (["A", "A", "B"], 2 / 3, True), (["A", "A", "B"], 0.7, False), (["A", "B"], 0.5, True),
     ([], 1.0, False)],
)  # fmt: skip
def test_agreement(answers: list[str | None], threshold: float, expected: bool) -> None:
    assert agreed(answers, threshold) is expected


# -- decision protocols -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("answers", "unanimity", "weights", "weighted"),
    [
        (["A", "A", "A"], "A", [1, 1, 1], "A"),
        (["A", "A", "B"], None, [1, 1, 3], "B"),
        (["A", "A", "B"], None, [1, 1, 2], None),  # 2 = 2: a tie is no answer
        ([None, None, "B"], None, [1, 1, 1], None),  # no answer wins the weighted vote
        ([None, None], None, [0.5, 0.25], None),
        (["A", "B", "C", "D"], None, [0.1, 0.4, 0.3, 0.2], "B"),
    ],
)
def test_protocols_on_hand_computed_votes(
    answers: list[str | None], unanimity: str | None, weights: list[float], weighted: str | None
) -> None:
    assert unanimity_vote(answers) == unanimity
    assert weighted_vote(answers, weights) == weighted
    assert decide({"weighted": weights}, answers) == weighted
    assert decide("unanimity", answers) == unanimity


def test_every_protocol_is_scored_beside_the_majority(tmp_path: Path) -> None:
    def fixed(asked: Asked) -> str:
        return f"({'AAC'[asked.truth.agent.index]})"  # qs-01's answer is B, qs-02's is A

    exp = experiment(prompts="default", rounds=1, strategies=["0"])
    exp["task"]["cases"] = 2
    exp["societies"] = [
        _society(3, name="maj"),
        _society(3, name="una", decision="unanimity"),
        _society(3, name="wei", decision={"weighted": [1, 1, 3]}),
    ]
    run(write(tmp_path, exp), tmp_path / "out", same_backend(FunctionModel(fixed)))
    a = load_run(tmp_path / "out")
    table = a.decisions.set_index(["society", "round"])
    assert set(table.index.get_level_values(0)) == {"una", "wei"}
    # Majority (A): right on qs-02 only; unanimity: never; weighted (C): never.
    assert table.loc[("una", 1), "majority_accuracy"] == pytest.approx(0.5)
    assert table.loc[("una", 1), "accuracy"] == 0
    assert table.loc[("una", 1), "no_answer"] == 1
    assert table.loc[("wei", 0), "accuracy"] == 0
    assert table.loc[("wei", 0), "no_answer"] == 0
    assert table.loc[("wei", 0), "decision"] == "weighted"
    votes = a.decision_votes
    assert set(votes.loc[votes["society"] == "wei", "decided"]) == {"C"}


# -- bad input -------------------------------------------------------------------------------
SOCIETY = "  - name: mixed\n"


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ("    topology: mesh\n", "quickstart.yaml:9: societies[0].topology: Input should be"),
        ("    topology: {neighbours: [[1], [3], [0]]}\n",
         "quickstart.yaml:9: societies[0].topology.neighbours[1][0]: neighbour 3 is out of "
         "range (agents 0..2)"),
        ("    topology: {neighbours: [[1], [0]]}\n",
         "quickstart.yaml:9: societies[0].topology.neighbours: gives 2 lists, the society has 3"),
        ("    topology: {star: 5}\n",
         "quickstart.yaml:9: societies[0].topology.star: centre 5 is out of range"),
        ("    stop: 1.5\n",
         "quickstart.yaml:9: societies[0].stop: a fraction in (0, 1] or 'unanimous', got 1.5"),
        ("    stop: 0\n",
         "quickstart.yaml:9: societies[0].stop: a fraction in (0, 1] or 'unanimous', got 0"),
        ("    stop: always\n", "quickstart.yaml:9: societies[0].stop: Input should be"),
        ("    decision: {weighted: [1, 2]}\n",
         "quickstart.yaml:9: societies[0].decision.weighted: gives 2 weights, the society has "
         "3 agents"),
        ("    decision: jury\n", "quickstart.yaml:9: societies[0].decision: Input should be"),
    ],
)  # fmt: skip
def test_bad_collaboration_settings_are_one_clear_line(
    tmp_path: Path, new: str, expected: str
) -> None:
    assert SOCIETY in GOOD
    code, stderr, out = run_cli(tmp_path, GOOD.replace(SOCIETY, SOCIETY + new))
    assert_one_line(code, stderr, out, expected)


# -- the examples ----------------------------------------------------------------------------
EXAMPLES = REPO / "experiments" / "modern"


@pytest.mark.parametrize("name", ["sparse", "early-stop", "decisions"])
def test_modern_examples_run_with_limit(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    result = CliRunner().invoke(
        cli, ["run", str(EXAMPLES / f"{name}.yaml"), "--out", str(out), "--limit", "2"]
    )
    assert result.exit_code == 0, result.output
    a = load_run(out)
    tokens = a.society_tokens.set_index("society")["input_tokens_per_case"]
    if name == "sparse":
        assert "calls and tokens per case" in result.output
        assert tokens["ring"] < tokens["full"] and tokens["star"] < tokens["full"]
    elif name == "early-stop":
        assert "not needed (stopping rule)" in result.output
        saved = a.stopping.set_index("society")["calls_saved"]
        assert saved["two-of-three"] > 0 and "no-stop" not in saved
        assert tokens["two-of-three"] < tokens["no-stop"]
        dry = CliRunner().invoke(
            cli, ["run", str(EXAMPLES / f"{name}.yaml"), "--out", str(tmp_path / "dry"),
                  "--limit", "2", "--dry-run"],
        )  # fmt: skip
        assert "calls: at most 864 to make" in dry.output  # 2 cases x 3 societies x 3 x 48
    else:
        assert "decision protocols" in result.output
        assert set(a.decisions["decision"]) == {"unanimity", "weighted"}


def test_the_report_shows_stopping_and_decision_tables(tmp_path: Path) -> None:
    from societies.report.render import render_report

    exp = experiment(prompts="default", rounds=1, strategies=["0"])
    exp["task"]["cases"] = 2
    exp["societies"] = [
        _society(3, name="plain"),
        _society(3, name="early", stop="unanimous", decision="unanimity"),
    ]
    run(write(tmp_path, exp), tmp_path / "out")
    html = render_report(load_run(tmp_path / "out"), transcripts=0)
    assert "Stopping rules: calls made and saved" in html
    assert "Decision protocols: accuracy beside the majority" in html
    assert "Calls and tokens per case, by society" in html
    plain = experiment(prompts="default", rounds=1, strategies=["0"])
    plain["task"]["cases"] = 1
    run(write(tmp_path, plain, "plain.yaml"), tmp_path / "plain")
    html = render_report(load_run(tmp_path / "plain"), transcripts=0)
    assert "Stopping rules" not in html and "Decision protocols" not in html


def test_the_estimate_before_a_run_counts_only_the_neighbours_read(tmp_path: Path) -> None:
    from societies.plan.plan import Overrides
    from societies.plan.resolve import load_plan
    from societies.scheduler.estimate import estimate_plan

    prompts = {}
    for topology in ("full", "ring", "none"):
        exp = experiment(prompts="default", rounds=2, strategies=["00"])
        exp["societies"] = [_society(6, topology=topology)]
        plan = load_plan(write(tmp_path, exp), Overrides(out=tmp_path / topology))
        est = estimate_plan(plan)
        assert est.calls == 4 * 6 * 3
        prompts[topology] = est.prompt_tokens
    assert prompts["none"] < prompts["ring"] < prompts["full"]
