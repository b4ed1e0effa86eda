"""Bounded work: an alias bomb, huge numbers and out-of-range probabilities are refused in
one line before anything grows (the alias bomb under a memory limit, in a real process)."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import experiment, write

MEMORY_LIMIT = 2 * 1024**3


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_limited(file: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "societies", "run", str(file), "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=120, preexec_fn=limit_memory,
    )  # fmt: skip


def test_alias_bomb_is_refused_under_a_memory_limit(tmp_path: Path) -> None:
    # Nine levels of ten aliases: 10^9 values once expanded.
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    good = yaml.safe_dump(experiment(), sort_keys=False)
    file = write(tmp_path, good + "\n".join(lines).replace("a0:", "description:", 0) + "\n")
    result = run_limited(file, tmp_path / "run")
    assert result.returncode == 2, result.stderr
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and "alias bomb" in err[0] and "exp.yaml:" in err[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"societies": [{"agents": 10**30}]},
            "societies[0].agents: at most 1,000 agents in a society",
        ),
        (
            {"societies": [{"agents": 10_000, "easy_going": 0}]},
            "societies[0].agents: at most 1,000 agents in a society",
        ),
        ({"rounds": 40}, "rounds: strategies: all with 40 rounds is 2^40 strategies"),
        ({"repeats": 10**12}, "repeats: Input should be less than or equal to 100000"),
        (
            {"model": {"backend": "sim", "options": {"accuracy": {"mmlu": 1.5}}}},
            "model.options.accuracy.mmlu: Input should be less than or equal to 1",
        ),
        (
            {"model": {"backend": "sim", "options": {"conformity": {"easy-going": -0.1}}}},
            "model.options.conformity.easy-going: Input should be greater than or equal to 0",
        ),
    ],
    ids=["agents-10e30", "agents-10000", "rounds-40", "repeats-10e12", "accuracy", "conformity"],
)
def test_numbers_that_would_exhaust_the_machine_are_refused(
    tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    file = write(tmp_path, experiment(**change))
    result = run_limited(file, tmp_path / "run")
    assert result.returncode == 2, result.stderr
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and expected in err[0], result.stderr
    assert not (tmp_path / "run").exists()
