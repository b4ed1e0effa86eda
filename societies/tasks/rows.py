"""Reading data files in the layouts benchmarks ship in, and a task base built on rows.

Every layout becomes the same thing: rows (dicts) each with a location a user can find
(``file:line`` for JSONL and CSV, ``file#N`` for the N-th record of a JSON array or parquet
table, the file itself for one-JSON-per-problem directories). A ``RowTask`` turns each row into
a case or a ``DataError`` naming that location and the field, which lets one implementation
serve strict loading, ``skip_invalid`` loading, and ``societies data validate``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from societies.errors import DataError
from societies.tasks.base import Case, Task

log = logging.getLogger(__name__)

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Located:
    """A row and where it came from, for error messages."""

    where: str
    row: Row
    #: Set when the row could not even be read (invalid JSON on a JSONL line).
    error: str | None = None


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: data file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 (byte {exc.start})") from None


def read_json_records(path: Path, list_keys: tuple[str, ...] = ("examples", "data")) -> list[Row]:
    """A JSON file holding one record, a list of records, or an object with a list of records
    under one of ``list_keys`` (BIG-bench keeps its items under ``examples``)."""
    text = _read_text(path)
    if not text.strip():
        raise DataError(f"{path}: the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if isinstance(data, dict):
        for key in list_keys:
            if isinstance(data.get(key), list):
                data = data[key]
                break
        else:
            return [data]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON object or a list of objects")
    return data


def _records(path: Path, records: list[Any]) -> Iterator[Located]:
    if not records:
        raise DataError(f"{path}: the file has no rows")
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise DataError(f"{path}#{number}: expected a JSON object")
        yield Located(f"{path}#{number}", record)


def read_parquet(path: Path) -> list[Row]:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        raise DataError(f"{path}: reading parquet needs pandas and pyarrow") from None
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a bad file
        raise DataError(f"{path}: cannot read as parquet ({type(exc).__name__})") from None
    rows: list[Row] = []
    for record in frame.to_dict(orient="records"):
        rows.append({str(k): _plain(v) for k, v in record.items()})
    return rows


def _plain(value: Any) -> Any:
    """numpy arrays and scalars from parquet as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def read_csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    text = _read_text(path)
    if not text.strip():
        raise DataError(f"{path}: the file is empty")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for fields in reader:
            if fields and any(f.strip() for f in fields):
                yield reader.line_num, fields
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: invalid CSV ({exc})") from None


def read_rows(path: Path) -> Iterator[Located]:
    """Rows of a JSONL, JSON, or parquet file, or of a directory of one-record JSON files."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json") if p.is_file())
        if not files:
            raise DataError(f"{path}: a directory with no .json files")
        for file in files:
            records = read_json_records(file)
            for located in _records(file, records):
                where = str(file) if len(records) == 1 else located.where
                yield Located(where, located.row)
        return
    suffix = path.suffix.lower()
    if not path.exists():
        raise DataError(f"{path}: data file not found")
    if suffix == ".json":
        try:
            records = read_json_records(path)
        except DataError as exc:
            if "Extra data" not in str(exc):
                raise
            # JSON Lines under a .json name (what Hugging Face's to_json writes).
            yield from _jsonl(path)
            return
        yield from _records(path, records)
    elif suffix == ".parquet":
        yield from _records(path, read_parquet(path))
    else:
        yield from _jsonl(path)


def _jsonl(path: Path) -> Iterator[Located]:
    """Like ``read_jsonl``, but a line that is not a JSON object is a row error, not the end."""
    any_row = False
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        any_row = True
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Located(where, {}, f"{where}: invalid JSON ({exc.msg})")
            continue
        if not isinstance(row, dict):
            yield Located(where, {}, f"{where}: expected a JSON object per line")
            continue
        yield Located(where, row)
    if not any_row:
        raise DataError(f"{path}: the file has no rows")


@dataclass
class LoadReport:
    cases: list[Case]
    errors: list[str]
    rows: int


class RowTask(Task):
    """A task whose data is a sequence of independent rows.

    Subclasses implement ``rows`` (when the default layouts are not enough) and ``check_row``;
    ``load`` is then strict by default, and with the task option ``skip_invalid: true`` it
    leaves bad rows out with one warning giving their count.
    """

    def rows(self, path: Path) -> Iterator[Located]:
        return read_rows(path)

    @abstractmethod
    def check_row(self, where: str, row: Row) -> Row:
        """The row's fields as stored with the run, or a ``DataError`` naming ``where``."""

    def scan(self, path: Path) -> LoadReport:
        """Every usable case and one message per unusable row; bad layouts still raise."""
        cases: list[Case] = []
        errors: list[str] = []
        seen: set[str] = set()
        total = 0
        for located in self.rows(path):
            total += 1
            try:
                if located.error is not None:
                    raise DataError(located.error)
                fields = self.check_row(located.where, located.row)
                case_id = str(fields.get("id") or f"{path.stem}-{total - 1}")
                if case_id in seen:
                    raise DataError(f"{located.where}: id: duplicate id {case_id!r}")
            except DataError as exc:
                errors.append(str(exc))
                continue
            seen.add(case_id)
            fields = dict(fields, id=case_id)
            cases.append(Case(case_id, len(cases), fields, self.target_of(fields)))
        return LoadReport(cases, errors, total)

    def load(self, path: Path) -> list[Case]:
        report = self.scan(path)
        if report.errors:
            if not self.options.get("skip_invalid"):
                more = len(report.errors) - 1
                extra = (
                    f" (and {more} more bad rows; see `societies data validate`)" if more else ""
                )
                raise DataError(report.errors[0] + extra)
            log.warning(
                "%s: skipped %d of %d rows that cannot be used (first: %s)",
                path,
                len(report.errors),
                report.rows,
                report.errors[0],
            )
        if not report.cases:
            raise DataError(f"{path}: no usable rows")
        return report.cases


def field(where: str, row: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    """``row[name]`` if present, of type ``kind`` and not blank; else a ``DataError``."""
    if name not in row or row[name] is None:
        raise DataError(f"{where}: {name}: missing")
    value = row[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DataError(f"{where}: {name}: invalid value {_short(value)}")
    if isinstance(value, str) and not value.strip():
        raise DataError(f"{where}: {name}: empty")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
