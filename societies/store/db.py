"""The run store: one SQLite file per run directory, every model call a row.

SQLite in WAL mode gives durable, crash-safe batches and lets readers (``societies report``
while a run is going) see only committed rows. Rows are buffered and committed in small
batches; the runner flushes before admitting each new call, so a crash loses no answer that
was received before the next call went out (only calls in flight are made again).
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
from societies.store.lock import RunLock
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
#: Tables every store has from schema 1 on.
_TABLES = frozenset({"run", "invocations", "cases", "agents", "strategy_nodes", "calls"})

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


def ensure_run_dir(run_dir: Path) -> Path:
    """Create the run directory, or say in one line why it cannot be one."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreError(f"{run_dir}: exists and is not a directory") from None
    except OSError as exc:
        raise StoreError(f"{run_dir}: cannot create the run directory ({exc.strerror})") from None
    if (run_dir / STORE_FILE).is_dir():
        raise StoreError(f"{run_dir / STORE_FILE}: a directory where the run store should be")
    return run_dir


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection that leaves no trace: without a -wal file beside the database
    there is nothing to read from one, so it is opened as immutable and SQLite creates no
    -wal/-shm files beside a file that may not even be ours."""
    immutable = "" if Path(f"{path}-wal").exists() else "&immutable=1"
    return sqlite3.connect(f"file:{path}?mode=ro{immutable}", uri=True)


def inspect_existing(path: Path) -> None:
    """Refuse a file that is not a store of ours, without writing a byte to it."""
    with path.open("rb") as fh:
        header = fh.read(16)
    if header != _SQLITE_MAGIC:
        raise StoreError(f"{path}: not an SQLite database (left untouched)")
    try:
        con = connect_readonly(path)
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
    missing = sorted(_TABLES - tables)
    if version is not None and version >= 1 and missing:
        raise StoreError(f"{path}: a damaged store (no {', '.join(missing)} table); left untouched")
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
        try:
            if readonly:
                self.con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            else:
                ensure_run_dir(path.parent)
                self.con = sqlite3.connect(path, isolation_level=None)
                # busy_timeout first: switching to WAL needs a lock a reader may briefly hold.
                self.con.execute("PRAGMA busy_timeout=5000")
                self.con.execute("PRAGMA journal_mode=WAL")
                self.con.execute("PRAGMA synchronous=NORMAL")
                self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open the run store ({exc})") from None
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
        #: The run directory's lock while this store is open for a run (see store/lock.py);
        #: released on close.
        self.lock: RunLock | None = None

    @classmethod
    def for_run_dir(cls, run_dir: Path, *, readonly: bool = False) -> RunStore:
        return cls(run_dir / STORE_FILE, readonly=readonly)

    @classmethod
    def open_locked(cls, run_dir: Path) -> RunStore:
        """The run directory's store, for writing, held by this invocation alone (see
        store/lock.py) until ``close()``; a second writer is refused naming the holder."""
        lock = RunLock(ensure_run_dir(run_dir))
        fresh = not lock.path.exists()
        lock.acquire()
        try:
            store = cls.for_run_dir(run_dir)  # a foreign file is refused here
        except BaseException:
            # A refused directory is left as it was found: no lock file beside a foreign store.
            lock.release(remove=fresh)
            raise
        store.lock = lock
        return store

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
            if con.in_transaction:
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
            self.con.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (disk full) may already have rolled back: rolling back again
            # would replace the real error with "no transaction is active".
            if self.con.in_transaction:
                self.con.execute("ROLLBACK")
            raise

    def close(self) -> None:
        try:
            self.flush()
            self.con.close()
        finally:
            if self.lock is not None:
                self.lock.release()

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
        # Called under the run directory's lock: an invocation still marked running was
        # killed (SIGKILL, power loss) without ending itself.
        self.con.execute("UPDATE invocations SET status = 'interrupted' WHERE status = 'running'")
        cur = self.con.execute(
            "INSERT INTO invocations (started_at, package_version, argv_json) VALUES (?, ?, ?)",
            (now(), version, json.dumps(list(argv))),
        )
        return int(cur.lastrowid or 0)

    def end_invocation(self, invocation: int, made: int, reused: int, status: str) -> None:
        try:
            self.flush()
            self.con.execute(
                "UPDATE invocations SET finished_at = ?, calls_made = ?, calls_reused = ?, "
                "status = ? WHERE id = ?",
                (now(), made, reused, status, invocation),
            )
        except (StoreError, sqlite3.Error) as exc:
            # Not masking the error that ended the run (typically this very one).
            log.info("could not record the end of invocation %d: %s", invocation, exc)

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
        out = {}
        for call_id, node, agent, step, h, reply, outcome in self.con.execute(
            "SELECT id, node, agent, step, request_hash, reply, outcome FROM calls"
            " WHERE society = ? AND repeat = ? AND case_id = ?",
            (society, repeat, case_id),
        ):
            if not isinstance(reply, str | None) or not isinstance(node, str):
                key = CallKey(repeat, case_id, society, str(node), agent, step)
                raise StoreError(
                    f"{self.path}: a damaged store (call {key.text!r:.80} is not text)"
                )
            out[CallKey(repeat, case_id, society, node, agent, step)] = StoredCall(
                call_id, h, reply, outcome
            )
        return out

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
        except BaseException as exc:
            # Kept for a later flush, should room return; some hashes may not be stored after
            # all, so none is taken as known.
            self._buffer = rows + self._buffer
            self._new_messages = messages + self._new_messages
            self._known.clear()
            if isinstance(exc, sqlite3.OperationalError):
                raise StoreError(
                    f"{self.path}: cannot write the run store ({exc}; is the disk full?); "
                    "stored calls are kept, re-run to resume"
                ) from None
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
