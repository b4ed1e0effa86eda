"""``societies batch``: a run's next level as an OpenAI batch file, and its results back.

For offline engines (``vllm run-batch`` on a GPU cluster): ``export`` writes the requests of
every call the run can ask now, ``import`` stores the answers, and the run resumes from them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path

import click

from societies.cli.main import user_errors
from societies.config.models import Experiment
from societies.errors import StoreError
from societies.plan.plan import Overrides, Plan
from societies.plan.resolve import load_plan, resolve_stored
from societies.scheduler.batch_files import export_level, import_results
from societies.scheduler.session import open_store
from societies.store.db import RunStore


def stored_plan(run_dir: Path) -> Plan:
    """The plan of a run directory, from the experiment it stored (its cases as run)."""
    store = RunStore.for_run_dir(run_dir, readonly=True)
    try:
        row = store.run_row()
        cases = set(store.stored_cases())
    finally:
        store.close()
    if row is None:
        raise StoreError(f"{run_dir}: no run is stored here yet")
    experiment = Experiment.model_validate_json(row["config_json"])
    plan = resolve_stored(experiment, Path(row["source"] or "."), run_dir)
    return dataclasses.replace(plan, cases=[c for c in plan.cases if c.id in cases])


@click.group("batch")
def batch() -> None:
    """A run's levels through an offline engine (OpenAI batch JSONL)."""


@batch.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--level", type=click.Choice(["next"]), default="next", show_default=True,
              help="Which level: the calls the run can ask now.")  # fmt: skip
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write here instead of standard output.")  # fmt: skip
@click.option("--experiment", type=click.Path(path_type=Path, dir_okay=False),
              help="Start RUN_DIR as a run of this experiment file (its first level).")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), help="With --experiment: the first N cases.")
@user_errors
def export(
    run_dir: Path, level: str, out: Path | None, experiment: Path | None, limit: int | None
) -> None:
    """Write the requests of RUN_DIR's next level as an OpenAI batch input file."""
    if experiment is not None:
        plan = load_plan(experiment, Overrides(out=run_dir, limit=limit))
    else:
        plan = stored_plan(run_dir)
    store = open_store(plan)
    try:
        lines = asyncio.run(export_level(plan, store))
    finally:
        store.close()
    data = b"".join(lines)
    if out is not None:
        out.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    if not lines:
        click.echo(f"{run_dir}: nothing to export, every call is stored", err=True)
        return
    click.echo(
        f"{len(lines):,} requests of the next level; answer them (e.g. `vllm run-batch -i "
        f"requests.jsonl -o results.jsonl --model MODEL`), then `societies batch import "
        f"{run_dir} results.jsonl`",
        err=True,
    )


@batch.command("import")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.argument("results", type=click.Path(path_type=Path, dir_okay=False))
@user_errors
def import_(run_dir: Path, results: Path) -> None:
    """Store the answers of RESULTS (OpenAI batch output JSONL) in RUN_DIR."""
    plan = stored_plan(run_dir)
    store = open_store(plan)
    try:
        done = asyncio.run(import_results(plan, store, results))
    finally:
        store.close()
    failed = f", {done.failed} error lines left for the next export" if done.failed else ""
    click.echo(
        f"imported {done.summary.made:,} calls ({done.stored_before:,} already stored{failed}); "
        f"export the next level or run the experiment to go on"
    )
