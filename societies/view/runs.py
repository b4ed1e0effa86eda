"""What the runs list says of a store: its status, and its totals (planned calls, calls and
tokens per model and outcome, cost), kept up to date without rescanning a big store.

Totals need a scan of the calls table (seconds at a million calls), so they are computed in a
worker thread and the list shows the last known values meanwhile (``None`` at first). While a
run writes only new rows (ids past the last seen) are added; when an invocation starts or ends
everything is counted again, since a resumed run may rewrite rows in place.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from societies.store import queries
from societies.store.queries import RunFacts


def status(run: RunFacts, planned: int | None, *, locked: bool) -> tuple[str, str]:
    """(status, why): running, done, incomplete (stopped, failed, interrupted) or empty.

    ``locked``: whether a process holds the run directory's lock (``store.lock.is_held``),
    which is what running means: the kernel releases a killed run's lock, so no staleness
    guess is needed."""
    if locked:
        return "running", "a process holds this run's lock (a run or a re-score is writing)"
    last = run.invocations[-1] if run.invocations else None
    if last is not None and last.finished_at is None:
        return "incomplete", "interrupted: the last run never finished (killed?)"
    enough = planned is None or run.calls_done >= planned
    if last is not None and last.status == "done" and enough:
        return "done", ""
    if last is None:
        if planned and run.calls_done >= planned:
            return "done", ""  # an imported run: no invocation, every call stored
        return ("incomplete", "no run has started") if planned else ("empty", "")
    of = f" of {planned:,}" if planned is not None else ""
    return "incomplete", f"last run {last.status}: {run.calls_done:,}{of} calls stored"


def cost(config: dict[str, Any], usage: list[queries.Usage]) -> dict[str, Any]:
    """Tokens billed and dollars at the run's price table (``None`` if a model is unpriced)."""
    from societies.backends.base import Usage
    from societies.config.models import Price
    from societies.cost import FREE_BACKENDS, cost_of, find_price, price_table

    table = price_table({k: Price(**v) for k, v in (config.get("prices") or {}).items()})
    usd: float | None = 0.0
    for u in usage:
        if u.backend in FREE_BACKENDS:
            continue
        price = find_price(table, u.model.removeprefix(f"{u.backend}:"))
        if price is None:
            usd = None
            break
        usd = (usd or 0.0) + cost_of(
            price, Usage(u.prompt_tokens, u.completion_tokens, u.cached_tokens)
        )
    tokens = sum(u.prompt_tokens + u.completion_tokens for u in usage)
    return {"tokens": tokens, "usd": usd}


@dataclass
class Totals:
    marker: tuple[int, str | None]
    upto: int
    planned: int
    usage: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)

    def rows(self) -> list[queries.Usage]:
        return [queries.Usage(*key, *values) for key, values in sorted(self.usage.items())]

    def outcomes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (_b, _m, outcome), values in self.usage.items():
            out[outcome] = out.get(outcome, 0) + values[0]
        return out


def _marker(run: RunFacts) -> tuple[int, str | None]:
    return len(run.invocations), run.invocations[-1].status if run.invocations else None


class TotalsCache:
    """Totals per store, refreshed in worker threads (at most one at a time per store)."""

    def __init__(self) -> None:
        self._totals: dict[Path, Totals] = {}
        self._pending: dict[Path, Future[None]] = {}
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="view-totals")
        self._lock = threading.Lock()

    def _refresh(self, path: Path, run: RunFacts) -> None:
        marker = _marker(run)
        old = self._totals.get(path)
        if old is None or old.marker != marker:
            totals = Totals(marker, 0, queries.planned(path))
        else:
            totals = Totals(marker, old.upto, old.planned, {k: v[:] for k, v in old.usage.items()})
        for u in queries.usage_between(path, totals.upto, run.last_call_id):
            values = totals.usage.setdefault((u.backend, u.model, u.outcome), [0, 0, 0, 0])
            for i, v in enumerate((u.calls, u.prompt_tokens, u.completion_tokens, u.cached_tokens)):
                values[i] += int(v or 0)
        totals.upto = run.last_call_id
        self._totals[path] = totals

    def get(self, path: Path, run: RunFacts) -> Totals | None:
        """The latest totals (possibly a poll behind); starts a refresh when they are stale."""
        current = self._totals.get(path)
        fresh = current is not None and current.marker == _marker(run)
        if fresh and current is not None and current.upto == run.last_call_id:
            return current
        with self._lock:
            pending = self._pending.get(path)
            if pending is None or pending.done():
                pending = self._pool.submit(self._refresh, path, run)
                self._pending[path] = pending
        return current

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
