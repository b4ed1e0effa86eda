"""Files the package ships beside its code: prompt sets and example experiments.

In the wheel they live inside the package (``societies/_prompts``, ``societies/_experiments``);
in a source checkout they are the top-level ``prompts/`` and ``experiments/`` the design card
puts there. One lookup serves both.
"""

from __future__ import annotations

from pathlib import Path


def resource_dir(name: str) -> Path:
    package = Path(__file__).resolve().parent
    installed = package / f"_{name}"
    return installed if installed.is_dir() else package.parent / name
