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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from societies.errors import StoreError
from societies.store.lock import RunLock

log = logging.getLogger(__name__)

STORE_FILE = "store.sqlite"
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: Tables every store has from schema 1 on.
_TABLES = frozenset({"run", "invocations", "cases", "agents", "strategy_nodes", "calls"})

CALL_COLUMNS = (
    "call_key", "repeat", "case_id", "society", "node", "agent", "round", "step", "pattern",
    "messages_json", "reply", "answer", "correct", "prompt_tokens", "completion_tokens",
    "total_tokens", "cached_tokens", "latency_ms", "backend", "model", "params_json",
    "attempts", "outcome", "error", "request_hash", "request_id", "invocation", "created_at",
)  # fmt: skip
_INSERT_CALL = (
    f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) VALUES ({', '.join('?' * len(CALL_COLUMNS))}) "
    "ON CONFLICT(call_key) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in CALL_COLUMNS if c != "call_key")
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def migrations() -> list[tuple[int, str]]:
    """Numbered SQL files, applied in order; the number is the schema version they lead to."""
    folder = resources.files("societies.store") / "migrations"
    out = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            out.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(out)


SCHEMA_VERSION = max(n for n, _ in migrations())


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


@dataclass(frozen=True, slots=True)
class StoredCall:
    request_hash: str
    reply: str | None
    outcome: str


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
            for number, sql in migrations():
                if number > current:
                    log.info("store %s: migrating to schema %d", self.path, number)
                    for statement in sql.split(";\n"):
                        if statement.strip():
                            con.execute(statement)
                    con.execute("UPDATE schema_version SET version = ?", (number,))
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise

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
    def done_calls(self) -> dict[str, StoredCall]:
        """Every call already stored, by key: resume makes only the others."""
        out = {}
        for key, h, reply, outcome in self.con.execute(
            "SELECT call_key, request_hash, reply, outcome FROM calls"
        ):
            if not isinstance(reply, str | None) or not isinstance(key, str):
                raise StoreError(f"{self.path}: a damaged store (call {key!r:.80} is not text)")
            out[key] = StoredCall(h, reply, outcome)
        return out

    def add_call(self, row: tuple[Any, ...]) -> None:
        self._buffer.append(row)
        if (
            len(self._buffer) >= self.batch_rows
            or time.monotonic() - self._last_flush >= self.batch_seconds
        ):
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        rows, self._buffer = self._buffer, []
        try:
            with self._tx():
                self.con.executemany(_INSERT_CALL, rows)
        except sqlite3.OperationalError as exc:
            self._buffer = rows + self._buffer  # kept for a later flush, should room return
            raise StoreError(
                f"{self.path}: cannot write the run store ({exc}; is the disk full?); "
                "stored calls are kept, re-run to resume"
            ) from None

    def count_calls(self) -> int:
        return int(self.con.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
