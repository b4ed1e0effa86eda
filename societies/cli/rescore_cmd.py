"""``societies rescore``: re-read a stored run's replies under another extraction mode."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from societies.analysis.rescore import rescore as rescore_store
from societies.analysis.rescore import unparsed_rates
from societies.cli.main import user_errors
from societies.errors import StoreError
from societies.store.db import STORE_FILE, RunStore


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--extraction",
    type=click.Choice(["robust", "paper"]),
    required=True,
    help="Answer extraction rules to apply.",
)
@user_errors
def rescore(run_dir: Path, extraction: str) -> None:
    """Re-parse and re-score every stored reply of RUN_DIR; no model is called."""
    if not (run_dir / STORE_FILE).is_file():
        raise StoreError(f"{run_dir}: no run store ({STORE_FILE}) here")
    store = RunStore.open_locked(run_dir)  # not while a run writes to it
    try:
        s = rescore_store(store, extraction)  # type: ignore[arg-type]
        cells = unparsed_rates(store)
    except KeyError as exc:
        raise StoreError(f"{run_dir}: {exc.args[0]}") from None
    finally:
        store.close()
    table = Table(title="unparsed replies by society, agent and round")
    for column in ("society", "agent", "round", "unparsed", "replies", "rate"):
        table.add_column(column, justify="left" if column == "society" else "right")
    for c in cells:
        rate = f"{c.unparsed / c.replies:.3f}" if c.replies else "-"
        table.add_row(c.society, str(c.agent), str(c.round), str(c.unparsed), str(c.replies), rate)
    Console().print(table)
    click.echo(
        f"{run_dir}: {s.replies} replies re-read with {extraction} extraction; "
        f"{s.changed_answers} answers changed; unparsed {s.unparsed_before} -> "
        f"{s.unparsed_after}; correct {s.correct_before} -> {s.correct_after}"
    )
