"""``societies reproduce paper``: the study's four experiment families and one report."""

from __future__ import annotations

from pathlib import Path

import click

from societies.cli.main import user_errors
from societies.cli.run_cmd import run_plans
from societies.plan.plan import Overrides
from societies.presets import paper_plans


@click.command()
@click.argument("study", type=click.Choice(["paper"]))
@click.option("--model", metavar="BACKEND:MODEL", help="Run every agent on this model.")
@click.option("--base-url", help="Server of an OpenAI-compatible backend (sets model.options).")
@click.option("--dry-run", is_flag=True, help="Print calls, tokens and cost; send nothing.")
@click.option(
    "--budget",
    type=click.FloatRange(min=0),
    metavar="USD",
    help="Start no call that could take spending past USD (across all presets).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N cases of each task.")
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("runs/paper"), show_default=True,
    help="Folder for the runs (one per preset and task) and report.html.",
)  # fmt: skip
@click.option(
    "--data", "data_dir", type=click.Path(path_type=Path),
    help="Folder with the study's questions as mmlu.jsonl, math.jsonl, chess.jsonl "
    "(default: ../shared/benchmarks/machinesom when present, else the project's own data).",
)  # fmt: skip
@click.option("--only", multiple=True, help="Run only these presets (repeatable).")
@click.option("--concurrency", type=click.IntRange(min=1), help="Model calls in flight at once.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--accept-size", is_flag=True,
              help="Run even when the estimated size exceeds this machine.")  # fmt: skip
@user_errors
def reproduce(
    study: str,
    model: str | None,
    base_url: str | None,
    dry_run: bool,
    budget: float | None,
    limit: int | None,
    out: Path,
    data_dir: Path | None,
    only: tuple[str, ...],
    concurrency: int | None,
    quiet: bool,
    accept_size: bool,
) -> None:
    """Reproduce a study: run its presets (resuming what is stored) and write one report."""
    from societies.analysis.load import load_run
    from societies.report.render import write_report

    overrides = Overrides(
        out=out,
        limit=limit,
        model=model,
        model_options={"base_url": base_url} if base_url else {},
        data_dir=data_dir,
        concurrency=concurrency,
    )
    plans = paper_plans(overrides, only)
    run_plans(plans, quiet=quiet, dry_run=dry_run, budget=budget, accept_size=accept_size)
    if dry_run:
        return
    report = out / "report.html"
    write_report(load_run([p.output for p in plans]), report)
    click.echo(f"wrote {report} ({report.stat().st_size / 1e6:.1f} MB)")
