"""The compact store: each distinct message stored once, a call holds its parent call and the
messages it adds, and the store rebuilds every conversation exactly as it was asked."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from societies.backends.fake import FunctionModel
from societies.store.db import STORE_FILE, RunStore
from tests.helpers import experiment, run, same_backend, write


def test_conversations_are_rebuilt_as_asked_from_messages_stored_once(tmp_path: Path) -> None:
    model = FunctionModel(lambda a: f"agent {a.truth.agent.index} round {a.truth.round}: (B)")
    exp = experiment(rounds=2)  # machinesom: role-play turn, then 1 + 2 + 4 nodes per agent
    _, summary = run(write(tmp_path, exp), tmp_path / "out", same_backend(model))
    sent = {
        a.request.key: [dict(m) for m in a.request.messages]
        for a in model.requests
        if a.request.key is not None
    }
    assert len(sent) == summary.made
    store = RunStore.for_run_dir(tmp_path / "out", readonly=True)
    try:
        stored = dict(store.conversations())
    finally:
        store.close()
    assert stored == sent

    # Replies are stored with their call; the messages table holds the prompts.
    every = [
        (m["role"], m["content"])
        for messages in sent.values()
        for m in messages
        if m["role"] != "assistant"
    ]
    con = sqlite3.connect(tmp_path / "out" / STORE_FILE)
    try:
        distinct = con.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        added = con.execute("SELECT SUM(length(added)) / 16 FROM calls").fetchone()[0]
        packed = con.execute(
            "SELECT COUNT(*) FROM messages WHERE typeof(content) = 'blob'"
        ).fetchone()[0]
        orphans = con.execute(
            "SELECT COUNT(*) FROM calls WHERE parent IS NULL AND step = 'answer'"
        ).fetchone()[0]
    finally:
        con.close()
    # Each distinct message once: the role-play prompt and question of a case are shared.
    assert distinct == len(set(every)) < len(every)
    # Every call adds one message to its parent's conversation (the first one, its prompt).
    assert added == summary.made
    assert orphans == 0
    # Long messages (the role-play prompt, the question) are stored compressed, and read back
    # exactly (the comparison above).
    assert packed > 0


def test_the_calls_table_takes_judge_questionnaire_and_scripted_calls_only(tmp_path: Path) -> None:
    """Schema 5 widens what a call may be (issue 11) and still refuses anything else."""
    _, summary = run(write(tmp_path, experiment(rounds=1)), tmp_path / "out")
    con = sqlite3.connect(tmp_path / "out" / STORE_FILE)
    try:
        assert con.execute("SELECT version FROM schema_version").fetchone()[0] >= 5
        con.execute("UPDATE calls SET step = 'judge', outcome = 'scripted' WHERE id = 1")
        con.execute("UPDATE calls SET step = 'questionnaire' WHERE id = 2")
        for bad in ("step = 'vote'", "outcome = 'maybe'"):
            try:
                con.execute(f"UPDATE calls SET {bad} WHERE id = 3")
            except sqlite3.IntegrityError:
                continue
            raise AssertionError(f"{bad} was accepted")
        assert con.execute("SELECT COUNT(*) FROM calls").fetchone() == (summary.made,)
    finally:
        con.close()
