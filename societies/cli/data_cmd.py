"""``societies data``: make, look at, and check task data files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import click
import yaml

from societies.cli.main import user_errors
from societies.errors import DataError, SocietiesError
from societies.tasks.base import Task, get_task_class
from societies.tasks.generate import GENERATORS
from societies.tasks.rows import LoadReport, RowTask


class InvalidRows(SocietiesError):
    """``validate`` found unusable rows (each already listed on stderr)."""


def _options(pairs: tuple[str, ...], skip_invalid: bool) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DataError(f"--option {pair!r}: expected KEY=VALUE")
        options[key] = _option_value(value)
    if skip_invalid:
        options["skip_invalid"] = True
    return options


def _option_value(value: str) -> Any:
    """A YAML scalar or list (``3``, ``true``, ``[a, b]``), else the text as given: a template
    such as ``{{ prompt }}`` is not YAML and stays a string."""
    if not value:
        return ""
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return value if isinstance(parsed, dict) else parsed


def _task(name: str, extraction: str, options: dict[str, Any]) -> Task:
    try:
        cls = get_task_class(name)
    except KeyError as exc:
        raise DataError(f"--task: {exc.args[0]}") from None
    return cls(extraction, options)  # type: ignore[arg-type]


def _scan(task: Task, file: Path) -> LoadReport:
    if isinstance(task, RowTask):
        return task.scan(file)
    cases = task.load(file)  # a user's task without rows: strict loading only
    return LoadReport(cases, [], len(cases))


task_option = click.option("--task", "task_name", required=True, help="Task name or module:Class.")
option_option = click.option(
    "-o", "--option", "option_pairs", multiple=True, metavar="KEY=VALUE", help="A task option."
)


@click.group()
def data() -> None:
    """Generate, inspect and validate task data files."""


@data.command()
@click.argument("kind", type=click.Choice(sorted(GENERATORS)))
@click.option("--n", "count", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@user_errors
def generate(kind: str, count: int, seed: int) -> None:
    """Write KIND questions as JSONL to stdout (chess: random legal games; arithmetic:
    a+b*c+d-e*f expressions for the gsm8k task; reversal: fictitious facts as forward and
    backward probes; facts: fictitious facts with an edit each; conflict: ConflictEdit and
    RoundEdit records of fictitious facts with reverse, composite and round-trip edits, for
    the triples task). Seeded and deterministic."""
    make, _task_name = GENERATORS[kind]
    for row in make(count, seed):
        click.echo(json.dumps(row, ensure_ascii=False))


@data.command()
@click.argument("file", type=click.Path(path_type=Path))
@task_option
@option_option
@click.option("--skip-invalid", is_flag=True, help="Leave bad rows out, with a warning.")
@click.option("--sample", type=click.IntRange(min=0), default=1, show_default=True)
@user_errors
def inspect(
    file: Path, task_name: str, option_pairs: tuple[str, ...], skip_invalid: bool, sample: int
) -> None:
    """Number of cases, their fields, and a sample, as the task reads FILE."""
    task = _task(task_name, "robust", _options(option_pairs, skip_invalid))
    cases = task.load(file)
    fields: Counter[str] = Counter()
    for case in cases:
        fields.update(case.fields.keys())
    click.echo(f"{file}: {len(cases)} cases for task {task.name}")
    click.echo("fields: " + ", ".join(f"{k} ({n})" for k, n in sorted(fields.items())))
    for case in cases[:sample]:
        click.echo(f"sample {case.id}:")
        click.echo(json.dumps(dict(case.fields), ensure_ascii=False, indent=2, default=str))
        click.echo(f"target: {_show(case.target)}")


def _show(target: Any) -> str:
    if isinstance(target, frozenset | set):
        return ", ".join(sorted(str(t) for t in target))
    return str(target)


@data.command()
@click.argument("file", type=click.Path(path_type=Path))
@task_option
@option_option
@user_errors
def validate(file: Path, task_name: str, option_pairs: tuple[str, ...]) -> None:
    """List every unusable row of FILE (missing answer, illegal chess moves, duplicate ids...)
    with its row number; exit code 2 when there is any."""
    task = _task(task_name, "robust", _options(option_pairs, False))
    report = _scan(task, file)
    for error in report.errors:
        click.echo(error, err=True)
    notes = [n for case in report.cases for n in task.notes(case)]
    for note in notes:
        click.echo(f"note: {note}", err=True)
    click.echo(
        f"{file}: {report.rows} rows, {len(report.cases)} usable, {len(report.errors)} unusable"
        + (f", {len(notes)} notes" if notes else "")
    )
    if report.errors:
        raise InvalidRows(f"{file}: {len(report.errors)} unusable rows")
