"""The study's presets: each one's call count matches its formula, and each runs on the sim."""

from __future__ import annotations

from pathlib import Path

import pytest

from societies.plan.resolve import load_plans
from societies.scheduler.tree import planned_calls as planned
from tests.helpers import REPO

PRESETS = REPO / "experiments" / "paper"


def distinct_prefixes(codes: list[str]) -> int:
    """Counted from the strategy strings themselves, independently of the tree code."""
    return len({code[:r] for code in codes for r in range(len(code) + 1)})


def test_main_is_48_calls_per_case_society_and_repeat() -> None:
    plans = load_plans(PRESETS / "main.yaml")
    assert [p.task.name for p in plans] == ["mmlu", "math", "chess"]
    for plan in plans:
        assert plan.prompts.name == "machinesom" and plan.task.extraction == "paper"
        assert [s.name for s in plan.societies] == ["3oc", "1eg-2oc", "2eg-1oc", "3eg"]
        assert plan.experiment.repeats == 5
        assert planned(plan) == 48 * len(plan.cases) * 4 * 5


def test_rounds_preset_counts_shared_prefixes_of_its_ten_round_strategies() -> None:
    (plan,) = load_plans(PRESETS / "rounds.yaml")
    codes = [s.code for s in plan.strategies["1eg-2oc"]]
    assert len(codes) == 8 and all(len(c) == 10 for c in codes)
    per_case = 3 * (1 + distinct_prefixes(codes))
    assert planned(plan) == per_case * len(plan.cases) * 5


def test_agents_preset_covers_2_to_10_agents_with_the_study_mixes() -> None:
    (plan,) = load_plans(PRESETS / "agents.yaml")
    sizes = [s.size for s in plan.societies]
    assert sorted(set(sizes)) == list(range(2, 11))
    assert sizes.count(2) == 3 and sizes.count(3) == 4 and sizes.count(10) == 5
    assert planned(plan) == sum(n * (1 + 15) for n in sizes) * len(plan.cases) * 5


def test_alternatives_preset_draws_one_reflector_per_debate_round() -> None:
    plans = load_plans(PRESETS / "alternatives.yaml")
    for plan in plans:
        (society,) = plan.societies
        assert [a.trait.name for a in society.agents] == [
            "easy-going", "overconfident", "overconfident"
        ]  # fmt: skip
        # The random draw keeps prefix sharing: still 48 calls per case and repeat.
        assert planned(plan) == 48 * len(plan.cases) * 5
        for case in plan.cases[:5]:
            for strategy in plan.strategies_for(society, case, 0):
                for r, round_plan in enumerate(strategy.rounds):
                    if strategy.name[r] == "0":
                        assert round_plan.count("reflection") == 1


@pytest.mark.parametrize("name", ["main", "rounds", "agents", "alternatives"])
def test_presets_fall_back_to_the_project_data_without_shared(name: str, tmp_path: Path) -> None:
    """A user's clone has no ../shared: the presets then use the project's own data."""
    text = (PRESETS / f"{name}.yaml").read_text().replace("../../../shared", "../nowhere")
    file = tmp_path / "paper" / f"{name}.yaml"
    file.parent.mkdir()
    file.write_text(text)
    (tmp_path / "data").symlink_to(REPO / "experiments" / "data")
    for plan in load_plans(file):
        assert plan.data.parent.name == "data"
        assert plan.cases


def _made(run_dir: Path) -> list[int]:
    import sqlite3

    con = sqlite3.connect(run_dir / "store.sqlite")
    try:
        return [r[0] for r in con.execute("SELECT calls_made FROM invocations ORDER BY id")]
    finally:
        con.close()


def test_reproduce_paper_runs_every_preset_and_writes_one_report(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from societies.cli.main import cli

    out = tmp_path / "paper"
    result = CliRunner().invoke(
        cli, ["reproduce", "paper", "--limit", "1", "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.stderr
    runs = sorted(p.parent.relative_to(out).as_posix() for p in out.rglob("store.sqlite"))
    assert runs == [
        "agents", "alternatives/chess", "alternatives/math", "alternatives/mmlu",
        "main/chess", "main/math", "main/mmlu", "rounds",
    ]  # fmt: skip
    html = (out / "report.html").read_text(encoding="utf-8")
    for name in ("paper-main-mmlu", "paper-rounds", "paper-agents", "paper-alternatives-chess"):
        assert name in html
    # Run again: everything is stored, nothing is asked twice.
    again = CliRunner().invoke(
        cli, ["reproduce", "paper", "--limit", "1", "--out", str(out), "--quiet",
              "--only", "alternatives"],
    )  # fmt: skip
    assert again.exit_code == 0, again.stderr
    assert _made(out / "alternatives" / "mmlu") == [240, 0]
