"""The ``societies`` command. Each subcommand lives in its own module and registers here."""

from __future__ import annotations

import functools
import logging
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import click

from societies import __version__
from societies.errors import SocietiesError

F = TypeVar("F", bound=Callable[..., Any])


#: Longest error line echoed: messages quote user values (a trait name, a data field), and a
#: 5 MB value must not become a 5 MB line.
MAX_MESSAGE = 400


def one_line(message: str) -> str:
    """``message`` cut to MAX_MESSAGE characters, saying how much was cut."""
    if len(message) <= MAX_MESSAGE:
        return message
    return f"{message[:MAX_MESSAGE]}... ({len(message) - MAX_MESSAGE:,} more characters)"


def user_errors(fn: F) -> F:
    """Turn the errors a user can fix into one line on stderr and an exit code, never a
    traceback; an interrupt (Ctrl-C, or SIGTERM as sent by timeout, docker and systemd)
    leaves stored work in place and says how to resume."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        terminated = False

        def on_sigterm(signum: int, frame: object) -> None:
            # Handled as Ctrl-C is: asyncio.run cancels the run (which flushes the store and
            # marks the invocation interrupted), then KeyboardInterrupt reaches us below.
            nonlocal terminated
            terminated = True
            signal.raise_signal(signal.SIGINT)

        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, on_sigterm) if main else None
        try:
            return fn(*args, **kwargs)
        except SocietiesError as exc:
            click.echo(one_line(str(exc)), err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            what = "terminated" if terminated else "interrupted"
            click.echo(f"{what}: stored calls are kept; run again to resume", err=True)
            sys.exit(143 if terminated else 130)
        except sqlite3.Error as exc:
            click.echo(one_line(f"run store: {exc} (damaged, or not a societies store)"), err=True)
            sys.exit(2)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(one_line(f"{where}{exc.strerror or exc}"), err=True)
            sys.exit(2)
        except (MemoryError, RecursionError) as exc:
            kind = "too large" if isinstance(exc, MemoryError) else "nested too deeply"
            click.echo(f"input {kind} to process ({type(exc).__name__})", err=True)
            sys.exit(2)
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)

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
        batch_cmd,
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
    cli.add_command(batch_cmd.batch)


_register()


def main() -> None:
    cli(prog_name="societies")
