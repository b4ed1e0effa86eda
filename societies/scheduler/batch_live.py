"""A level through the OpenAI Batch API: upload, record, create, poll, read the results.

The order is what keeps money safe. The input file is uploaded (free), then the batch and its
items are committed to the ledger as ``submitting`` before the batch is created, and its id as
soon as the provider returns it. A run killed between the two finds the batch at the provider
by its input file (``batches.list``) before creating anything; killed later, it polls the
recorded id. Results are matched by ``custom_id``; an item in neither result file counts as
failed (the provider's contract allows that) and is asked again in the next batch.

Every exchange with the provider is retried on transient failures (bounded); a server without
the Files API, a refused key or a provider that stays unreachable stops the run, resumable.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from societies.backends.base import PermanentModelError, create_backend
from societies.backends.errors import Transient
from societies.backends.openai_batch import TERMINAL, BatchAPI, body_hash
from societies.plan.plan import Plan
from societies.scheduler.batch import (
    UNLIMITED,
    BatchCollector,
    BatchProgress,
    Pending,
    Provider,
    batched_factory,
)
from societies.scheduler.runner import BackendFactory, ProgressFn, RunSummary
from societies.scheduler.session import run_plan
from societies.store.batches import LedgerBatch, LedgerItem
from societies.store.db import RunStore

log = logging.getLogger(__name__)

T = TypeVar("T")
#: Attempts of one exchange with the provider (upload, create, poll, download).
EXCHANGE_ATTEMPTS = 6


async def _retried(what: Callable[[], Awaitable[T]], label: str) -> T:
    """``what()``, again after a transient failure (exponential back-off with jitter)."""
    for attempt in range(1, EXCHANGE_ATTEMPTS + 1):
        try:
            return await what()
        except Transient as exc:
            if attempt == EXCHANGE_ATTEMPTS:
                raise PermanentModelError(
                    f"openai: could not {label} after {attempt} attempts ({exc}); the batches "
                    "submitted are recorded: re-run to resume them"
                ) from None
            wait = min(30.0, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            log.info("openai: %s failed (%s); retrying in %.1f s", label, exc, wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")


class LiveProvider(Provider):
    """Batches at the server of each model's openai backend."""

    def dispatch(self, collector: BatchCollector, items: list[Pending]) -> None:
        groups: dict[int, list[Pending]] = {}
        for p in items:
            groups.setdefault(id(p.backend), []).append(p)
        for group in groups.values():
            options = group[0].backend.options
            chunk: list[Pending] = []
            size = 0
            for p in group:
                if chunk and (
                    len(chunk) >= options.batch_max_requests
                    or size + len(p.line) > options.batch_max_bytes
                ):
                    collector.spawn(self._submit(collector, chunk, size), chunk)
                    chunk, size = [], 0
                chunk.append(p)
                size += len(p.line)
            collector.spawn(self._submit(collector, chunk, size), chunk)

    def resume(self, collector: BatchCollector, batch: LedgerBatch, items: list[Pending]) -> None:
        log.info("batch %s: resuming (%s) for %d calls", batch.id, batch.state, len(items))
        collector.spawn(self._follow(collector, batch, items), items)

    async def _submit(self, collector: BatchCollector, items: list[Pending], size: int) -> None:
        backend = items[0].backend
        api: BatchAPI = backend.batch_api()
        data = b"".join(p.line for p in items)
        try:
            file_id = await _retried(
                lambda: api.upload(f"societies-{collector.tag}.jsonl", data), "upload a batch"
            )
            ledger_items = [
                LedgerItem(p.custom_id, p.key, body_hash(p.line), p.attempt) for p in items
            ]
            row = collector.ledger.add_batch(file_id, backend.spec.name, size, ledger_items)
        except PermanentModelError as exc:
            collector.fail(exc, items)
            return
        batch = LedgerBatch(row, "submitting", file_id, None, None, None, None, "", len(items))
        await self._follow(collector, batch, items, fresh=True)

    async def _follow(
        self,
        collector: BatchCollector,
        batch: LedgerBatch,
        items: list[Pending],
        *,
        fresh: bool = False,
    ) -> None:
        api: BatchAPI = items[0].backend.batch_api()
        options = items[0].backend.options
        try:
            status, out, err = (
                batch.provider_status or "",
                batch.output_file_id,
                batch.error_file_id,
            )
            provider_id = batch.provider_id
            if batch.state == "submitting":
                found = None if fresh else await _retried(
                    lambda: api.find(batch.input_file_id), "list batches"
                )  # fmt: skip
                if found is None:
                    found = await self._create(api, collector, batch)
                provider_id, status = found
                collector.ledger.submitted(batch.id, provider_id, status)
            assert provider_id is not None
            collector.changed(submitted=1, started=1)
            if batch.state != "ended":
                while True:
                    previous = status
                    status, out, err = await _retried(
                        lambda: api.retrieve(provider_id), f"poll batch {provider_id}"
                    )
                    if status != previous:
                        collector.ledger.status(batch.id, status)
                    if status in TERMINAL:
                        break
                    await asyncio.sleep(options.batch_poll)
            lines = await _retried(lambda: api.lines(out), "download batch results")
            errors = await _retried(lambda: api.lines(err), "download batch errors")
        except PermanentModelError as exc:
            collector.fail(exc, items)
            return
        by_id: dict[str, dict[str, Any]] = {}
        for line in (*errors, *lines):  # an output line wins over an error line
            by_id[line["custom_id"]] = line
        answered = [
            cid
            for cid, line in by_id.items()
            if isinstance(line.get("response"), dict) and line["response"].get("status_code") == 200
        ]
        if batch.state != "ended":
            collector.ledger.ended(batch.id, status, out, err, answered)
        collector.changed(finished=1)
        log.info("batch %s (%s): %s, %d answered", batch.id, provider_id, status, len(answered))
        asked = {p.custom_id for p in items}
        for cid, line in by_id.items():
            if cid not in asked:
                collector.late[cid] = line  # a resumed batch: its call has not asked yet
        for p in items:
            result = by_id.get(p.custom_id)
            if result is None:
                collector.answer(p, Transient(f"batch {provider_id} ({status}) gave no result"))
            else:
                collector.provider_answer(p, result)

    @staticmethod
    async def _create(
        api: BatchAPI, collector: BatchCollector, batch: LedgerBatch
    ) -> tuple[str, str]:
        """Create the batch; after a failure that may have created it, look for it first."""
        metadata = {"societies_run": collector.tag, "societies_batch": str(batch.id)}
        for attempt in range(1, EXCHANGE_ATTEMPTS + 1):
            try:
                return await api.create(batch.input_file_id, metadata)
            except Transient as exc:
                if attempt == EXCHANGE_ATTEMPTS:
                    raise PermanentModelError(
                        f"openai: could not create a batch ({exc}); re-run to resume"
                    ) from None
                await asyncio.sleep(min(30.0, 0.5 * 2 ** (attempt - 1)))
                found = await _retried(lambda: api.find(batch.input_file_id), "list batches")
                if found is not None:
                    return found
        raise AssertionError("unreachable")


async def run_batched(
    plan: Plan,
    store: RunStore,
    *,
    provider: Provider | None = None,
    wrap: Callable[[BackendFactory], BackendFactory] | None = None,
    progress: ProgressFn | None = None,
    batch_progress: BatchProgress | None = None,
    argv: Sequence[str] | None = None,
) -> RunSummary:
    """Run ``plan`` into ``store`` in batch mode: the models with ``batch: true`` send their
    calls through ``provider`` (the Batch API of their servers by default), level by level;
    ``wrap`` wraps the backend factory (the cost meter)."""
    collector = BatchCollector(store, provider or LiveProvider(), progress=batch_progress)
    factory = batched_factory(collector, create_backend)
    return await run_plan(
        plan,
        store,
        backend_factory=wrap(factory) if wrap is not None else factory,
        progress=progress,
        argv=argv,
        concurrency=UNLIMITED,
    )
