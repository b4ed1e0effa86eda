"""The store's tables as compact DataFrames, for analysis at a million calls.

``pandas.read_sql_query`` builds a Python object per value and a string column per text
column: on the agent-number preset (1,052,000 calls) that is gigabytes and minutes. Here rows
are fetched in chunks and each column is turned into a numpy array at once: text columns into
categoricals (one ``int32`` code a row, the strings once), numbers into ``int64``/``float64``.
Reply texts are never read (the tables do not need them; transcripts are read per tree).

Text columns share *domains*: every frame of every store read by one :class:`FrameReader`
codes ``society`` (or ``case_id``, ``node`` ...) against the same categories, so frames of
several runs concatenate and join as categoricals. Categories are sorted, so sorting and
grouping by a categorical orders exactly as by the strings.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

#: ``small``: an int32 column (repeat, agent, round: a quarter of int64's room at a million rows).
Kind = Literal["text", "int", "small", "float"]

#: Rows per fetch: bounds the Python objects alive at once while a table is read.
CHUNK = 65_536

#: The call columns analysis reads (no reply, no messages), with their kinds; a text column's
#: domain is its name.
CALL_COLUMNS: dict[str, Kind] = {
    "repeat": "small", "case_id": "text", "society": "text", "node": "text", "agent": "small",
    "round": "small", "step": "text", "pattern": "text", "answer": "text", "correct": "float",
    "prompt_tokens": "int", "completion_tokens": "int", "total_tokens": "int",
    "cached_tokens": "int", "latency_ms": "float", "backend": "text", "model": "text",
    "attempts": "small", "outcome": "text",
}  # fmt: skip

NODE_COLUMNS: dict[str, Kind] = {
    "repeat": "small", "case_id": "text", "society": "text", "strategy": "text",
    "round": "small", "node": "text",
}  # fmt: skip
AGENT_COLUMNS: dict[str, Kind] = {
    "society": "text", "agent": "small", "name": "text", "trait": "text", "role": "text",
    "backend": "text", "model": "text",
}  # fmt: skip
CASE_COLUMNS: dict[str, Kind] = {"case_id": "text", "idx": "int"}


class Raw:
    """One table read: per column, its kind and its values (codes for text, -1 for NULL)."""

    def __init__(self, kinds: Mapping[str, Kind], columns: dict[str, np.ndarray]) -> None:
        self.kinds = dict(kinds)
        self.columns = columns

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


class FrameReader:
    """Reads tables of one or several stores against shared text domains; ``frame`` turns a
    :class:`Raw` into a DataFrame once every store is read (the categories are final then)."""

    def __init__(self) -> None:
        self._domains: dict[str, dict[Any, int]] = {}
        self._final: dict[str, tuple[pd.Index, np.ndarray]] = {}

    def _encode(self, domain: str, values: Sequence[Any]) -> np.ndarray:
        """Codes of ``values`` in ``domain`` (-1 for NULL); one dict lookup a value, in C."""
        table = self._domains.get(domain)
        if table is None:
            table = self._domains[domain] = defaultdict()
            table.default_factory = table.__len__  # an unseen value takes the next code
        codes = np.fromiter(map(table.__getitem__, values), dtype=np.int32, count=len(values))
        if None in table:
            codes[codes == table[None]] = -1
        return codes

    def read(
        self, con: sqlite3.Connection, table: str, kinds: Mapping[str, Kind], where: str = ""
    ) -> Raw:
        """``SELECT`` the columns of ``kinds`` from ``table`` (rowid order) in chunks."""
        names = list(kinds)
        cur = con.execute(f"SELECT {', '.join(names)} FROM {table} {where}")
        parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
        while rows := cur.fetchmany(CHUNK):
            for name, values in zip(names, zip(*rows, strict=True), strict=True):
                kind = kinds[name]
                if kind == "text":
                    parts[name].append(self._encode(name, values))
                elif kind in ("int", "small"):
                    dtype = np.int64 if kind == "int" else np.int32
                    try:
                        parts[name].append(np.fromiter(values, dtype=dtype, count=len(values)))
                    except TypeError:  # a NULL: NaN, as pandas reads a column holding one
                        parts[name].append(np.array(values, dtype=np.float64))
                else:
                    parts[name].append(np.array(values, dtype=np.float64))
        empty = {"text": np.int32, "int": np.int64, "small": np.int32, "float": np.float64}
        columns = {
            n: np.concatenate(p) if p else np.zeros(0, dtype=empty[kinds[n]])
            for n, p in parts.items()
        }
        return Raw(kinds, columns)

    def categories(self, domain: str) -> tuple[pd.Index, np.ndarray]:
        """The domain's sorted categories and, per code as read, its final code."""
        if domain not in self._final:
            table = self._domains.get(domain, {})
            values = list(table)
            known = [i for i, v in enumerate(values) if v is not None]  # NULL is code -1
            try:
                order = sorted(known, key=values.__getitem__)
            except TypeError:  # mixed types in a damaged store: any stable order will do
                order = sorted(known, key=lambda i: str(values[i]))
            rank = np.full(len(values), -1, dtype=np.int32)
            rank[np.asarray(order, dtype=np.int64)] = np.arange(len(order), dtype=np.int32)
            index = pd.Index([values[i] for i in order], dtype=object)
            self._final[domain] = (index, rank)
        return self._final[domain]

    def frame(self, raw: Raw) -> pd.DataFrame:
        """The table as a DataFrame: text columns categorical (sorted categories)."""
        data: dict[str, Any] = {}
        for name, values in raw.columns.items():
            if raw.kinds[name] != "text":
                data[name] = values
                continue
            index, rank = self.categories(name)
            codes = np.where(values >= 0, rank[np.maximum(values, 0)], -1) if len(rank) else values
            dtype = pd.CategoricalDtype(index, ordered=True)
            data[name] = pd.Categorical.from_codes(codes, dtype=dtype)
        return pd.DataFrame(data, copy=False)

    def constant(self, domain: str, value: Any, n: int) -> np.ndarray:
        """A column of ``n`` rows all holding ``value`` (a run's label), coded in ``domain``."""
        return np.full(n, self._encode(domain, [value])[0], dtype=np.int32)


