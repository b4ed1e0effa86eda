"""``societies run``: run an experiment (or resume it) with a progress bar and a summary."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from societies.analysis.accuracy import accuracy_table
from societies.cli.main import user_errors
from societies.config.load import Overrides, Plan, load_plans
from societies.errors import SocietiesError
from societies.scheduler.runner import RunSummary
from societies.scheduler.session import open_store, run_plan
from societies.store.db import RunStore


class RunFailed(SocietiesError):
    exit_code = 1


@click.command()
@click.argument("experiment", type=click.Path(path_type=Path))
@click.option(
    "--out", type=click.Path(path_type=Path), help="Run directory (default: from the file)."
)
@click.option("--concurrency", type=click.IntRange(min=1), help="Model calls in flight at once.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N cases.")
@click.option("--model", "model", metavar="BACKEND:MODEL", help="Use this model for every agent.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--skip-invalid", is_flag=True, help="Leave unusable data rows out, with a warning.")
@user_errors
def run(
    experiment: Path,
    out: Path | None,
    concurrency: int | None,
    limit: int | None,
    model: str | None,
    quiet: bool,
    skip_invalid: bool,
) -> None:
    """Run EXPERIMENT (a YAML file); re-running resumes, making only calls not yet stored."""
    plans = load_plans(
        experiment,
        Overrides(
            out=out, concurrency=concurrency, limit=limit, model=model, skip_invalid=skip_invalid
        ),
    )
    run_plans(plans, quiet)


def run_plans(plans: list[Plan], quiet: bool) -> None:
    """Run each plan in turn, printing its summary; stop at the first that does not finish."""
    err = Console(stderr=True)
    for plan in plans:
        store = open_store(plan)
        try:
            summary = _run_with_progress(plan, store, err, quiet)
            _print_summary(plan, store, summary)
        finally:
            store.close()
        if summary.stopped:
            raise RunFailed(
                f"run stopped: {summary.stopped}; stored calls are kept, re-run to resume"
            )
        if summary.errors:
            samples = "; ".join(summary.error_samples)
            raise RunFailed(
                f"{summary.errors} calls failed after retries ({samples}); re-run to retry them"
            )


def _run_with_progress(plan: Plan, store: RunStore, err: Console, quiet: bool) -> RunSummary:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("calls · {task.fields[tokens]:,} tokens"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
        transient=False,
    )
    tokens = 0

    with progress:
        bar = progress.add_task(plan.experiment.name, total=None, tokens=0)

        def on_call(made: bool, used: int) -> None:
            nonlocal tokens
            tokens += used
            progress.update(bar, advance=1, tokens=tokens)

        def hook(runner: object) -> None:
            from societies.scheduler.runner import Runner

            assert isinstance(runner, Runner)
            progress.update(bar, total=runner.summary.planned)

        return asyncio.run(run_plan(plan, store, progress=on_call, runner_hook=hook))


def _print_summary(plan: Plan, store: RunStore, summary: RunSummary) -> None:
    out = Console()
    cells = {(c.society, c.strategy, c.round): c for c in accuracy_table(store, plan.task)}
    table = Table(title=f"{plan.experiment.name}: accuracy (majority vote) by round")
    table.add_column("society")
    table.add_column("strategy")
    for r in range(plan.rounds + 1):
        table.add_column(f"r{r}", justify="right")
    for society in plan.societies:
        for strategy in plan.strategies[society.name]:
            row = [society.name, strategy.name]
            for r in range(plan.rounds + 1):
                cell = cells.get((society.name, strategy.name, r))
                row.append("-" if cell is None else f"{cell.accuracy:.3f}")
            table.add_row(*row)
    out.print(table)
    out.print(
        f"{summary.made} calls made, {summary.reused} reused from the store, "
        f"{summary.tokens:,} tokens, {summary.elapsed:.1f}s; "
        f"n = {len(plan.cases)} cases x {plan.experiment.repeats} repeats; "
        f"run directory: {plan.output}"
    )
