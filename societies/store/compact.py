"""Compact conversations: each distinct message is stored once, and a call stores only its
parent call and the messages it adds.

An agent's conversation grows by one turn per round, and every call used to store it whole:
the store grew with the square of the rounds (3.5 KB per call on the study's agent-number
grid). Now a message is stored once in ``messages``, keyed by a hash of its role and content
(the persona and the question of a case, shared by every call that quotes them, appear once),
and a call holds ``parent`` (the call whose request and reply its request continues) and
``added`` (the hashes of the messages after that, 16 bytes each). The conversation of a call
is its parent's, then the parent's reply as an assistant turn, then the added messages.

Migration 4 converts a store of schema 3 tree by tree (bounded memory): within one repeat x
case x society x agent, the parent of a call is the call whose conversation plus reply is
the longest prefix of its own.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

HASH_BYTES = 16
Message = Mapping[str, str]


def message_hash(role: str, content: str) -> bytes:
    return hashlib.blake2b(f"{role}\x00{content}".encode(), digest_size=HASH_BYTES).digest()


#: Messages this long (UTF-8 bytes) or longer are stored zlib-compressed: debate turns quote
#: every peer's reply, and replies to one question repeat each other's wording (about 3x).
_PACK_FROM = 256


def pack(content: str) -> str | bytes:
    """A message's content as stored: the text, or its compressed UTF-8 when that is smaller."""
    raw = content.encode()
    if len(raw) < _PACK_FROM:
        return content
    packed = zlib.compress(raw, 1)
    return packed if len(packed) < len(raw) else content


def unpack(stored: str | bytes) -> str:
    return stored if isinstance(stored, str) else zlib.decompress(stored).decode()


def split_hashes(added: bytes) -> list[bytes]:
    return [added[i : i + HASH_BYTES] for i in range(0, len(added), HASH_BYTES)]


class Conversations:
    """Rebuilds conversations from a store's ``calls`` and ``messages``.

    ``of(call_id)`` walks up the parents (a handful of rounds); ``cache`` keeps the
    conversations (with their reply) of the calls already rebuilt, for bulk reads in id order,
    where parents come before their children.
    """

    def __init__(self, con: sqlite3.Connection, *, cache: bool = False) -> None:
        self.con = con
        self.cache: dict[int, list[dict[str, str]]] | None = {} if cache else None
        self._messages: dict[bytes, dict[str, str]] = {}

    def messages(self, hashes: Sequence[bytes]) -> list[dict[str, str]]:
        missing = [h for h in hashes if h not in self._messages]
        for start in range(0, len(missing), 500):
            part = missing[start : start + 500]
            marks = ", ".join("?" * len(part))
            for h, role, content in self.con.execute(
                f"SELECT hash, role, content FROM messages WHERE hash IN ({marks})", part
            ):
                self._messages[h] = {"role": role, "content": unpack(content)}
        if len(self._messages) > 200_000:
            found = [self._messages[h] for h in hashes]
            self._messages.clear()
            return [dict(m) for m in found]
        return [dict(self._messages[h]) for h in hashes]

    def request(self, parent: int | None, added: bytes) -> list[dict[str, str]]:
        """The messages of a call's request."""
        head = [] if parent is None else self.with_reply(parent)
        return head + self.messages(split_hashes(added))

    def with_reply(self, call_id: int) -> list[dict[str, str]]:
        """A call's conversation followed by its reply (what its children continue)."""
        if self.cache is not None and call_id in self.cache:
            return list(self.cache[call_id])
        row = self.con.execute(
            "SELECT parent, added, reply FROM calls WHERE id = ?", (call_id,)
        ).fetchone()
        if row is None:
            return []
        parent, added, reply = row
        out = self.request(parent, added)
        if reply is not None:
            out.append({"role": "assistant", "content": reply})
        if self.cache is not None:
            self.cache[call_id] = list(out)
        return out

    def remember(self, call_id: int, request: list[dict[str, str]], reply: str | None) -> None:
        """Keep a call's conversation, rebuilt by the caller, for its children."""
        if self.cache is not None:
            tail = [] if reply is None else [{"role": "assistant", "content": reply}]
            self.cache[call_id] = request + tail


