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

from societies.backends.base import get_backend_class
from societies.cli.main import user_errors
from societies.config.models import Price
from societies.config.validate import read_experiment
from societies.cost import (
    CostMeter,
    DryRun,
    check_prices,
    estimate_run,
    metered_factory,
    price_table,
)
from societies.errors import ConfigError, SocietiesError
from societies.plan.plan import Overrides, Plan
from societies.plan.resolve import load_plans
from societies.scheduler.batch import check_open_batches, uses_batches
from societies.scheduler.batch_live import run_batched
from societies.scheduler.estimate import check_size, human_bytes, size_line
from societies.scheduler.runner import RunSummary
from societies.scheduler.session import open_store, run_plan
from societies.scheduler.tree import planned_calls
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
@click.option("--base-url", help="Server of an OpenAI-compatible backend (sets model.options).")
@click.option("--dry-run", is_flag=True, help="Print calls, tokens and cost; send nothing.")
@click.option("--budget", type=click.FloatRange(min=0), metavar="USD",
              help="Start no call that could take spending past USD.")  # fmt: skip
@click.option("--reply-tokens", type=click.IntRange(min=1), default=250, show_default=True,
              help="Dry run: assumed reply length when max_tokens is not set.")  # fmt: skip
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--skip-invalid", is_flag=True, help="Leave unusable data rows out, with a warning.")
@click.option("--accept-size", is_flag=True,
              help="Run even when the estimated size exceeds this machine.")  # fmt: skip
@click.option("--batch", is_flag=True,
              help="Send the calls through the provider's Batch API, level by level "
              "(openai backend; sets batch: true in model.options).")  # fmt: skip
@user_errors
def run(
    experiment: Path,
    out: Path | None,
    concurrency: int | None,
    limit: int | None,
    model: str | None,
    base_url: str | None,
    dry_run: bool,
    budget: float | None,
    reply_tokens: int,
    quiet: bool,
    skip_invalid: bool,
    accept_size: bool,
    batch: bool,
) -> None:
    """Run EXPERIMENT (a YAML file); re-running resumes, making only calls not yet stored."""
    options: dict[str, object] = {"base_url": base_url} if base_url else {}
    if batch:
        backend = model.partition(":")[0] if model else read_experiment(experiment)[0].model.backend
        if backend != "openai":
            raise ConfigError(
                f"--batch: batch mode needs the openai backend (the model is {backend}); "
                "add --model openai:MODEL"
            )
        options["batch"] = True
    plans = load_plans(
        experiment,
        Overrides(
            out=out,
            concurrency=concurrency,
            limit=limit,
            model=model,
            model_options=options,
            skip_invalid=skip_invalid,
        ),
    )
    run_plans(
        plans,
        quiet=quiet,
        dry_run=dry_run,
        budget=budget,
        reply_tokens=reply_tokens,
        accept_size=accept_size,
    )


def run_plans(
    plans: list[Plan],
    *,
    quiet: bool = False,
    dry_run: bool = False,
    budget: float | None = None,
    reply_tokens: int = 250,
    accept_size: bool = False,
) -> None:
    """Run each plan in turn (one budget across them all), printing its summary; stop at the
    first that does not finish. A dry run only prints what each would cost.

    Every plan's size is computed first (scheduler/estimate.py) and printed; a run too large
    for the machine is refused before anything is created, unless ``accept_size``."""
    tables = [price_table(plan.experiment.prices) for plan in plans]
    estimates = _estimates(plans, tables, reply_tokens, quiet)
    if dry_run:
        for plan, dry in zip(plans, estimates, strict=True):
            _print_dry_run(plan, dry)
        if len(plans) > 1:
            _print_total(estimates)
        return
    for plan in plans:  # an API key missing is found before any run directory is made
        for society in plan.societies:
            for agent in society.callers:
                get_backend_class(agent.model.backend).preflight(agent.model)
    err = Console(stderr=True)
    for plan, dry in zip(plans, estimates, strict=True):
        if not quiet:
            err.print(size_line(plan.experiment.name, dry.size), highlight=False)
        if accept_size:
            continue
        check_size(plan, dry.size)
    if budget is not None:
        for plan, table in zip(plans, tables, strict=True):
            check_prices(plan, table)
    meter = CostMeter(tables[0], budget)
    for plan, table in zip(plans, tables, strict=True):
        meter.table = table
        store = open_store(plan)
        try:
            check_open_batches(plan, store)
            summary = _run_with_progress(plan, store, err, quiet, meter)
            _print_summary(plan, store, summary, meter)
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


def _run_with_progress(
    plan: Plan, store: RunStore, err: Console, quiet: bool, meter: CostMeter
) -> RunSummary:
    batch = uses_batches(plan)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("calls · {task.fields[tokens]:,} tokens{task.fields[batches]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
        transient=False,
    )
    tokens = 0

    with progress:
        bar = progress.add_task(
            plan.experiment.name, total=planned_calls(plan), tokens=0, batches=""
        )

        def on_call(made: bool, used: int) -> None:
            nonlocal tokens
            tokens += used
            progress.update(bar, advance=1, tokens=tokens)

        def on_batches(submitted: int, running: int, done: int) -> None:
            text = f" · batches: {submitted} submitted, {running} in progress, {done} done"
            progress.update(bar, batches=text)

        meter.batch = batch
        if batch:
            return asyncio.run(
                run_batched(
                    plan,
                    store,
                    wrap=lambda factory: metered_factory(meter, factory),
                    progress=on_call,
                    batch_progress=on_batches,
                )
            )
        return asyncio.run(
            run_plan(plan, store, backend_factory=metered_factory(meter), progress=on_call)
        )


