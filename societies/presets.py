"""The study's experiment presets, shipped with the package (``experiments/paper``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from societies.errors import ConfigError
from societies.plan.plan import Overrides, Plan
from societies.plan.resolve import load_plans
from societies.resources import resource_dir

#: The presets, in the order the study presents them.
PAPER_PRESETS = ("main", "rounds", "agents", "alternatives")


def paper_plans(overrides: Overrides, only: tuple[str, ...] = ()) -> list[Plan]:
    """Every run of the study's presets, each under ``<out>/<preset>``."""
    unknown = sorted(set(only) - set(PAPER_PRESETS))
    if unknown:
        raise ConfigError(
            f"--only: unknown preset {unknown[0]} (known: {', '.join(PAPER_PRESETS)})"
        )
    base = overrides.out or Path("runs") / "paper"
    plans: list[Plan] = []
    for name, file in zip(PAPER_PRESETS, paper_files(), strict=True):
        if only and name not in only:
            continue
        plans.extend(load_plans(file, dataclasses.replace(overrides, out=base / name)))
    return plans


def paper_files() -> list[Path]:
    return [resource_dir("experiments") / "paper" / f"{name}.yaml" for name in PAPER_PRESETS]
