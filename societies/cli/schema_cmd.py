"""``societies schema``: the JSON Schema of experiment files, for editors and validators."""

from __future__ import annotations

import json

import click

from societies.config.models import Experiment


def experiment_schema() -> str:
    schema = Experiment.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "societies experiment"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


@click.command()
def schema() -> None:
    """Print the JSON Schema of the experiment file."""
    click.echo(experiment_schema(), nl=False)
