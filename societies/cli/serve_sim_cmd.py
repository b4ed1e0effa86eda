"""``societies serve-sim``: the simulated model as an OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from societies.cli.main import user_errors


@click.command("serve-sim")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="0 picks a free port (the URL is printed).")  # fmt: skip
@click.option("--experiment", "experiments", multiple=True,
              type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Answer with this experiment's ground truth (repeatable).")  # fmt: skip
@click.option(
    "--paper",
    is_flag=True,
    help="Answer with the ground truth of the study's presets (reproduce paper).",
)
@click.option("--latency-ms", type=float, default=0.0, show_default=True)
@click.option("--latency-distribution", default="fixed", show_default=True,
              type=click.Choice(["fixed", "uniform", "exponential", "lognormal"]))  # fmt: skip
@click.option("--latency-spread", type=float, default=0.5, show_default=True,
              help="uniform: +- this share of the mean; lognormal: sigma.")  # fmt: skip
@click.option("--share-429", type=float, default=0.0, help="Share of requests answered 429.")
@click.option("--retry-after", type=float, default=1.0, show_default=True,
              help="Seconds in Retry-After with an injected 429.")  # fmt: skip
@click.option("--share-500", type=float, default=0.0, help="Share of requests answered 500.")
@click.option("--share-hang", type=float, default=0.0, help="Share of requests never answered.")
@click.option("--share-malformed", type=float, default=0.0, help="Share answered broken JSON.")
@click.option("--share-empty", type=float, default=0.0, help="Share answered with no choices.")
@click.option("--context-limit", type=int, help="Prompt tokens above which a context error.")
@click.option("--rpm", type=int, help="Requests per minute; more are answered 429.")
@click.option("--rpm-window", type=float, default=60.0, show_default=True,
              help="Seconds of the sliding window the RPM limit is counted over.")  # fmt: skip
@click.option("--prefix-cache-tokens", type=int,
              help="Model a KV prefix cache of this many tokens (LRU) on this server.")  # fmt: skip
@click.option("--prefill-ms-per-1k", type=float, default=0.0, show_default=True,
              help="Added latency per 1,000 prompt tokens not served from cache.")  # fmt: skip
@click.option("--slots", type=int,
              help="Requests worked on at once (a GPU's batch); more wait in a queue.")  # fmt: skip
@click.option("--batch-api/--no-batch-api", default=True, show_default=True,
              help="Serve the Files and Batches APIs (off: they answer 404).")  # fmt: skip
@click.option("--batch-delay", type=float, default=0.0, show_default=True,
              help="Seconds a batch takes from creation to completion.")  # fmt: skip
@click.option("--batch-share-failed", type=float, default=0.0,
              help="Share of batch items answered with a 500.")  # fmt: skip
@click.option("--expire-batch", "expire_batches", type=int, multiple=True,
              help="This batch (1 = the first) expires half done (repeatable).")  # fmt: skip
@click.option("--batch-max-requests", type=int, default=50_000, show_default=True,
              help="Most requests per batch input file.")  # fmt: skip
@click.option("--api-key-env", help="Require the key held by this environment variable.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of fault draws.")
@user_errors
def serve_sim(
    port: int,
    experiments: tuple[Path, ...],
    paper: bool,
    api_key_env: str | None,
    **faults: Any,
) -> None:
    """Serve the simulated model over HTTP (POST /v1/chat/completions, GET /v1/models,
    the Files and Batches APIs, GET /stats) with fault injection, for testing clients and
    real-backend settings."""
    import os

    from pydantic import ValidationError

    from societies.backends.sim_server import Faults, SimServer
    from societies.errors import ConfigError

    if api_key_env is not None:
        key = os.environ.get(api_key_env)
        if not key:
            raise ConfigError(f"--api-key-env: the environment variable {api_key_env} is not set")
        faults["api_key"] = key
    try:
        settings = Faults.model_validate(faults)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"serve-sim: {field}: {first['msg']}") from None
    files = list(experiments)
    if paper:
        from societies.presets import paper_files

        files += paper_files()
    server = SimServer(settings, experiments=files, port=port)

    async def serve() -> None:
        await server.start()
        click.echo(f"serving the simulated model on {server.base_url}", err=False)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
