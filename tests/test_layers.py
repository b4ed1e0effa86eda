"""Imports run one way: the bottom layers (the store, the tasks, the experiment schema) import
nothing above them, and each layer above imports only from the layers below it. Every import
counts, including those inside functions and under ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "societies"

#: Per top-level module of ``societies``: what it may import from ``societies`` (itself aside).
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "resources": set(),
    "store": {"errors"},
    "tasks": {"errors"},
    "config": {"errors"},
    "society": {"errors", "resources", "config", "tasks"},
    "analysis": {"errors", "store", "tasks", "config", "society", "cost"},
    "report": {"errors", "store", "tasks", "analysis", "__init__"},
}


def imports_of(layer: str) -> dict[str, set[str]]:
    """Per file of ``layer``: the top-level ``societies`` modules it imports."""
    root = PACKAGE / layer
    files = sorted(root.rglob("*.py")) if root.is_dir() else [PACKAGE / f"{layer}.py"]
    out: dict[str, set[str]] = {}
    for file in files:
        found: set[str] = set()
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] == "societies":
                    found.add(parts[1] if len(parts) > 1 else "__init__")
        out[str(file.relative_to(PACKAGE.parent))] = found - {layer}
    return out


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_layers_below_it(layer: str) -> None:
    files = imports_of(layer)
    assert files, f"no module found for {layer}"
    wrong = {f: sorted(found - ALLOWED[layer]) for f, found in files.items()}
    assert not {f: w for f, w in wrong.items() if w}, f"{layer} imports a layer above it"


def test_the_plan_resolver_is_apart_from_the_schema() -> None:
    """The schema (``config``) is the bottom layer; the resolver that builds a Plan from it
    (``plan``) sits above the society and the tasks it resolves names into."""
    assert "plan" not in set().union(*imports_of("society").values())
    assert {"config", "society", "tasks"} <= set().union(*imports_of("plan").values())