def read_store(
    reader: FrameReader, con: sqlite3.Connection, labels: Mapping[str, str] | None = None
) -> dict[str, Raw]:
    """The tables analysis reads of one store, not yet framed (see ``FrameReader.frame``).
    ``labels`` (column -> value: the run's label and task) are added to every table."""
    out = {
        "calls": reader.read(con, "calls", CALL_COLUMNS),
        "nodes": reader.read(con, "strategy_nodes", NODE_COLUMNS),
        "agents": reader.read(con, "agents", AGENT_COLUMNS),
        "cases": reader.read(con, "cases", CASE_COLUMNS),
    }
    for raw in out.values():
        for column, value in (labels or {}).items():
            raw.kinds[column] = "text"
            raw.columns[column] = reader.constant(column, value, len(raw))
    return out


def as_objects(values: pd.Series) -> pd.Series:
    """A column as Python objects with every missing value ``None`` (categories shared, so no
    string is copied): what ``majority_vote`` and the answer comparisons need. A Series of
    dtype ``object``: assigned as a bare array, pandas would infer its ``str`` dtype, NaN
    for ``None``."""
    array = values.array
    if isinstance(array, pd.Categorical):
        codes = array.codes
        if len(array.categories) == 0:
            out = np.full(len(codes), None, dtype=object)
        else:
            out = np.asarray(array.categories, dtype=object).take(np.maximum(codes, 0))
            out[codes < 0] = None
    else:
        out = np.asarray(values, dtype=object).copy()
        out[pd.isna(out)] = None
    return pd.Series(out, index=values.index, dtype=object, copy=False)
