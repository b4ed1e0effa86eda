"""The ``societies`` command. Each subcommand lives in its own module and registers here."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from societies import __version__
from societies.errors import SocietiesError

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn the errors a user can fix into one line on stderr and an exit code, never a
    traceback; an interrupt leaves stored work in place and says how to resume."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SocietiesError as exc:
            click.echo(str(exc), err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: stored calls are kept; run again to resume", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="societies")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Simulate societies of LLM agents: traits, thinking patterns, debate and reflection."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _register() -> None:
    from societies.cli import (
        data_cmd,
        import_cmd,
        report_cmd,
        reproduce_cmd,
        rescore_cmd,
        run_cmd,
        schema_cmd,
        serve_sim_cmd,
        view_cmd,
    )

    cli.add_command(run_cmd.run)
    cli.add_command(schema_cmd.schema)
    cli.add_command(data_cmd.data)
    cli.add_command(rescore_cmd.rescore)
    cli.add_command(report_cmd.report)
    cli.add_command(import_cmd.import_group)
    cli.add_command(reproduce_cmd.reproduce)
    cli.add_command(serve_sim_cmd.serve_sim)
    cli.add_command(view_cmd.view)


_register()


def main() -> None:
    cli(prog_name="societies")
