"""A level as a file, for offline engines: export its requests, import their results.

``societies batch export`` writes the calls of the next level (every call whose inputs are
stored and which is not) as an OpenAI batch input file; ``vllm run-batch`` or any engine
that reads the format answers it on a cluster; ``societies batch import`` stores the answers
as calls, and the run resumes from them (a later ``societies run`` makes no call for them).
Both walk the run as batch mode does (scheduler/batch.py): the level is what the trees ask
before any answer comes back. Nothing is sent to any server, and an export writes nothing.

An import is checked whole before anything is written: every line must be JSON with a
``custom_id`` of this run (its tag) naming a call of the level waiting for it (or one already
stored, skipped); otherwise one line names the file, line and id, and nothing is stored.
A result line with an error leaves its call for the next export.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from societies.backends.base import CallRefusedError, ContextExceededError
from societies.backends.openai_batch import parse_result_line
from societies.errors import DataError
from societies.plan.plan import Plan
from societies.scheduler.batch import (
    UNLIMITED,
    BatchCollector,
    Pending,
    Provider,
    parse_custom_id,
)
from societies.scheduler.runner import Runner, RunSummary
from societies.scheduler.session import run_plan
from societies.store.batches import BatchLedger
from societies.store.db import RunStore
from societies.store.records import CallKey

#: Why the walk stops at the end of a level (never stored: refused calls record nothing).
_LEVEL_END = "the level is exported"


@dataclass
class ExportProvider(Provider):
    """Takes the first level's request lines and ends the walk."""

    lines: list[bytes] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)

    def dispatch(self, collector: BatchCollector, items: list[Pending]) -> None:
        for p in items:
            if p.custom_id not in self.ids:
                self.ids.add(p.custom_id)
                self.lines.append(p.line)
            collector.answer(p, CallRefusedError(_LEVEL_END))


@dataclass
class ImportProvider(Provider):
    """Answers the level's calls from result lines; calls without one are left for later."""

    results: dict[str, dict[str, Any]]
    failed: int = 0

    def dispatch(self, collector: BatchCollector, items: list[Pending]) -> None:
        for p in items:
            line = self.results.pop(p.custom_id, None)
            if line is None:
                collector.answer(p, CallRefusedError(_LEVEL_END))
            elif _answered(line) or _overflow(line):
                collector.provider_answer(p, line)
            else:
                self.failed += 1
                collector.answer(p, CallRefusedError(_LEVEL_END))


def _answered(line: dict[str, Any]) -> bool:
    response = line.get("response")
    return isinstance(response, dict) and response.get("status_code") == 200


def _overflow(line: dict[str, Any]) -> bool:
    try:
        parse_result_line(line, "")
    except ContextExceededError:
        return True
    except Exception:
        return False
    return False


async def export_level(plan: Plan, store: RunStore) -> list[bytes]:
    """The request lines of the run's next level (empty when every call is stored)."""
    provider = ExportProvider()
    collector = BatchCollector(store, provider, resume=False)
    runner = Runner(
        plan,
        store,
        backend_factory=lambda spec: collector.backend(spec, None),
        concurrency=UNLIMITED,
    )
    await runner.run()
    return provider.lines


def read_results(path: Path, tag: str) -> Iterator[tuple[int, str, CallKey, dict[str, Any]]]:
    """(line number, custom_id, position, line) of a results file of this run; anything else
    is one error naming file and line."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except ValueError:
                raise DataError(f"{path}:{number}: not a JSON line") from None
            cid = line.get("custom_id") if isinstance(line, dict) else None
            if not isinstance(cid, str):
                raise DataError(f"{path}:{number}: custom_id: missing (not a batch result line)")
            parsed = parse_custom_id(cid, len(tag))
            if parsed is None:
                raise DataError(
                    f"{path}:{number}: custom_id: {cid[:80]!r} is not a call id of societies"
                )
            if parsed[0] != tag:
                raise DataError(
                    f"{path}:{number}: custom_id: {cid[:80]!r} is from another run "
                    f"(run tag {parsed[0]}; this run's is {tag})"
                )
            yield number, cid, parsed[1], line


@dataclass(frozen=True)
class Imported:
    summary: RunSummary
    stored_before: int
    failed: int


async def import_results(plan: Plan, store: RunStore, path: Path) -> Imported:
    """Store the answers of ``path`` (results of the run's next level) as calls."""
    tag = BatchLedger(store.con).run_tag()
    rows = list(read_results(path, tag))
    waiting = ExportProvider()
    collector = BatchCollector(store, waiting, resume=False)
    runner = Runner(
        plan,
        store,
        backend_factory=lambda spec: collector.backend(spec, None),
        concurrency=UNLIMITED,
    )
    await runner.run()
    results: dict[str, dict[str, Any]] = {}
    already = 0
    for number, cid, key, line in rows:
        if cid in waiting.ids:
            results[cid] = line
            continue
        stored = store.tree_calls(key.repeat, key.case_id, key.society).get(key)
        if stored is not None and stored.outcome != "error":
            already += 1
            continue
        raise DataError(
            f"{path}:{number}: custom_id: {cid[:80]!r} names no call of this run's next level "
            f"(call {key.text[:80]})"
        )
    provider = ImportProvider(results)
    importer = BatchCollector(store, provider, resume=False)
    summary = await run_plan(
        plan,
        store,
        backend_factory=lambda spec: importer.backend(spec, None),
        concurrency=UNLIMITED,
    )
    return Imported(summary, already, provider.failed)
