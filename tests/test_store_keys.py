"""Calls are keyed by typed positions: names with any character work, and a store written by
the previous schema (string call keys) is converted and resumed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import societies
from societies.store.db import STORE_FILE, RunStore, migrations
from tests.helpers import QUICKSTART_DATA, experiment, run, write

#: Society and case names that a joined string key would split, quote or escape wrongly.
ODD = ["a|b", 'say "hi"', "it's", "名前/δ\\x", "../up", "x||0|answer"]


def odd_data(tmp: Path) -> Path:
    rows = [json.loads(line) for line in QUICKSTART_DATA.read_text().splitlines()[:3]]
    for row, name in zip(rows, ["c|1", "c\"2'", "c/ü|3"], strict=True):
        row["id"] = name
    data = tmp / "odd.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return data


def test_names_with_any_character_are_stored_apart_and_resume(tmp_path: Path) -> None:
    exp = experiment(rounds=1, prompts="default")
    exp["task"] = {"name": "mmlu", "data": str(odd_data(tmp_path)), "cases": "all"}
    exp["societies"] = [{"name": n, "agents": 2, "easy_going": 1} for n in ODD]
    file = write(tmp_path, exp)
    _, summary = run(file, tmp_path / "out")
    per_tree = 2 * 3  # 2 agents x (round 0 + two round-1 nodes)
    assert summary.made == len(ODD) * 3 * per_tree
    con = sqlite3.connect(tmp_path / "out" / STORE_FILE)
    try:
        stored = dict(con.execute("SELECT society, COUNT(*) FROM calls GROUP BY society"))
        cases = {r[0] for r in con.execute("SELECT DISTINCT case_id FROM calls")}
    finally:
        con.close()
    assert stored == {n: 3 * per_tree for n in ODD}
    assert cases == {"c|1", "c\"2'", "c/ü|3"}
    _, again = run(file, tmp_path / "out")
    assert again.made == 0 and again.reused == summary.made
    accuracy = societies.load_run(tmp_path / "out").accuracy
    assert set(accuracy["society"]) == set(ODD)
    assert len(accuracy) == len(ODD) * 2 * 2  # societies x strategies (0, 1) x rounds (0, 1)


def _downgrade_to_v2(store_file: Path, target: Path) -> None:
    """The same run as schema version 2 stores it: a ``call_key`` string joined with ``|``
    and the whole conversation (``messages_json``) on every call."""
    source = RunStore(store_file, readonly=True)
    try:
        conversations = {
            (k.repeat, k.case_id, k.society, k.node, k.agent, k.step): json.dumps(
                m, ensure_ascii=False, separators=(",", ":")
            )
            for k, m in source.conversations()
        }
    finally:
        source.close()
    con = sqlite3.connect(target)
    for number, sql in migrations():
        if number <= 2:
            assert isinstance(sql, str)
            for statement in sql.split(";\n"):
                if statement.strip():
                    con.execute(statement)
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    con.execute("INSERT INTO schema_version VALUES (2)")
    con.execute("ATTACH DATABASE ? AS new", (str(store_file),))
    for table in ("run", "invocations", "cases", "agents", "strategy_nodes"):
        con.execute(f"INSERT INTO {table} SELECT * FROM new.{table}")
    columns = [r[1] for r in con.execute("PRAGMA new.table_info(calls)")]
    columns = [c for c in columns if c not in ("parent", "added")]
    rows = con.execute(f"SELECT {', '.join(columns)} FROM new.calls").fetchall()
    position = [columns.index(c) for c in ("repeat", "case_id", "society", "node", "agent", "step")]
    con.executemany(
        f"INSERT INTO calls (call_key, messages_json, {', '.join(columns)}) "
        f"VALUES (?, ?, {', '.join('?' * len(columns))})",
        [
            (
                "|".join(str(row[i]) for i in position),
                conversations[tuple(row[i] for i in position)],
                *row,
            )
            for row in rows
        ],
    )
    con.commit()
    con.execute("DETACH DATABASE new")
    con.close()


def test_a_store_of_the_previous_schema_is_migrated_and_resumed(tmp_path: Path) -> None:
    file = write(tmp_path, experiment(rounds=2))
    _, first = run(file, tmp_path / "now")
    old = tmp_path / "old"
    old.mkdir()
    _downgrade_to_v2(tmp_path / "now" / STORE_FILE, old / STORE_FILE)
    con = sqlite3.connect(old / STORE_FILE)
    assert con.execute("SELECT version FROM schema_version").fetchone() == (2,)
    assert con.execute("SELECT COUNT(call_key) FROM calls").fetchone() == (first.made,)
    con.close()

    size_v2 = (old / STORE_FILE).stat().st_size
    _, resumed = run(file, old)
    # Converted to the compact layout, and the freed pages given back to the file system.
    assert (old / STORE_FILE).stat().st_size < size_v2 / 2
    assert resumed.made == 0 and resumed.reused == first.made
    store = RunStore.for_run_dir(old, readonly=True)
    try:
        columns = [r[1] for r in store.con.execute("PRAGMA table_info(calls)")]
        version = store.con.execute("SELECT version FROM schema_version").fetchone()[0]
    finally:
        store.con.close()
    assert "call_key" not in columns and "messages_json" not in columns
    assert version == max(n for n, _ in migrations())
    # The conversations survive the conversion to parent + added messages.
    assert dict(RunStore.for_run_dir(old, readonly=True).conversations()) == dict(
        RunStore.for_run_dir(tmp_path / "now", readonly=True).conversations()
    )
    a = societies.load_run(tmp_path / "now").accuracy
    b = societies.load_run(old).accuracy
    assert a.equals(b)
    # One more repeat extends the migrated run: only the new calls are made.
    _, extended = run(write(tmp_path, experiment(rounds=2, repeats=2), "more.yaml"), old)
    assert extended.made == first.made and extended.reused == first.made
