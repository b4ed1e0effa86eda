"""The run store: one SQLite file per run directory, every model call a row.

SQLite in WAL mode gives durable, crash-safe batches and lets readers (``societies report``
while a run is going) see only committed rows. Rows are buffered and committed in small
batches: a crash loses at most the last batch, which resume simply makes again.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from societies.errors import StoreError
from societies.store.compact import (
    Conversations,
    message_hash,
    migrate_v4,
    pack,
    split_hashes,
)
from societies.store.records import (
    CallKey,
    CallRecord,
    RecordedCall,
    StoredCall,
    TranscriptCall,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

STORE_FILE = "store.sqlite"
_SQLITE_MAGIC = b"SQLite format 3\x00"

CALL_COLUMNS = (
    "id", "repeat", "case_id", "society", "node", "agent", "round", "step", "pattern",
    "parent", "added", "reply", "answer", "correct", "prompt_tokens", "completion_tokens",
    "total_tokens", "cached_tokens", "latency_ms", "backend", "model", "params_json",
    "attempts", "outcome", "error", "request_hash", "request_id", "invocation", "created_at",
)  # fmt: skip
#: The unique position of a call, in the order of the table's unique index.
_KEY_COLUMNS = ("society", "repeat", "case_id", "node", "agent", "step")
_INSERT_CALL = (
    f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) VALUES ({', '.join('?' * len(CALL_COLUMNS))}) "
    f"ON CONFLICT({', '.join(_KEY_COLUMNS)}) DO UPDATE SET "
    # A call redone (an ``error`` outcome, on resume) takes its new id: its children, made
    # after it, reference that one.
    + ", ".join(f"{c} = excluded.{c}" for c in CALL_COLUMNS if c not in _KEY_COLUMNS)
)


#: The call columns analysis reads (the messages stay in the store).
_FRAME_CALL_COLUMNS = (
    "repeat, case_id, society, node, agent, round, step, pattern, reply, answer, correct, "
    "prompt_tokens, completion_tokens, total_tokens, cached_tokens, latency_ms, backend, model, "
    "attempts, outcome"
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


Migration = str | Callable[[sqlite3.Connection], None]
#: Migrations that SQL alone cannot express (hashing, matching conversations).
_PYTHON_MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {4: migrate_v4}


def migrations() -> list[tuple[int, Migration]]:
    """Numbered SQL files (and Python steps), applied in order; the number is the schema
    version they lead to."""
    folder = resources.files("societies.store") / "migrations"
    out: list[tuple[int, Migration]] = list(_PYTHON_MIGRATIONS.items())
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            out.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(out, key=lambda m: m[0])


SCHEMA_VERSION = max(n for n, _ in migrations())
#: The schema version from which conversations are stored compactly (store/compact.py).
_COMPACTED = 4


def inspect_existing(path: Path) -> None:
    """Refuse a file that is not a store of ours, without writing a byte to it."""
    with path.open("rb") as fh:
        header = fh.read(16)
    if header != _SQLITE_MAGIC:
        raise StoreError(f"{path}: not an SQLite database (left untouched)")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
            check = con.execute("PRAGMA quick_check").fetchone()[0]
            version = None
            if "schema_version" in tables:
                version = con.execute("SELECT version FROM schema_version").fetchone()[0]
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: corrupt SQLite database ({exc}); left untouched") from None
    if check != "ok":
        raise StoreError(f"{path}: corrupt SQLite database ({check}); left untouched")
    if "schema_version" not in tables:
        if tables:
            raise StoreError(f"{path}: an SQLite database that is not a societies store")
        return
    if version is None or version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: store schema version {version} is newer than this societies "
            f"({SCHEMA_VERSION}); upgrade the package"
        )


class RunStore:
    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        exists = path.exists()
        if exists:
            inspect_existing(path)
        elif readonly:
            raise StoreError(f"{path}: no run store here")
        if readonly:
            self.con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.con = sqlite3.connect(path, isolation_level=None)
            self.con.execute("PRAGMA journal_mode=WAL")
            self.con.execute("PRAGMA synchronous=NORMAL")
            self.con.execute("PRAGMA busy_timeout=5000")
            self._migrate()
        self._buffer: list[tuple[Any, ...]] = []
        #: Messages of buffered calls not stored yet, and hashes known to be stored (bounded).
        self._new_messages: list[tuple[bytes, str, str | bytes]] = []
        self._known: set[bytes] = set()
        self._next_id = 1
        if not readonly:
            row = self.con.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM calls").fetchone()
            self._next_id = int(row[0])
        self._last_flush = time.monotonic()
        self.batch_rows = 200
        self.batch_seconds = 0.25

    @classmethod
    def for_run_dir(cls, run_dir: Path, *, readonly: bool = False) -> RunStore:
        return cls(run_dir / STORE_FILE, readonly=readonly)

    def _migrate(self) -> None:
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = con.execute("SELECT version FROM schema_version").fetchone()
            current = row[0] if row else 0
            if row is None:
                con.execute("INSERT INTO schema_version VALUES (0)")
            for number, step in migrations():
                if number > current:
                    log.info("store %s: migrating to schema %d", self.path, number)
                    if callable(step):
                        step(con)
                    else:
                        for statement in step.split(";\n"):
                            if statement.strip():
                                con.execute(statement)
                    con.execute("UPDATE schema_version SET version = ?", (number,))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if 0 < current < _COMPACTED <= SCHEMA_VERSION:
            # The compaction frees most of an existing store's pages; give them back to the
            # file system (the point of it). Outside the transaction, as VACUUM must be.
            log.info("store %s: compacting the file", self.path)
            con.execute("VACUUM")

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """One explicit transaction: the connection is in autocommit mode otherwise."""
        self.con.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def close(self) -> None:
        self.flush()
        self.con.close()

    # -- run metadata --------------------------------------------------------------------
    def run_row(self) -> dict[str, Any] | None:
        cur = self.con.execute("SELECT * FROM run")
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cur.description], row, strict=True))

    def create_run(self, values: dict[str, Any]) -> None:
        cols = ", ".join(values)
        marks = ", ".join("?" * len(values))
        with self._tx():
            self.con.execute(
                f"INSERT INTO run (id, {cols}) VALUES (1, {marks})", (*values.values(),)
            )

    def begin_invocation(self, version: str, argv: Sequence[str]) -> int:
        cur = self.con.execute(
            "INSERT INTO invocations (started_at, package_version, argv_json) VALUES (?, ?, ?)",
            (now(), version, json.dumps(list(argv))),
        )
        return int(cur.lastrowid or 0)

    def end_invocation(self, invocation: int, made: int, reused: int, status: str) -> None:
        self.flush()
        self.con.execute(
            "UPDATE invocations SET finished_at = ?, calls_made = ?, calls_reused = ?, status = ?"
            " WHERE id = ?",
            (now(), made, reused, status, invocation),
        )

    def stored_cases(self) -> dict[str, str]:
        return dict(self.con.execute("SELECT case_id, fields_json FROM cases"))

    def put_cases(self, rows: Iterable[tuple[str, int, str]]) -> None:
        with self._tx():
            self.con.executemany("INSERT OR IGNORE INTO cases VALUES (?, ?, ?)", rows)

    def put_agents(self, rows: Iterable[tuple[str, int, str, str, str | None, str, str]]) -> None:
        with self._tx():
            self.con.executemany("INSERT OR REPLACE INTO agents VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def put_strategy_nodes(self, rows: Iterable[tuple[int, str, str, str, int, str]]) -> None:
        with self._tx():
            self.con.executemany(
                "INSERT OR IGNORE INTO strategy_nodes VALUES (?, ?, ?, ?, ?, ?)", rows
            )

    # -- calls -----------------------------------------------------------------------------
    def tree_calls(self, repeat: int, case_id: str, society: str) -> dict[CallKey, StoredCall]:
        """The calls already stored of one repeat x case x society: a resumed tree makes only
        the others. Read per tree, so that memory does not grow with the run."""
        return {
            CallKey(repeat, case_id, society, node, agent, step): StoredCall(
                call_id, h, reply, outcome
            )
            for call_id, node, agent, step, h, reply, outcome in self.con.execute(
                "SELECT id, node, agent, step, request_hash, reply, outcome FROM calls"
                " WHERE society = ? AND repeat = ? AND case_id = ?",
                (society, repeat, case_id),
            )
        }

    def has_calls(self) -> bool:
        return self.con.execute("SELECT 1 FROM calls LIMIT 1").fetchone() is not None

    def add_call(self, record: CallRecord) -> int:
        """Buffer one call; it is committed with its batch (see ``flush``). Returns its id,
        which a call continuing its conversation names as its parent."""
        k = record.key
        call_id = self._next_id
        self._next_id += 1
        hashes = []
        for m in record.added:
            h = message_hash(m["role"], m["content"])
            hashes.append(h)
            if h not in self._known:
                if len(self._known) > 20_000:  # bounded: memory must not grow with the run
                    self._known.clear()
                self._known.add(h)
                self._new_messages.append((h, m["role"], pack(m["content"])))
        self._buffer.append(
            (call_id, k.repeat, k.case_id, k.society, k.node, k.agent, record.round, k.step,
             record.pattern, record.parent, b"".join(hashes), record.reply, record.answer,
             record.correct, record.prompt_tokens, record.completion_tokens,
             record.total_tokens, record.cached_tokens,
             record.latency_ms, record.backend, record.model, record.params_json,
             record.attempts, record.outcome, record.error, record.request_hash,
             record.request_id, record.invocation, record.created_at)
        )  # fmt: skip
        if (
            len(self._buffer) >= self.batch_rows
            or time.monotonic() - self._last_flush >= self.batch_seconds
        ):
            self.flush()
        return call_id

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        rows, self._buffer = self._buffer, []
        messages, self._new_messages = self._new_messages, []
        try:
            with self._tx():
                self.con.executemany("INSERT OR IGNORE INTO messages VALUES (?, ?, ?)", messages)
                self.con.executemany(_INSERT_CALL, rows)
        except BaseException:
            self._known.clear()  # some of them may not be stored after all
            raise

    def count_calls(self) -> int:
        return int(self.con.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def backup_to(self, path: Path) -> None:
        """A consistent copy of the whole store at ``path`` (a scratch copy for a dry run)."""
        target = sqlite3.connect(path)
        try:
            self.con.backup(target)
        finally:
            target.close()

    # -- reading, for analysis, replay and re-scoring --------------------------------------
    def case_rows(self) -> list[tuple[str, int, str]]:
        """Every stored case: (case id, index in the data, fields as JSON)."""
        return list(self.con.execute("SELECT case_id, idx, fields_json FROM cases"))

    def frames(self) -> dict[str, pd.DataFrame]:
        """The tables analysis reads, as DataFrames: calls (without their messages), the
        strategies' nodes, the agents and the cases."""
        import pandas as pd

        con = self.con
        return {
            "calls": pd.read_sql_query(f"SELECT {_FRAME_CALL_COLUMNS} FROM calls", con),
            "nodes": pd.read_sql_query("SELECT * FROM strategy_nodes", con),
            "agents": pd.read_sql_query("SELECT * FROM agents", con),
            "cases": pd.read_sql_query("SELECT case_id, idx FROM cases", con),
        }

    def conversation(self, call_id: int) -> list[dict[str, str]]:
        """The messages a stored call was asked, rebuilt from its parents."""
        row = self.con.execute("SELECT parent, added FROM calls WHERE id = ?", (call_id,))
        found = row.fetchone()
        return [] if found is None else Conversations(self.con).request(*found)

    def conversations(self) -> Iterator[tuple[CallKey, list[dict[str, str]]]]:
        """Every stored call with the messages it was asked, in the order they were stored."""
        for r in self.recorded_calls(everything=True):
            yield r.key, r.messages

    def recorded_calls(self, *, everything: bool = False) -> Iterator[RecordedCall]:
        """Every call with a recorded answer (or overflow), in the order it was stored, with
        its whole conversation (rebuilt parent by parent, each parent once)."""
        conversations = Conversations(self.con, cache=True)
        for row in self.con.execute(
            "SELECT c.id, c.parent, c.added, c.repeat, c.case_id, c.society, c.node, c.agent,"
            " c.step, a.model, c.reply, c.outcome, c.prompt_tokens, c.completion_tokens,"
            " c.cached_tokens, c.model, c.request_id"
            " FROM calls c LEFT JOIN agents a ON a.society = c.society AND a.agent = c.agent"
            " ORDER BY c.id"
        ).fetchall():
            call_id, parent, added, *rest = row
            messages = conversations.request(parent, added)
            reply, outcome = rest[7], rest[8]
            conversations.remember(call_id, messages, reply)
            if everything or (outcome != "error" and messages):
                yield RecordedCall(CallKey(*rest[:6]), rest[6], messages, *rest[7:])

    def tree_transcript(self, repeat: int, case_id: str, society: str) -> list[TranscriptCall]:
        """The calls of one repeat x case x society by node and agent, with the messages each
        added to its conversation."""
        messages = Conversations(self.con)
        return [
            TranscriptCall(
                CallKey(repeat, case_id, society, *row[:3]),
                row[3],
                row[4],
                messages.messages(split_hashes(row[5])),
                *row[6:],
            )
            for row in self.con.execute(
                "SELECT node, agent, step, round, pattern, added, reply, answer, correct, "
                "outcome, total_tokens FROM calls WHERE society = ? AND repeat = ? "
                "AND case_id = ? ORDER BY node, agent",
                (society, repeat, case_id),
            ).fetchall()
        ]

    def replies(self) -> list[tuple[int, str, str, str | None, int | None]]:
        """Every answer call that returned a reply: (row id, case id, reply, answer, correct)."""
        return self.con.execute(
            "SELECT id, case_id, reply, answer, correct FROM calls "
            "WHERE step = 'answer' AND reply IS NOT NULL"
        ).fetchall()

    def update_answers(
        self, updates: Iterable[tuple[str | None, int, int]], extraction: str
    ) -> None:
        """Replace stored answers at once: (answer, correct, row id) from ``replies``."""
        with self._tx():
            self.con.executemany(
                "UPDATE calls SET answer = ?, correct = ?, extraction = ? WHERE id = ?",
                ((answer, correct, extraction, row) for answer, correct, row in updates),
            )
            self.con.execute("UPDATE run SET extraction = ?, rescored_at = ?", (extraction, now()))

    def unparsed_counts(self) -> list[tuple[str, int, int, int, int]]:
        """Per society x agent x round: (society, agent, round, unparsed replies, replies)."""
        return self.con.execute(
            "SELECT society, agent, round, SUM(answer IS NULL), COUNT(*) FROM calls "
            "WHERE step = 'answer' AND reply IS NOT NULL "
            "GROUP BY society, agent, round ORDER BY society, agent, round"
        ).fetchall()
