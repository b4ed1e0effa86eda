"""``load_run`` on real stores: the grids match the store, and accuracy agrees with a count
made here straight from the store's rows."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

import societies
from societies.analysis.accuracy import majority_vote
from societies.analysis.metrics import pooled_accuracy
from societies.analysis.tables import export, table2_latex, table2_markdown
from societies.errors import StoreError
from tests.conftest import make_quick_run


def test_load_run_grids_have_one_row_per_slot(quick_run: Path) -> None:
    analysis = societies.load_run(quick_run)
    # 4 societies x 8 strategies x 4 rounds x 3 agents x 6 cases x 2 repeats
    assert len(analysis.answers) == 4 * 8 * 4 * 3 * 6 * 2
    assert len(analysis.calls) == 4 * 48 * 6 * 2
    assert set(analysis.answers["outcome"]) == {"ok"}
    assert len(analysis.votes) == 4 * 8 * 4 * 6 * 2
    keys = ["society", "strategy", "round", "repeat", "case_id", "agent"]
    assert not analysis.answers.duplicated(keys).any()


def _pooled_from_rows(run_dir: Path) -> dict[tuple[str, str, int], float]:
    """Majority per node from the raw rows, scored by the stored targets (the MMLU letter)."""
    con = sqlite3.connect(run_dir / "store.sqlite")
    try:
        targets = {
            cid: json.loads(fields)["answer"]
            for cid, fields in con.execute("SELECT case_id, fields_json FROM cases")
        }
        votes: dict[tuple[int, str, str, str], list[str | None]] = defaultdict(list)
        for rep, cid, society, node, answer in con.execute(
            "SELECT repeat, case_id, society, node, answer FROM calls WHERE step = 'answer' "
            "ORDER BY agent"
        ):
            votes[(rep, cid, society, node)].append(answer)
        cells: dict[tuple[str, str, int], list[int]] = defaultdict(list)
        for rep, cid, society, strategy, r, node in con.execute(
            "SELECT repeat, case_id, society, strategy, round, node FROM strategy_nodes"
        ):
            majority = majority_vote(votes[(rep, cid, society, node)])
            cells[(society, strategy, r)].append(int(majority == targets[cid]))
    finally:
        con.close()
    return {k: sum(v) / len(v) for k, v in cells.items()}


def test_accuracy_agrees_with_the_run_summary(quick_run: Path) -> None:
    analysis = societies.load_run(quick_run)
    pooled = pooled_accuracy(analysis.votes)
    expected = _pooled_from_rows(quick_run)
    assert pooled.keys() == expected.keys()
    for cell, value in expected.items():
        assert pooled[cell] == pytest.approx(value)
    acc = analysis.accuracy
    assert (acc["ci_low"] <= acc["mean"] + 1e-9).all() and (
        acc["mean"] <= acc["ci_high"] + 1e-9
    ).all()


def test_several_runs_at_once_and_exports(quick_run: Path, tmp_path: Path) -> None:
    other = make_quick_run(tmp_path / "other", repeats=1, limit=3)
    analysis = societies.load_run(
        [quick_run, other], prices={"sim:default": {"prompt": 1.0, "completion": 2.0}}
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
