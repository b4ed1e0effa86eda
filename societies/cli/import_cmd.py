"""``societies import``: other frameworks' results as run stores, to analyse them here."""

from __future__ import annotations

from pathlib import Path

import click

from societies.cli.main import user_errors


@click.group("import")
def import_group() -> None:
    """Import results produced elsewhere into a run directory."""


@import_group.command("machinesom")
@click.argument("folders", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--task", "task_name", required=True, help="Task of the results (mmlu, ...).")
@click.option(
    "--data", required=True, type=click.Path(path_type=Path),
    help="The task's data file; case i of the results is its row i.",
)  # fmt: skip
@click.option("--out", required=True, type=click.Path(path_type=Path), help="New run directory.")
@click.option("--model", default="unknown", show_default=True, help="Model the results came from.")
@click.option(
    "--extraction", type=click.Choice(["paper", "robust"]), default="paper", show_default=True,
    help="How replies are parsed: the reference's rule or ours.",
)  # fmt: skip
@user_errors
def machinesom(
    folders: tuple[Path, ...], task_name: str, data: Path, out: Path, model: str, extraction: str
) -> None:
    """Import the reference implementation's result FOLDERS (one per repeat)."""
    from societies.importers.machinesom import import_machinesom

    calls, files = import_machinesom(
        list(folders), task_name=task_name, data=data, out=out, model=model,
        extraction="paper" if extraction == "paper" else "robust",
    )  # fmt: skip
    click.echo(f"imported {files} result files ({calls} calls) into {out}")
