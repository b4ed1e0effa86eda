"""The batch ledger: provider batches of a run, recorded as they are submitted.

Money is spent when a batch is created, so the ledger is written before that: the input file
and its items first (``submitting``), the provider's batch id as soon as it is known
(``submitted``). A run killed at any point resumes from here: a ``submitting`` batch is looked
for at the provider by its input file before anything is created again, a submitted one is
polled, an ended one's files are read again; none is submitted twice. A batch is
``collected`` once every answer it gave is stored as a call.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from societies.store.records import CallKey

#: Batch states that may still hold answers not stored as calls.
OPEN_STATES = ("submitting", "submitted", "ended")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class LedgerItem:
    """One call as sent in a batch."""

    custom_id: str
    key: CallKey
    body_hash: str
    attempt: int


@dataclass(frozen=True, slots=True)
class LedgerBatch:
    id: int
    state: str
    input_file_id: str
    provider_id: str | None
    provider_status: str | None
    output_file_id: str | None
    error_file_id: str | None
    model: str
    requests: int


_BATCH_COLUMNS = (
    "id, state, input_file_id, provider_id, provider_status, output_file_id, error_file_id, "
    "model, requests"
)


class BatchLedger:
    """The ``batches`` and ``batch_items`` tables of one run store (its connection, which is
    in autocommit mode: each method is one transaction)."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def run_tag(self) -> str:
        """A short id of this run, the prefix of every custom_id it sends: a results file of
        another run is told apart by it."""
        row = self.con.execute("SELECT name, created_at, identity_json FROM run").fetchone()
        text = "\x00".join(str(v) for v in (row or ("", "", "")))
        return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()

    def add_batch(
        self,
        input_file_id: str,
        model: str,
        size: int,
        items: Sequence[LedgerItem],
    ) -> int:
        """Record a batch about to be created, with its items, in one commit."""
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            cur = con.execute(
                "INSERT INTO batches (state, input_file_id, model, requests, bytes, created_at)"
                " VALUES ('submitting', ?, ?, ?, ?, ?)",
                (input_file_id, model, len(items), size, _now()),
            )
            batch = int(cur.lastrowid or 0)
            con.executemany(
                "INSERT INTO batch_items (batch, custom_id, repeat, case_id, society, node, agent,"
                " step, body_hash, attempt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (batch, i.custom_id, i.key.repeat, i.key.case_id, i.key.society, i.key.node,
                     i.key.agent, i.key.step, i.body_hash, i.attempt)
                    for i in items
                ),
            )  # fmt: skip
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        return batch

    def submitted(self, batch: int, provider_id: str, status: str) -> None:
        self.con.execute(
            "UPDATE batches SET state = 'submitted', provider_id = ?, provider_status = ? "
            "WHERE id = ?",
            (provider_id, status, batch),
        )

    def status(self, batch: int, status: str) -> None:
        self.con.execute("UPDATE batches SET provider_status = ? WHERE id = ?", (status, batch))

    def ended(
        self,
        batch: int,
        status: str,
        output_file_id: str | None,
        error_file_id: str | None,
        answered: Iterable[str],
    ) -> None:
        """The batch is final at the provider: its files, and which items it answered (the
        others failed and are retried in a later batch)."""
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute(
                "UPDATE batches SET state = 'ended', provider_status = ?, output_file_id = ?,"
                " error_file_id = ?, ended_at = ? WHERE id = ?",
                (status, output_file_id, error_file_id, _now(), batch),
            )
            con.execute("UPDATE batch_items SET state = 'failed' WHERE batch = ?", (batch,))
            con.executemany(
                "UPDATE batch_items SET state = 'answered' WHERE batch = ? AND custom_id = ?",
                ((batch, custom_id) for custom_id in answered),
            )
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise

    def open_batches(self) -> list[LedgerBatch]:
        marks = ", ".join("?" * len(OPEN_STATES))
        rows = self.con.execute(
            f"SELECT {_BATCH_COLUMNS} FROM batches WHERE state IN ({marks}) ORDER BY id",
            OPEN_STATES,
        ).fetchall()
        return [LedgerBatch(*row) for row in rows]

    def items(self, batch: int, state: str | None = None) -> list[LedgerItem]:
        sql = (
            "SELECT custom_id, repeat, case_id, society, node, agent, step, body_hash, attempt "
            "FROM batch_items WHERE batch = ?"
        )
        args: tuple[object, ...] = (batch,)
        if state is not None:
            sql += " AND state = ?"
            args = (batch, state)
        return [
            LedgerItem(row[0], CallKey(*row[1:7]), row[7], row[8])
            for row in self.con.execute(sql, args).fetchall()
        ]

    def collect(self) -> int:
        """Mark collected every ended batch whose answers are all stored as calls; returns how
        many were marked."""
        cur = self.con.execute(
            "UPDATE batches SET state = 'collected' WHERE state = 'ended' AND NOT EXISTS ("
            " SELECT 1 FROM batch_items i WHERE i.batch = batches.id AND i.state = 'answered'"
            " AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.society = i.society"
            " AND c.repeat = i.repeat AND c.case_id = i.case_id AND c.node = i.node"
            " AND c.agent = i.agent AND c.step = i.step AND c.outcome != 'error'))"
        )
        return cur.rowcount

    def counts(self) -> dict[str, int]:
        """Batches by state, and requests sent in all (for progress and benchmarks)."""
        out = dict(self.con.execute("SELECT state, COUNT(*) FROM batches GROUP BY state"))
        row = self.con.execute("SELECT COALESCE(SUM(requests), 0) FROM batches").fetchone()
        out["requests"] = int(row[0])
        return out

    def sent_twice(self) -> int:
        """Calls sent in more than one batch although an earlier one answered them: what
        resume must keep at 0 (a failed item's retry is not counted)."""
        row = self.con.execute(
            "SELECT COUNT(*) FROM batch_items a JOIN batch_items b ON a.custom_id = b.custom_id"
            " AND a.batch < b.batch WHERE a.state IN ('answered', 'pending')"
        ).fetchone()
        return int(row[0])
