"""``societies view``: a local web viewer over run stores (read-only, live while runs write)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from societies.cli.main import user_errors
from societies.errors import ConfigError


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")  # fmt: skip
@user_errors
def view(paths: tuple[Path, ...], port: int) -> None:
    """Browse runs in a web browser: PATHS are run directories or folders holding them
    (default: the current folder). Only 127.0.0.1 is served; stores are never written."""
    import asyncio

    from aiohttp import web

    from societies.view.app import find_stores, make_app

    roots = list(paths) or [Path.cwd()]
    if not find_stores(roots):
        raise ConfigError(f"no run store under {', '.join(map(str, roots))}")

    async def serve() -> None:
        runner = web.AppRunner(make_app(roots), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        bound = runner.addresses[0][1]
        click.echo(f"societies view: http://127.0.0.1:{bound}/  (Ctrl-C to stop)", err=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
