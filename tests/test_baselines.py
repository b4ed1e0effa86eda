"""Baselines at equal budget: a single agent and self-consistency run as societies of k agents
that answer once; k fixed, or matched to a society's tokens from a stored run or the estimate."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from societies.analysis.load import load_run
from societies.analysis.tables import table2_markdown
from societies.cli.main import cli
from societies.plan.plan import Overrides
from societies.plan.resolve import load_plan
from societies.scheduler.tree import planned_calls
from tests.helpers import REPO, experiment, run, write
from tests.test_bad_input import GOOD, assert_one_line, run_cli


def _with_baselines(baselines: list[Any], **overrides: Any) -> dict[str, Any]:
    exp = experiment(rounds=2, strategies=["00"], **overrides)
    exp["task"]["cases"] = 3
    exp["societies"] = [{"name": "s", "agents": 3, "easy_going": 1}]
    exp["baselines"] = baselines
    return exp


def test_a_baseline_is_a_society_that_answers_once(tmp_path: Path) -> None:
    exp = _with_baselines([{"k": 1}, {"k": 4, "name": "sc", "trait": "easy-going"}], repeats=2)
    plan, summary = run(write(tmp_path, exp), tmp_path / "out")
    assert [(s.name, s.size) for s in plan.societies] == [("s", 3), ("single", 1), ("sc", 4)]
    assert {a.trait.name for a in plan.societies[2].agents} == {"easy-going"}
    assert [s.rounds for s in plan.strategies["sc"]] == [()]
    # machinesom: a persona turn per agent. Per case and repeat: the society 3 x (1 + 3), each
    # baseline k x (1 + 1).
    assert summary.made == planned_calls(plan) == 2 * 3 * (3 * 4 + 1 * 2 + 4 * 2)
    a = load_run(tmp_path / "out")
    # sc's answer is the majority of its 4 first answers (a tie is no answer, scored wrong).
    answers = a.answers[a.answers["society"] == "sc"]
    assert set(answers["round"]) == {0}
    sc_votes = a.votes[a.votes["society"] == "sc"]
    majority = {(r, c): m for r, c, m in zip(sc_votes["repeat"], sc_votes["case_id"],
                                             sc_votes["majority"], strict=True)}  # fmt: skip
    for (repeat, case_id), group in answers.groupby(["repeat", "case_id"]):
        ranked = Counter(group["answer"]).most_common()
        tie = len(ranked) > 1 and ranked[0][1] == ranked[1][1]
        assert majority[(repeat, case_id)] == (None if tie else ranked[0][0])
    table = a.baseline_accuracy.set_index("baseline")
    assert list(table.index) == ["single", "sc"]
    assert list(table["k"]) == [1, 4]
    acc = a.accuracy
    cell = acc[(acc["society"] == "sc") & (acc["round"] == 0)]
    assert len(cell) == 1
    assert (table.loc["sc", "ci_low"], table.loc["sc", "ci_high"]) == (
        cell["ci_low"].iloc[0], cell["ci_high"].iloc[0],
    )  # fmt: skip
    assert table.loc["sc", "mean"] == pytest.approx(a.votes[a.votes["society"] == "sc"]
                                                    ["correct"].mean())  # fmt: skip
    markdown = table2_markdown(a)
    assert "| single (k=1) |" in markdown and "| sc (k=4) |" in markdown
    assert "| 00 |" in markdown
    # Nothing is asked twice on resume.
    _, again = run(write(tmp_path, exp), tmp_path / "out")
    assert again.made == 0


def _path_tokens(store: Path, society: str, strategies: list[str]) -> tuple[float, float]:
    """By hand from the stored calls: the society's tokens per case for one strategy run
    alone (persona turns, first answers and the strategy's round, mean over strategies), and
    the tokens of one agent's persona turn plus first answer (mean over agents and cases)."""
    con = sqlite3.connect(store)
    try:
        rows = con.execute(
            "SELECT repeat, case_id, node, agent, prompt_tokens + completion_tokens FROM calls "
            "WHERE society = ?",
            (society,),
        ).fetchall()
    finally:
        con.close()
    per_case: dict[tuple[int, str], dict[str, int]] = {}
    per_sample: dict[tuple[int, str, int], int] = {}
    for repeat, case_id, node, agent, tokens in rows:
        nodes = per_case.setdefault((repeat, case_id), {})
        nodes[node] = nodes.get(node, 0) + tokens
        if node == "":  # persona turn and first answer both sit at the root
            per_sample[(repeat, case_id, agent)] = (
                per_sample.get((repeat, case_id, agent), 0) + tokens
            )
    society_tokens = [
        sum(nodes[""] + nodes[s] for s in strategies) / len(strategies)
        for nodes in per_case.values()
    ]
    return (
        sum(society_tokens) / len(society_tokens),
        sum(per_sample.values()) / len(per_sample),
    )


def test_the_equal_budget_k_is_computed_from_a_stored_run(tmp_path: Path) -> None:
    first = experiment(rounds=1, strategies=["0", "1"])
    first["societies"] = [{"name": "debaters", "agents": 3, "easy_going": 1}]
    run(write(tmp_path, first, "first.yaml"), tmp_path / "pilot")
    society, sample = _path_tokens(tmp_path / "pilot" / "store.sqlite", "debaters", ["0", "1"])
    expected = int(society / sample + 0.5)
    assert expected > 3  # a debate round costs more than its three first answers
    budget = load_run(tmp_path / "pilot").equal_budget.set_index("society").loc["debaters"]
    assert budget["tokens_per_case"] == pytest.approx(society)
    assert budget["sample_tokens"] == pytest.approx(sample)
    assert budget["k"] == expected
    # Another experiment names the stored run: its baseline takes that k.
    second = experiment(rounds=1, strategies=["0", "1"])
    second["societies"] = [{"name": "debaters", "agents": 3, "easy_going": 1}]
    second["baselines"] = [{"k": {"match": "debaters", "run": "pilot"}}]
    plan = load_plan(write(tmp_path, second, "second.yaml"), Overrides(out=tmp_path / "b"))
    assert [(s.name, s.size) for s in plan.societies] == [
        ("debaters", 3),
        ("sc-debaters", expected),
    ]


@pytest.mark.parametrize(
    ("society", "sample", "k"),
    [(1000, 300, 3), (1000, 150, 7), (650, 100, 7), (50, 100, 1), (1000, 0, 1)],
)
def test_budget_k_is_the_closest_number_of_samples(society: float, sample: float, k: int) -> None:
    from societies.society.baselines import budget_k

    assert budget_k(society, sample) == k


def test_the_matched_k_from_the_estimate_does_not_depend_on_the_cases(tmp_path: Path) -> None:
    """Without a stored run k comes from the dry-run estimate on the first case, so a run
    extended with more cases keeps its k (and its stored baseline agents)."""
    example = REPO / "experiments" / "modern" / "debate-or-vote.yaml"
    sizes = {
        limit: load_plan(example, Overrides(out=tmp_path / "x", limit=limit)).societies[-1].size
        for limit in (1, 2, 5)
    }
    assert len(set(sizes.values())) == 1 and sizes[1] > 5


@pytest.mark.parametrize(
    ("baselines", "expected"),
    [
        ("  - k: {match: nobody}\n",
         "quickstart.yaml:16: baselines[0].k.match: no society named 'nobody' (societies: mixed)"),
        ("  - {k: 2, trait: grumpy}\n", "quickstart.yaml:16: baselines[0].trait: unknown trait "
                                        "'grumpy'"),
        ("  - {k: 2, name: mixed}\n",
         "quickstart.yaml:16: baselines[0].name: the name 'mixed' is taken"),
        ("  - k: 0\n", "quickstart.yaml:16: baselines[0].k"),
        ("  - k: {match: mixed, run: nowhere}\n",
         "quickstart.yaml:16: baselines[0].k.run: cannot read the run"),
    ],
)  # fmt: skip
def test_bad_baselines_are_one_clear_line(tmp_path: Path, baselines: str, expected: str) -> None:
    code, stderr, out = run_cli(tmp_path, GOOD + "baselines:\n" + baselines)
    assert_one_line(code, stderr, out, expected)


def test_the_example_runs_with_limit(tmp_path: Path) -> None:
    example = REPO / "experiments" / "modern" / "debate-or-vote.yaml"
    out = tmp_path / "dv"
    result = CliRunner().invoke(cli, ["run", str(example), "--out", str(out), "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert "debate vs vote" in result.output
    dry = CliRunner().invoke(
        cli, ["run", str(example), "--out", str(tmp_path / "dry"), "--limit", "2", "--dry-run"]
    )
    k = load_run(out).baselines["debate-or-vote"]["sc-debate"]["k"]
    assert f"baseline sc-debate: k={k} (budget of debate, from the dry-run estimate)" in dry.output
    a = load_run(out)
    table = a.baseline_accuracy.set_index("baseline")
    assert list(table.index) == ["single", "sc-5", "sc-debate"]
    assert list(table["k"][:2]) == [1, 5] and table.loc["sc-debate", "match"] == "debate"
    # Equal budget: the matched baseline's billed tokens per case within two samples' of the
    # debate's (k is rounded, and the estimate is not the measure).
    matched = a.baseline_accuracy.iloc[2]
    budget = a.equal_budget
    sample = float(budget[budget["society"] == "debate"]["sample_tokens"].iloc[0])
    gap = abs(float(matched["billed_per_case"]) - float(matched["match_billed_per_case"]))
    assert matched["baseline"] == "sc-debate" and gap < 2 * sample
    assert len(a.debate_vs_vote) == 1