# -- migration 4 -------------------------------------------------------------------------------
_V4_CALLS = """
CREATE TABLE calls_v4 (
    id INTEGER PRIMARY KEY,
    repeat INTEGER NOT NULL,
    case_id TEXT NOT NULL,
    society TEXT NOT NULL,
    node TEXT NOT NULL,
    agent INTEGER NOT NULL,
    round INTEGER NOT NULL,
    step TEXT NOT NULL CHECK (step IN ('persona', 'answer')),
    pattern TEXT,
    parent INTEGER,
    added BLOB NOT NULL,
    reply TEXT,
    answer TEXT,
    correct INTEGER,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    total_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    latency_ms REAL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    params_json TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'context_exceeded', 'error')),
    error TEXT,
    request_hash TEXT NOT NULL,
    request_id TEXT,
    invocation INTEGER,
    created_at TEXT NOT NULL,
    extraction TEXT,
    UNIQUE (society, repeat, case_id, node, agent, step)
)
"""
#: ``content`` holds the text, or zlib-compressed UTF-8 (a BLOB) for long messages (``pack``).
#: A rowid table with a unique index on the hash, not a WITHOUT ROWID table keyed by it:
#: messages are large (a debate turn quotes every peer), and a WITHOUT ROWID b-tree of large
#: rows spills into overflow pages and took three times the size of the text.
_MESSAGES = """
CREATE TABLE messages (
    hash BLOB NOT NULL UNIQUE,
    role TEXT NOT NULL,
    content TEXT NOT NULL
)
"""
#: Columns copied as they are from schema 3 to 4 (messages_json becomes parent + added).
_KEPT = (
    "id, repeat, case_id, society, node, agent, round, step, pattern, reply, answer, correct, "
    "prompt_tokens, completion_tokens, total_tokens, cached_tokens, latency_ms, backend, model, "
    "params_json, attempts, outcome, error, request_hash, request_id, invocation, created_at, "
    "extraction"
)


def _prefix_key(messages: Sequence[Any]) -> str:
    return json.dumps(messages, ensure_ascii=False, separators=(",", ":"))


def _compact_tree(rows: list[tuple[Any, ...]]) -> Iterator[tuple[tuple[Any, ...], list[Any]]]:
    """(row with parent and added, the messages to store) for the calls of one tree."""
    by_agent: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_agent.setdefault(row[5], []).append(row)
    for calls in by_agent.values():
        parsed = [(json.loads(r[-1]), r) for r in calls]
        parsed.sort(key=lambda p: len(p[0]))
        ends: dict[str, int] = {}  # conversation + reply (as JSON) -> call id
        for messages, row in parsed:
            parent, start = None, 0
            for k in range(len(messages) - 1, 0, -1):
                found = ends.get(_prefix_key(messages[:k]))
                if found is not None:
                    parent, start = found, k
                    break
            added = messages[start:]
            reply = row[9]
            if messages and reply is not None:
                ends[_prefix_key([*messages, {"role": "assistant", "content": reply}])] = row[0]
            yield (
                (*row[:-1], parent, b"".join(message_hash(m["role"], m["content"]) for m in added)),
                added,
            )


def migrate_v4(con: sqlite3.Connection) -> None:
    """Schema 3 -> 4: the calls table rebuilt with parent + added, the messages stored once."""
    con.execute(_V4_CALLS)
    con.execute(_MESSAGES)
    read = con.execute(
        f"SELECT {_KEPT}, messages_json FROM calls ORDER BY society, repeat, case_id, node, agent"
    )
    tree: list[tuple[Any, ...]] = []
    current: tuple[Any, ...] | None = None

    def write(rows: list[tuple[Any, ...]]) -> None:
        out: list[tuple[Any, ...]] = []
        messages: list[tuple[bytes, str, str | bytes]] = []
        for row, added in _compact_tree(rows):
            out.append(row)
            messages.extend(
                (message_hash(m["role"], m["content"]), m["role"], pack(m["content"]))
                for m in added
            )
        con.executemany("INSERT OR IGNORE INTO messages VALUES (?, ?, ?)", messages)
        marks = ", ".join("?" * (len(_KEPT.split(",")) + 2))
        con.executemany(f"INSERT INTO calls_v4 ({_KEPT}, parent, added) VALUES ({marks})", out)

    for row in _rows(read):
        key = (row[3], row[1], row[2])
        if key != current and tree:
            write(tree)
            tree = []
        current = key
        tree.append(row)
    if tree:
        write(tree)
    con.execute("DROP TABLE calls")
    con.execute("ALTER TABLE calls_v4 RENAME TO calls")


def _rows(cursor: sqlite3.Cursor) -> Iterable[tuple[Any, ...]]:
    while True:
        batch = cursor.fetchmany(2000)
        if not batch:
            return
        yield from batch
