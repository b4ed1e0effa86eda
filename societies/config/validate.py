"""An experiment file read and checked against the schema, with line-accurate errors.

Two of the three passes of loading: YAML (syntax) and pydantic (shape and types). Each reports
the first problem as one line with file, line and field path; ``Locator`` turns a field path
into such an error for the later passes (the plan resolver's names that must exist).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from societies.config.models import Experiment
from societies.config.yaml_lines import PathKey, format_path, line_for, load_yaml_with_lines
from societies.errors import ConfigError


class Locator:
    def __init__(self, file: Path, lines: dict[PathKey, int]) -> None:
        self.file = str(file)
        self.lines = lines

    def error(self, path: PathKey, message: str) -> ConfigError:
        return ConfigError(
            message, file=self.file, line=line_for(self.lines, path), path=format_path(path)
        )


def read_experiment(file: Path) -> tuple[Experiment, Locator]:
    """The experiment a file holds, validated against the schema."""
    data, lines = load_yaml_with_lines(file)
    loc = Locator(file, lines)
    if not isinstance(data, dict):
        raise loc.error((), "the experiment must be a mapping of settings")
    try:
        return Experiment.model_validate(data), loc
    except ValidationError as exc:
        raise pydantic_error(exc, data, loc) from None


def pydantic_error(
    exc: ValidationError, data: Any, loc: Locator, prefix: PathKey = ()
) -> ConfigError:
    """The most specific of pydantic's errors, with union-branch tags removed from its path."""
    best: tuple[int, PathKey, str] | None = None
    for err in exc.errors():
        path = _real_path(data, err["loc"])
        message = _message(err, data, path)
        depth = len(path)
        if best is None or depth > best[0]:
            best = (depth, path, message)
    assert best is not None
    return loc.error((*prefix, *best[1]), best[2])


_FIELD = re.compile(r"^[a-z_][a-z0-9_]*$")
_TYPE_TAGS = {"int", "str", "float", "bool", "list", "dict", "none"}


def _indexes(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return isinstance(part, str) and part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _real_path(data: Any, raw: Sequence[Any]) -> PathKey:
    """Pydantic locations contain union member names (``'list[...]'``, ``'int'``); keep only
    the parts that index into the data."""
    out: list[str | int] = []
    node = data
    for part in raw:
        if _indexes(node, part):
            out.append(part)
            node = node[part]
        elif (
            isinstance(node, dict)
            and isinstance(part, str)
            and _FIELD.match(part)
            and (part not in _TYPE_TAGS)
        ):
            out.append(part)  # a missing field: the path still names it
            node = None
    return tuple(out)


def _message(err: Any, data: Any, path: PathKey) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"unknown key '{path[-1]}'" if path else "unknown key"
    if kind == "missing":
        return "required field is missing"
    if kind == "value_error":
        return str(err["ctx"]["error"])
    return str(err["msg"])
