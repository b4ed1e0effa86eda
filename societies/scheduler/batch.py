"""Batch mode: the run's calls go to a provider's Batch API level by level.

A debate is a tree of dependent calls, but its levels are independent across every case,
society and repeat. In batch mode the runner admits every tree at once (no concurrency
limit: nothing is sent while a call waits) and each model call is handed to the collector
instead of a server. Once the event loop has nothing left to run, every call that can be
asked before some answer comes back has been asked: that is a level, and it leaves as
provider batches (``batch_live``: the OpenAI Batch API; ``batch_files``: a JSONL file for an
offline engine, and its results read back). Answers resolve the calls' futures, the trees
move on, and their next calls form the next level. The main grid of the study (role-play,
first answer, 3 rounds) is 5 levels, so 5 batches when each fits the provider's limits.

A call is named by its ``custom_id``: the run's tag (``BatchLedger.run_tag``) followed by its
position as a JSON array, ``[repeat, case, society, node, agent, step]``, so any character
in a name is unambiguous and a results file of another run is recognised. A failed or expired
item is asked again in the next batch, up to the backend's ``max_attempts``; then it is
recorded as an ``error`` call (redone on resume, as any error).

Resume: the ledger (``store/batches.py``) holds every batch submitted and its items. A call
whose item is in an open batch with the same request line is attached to that batch, which is
polled (or its result files read again), never submitted again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from societies.backends.base import (
    AnyBackend,
    CallFailedError,
    GenerateRequest,
    GenerateResult,
    ModelBackend,
    PermanentModelError,
)
from societies.backends.errors import Transient
from societies.backends.openai_batch import (
    body_hash,
    chat_body,
    parse_result_line,
    request_line,
)
from societies.config.models import ModelSpec
from societies.errors import StoreError
from societies.plan.plan import Plan
from societies.store.batches import BatchLedger, LedgerBatch, LedgerItem
from societies.store.db import RunStore
from societies.store.records import CallKey

log = logging.getLogger(__name__)

#: The runner's concurrency limit in batch mode: every tree is admitted at once.
UNLIMITED = 1 << 30
#: Attempts per call when the backend sets none (export and import).
DEFAULT_ATTEMPTS = 8
#: Called when batches change: (submitted, in progress, done).
BatchProgress = Callable[[int, int, int], None]


def custom_id(tag: str, key: CallKey) -> str:
    position = [key.repeat, key.case_id, key.society, key.node, key.agent, key.step]
    return tag + json.dumps(position, ensure_ascii=False, separators=(",", ":"))


def parse_custom_id(text: str, tag_length: int = 12) -> tuple[str, CallKey] | None:
    """(run tag, position) of a custom_id, or None if it is not one of ours."""
    tag, rest = text[:tag_length], text[tag_length:]
    try:
        r, case, society, node, agent, step = json.loads(rest)
    except (ValueError, TypeError):
        return None
    if not (
        isinstance(r, int)
        and isinstance(agent, int)
        and all(isinstance(v, str) for v in (case, society, node))
        and step in ("persona", "answer", "judge", "questionnaire")
    ):
        return None
    return tag, CallKey(r, case, society, node, agent, step)


@dataclass(eq=False)
class Pending:
    """One call waiting for its batch."""

    custom_id: str
    key: CallKey
    request: GenerateRequest
    #: The backend that sends it (``None`` for export and import).
    backend: Any
    line: bytes
    future: asyncio.Future[GenerateResult]
    max_attempts: int
    attempt: int = 1


class Provider(ABC):
    """Where a level's calls go."""

    @abstractmethod
    def dispatch(self, collector: BatchCollector, items: list[Pending]) -> None:
        """Send ``items`` (start tasks; return at once); each is answered through
        ``collector.answer``."""

    def resume(self, collector: BatchCollector, batch: LedgerBatch, items: list[Pending]) -> None:
        """Follow a batch submitted by an earlier invocation, for the calls attached to it."""
        for p in items:
            collector.answer(p, Transient(f"batch {batch.provider_id} cannot be followed here"))


def _loop_busy(loop: asyncio.AbstractEventLoop) -> bool | None:
    """Whether callbacks are ready to run; None when the loop does not say (not CPython's)."""
    ready = getattr(loop, "_ready", None)
    return None if ready is None else len(ready) > 0


