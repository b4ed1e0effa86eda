"""Builders for small experiments used across the tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml

from societies.backends.base import AnyBackend
from societies.config.models import ModelSpec
from societies.plan.plan import Overrides, Plan
from societies.plan.resolve import load_plan
from societies.scheduler.runner import RunSummary
from societies.scheduler.session import run_experiment

REPO = Path(__file__).resolve().parents[1]
QUICKSTART_DATA = REPO / "experiments" / "data" / "quickstart_mmlu.jsonl"


def experiment(**overrides: Any) -> dict[str, Any]:
    """A small valid experiment as a dict: 2 societies of 3 agents, 2 rounds, sim model."""
    data: dict[str, Any] = {
        "name": "t",
        "seed": 0,
        "task": {"name": "mmlu", "data": str(QUICKSTART_DATA), "cases": 4},
        "prompts": "machinesom",
        "model": {"backend": "sim", "name": "default"},
        "societies": [{"agents": 3, "easy_going": [0, 2]}],
        "rounds": 2,
        "strategies": "all",
    }
    data.update(overrides)
    return data


def write(tmp: Path, data: dict[str, Any] | str, name: str = "exp.yaml") -> Path:
    file = tmp / name
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    file.write_text(text, encoding="utf-8")
    return file


def run(
    file: Path,
    out: Path,
    factory: Any = None,
    **overrides: Any,
) -> tuple[Plan, RunSummary]:
    plan = load_plan(file, Overrides(out=out, **overrides))
    kwargs: dict[str, Any] = {"argv": ["test"]}
    if factory is not None:
        kwargs["backend_factory"] = factory
    return plan, asyncio.run(run_experiment(plan, **kwargs))


def same_backend(backend: AnyBackend) -> Any:
    def factory(spec: ModelSpec) -> AnyBackend:
        return backend

    return factory
