"""One rule for paths (relative to the experiment file), and the README's example for testing
one's own code runs as printed, in its own directory, through the user's function."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from societies.cli.main import cli
from tests.helpers import REPO, experiment, write


def test_replay_source_is_relative_to_the_experiment_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = tmp_path / "study"
    study.mkdir()
    recorded = write(study, experiment(), "record.yaml")
    assert (
        CliRunner()
        .invoke(cli, ["run", str(recorded), "--out", str(study / "rec"), "--quiet"])
        .exit_code
        == 0
    )
    replay = experiment(
        model={"backend": "replay", "name": "default", "options": {"source": "rec"}}
    )
    file = write(study, replay, "replay.yaml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not where the experiment file is
    result = CliRunner().invoke(
        cli, ["run", str(file), "--out", str(tmp_path / "again"), "--quiet"]
    )
    assert result.exit_code == 0, result.output


def test_readme_example_for_testing_your_own_code(monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Testing your own code", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    monkeypatch.chdir(REPO)
    before = sorted(p.name for p in (REPO / "runs").glob("*")) if (REPO / "runs").exists() else []
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)
    summary = namespace["summary"]
    assert summary.made == summary.planned > 0  # type: ignore[attr-defined]
    after = sorted(p.name for p in (REPO / "runs").glob("*")) if (REPO / "runs").exists() else []
    assert after == before  # nothing written under runs/