def _print_summary(plan: Plan, store: RunStore, summary: RunSummary, meter: CostMeter) -> None:
    # imported here: pandas and the analysis stack would slow every CLI start otherwise
    from societies.analysis.load import load_run
    from societies.analysis.reversal import reversal_lines
    from societies.analysis.tables import accuracy_rows
    from societies.cli.collab_tables import print_collab_tables, print_dynamics_table
    from societies.cli.pause_table import print_pause_table

    out = Console()
    analysis = load_run(store.path)
    cells = [(s.name, [t.name for t in plan.strategies[s.name]]) for s in plan.societies]
    rows, incomplete = accuracy_rows(analysis.votes, cells, plan.rounds)
    table = Table(title=f"{plan.experiment.name}: accuracy (majority vote) by round")
    table.add_column("society")
    table.add_column("strategy")
    for r in range(plan.rounds + 1):
        table.add_column(f"r{r}", justify="right")
    for row in rows:
        table.add_row(*row)
    out.print(table)
    if incomplete:
        out.print(
            "incomplete: (n=k/m) scores only the k of m case groups whose answer calls are all "
            "stored; re-run to complete them"
        )
    print_collab_tables(out, plan, analysis)
    print_dynamics_table(out, analysis)
    if plan.questionnaire:
        from societies.cli.questionnaire_table import print_questionnaire

        print_questionnaire(out, analysis)
    saved = f", {summary.saved} not needed (stopping rule)" if summary.saved else ""
    out.print(
        f"{summary.made} calls made, {summary.reused} reused from the store{saved}, "
        f"{summary.tokens:,} tokens, {summary.elapsed:.1f}s; "
        f"n = {len(plan.cases)} cases x {plan.experiment.repeats} repeats; "
        f"run directory: {plan.output}"
    )
    if meter.calls:
        unpriced = (
            f" ({sum(meter.unpriced.values())} calls of unpriced models)" if meter.unpriced else ""
        )
        out.print(f"cost of this invocation: ${meter.spent:.4f}{unpriced}")
    for line in reversal_lines(analysis.reversal_gap):
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    if any(spec.pause is not None for spec in plan.experiment.societies):
        print_pause_table(out, analysis.pause)
    if len(analysis.triples):
        from societies.analysis.conflict import conflict_lines

        for line in conflict_lines(analysis.conflict_outcome):
            out.print(line, markup=False, highlight=False, soft_wrap=True)


def _estimates(
    plans: list[Plan], tables: list[dict[str, Price]], reply_tokens: int, quiet: bool
) -> list[DryRun]:
    """Each plan's computed size and cost, with a progress bar over plans when there are
    several (the whole study takes a few seconds)."""
    progress = Progress(
        TextColumn("estimating"), BarColumn(), MofNCompleteColumn(),
        console=Console(stderr=True), disable=quiet or len(plans) < 2, transient=True,
    )  # fmt: skip
    out = []
    with progress:
        bar = progress.add_task("estimate", total=len(plans))
        for plan, table in zip(plans, tables, strict=True):
            out.append(estimate_run(plan, table, reply_tokens))
            progress.update(bar, advance=1)
    return out


def _print_total(estimates: list[DryRun]) -> None:
    costs = [d.cost for d in estimates]
    cost = "unknown" if None in costs else f"${sum(c or 0.0 for c in costs):.2f}"
    Console().print(
        f"total: {sum(d.calls for d in estimates):,} calls to make "
        f"({sum(d.reused for d in estimates):,} already stored); estimated tokens: "
        f"{sum(d.prompt_tokens for d in estimates):,} prompt + "
        f"{sum(d.completion_tokens for d in estimates):,} completion; estimated cost: {cost}; "
        f"store ~{human_bytes(sum(d.size.store_bytes for d in estimates))}",
        highlight=False,
    )


def _print_dry_run(plan: Plan, dry: DryRun) -> None:
    out = Console()
    table = Table(title=f"{plan.experiment.name}: dry run (nothing sent)")
    for name in ("model", "calls", "prompt tokens", "completion tokens"):
        table.add_column(name, justify="left" if name == "model" else "right")
    for model, (n, p, c) in sorted(dry.by_model.items()):
        table.add_row(model, f"{n:,}", f"{p:,}", f"{c:,}")
    out.print(table)
    cost = "unknown" if dry.cost is None else f"${dry.cost:.2f}"
    if uses_batches(plan):
        batch_cost = "unknown" if dry.batch_cost is None else f"${dry.batch_cost:.2f}"
        cost = f"{batch_cost} at batch prices ({cost} interactive), in {dry.levels} levels"
    missing = f" (no price for {', '.join(dry.unpriced)})" if dry.unpriced else ""
    for name, how in plan.baselines.items():
        out.print(f"baseline {name}: {how}", highlight=False)
    at_most = "at most " if any(s.stop is not None for s in plan.societies) else ""
    out.print(
        f"calls: {at_most}{dry.calls:,} to make ({dry.paid_calls:,} to paid models), "
        f"{dry.reused:,} already stored; estimated tokens: {dry.prompt_tokens:,} prompt + "
        f"{dry.completion_tokens:,} completion (replies assumed {dry.reply_tokens} tokens "
        f"unless max_tokens is set); estimated cost: {cost}{missing}; "
        f"store ~{human_bytes(dry.size.store_bytes)}, memory ~{human_bytes(dry.size.memory_bytes)}"
        + (f" ({dry.size.note})" if dry.size.note else "")
    )