async def settle() -> None:
    """Return once every other task is waiting (on a call's answer, a timer, I/O)."""
    loop = asyncio.get_running_loop()
    # On a loop that does not say what is ready, many idle turns stand for "nothing left".
    needed = 3 if _loop_busy(loop) is not None else 50
    quiet = 0
    while quiet < needed:
        await asyncio.sleep(0)
        quiet = 0 if _loop_busy(loop) else quiet + 1


class BatchCollector:
    """Collects the calls of a level and hands them to a provider; answers them."""

    def __init__(
        self,
        store: RunStore,
        provider: Provider,
        *,
        progress: BatchProgress | None = None,
        resume: bool = True,
    ) -> None:
        self.store = store
        self.ledger = BatchLedger(store.con)
        self.tag = self.ledger.run_tag()
        self.provider = provider
        self.resume = resume
        self.progress = progress
        self.broken: BaseException | None = None
        self._queue: list[Pending] = []
        self._arrived: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        if resume:
            self.ledger.collect()
        #: Items of batches submitted earlier that may still answer a call (resume).
        self._open: dict[str, tuple[LedgerBatch, LedgerItem]] = {}
        for batch in self.ledger.open_batches() if resume else ():
            state = "answered" if batch.state == "ended" else "pending"
            for item in self.ledger.items(batch.id, state):
                self._open[item.custom_id] = (batch, item)
        self._attached: dict[int, tuple[LedgerBatch, list[Pending]]] = {}
        #: Answers of resumed batches whose calls have not asked yet.
        self.late: dict[str, dict[str, Any]] = {}
        self.submitted = self.in_progress = self.done = 0

    # -- the runner's side ----------------------------------------------------------------
    def backend(self, spec: ModelSpec, inner: AnyBackend | None) -> BatchedBackend:
        return BatchedBackend(spec, self, inner)

    async def ask(self, backend: AnyBackend | None, request: GenerateRequest) -> GenerateResult:
        if request.key is None:
            raise PermanentModelError("batch mode needs each call's position")
        if self.broken is not None:
            raise self.broken
        cid = custom_id(self.tag, request.key)
        if backend is not None and hasattr(backend, "batch_body"):
            body = backend.batch_body(request)
        else:
            body = chat_body(request)
        line = request_line(cid, body)
        attempts = getattr(getattr(backend, "options", None), "max_attempts", DEFAULT_ATTEMPTS)
        future: asyncio.Future[GenerateResult] = asyncio.get_running_loop().create_future()
        p = Pending(cid, request.key, request, backend, line, future, int(attempts))
        self._take(p)
        return await future

    def _take(self, p: Pending) -> None:
        late = self.late.pop(p.custom_id, None)
        if late is not None:
            self._open.pop(p.custom_id, None)
            self.provider_answer(p, late)
            return
        found = self._open.pop(p.custom_id, None)
        if found is not None:
            batch, item = found
            if item.body_hash == body_hash(p.line):
                self._attached.setdefault(batch.id, (batch, []))[1].append(p)
                self._wake()
                return
            log.warning("batch %s: call %s is asked differently now", batch.id, p.key.text)
        self._queue.append(p)
        self._wake()

    def _wake(self) -> None:
        if self._arrived is None:
            self._arrived = asyncio.Event()
        self._arrived.set()
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_levels())

    async def _flush_levels(self) -> None:
        try:
            await self._levels()
        except Exception as exc:  # a bug must not leave every call waiting
            self.fail(exc, [])

    async def _levels(self) -> None:
        assert self._arrived is not None
        while True:
            await self._arrived.wait()
            await settle()
            self._arrived.clear()
            items, self._queue = self._queue, []
            attached, self._attached = self._attached, {}
            for batch, waiting in attached.values():
                self.provider.resume(self, batch, waiting)
            if items:
                if self.broken is not None:
                    for p in items:
                        self._settle(p, self.broken)
                else:
                    log.info("batch mode: a level of %d calls", len(items))
                    self.provider.dispatch(self, items)

    # -- the provider's side --------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, None], items: list[Pending]) -> None:
        """Run ``coro`` (the sending of ``items``); should it fail unexpectedly (a full disk,
        a bug), its calls fail with the error rather than wait forever."""

        async def guarded() -> None:
            try:
                await coro
            except Exception as exc:
                self.fail(exc, items)

        task = asyncio.get_running_loop().create_task(guarded())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def answer(self, p: Pending, result: GenerateResult | BaseException) -> None:
        """An item's outcome: a retryable failure is asked again in the next batch (until
        its attempts run out), anything else resolves the call."""
        if isinstance(result, Transient):
            if p.attempt >= p.max_attempts:
                self._settle(
                    p, CallFailedError(f"gave up after {p.attempt} attempts: {result}", p.attempt)
                )
                return
            p.attempt += 1
            self._queue.append(p)
            self._wake()
            return
        if isinstance(result, GenerateResult):
            result = GenerateResult(
                result.text, result.usage, result.model, result.request_id, p.attempt
            )
        self._settle(p, result)

    def provider_answer(self, p: Pending, line: dict[str, Any]) -> None:
        """Answer ``p`` from a result line."""
        try:
            result: GenerateResult | BaseException = parse_result_line(line, p.request.model)
        except Exception as exc:  # Transient or ContextExceededError, as classified
            result = exc
        self.answer(p, result)

    @staticmethod
    def _settle(p: Pending, result: GenerateResult | BaseException) -> None:
        if p.future.done():
            return
        if isinstance(result, BaseException):
            p.future.set_exception(result)
        else:
            p.future.set_result(result)

    def fail(self, exc: BaseException, items: list[Pending]) -> None:
        """A failure no later batch can fix (no Batches API, a refused key): these calls and
        every call still to come fail with it; the run stops, resumable."""
        if self.broken is None:
            self.broken = exc
        attached = [p for _, waiting in self._attached.values() for p in waiting]
        for p in (*items, *self._queue, *attached):
            self._settle(p, exc)
        self._queue, self._attached = [], {}

    def changed(self, submitted: int = 0, started: int = 0, finished: int = 0) -> None:
        self.submitted += submitted
        self.in_progress += started - finished
        self.done += finished
        if self.progress is not None:
            self.progress(self.submitted, self.in_progress, self.done)

    async def aclose(self) -> None:
        tasks = [t for t in (self._flusher, *self.tasks) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._flusher = None
        if not self.resume:
            return
        try:
            self.store.flush()
            self.ledger.collect()
        except Exception as exc:  # not masking what ended the run
            log.info("batch ledger: could not mark collected batches: %s", exc)


class BatchedBackend(ModelBackend[Any]):
    """A model whose calls go through the collector instead of one by one."""

    name = "batched"

    def __init__(
        self, spec: ModelSpec, collector: BatchCollector, inner: AnyBackend | None
    ) -> None:
        # Not ModelBackend.__init__: the options belong to the inner backend.
        self.spec = spec
        self.options = None if inner is None else inner.options
        self.collector = collector
        self.inner = inner

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        return await self.collector.ask(self.inner, request)

    async def aclose(self) -> None:
        await self.collector.aclose()
        if self.inner is not None:
            await self.inner.aclose()


def uses_batches(plan: Plan) -> bool:
    """Whether any agent's model sends its calls through a Batch API (``batch: true``)."""
    return any(
        a.model.backend == "openai" and bool(a.model.options.get("batch"))
        for s in plan.societies
        for a in s.agents
    )


def batched_factory(
    collector: BatchCollector, create: Callable[[ModelSpec], AnyBackend]
) -> Callable[[ModelSpec], AnyBackend]:
    """The runner's backend factory in batch mode: models with ``batch: true`` go through
    ``collector``, the others (the simulated model, say) answer as usual."""

    def make(spec: ModelSpec) -> AnyBackend:
        backend = create(spec)
        if spec.backend == "openai" and spec.options.get("batch"):
            return collector.backend(spec, backend)
        return backend

    return make


def check_open_batches(plan: Plan, store: RunStore) -> None:
    """Refuse to ask interactively the calls of batches still open (submitted, so paid for):
    only batch mode collects them."""
    if uses_batches(plan):
        return
    ledger = BatchLedger(store.con)
    ledger.collect()
    found = ledger.open_batches()
    if found:
        raise StoreError(
            f"{plan.output}: {len(found)} batches submitted by an earlier --batch run are not "
            "collected (their calls are paid for); re-run with --batch to collect them"
        )
