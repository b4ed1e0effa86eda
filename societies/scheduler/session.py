"""One ``societies run``: prepare the run directory's store, run the plan, close cleanly.

A run directory belongs to one experiment. Re-running the same experiment resumes it (only
calls not yet stored are made); settings that only add work (more cases, more repeats) extend
it; any change that would alter the requests is refused rather than mixed with old results.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from societies import __version__
from societies.backends.base import create_backend
from societies.errors import StoreError
from societies.plan.plan import Plan
from societies.scheduler.runner import BackendFactory, ProgressFn, Runner, RunSummary
from societies.scheduler.transport import changed_transport, split_transport
from societies.store.db import RunStore, now

log = logging.getLogger(__name__)

#: Settings that can change between invocations of one run without changing any request.
_EXTENDABLE = ("description", "concurrency", "output", "repeats", "prices")


def identity(plan: Plan) -> dict[str, Any]:
    data = plan.experiment.model_dump(mode="json")
    if data.get("questionnaire") is None:
        data.pop("questionnaire", None)  # the identity of a run without one, as before it existed
    for name in _EXTENDABLE:
        data.pop(name, None)
    data["task"].pop("cases", None)
    # Extraction does not change any request; `societies rescore` may change it later, so it
    # is checked against the run's current mode instead (see _check_or_create).
    data["task"].pop("extraction", None)
    data.pop("tasks", None)
    data["task"]["data"] = plan.data.name  # which candidate was used
    split_transport(data)
    return data


def open_store(plan: Plan) -> RunStore:
    """Lock the run directory, open (or create) its store and check it holds this experiment.

    The lock (store/lock.py) is taken before the store is touched, so a second invocation
    into the same directory is refused before it can create, migrate or pay for anything;
    ``store.close()`` releases it.
    """
    store = RunStore.open_locked(plan.output)
    try:
        _check_or_create(plan, store)
    except BaseException:
        store.close()  # releases the lock too
        raise
    return store


def _check_or_create(plan: Plan, store: RunStore) -> None:
    ident = identity(plan)
    row = store.run_row()
    if row is None:
        store.create_run(
            {
                "name": plan.experiment.name,
                "created_at": now(),
                "package_version": __version__,
                "config_json": plan.experiment.model_dump_json(),
                "identity_json": json.dumps(ident, sort_keys=True),
                "task": plan.task.name,
                "extraction": plan.task.extraction,
                "prompts": plan.experiment.prompts,
                "source": str(plan.source),
            }
        )
    else:
        if row["extraction"] != plan.task.extraction:
            raise StoreError(
                f"{plan.output}: the stored answers were extracted with '{row['extraction']}' "
                f"rules and this experiment asks for '{plan.task.extraction}': set "
                f"task.extraction: {row['extraction']}, or first run `societies rescore "
                f"{plan.output} --extraction {plan.task.extraction}`"
            )
        old = json.loads(row["identity_json"])
        split_transport(old)  # stores made before transport options were left out
        if old != ident:
            changed = sorted(k for k in set(old) | set(ident) if old.get(k) != ident.get(k))
            raise StoreError(
                f"{plan.output}: holds a run of a different experiment (changed: "
                f"{', '.join(changed)}); run into a new directory with --out, or remove it"
            )
        transport = changed_transport(row["config_json"], plan.experiment.model_dump(mode="json"))
        if transport:
            log.warning("resuming with changed transport settings: %s", ", ".join(transport))
    stored = store.stored_cases()
    rows = []
    for case in plan.cases:
        fields = json.dumps(case.fields, sort_keys=True, ensure_ascii=False)
        if case.id in stored and stored[case.id] != fields:
            raise StoreError(
                f"{plan.output}: case {case.id} differs from the one stored in this run "
                "(the data file changed); run into a new directory with --out"
            )
        rows.append((case.id, case.index, fields))
    store.put_cases(rows)
    store.put_agents(
        (s.name, a.index, a.name, a.trait.name, a.role, a.model.backend, a.model.name)
        for s in plan.societies
        for a in (*s.agents, *(() if s.judge is None else (s.judge.agent,)))
    )
    store.put_strategy_nodes(
        (repeat, case.id, society.name, strategy.name, r, code)
        for repeat in range(plan.experiment.repeats)
        for case in plan.cases
        for society in plan.societies
        for strategy in plan.strategies_for(society, case, repeat)
        for r, code in enumerate(strategy.node_codes)
    )


async def run_plan(
    plan: Plan,
    store: RunStore,
    *,
    backend_factory: BackendFactory = create_backend,
    progress: ProgressFn | None = None,
    argv: Sequence[str] | None = None,
    concurrency: int | None = None,
) -> RunSummary:
    invocation = store.begin_invocation(__version__, list(argv if argv is not None else sys.argv))
    runner = Runner(
        plan,
        store,
        backend_factory=backend_factory,
        progress=progress,
        invocation=invocation,
        concurrency=concurrency,
    )
    status = "failed"
    try:
        with _quiet_gc():
            summary = await runner.run()
        status = "stopped" if summary.stopped else ("incomplete" if summary.errors else "done")
        return summary
    except (asyncio.CancelledError, KeyboardInterrupt):
        status = "interrupted"  # Ctrl-C or SIGTERM: resumable like any stop
        raise
    finally:
        store.end_invocation(invocation, runner.summary.made, runner.summary.reused, status)


@contextmanager
def _quiet_gc() -> Iterator[None]:
    """Keep the cyclic garbage collector from stalling the event loop.

    A full collection walks every live object (modules, the plan, the conversations of every
    tree in flight) and, at tens of thousands of calls, pauses the loop for 100+ ms at a time:
    every call in flight waits, and throughput against a real server drops by ~10%. Objects
    alive when the run starts are frozen out of the collector's view, and young collections
    run less often; both are restored afterwards.
    """
    threshold = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(max(threshold[0], 20_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


async def run_experiment(plan: Plan, **kwargs: Any) -> RunSummary:
    """One whole run from Python: open (or resume) the plan's store, run it, close it."""
    store = open_store(plan)
    try:
        return await run_plan(plan, store, **kwargs)
    finally:
        store.close()
