"""The round scheduler: prefix-tree call counts, simultaneous update, overflow handling."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from societies.backends.fake import Asked, FunctionModel
from societies.scheduler.tree import calls_all_combinations
from societies.store.db import STORE_FILE
from tests.helpers import experiment, run, same_backend, write


def calls_in(out: Path) -> list[tuple[str, str, int, str]]:
    con = sqlite3.connect(out / STORE_FILE)
    try:
        return list(con.execute("SELECT case_id, society, agent, node FROM calls"))
    finally:
        con.close()


def test_48_calls_per_case_and_society_in_machinesom_mode(tmp_path: Path) -> None:
    exp = experiment(rounds=3, societies=[{"agents": 3, "easy_going": [0, 1, 2, 3]}])
    plan, summary = run(write(tmp_path, exp), tmp_path / "out")
    assert len(plan.strategies["3oc"]) == 8
    assert summary.planned == summary.made == 48 * 4 * 4  # 4 cases x 4 societies
    assert len(calls_in(tmp_path / "out")) == 48 * 16


@pytest.mark.parametrize(
    ("agents", "rounds", "prompts"),
    [(1, 0, "machinesom"), (2, 1, "default"), (3, 3, "default"), (4, 2, "machinesom"),
     (5, 4, "machinesom")],
)  # fmt: skip
def test_general_formula_matches_the_calls_made(
    tmp_path: Path, agents: int, rounds: int, prompts: str
) -> None:
    exp = experiment(
        rounds=rounds,
        prompts=prompts,
        societies=[{"agents": agents, "easy_going": 1 if agents > 1 else 0}],
        task={"name": "mmlu", "data": experiment()["task"]["data"], "cases": 2},
    )
    _, summary = run(write(tmp_path, exp), tmp_path / "out")
    expected = calls_all_combinations(agents, rounds, persona_call=prompts == "machinesom") * 2
    assert summary.made == expected
    # n * (p + 2^(R+1) - 1), spelled out:
    assert expected == 2 * agents * ((prompts == "machinesom") + 2 ** (rounds + 1) - 1)


def test_strategy_subset_counts_distinct_prefixes(tmp_path: Path) -> None:
    # Prefixes: "", "0", "1", "00", "01", "10" -> 6 nodes; default set has no persona call.
    exp = experiment(prompts="default", rounds=None, strategies=["00", "01", "10"])
    exp["task"]["cases"] = 1
    _, summary = run(write(tmp_path, exp), tmp_path / "out")
    assert summary.made == 2 * 3 * 6  # 2 societies x 3 agents x 6 nodes


def _replies_by_round(asked: Asked) -> str:
    truth, key = asked.truth, asked.request.key
    assert key is not None
    return f"agent {truth.agent.index} node {key.node!r} round {truth.round} (A)"


def test_simultaneous_update_each_agent_sees_only_previous_round(tmp_path: Path) -> None:
    exp = experiment(prompts="default", rounds=None, strategies=["00"])
    exp["task"]["cases"] = 1
    exp["societies"] = [{"agents": 3, "easy_going": 1}]
    model = FunctionModel(_replies_by_round)
    run(write(tmp_path, exp), tmp_path / "out", same_backend(model))
    debates = [a for a in model.requests if a.truth.round > 0]
    assert len(debates) == 6
    for asked in debates:
        ctx, request = asked.truth, asked.request
        # Peers are the other agents' replies of the parent round, in index order.
        expected = tuple(
            f"agent {j} node {'0' * (ctx.round - 1)!r} round {ctx.round - 1} (A)"
            for j in range(3)
            if j != ctx.agent.index
        )
        assert ctx.peer_replies == expected
        turn = request.messages[-1]["content"]
        for peer in expected:
            assert peer in turn
        assert f"round {ctx.round} " not in turn


def test_per_agent_patterns_debaters_see_only_debaters(tmp_path: Path) -> None:
    exp = experiment(prompts="default", rounds=None, strategies=["(011)"])
    exp["task"]["cases"] = 1
    exp["societies"] = [{"agents": 3, "easy_going": 1}]
    model = FunctionModel(_replies_by_round)
    run(write(tmp_path, exp), tmp_path / "out", same_backend(model))
    round1 = {a.truth.agent.index: a.truth for a in model.requests if a.truth.round}
    assert round1[0].pattern == "debate"
    # Agent 0 debates but the others reflect: it sees no one.
    assert round1[0].peer_replies == ()
    assert round1[1].pattern == "reflection"


def test_context_overflow_marks_node_and_descendants(tmp_path: Path) -> None:
    exp = experiment(prompts="default", rounds=2, strategies="all")
    exp["task"]["cases"] = 1
    exp["societies"] = [{"agents": 3, "easy_going": 1}]
    # A window the first answer fits in but no debate turn does.
    exp["model"] = {"backend": "sim", "name": "default", "options": {"context_window": 250}}
    _, summary = run(write(tmp_path, exp), tmp_path / "out")
    con = sqlite3.connect(tmp_path / "out" / STORE_FILE)
    outcomes = dict(con.execute("SELECT outcome, COUNT(*) FROM calls GROUP BY outcome"))
    attempts_zero = con.execute(
        "SELECT COUNT(*) FROM calls WHERE outcome = 'context_exceeded' AND attempts = 0"
    ).fetchone()[0]
    con.close()
    assert summary.errors == 0
    assert outcomes.get("ok", 0) >= 3  # round 0 answered
    # Every node below the overflow is recorded, unasked (attempts 0), and nothing is retried.
    assert outcomes["ok"] + outcomes["context_exceeded"] == 3 * 7
    assert attempts_zero > 0
    _, again = run(write(tmp_path, exp), tmp_path / "out")
    assert again.made == 0


def test_random_reflector_is_seeded_and_keeps_prefix_sharing(tmp_path: Path) -> None:
    strategies = [
        {"name": f"alt-{code}", "rounds": ["debate" if c == "0" else "reflection" for c in code],
         "random_reflector": True}
        for code in ("000", "001", "010", "011")
    ]  # fmt: skip
    exp = experiment(prompts="default", rounds=3, strategies=strategies)
    exp["societies"] = [{"agents": 3, "easy_going": 1}]
    exp["task"]["cases"] = 6
    model = FunctionModel(_replies_by_round)
    plan, summary = run(write(tmp_path, exp), tmp_path / "out", same_backend(model))
    # Prefixes of 000, 001, 010, 011: "", 0, 00, 01, 000, 001, 010, 011 -> 8 nodes x 3 agents.
    assert summary.made == 6 * 3 * 8
    realized = [plan.strategies_for(plan.societies[0], c, 0) for c in plan.cases]
    # Every debate round has exactly one reflecting agent, and the draw varies between cases.
    codes = set()
    for strategies_of_case in realized:
        for strategy in strategies_of_case:
            for r, round_plan in enumerate(strategy.rounds):
                if strategy.name[4 + r] == "0":
                    assert sorted(round_plan) == ["debate", "debate", "reflection"]
            codes.add(strategy.code)
    assert len(codes) > 4
    # The debaters see only each other: one peer reply each.
    for asked in model.requests:
        if asked.truth.pattern == "debate":
            assert len(asked.truth.peer_replies) == 1
    again = [plan.strategies_for(plan.societies[0], c, 0) for c in plan.cases]
    assert again == realized
