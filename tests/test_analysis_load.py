"""``load_run`` on real stores: the grids match the store, and the end-of-run table and the
analysis agree with an oracle computed from the store's rows."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import societies
from societies.analysis.tables import accuracy_rows, export, table2_latex, table2_markdown
from societies.errors import ConfigError, StoreError
from societies.plan.plan import Overrides
from societies.plan.resolve import load_plan
from tests.conftest import REPO, make_quick_run


def test_load_run_grids_have_one_row_per_slot(quick_run: Path) -> None:
    analysis = societies.load_run(quick_run)
    # 4 societies x 8 strategies x 4 rounds x 3 agents x 6 cases x 2 repeats
    assert len(analysis.answers) == 4 * 8 * 4 * 3 * 6 * 2
    assert len(analysis.calls) == 4 * 48 * 6 * 2
    assert set(analysis.answers["outcome"]) == {"ok"}
    assert len(analysis.votes) == 4 * 8 * 4 * 6 * 2
    keys = ["society", "strategy", "round", "repeat", "case_id", "agent"]
    assert not analysis.answers.duplicated(keys).any()


def _oracle_accuracy(store_file: Path) -> dict[tuple[str, str, int], tuple[int, int, int]]:
    """Per (society, strategy, round): (groups, complete groups, correct complete groups),
    computed here from the store's rows alone, independently of the analysis code: a group
    is complete when every agent's answer call is stored with outcome ok; its majority is the
    most common answer with no tie at the top (a missing answer counts as a value), and it is
    correct when it equals the case's answer letter (the quickstart is MMLU, robust mode)."""
    con = sqlite3.connect(store_file)
    targets = {cid: json.loads(f)["answer"] for cid, f in con.execute(
        "SELECT case_id, fields_json FROM cases")}  # fmt: skip
    size = dict(con.execute("SELECT society, COUNT(*) FROM agents GROUP BY society"))
    calls: dict[tuple[object, ...], list[tuple[str, str | None]]] = {}
    for rep, cid, soc, node, outcome, answer in con.execute(
        "SELECT repeat, case_id, society, node, outcome, answer FROM calls WHERE step='answer'"
    ):
        calls.setdefault((rep, cid, soc, node), []).append((outcome, answer))
    out: dict[tuple[str, str, int], list[int]] = {}
    for rep, cid, soc, strat, rnd, node in con.execute(
        "SELECT repeat, case_id, society, strategy, round, node FROM strategy_nodes"
    ):
        cell = out.setdefault((soc, strat, rnd), [0, 0, 0])
        cell[0] += 1
        got = calls.get((rep, cid, soc, node), [])
        if len(got) != size[soc] or any(o != "ok" for o, _ in got):
            continue
        cell[1] += 1
        ranked = Counter(a for _, a in got).most_common()
        tie = len(ranked) > 1 and ranked[0][1] == ranked[1][1]
        cell[2] += int(not tie and ranked[0][0] == targets[cid])
    con.close()
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def test_cli_table_and_load_run_agree_with_an_oracle_on_a_run_with_failed_calls(
    quick_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(quick_run, run)
    store_file = run / "store.sqlite"
    con = sqlite3.connect(store_file)
    # Two answer calls fail for good (what the runner stores after its retries): one in
    # round 0 of a case (every strategy of that society and case loses round 0), one in a
    # round-3 node of a single strategy.
    failed = con.execute(
        "SELECT id FROM calls WHERE step='answer' AND society=(SELECT MIN(society) FROM calls) "
        "AND repeat=0 AND agent=1 AND ((round=0 AND case_id='qs-01') OR (round=3 AND "
        "case_id='qs-02' AND node=(SELECT MIN(node) FROM calls WHERE round=3))) ORDER BY id"
    ).fetchall()
    assert len(failed) == 2
    con.executemany(
        "UPDATE calls SET outcome='error', reply=NULL, answer=NULL, correct=0, "
        "error='gave up after 3 attempts: HTTP 500' WHERE id=?",
        failed,
    )
    con.commit()
    con.close()
    expected = _oracle_accuracy(store_file)
    analysis = societies.load_run(run)
    assert analysis.incomplete == {"quickstart": 2}
    votes = analysis.votes
    ours = {}
    for (soc, strat, rnd), g in votes.groupby(["society", "strategy", "round"]):
        ours[(soc, strat, rnd)] = (len(g), int(g["complete"].sum()),
                                   int((g["correct"] & g["complete"]).sum()))  # fmt: skip
    assert ours and set(ours) == set(expected) and len(ours) == 4 * 8 * 4
    assert ours == expected
    partial = [k for k, (n, done, _) in expected.items() if done < n]
    assert len(partial) == 8 + 1  # round 0 of every strategy of one society, one round-3 node

    plan = load_plan(REPO / "experiments" / "quickstart.yaml", Overrides(out=run, limit=6))
    order = [(s.name, [t.name for t in plan.strategies[s.name]]) for s in plan.societies]
    rows, incomplete = accuracy_rows(votes, order, plan.rounds)
    assert incomplete
    printed = {(r[0], r[1], i): text for r in rows for i, text in enumerate(r[2:])}
    assert set(printed) == set(expected)
    for key, (n, done, right) in expected.items():
        text = f"{right / done:.3f}" + ("" if done == n else f" (n={done}/{n})")
        assert printed[key] == text
    acc = analysis.accuracy.set_index(["society", "strategy", "round"])
    assert int(acc["n_incomplete"].sum()) == len(partial)
    # Table 2 (last round): the one strategy with a failed round-3 call, 11 of 12 cases
    markdown = table2_markdown(analysis)
    assert markdown.count("(n=11/12)") == 1 and "only k of the m planned cases" in markdown


def test_accuracy_cis_contain_the_mean(quick_run: Path) -> None:
    acc = societies.load_run(quick_run).accuracy
    assert len(acc) == 4 * 8 * 4
    assert (acc["ci_low"] <= acc["mean"] + 1e-9).all() and (
        acc["mean"] <= acc["ci_high"] + 1e-9
    ).all()


def test_several_runs_at_once_and_exports(quick_run: Path, tmp_path: Path) -> None:
    other = make_quick_run(tmp_path / "other", repeats=1, limit=3)
    analysis = societies.load_run(
        [quick_run, other], prices={"sim:default": {"input": 1.0, "output": 2.0}}
    )
    assert set(analysis.accuracy["run"]) == {"quickstart", f"quickstart ({other})"}
    assert analysis.cost["usd_billed_per_case"].gt(0).all()
    written = export(analysis, tmp_path / "out")
    names = {p.name for p in written}
    for table in analysis.tables():
        assert f"{table}.csv" in names and f"{table}.parquet" in names
    back = pd.read_parquet(tmp_path / "out" / "accuracy.parquet")
    assert len(back) == len(analysis.accuracy)
    assert "\\textbf{" in table2_latex(analysis) and "**" in table2_markdown(analysis)


def test_load_run_refuses_a_directory_without_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no run store"):
        societies.load_run(tmp_path)


def test_an_interrupted_run_leaves_incomplete_groups_out(quick_run: Path, tmp_path: Path) -> None:
    import shutil
    import sqlite3

    copy = tmp_path / "partial"
    shutil.copytree(quick_run, copy)
    con = sqlite3.connect(copy / "store.sqlite")
    with con:
        # agent 1's round-3 call of strategy 000 never made it, for one case
        con.execute(
            "DELETE FROM calls WHERE repeat = 0 AND case_id = 'qs-01' AND society = '3oc' "
            "AND node = '000' AND agent = 1"
        )
    con.close()
    analysis = societies.load_run(copy)
    acc = analysis.accuracy.set_index(["society", "strategy", "round"])
    assert acc.loc[("3oc", "000", 3), "n_cases"] == 11
    assert acc.loc[("3oc", "001", 3), "n_cases"] == 12
    missing = analysis.answers[analysis.answers["outcome"] == "missing"]
    assert len(missing) == 1
    assert len(analysis.behaviour_cases) == 4 * 8 * 6 * 2 - 1


def test_a_run_of_an_unknown_task_is_one_clear_error(quick_run: Path, tmp_path: Path) -> None:
    import shutil
    import sqlite3

    copy = tmp_path / "other-task"
    shutil.copytree(quick_run, copy)
    con = sqlite3.connect(copy / "store.sqlite")
    with con:
        con.execute("UPDATE run SET task = 'chess-from-the-future'")
    con.close()
    with pytest.raises(StoreError, match="cannot score this run: unknown task"):
        societies.load_run(copy)


def test_prices_use_the_experiment_schema_and_longest_prefix(quick_run: Path) -> None:
    """The experiment file's price schema, matched by longest prefix as the run's budget is:
    ``sim:`` prices every sim call, ``sim:default`` (longer) wins over it."""
    tokens = societies.load_run(quick_run).calls[["prompt_tokens", "completion_tokens"]].sum()
    both = {"sim:": {"input": 100.0, "output": 100.0}, "sim:default": {"input": 1.0, "output": 2.0}}
    calls = societies.load_run(quick_run, prices=both).calls
    expected = (tokens["prompt_tokens"] * 1.0 + tokens["completion_tokens"] * 2.0) / 1e6
    assert calls["usd"].sum() == pytest.approx(expected)
    only_prefix = societies.load_run(quick_run, prices={"sim:": {"input": 1.0, "output": 1.0}})
    assert only_prefix.calls["usd"].notna().all()


@pytest.mark.parametrize(
    ("prices", "where"),
    [
        ({"m": {"prompt": 1.0, "completion": 2.0}}, "prices.m.prompt"),
        ({"m": {"input": 1.0}}, "prices.m.output"),
        ({"m": {"input": -1.0, "output": 1.0}}, "prices.m.input"),
    ],
)
def test_a_bad_price_is_one_clear_error(
    quick_run: Path, prices: dict[str, dict[str, float]], where: str
) -> None:
    with pytest.raises(ConfigError, match=rf"^{re.escape(where)}: "):
        societies.load_run(quick_run, prices=prices)


def test_conformity_counts_every_pattern_that_sees_peers(tmp_path: Path) -> None:
    """A user's peer-seeing pattern is counted like the study's debate; one that does not
    see peers is not, whatever its name."""
    import asyncio

    from societies.scheduler.session import run_experiment
    from tests.backend_helpers import write_experiment

    patterns = {
        "argue": {"code": "2", "sees_peers": True,
                  "template": "Others said:{% for p in peers %} {{ p }}{% endfor %} Answer again."},
        "muse": {"code": "3", "template": "Think again and answer."},
    }  # fmt: skip
    experiment = write_experiment(
        tmp_path, cases=2, rounds=2, strategies=["22", "33", "01"], extra={"patterns": patterns}
    )
    run = tmp_path / "run"
    asyncio.run(run_experiment(load_plan(experiment, Overrides(out=run)), argv=[]))
    turns = societies.load_run(run).conformity_turns
    counted = turns.groupby("strategy").size().to_dict()
    # 2 cases x 3 agents x peer-seeing rounds: "22" both rounds, "01" round 1, "33" none
    assert counted == {"22": 2 * 3 * 2, "01": 2 * 3}
    assert set(turns["pattern"]) == {"argue", "debate"}
