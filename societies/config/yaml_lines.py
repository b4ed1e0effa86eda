"""YAML loading that remembers where each value came from.

Pydantic reports errors by field path; users fix files by line. Composing the YAML node
tree once gives both the data and a path -> line map, so every error can name its line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from societies.errors import ConfigError

PathKey = tuple[str | int, ...]


#: Values an experiment file may hold once aliases are expanded. YAML aliases repeat a node
#: without copying it, so ten lines can stand for 10^9 values (an "alias bomb"); expanding
#: stops here, long before memory is at risk. The study's largest preset holds ~200.
MAX_VALUES = 100_000


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_VALUES

    def spend(self, node: yaml.Node) -> None:
        self.left -= 1
        if self.left < 0:
            raise ConfigError(
                f"more than {MAX_VALUES:,} values once aliases are expanded (an alias bomb?)",
                line=node.start_mark.line + 1,
            )


def _construct(node: yaml.Node, path: PathKey, lines: dict[PathKey, int], budget: _Budget) -> Any:
    budget.spend(node)
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(key_node, (*path, "<key>"), {}, budget)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise ConfigError(
                    "mapping keys must be plain scalars", line=key_node.start_mark.line + 1
                )
            skey = str(key)
            if skey in out:
                raise ConfigError(
                    f"duplicate key '{skey}'",
                    line=key_node.start_mark.line + 1,
                    path=format_path((*path, skey)),
                )
            out[skey] = _construct(value_node, (*path, skey), lines, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), lines, budget) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    raise ConfigError(f"unsupported YAML node {node.tag}", line=node.start_mark.line + 1)


_RESOLVER_LOADER = yaml.SafeLoader("")


def _scalar(node: yaml.ScalarNode) -> Any:
    try:
        return _RESOLVER_LOADER.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        raise ConfigError(
            f"unsupported value: {exc.problem}", line=node.start_mark.line + 1
        ) from None


def load_yaml_with_lines(file: Path) -> tuple[Any, dict[PathKey, int]]:
    """Parse ``file`` into plain data plus a map from field path to 1-based line number."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(file)) from None
    except UnicodeDecodeError:
        raise ConfigError("file is not valid UTF-8", file=str(file)) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "malformed YAML"
        raise ConfigError(f"malformed YAML: {problem}", file=str(file), line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"malformed YAML: {exc}", file=str(file)) from None
    if node is None:
        raise ConfigError("the file is empty", file=str(file))
    lines: dict[PathKey, int] = {}
    try:
        data = _construct(node, (), lines, _Budget())
    except ConfigError as exc:
        exc.file = str(file)
        raise ConfigError(exc.message, file=str(file), line=exc.line, path=exc.path) from None
    return data, lines


def format_path(path: PathKey) -> str:
    """``('societies', 0, 'agents', 2, 'trait')`` -> ``societies[0].agents[2].trait``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def line_for(lines: dict[PathKey, int], path: PathKey) -> int | None:
    """The line of ``path``, or of its nearest ancestor that appears in the file."""
    for end in range(len(path), -1, -1):
        line = lines.get(tuple(path[:end]))
        if line is not None:
            return line
    return None
