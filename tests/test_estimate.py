"""The computed size of a run equals what a run sends, and the size guard refuses a run the
machine cannot hold before anything is created."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from societies.backends.base import (
    GenerateRequest,
    GenerateResult,
    ModelBackend,
    NoOptions,
    Usage,
    estimate_prompt_tokens,
)
from societies.cli.main import cli
from societies.plan.plan import Overrides
from societies.plan.resolve import load_plan
from societies.scheduler.estimate import estimate_plan
from societies.scheduler.session import run_experiment
from societies.scheduler.tree import planned_calls
from tests.helpers import experiment, write

REPLY = 37


class Filler(ModelBackend[NoOptions]):
    """Replies of exactly REPLY tokens (one for a persona turn), usage counted from the real
    messages: the run's stored usage is then what the estimate must compute."""

    name = "filler"

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        persona = request.key is not None and request.key.step == "persona"
        text = "ok" if persona else "abc " * REPLY
        return GenerateResult(
            text, Usage(estimate_prompt_tokens(request.messages), 1 if persona else REPLY)
        )


def measured(out: Path) -> tuple[int, int, int]:
    con = sqlite3.connect(out / "store.sqlite")
    try:
        row = con.execute(
            "SELECT COUNT(*), SUM(prompt_tokens), SUM(completion_tokens) FROM calls"
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])
    finally:
        con.close()


@pytest.mark.parametrize(
    "settings",
    [
        {"prompts": "machinesom"},
        {"prompts": "default", "repeats": 2},
        {
            "prompts": "machinesom",
            "societies": [{"agents": 4, "easy_going": 1}],
            "strategies": [
                {"name": "rr", "rounds": ["debate", "debate"], "random_reflector": True}
            ],
            "repeats": 2,
        },
    ],
    ids=["machinesom", "default-repeats", "random-reflector"],
)
def test_computed_size_equals_what_a_run_sends(tmp_path: Path, settings: dict[str, object]) -> None:
    model = {"backend": "sim", "name": "default", "params": {"max_tokens": REPLY}}
    file = write(tmp_path, experiment(model=model, **settings))
    plan = load_plan(file, Overrides(out=tmp_path / "run"))
    est = estimate_plan(plan)
    assert est.calls == planned_calls(plan)  # the tree formula the progress bar uses
    asyncio.run(run_experiment(plan, backend_factory=lambda spec: Filler(spec), argv=["t"]))
    assert measured(tmp_path / "run") == (est.calls, est.prompt_tokens, est.completion_tokens)


def test_stored_calls_count_as_reused(tmp_path: Path) -> None:
    file = write(tmp_path, experiment())
    out = tmp_path / "run"
    first = load_plan(file, Overrides(out=out, limit=1))
    asyncio.run(run_experiment(first, argv=["t"]))
    plan = load_plan(file, Overrides(out=out))
    est = estimate_plan(plan)
    # 3 agents x (1 persona + 1 + 2 + 4) = 24 calls per case and society, 2 societies.
    assert est.reused == measured(out)[0] == 2 * 24
    assert est.calls == 4 * 2 * 24 - 2 * 24


def test_dry_run_works_on_a_directory_of_another_experiment(tmp_path: Path) -> None:
    out = tmp_path / "run"
    file = write(tmp_path, experiment())
    assert (
        CliRunner()
        .invoke(cli, ["run", str(file), "--out", str(out), "--quiet", "--limit", "1"])
        .exit_code
        == 0
    )
    before = (out / "store.sqlite").read_bytes()
    other = write(tmp_path, experiment(rounds=3), "other.yaml")
    result = CliRunner().invoke(cli, ["run", str(other), "--out", str(out), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "0 already stored" in " ".join(result.stdout.split())
    assert (out / "store.sqlite").read_bytes() == before


def test_a_run_too_large_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    # 200 agents, 5 rounds: 200 x 64 calls per case and society, x 4 cases x 2000 repeats.
    data = experiment(rounds=5, repeats=2000, societies=[{"agents": 200, "easy_going": 0}])
    file = write(tmp_path, data)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", str(file), "--out", str(out), "--quiet"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "too large for this machine" in lines[0]
    assert "102,400,000 calls" in lines[0] and "--accept-size" in lines[0]
    assert not out.exists()
