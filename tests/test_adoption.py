"""Edit adoption: who claims what, and the share of the other agents adopting it, against a
hand-computed grid; the facts generator; the edit-spread example on the sim."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from societies.analysis.adoption import CLAIM_COLUMNS, briefing_answers, edit_adoption
from societies.analysis.load import load_run
from societies.cli.main import cli

REPO = Path(__file__).resolve().parents[1]


def test_claiming_agents_follow_the_stored_experiments_society_order() -> None:
    edit = {"template": "t", "answer": "{{ new_object }}"}
    config = {
        "societies": [
            # an easy_going list stands for one society per value
            {"agents": 2, "easy_going": [0, 2], "briefing": edit},
            {"name": "mixed", "briefing": {"template": "background only"},
             "agents": ["easy-going", {"trait": "overconfident", "briefing": edit}]},
        ]
    }  # fmt: skip
    assert list(briefing_answers(config, ["2oc", "2eg", "mixed"])) == [
        ("2oc", 0, "{{ new_object }}"),
        ("2oc", 1, "{{ new_object }}"),
        ("2eg", 0, "{{ new_object }}"),
        ("2eg", 1, "{{ new_object }}"),
        ("mixed", 1, "{{ new_object }}"),  # agent 0's background briefing claims nothing
    ]


def _answers(rows: list[tuple[int, str, str, int, int, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"run": "r", "task": "t", "repeat": rep, "case_id": case, "society": society,
          "strategy": "0", "round": rnd, "agent": agent, "answer": answer}
         for rep, case, society, rnd, agent, answer in rows]
    )  # fmt: skip


def test_edit_adoption_against_a_hand_computed_grid() -> None:
    claims = pd.DataFrame(
        [("r", "s", 0, "c1", "harp"), ("r", "s", 0, "c2", "oboe")], columns=CLAIM_COLUMNS
    )
    rows = [
        # round 0: agents 1 and 2 are unbriefed; c1: one of two holds "harp"; c2: none of two
        (0, "c1", "s", 0, 0, "harp"), (0, "c1", "s", 0, 1, "harp"), (0, "c1", "s", 0, 2, "cello"),
        (0, "c2", "s", 0, 0, "oboe"), (0, "c2", "s", 0, 1, "tuba"), (0, "c2", "s", 0, 2, None),
        # round 1: c1 both, c2 one of two
        (0, "c1", "s", 1, 0, "harp"), (0, "c1", "s", 1, 1, "harp"), (0, "c1", "s", 1, 2, "harp"),
        (0, "c2", "s", 1, 0, "oboe"), (0, "c2", "s", 1, 1, "oboe"), (0, "c2", "s", 1, 2, "tuba"),
        # a society with no claim is not reported
        (0, "c1", "control", 1, 0, "harp"),
    ]  # fmt: skip
    adopted = edit_adoption(_answers(rows), claims, lambda r, c, a, claim: a == claim)
    assert list(adopted["society"]) == ["s", "s"]
    assert list(adopted["groups"]) == [2, 2]
    assert adopted["adoption"].tolist() == pytest.approx([(0.5 + 0.0) / 2, (1.0 + 0.5) / 2])
    low, high = adopted[["ci_low", "ci_high"]].to_numpy(dtype=float)[0]
    assert 0.0 <= low <= 0.25 <= high <= 0.5
    assert edit_adoption(_answers(rows), claims.iloc[0:0], lambda *a: True).empty


def test_facts_generator_is_seeded_and_each_edit_changes_the_object() -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["data", "generate", "facts", "--n", "5", "--seed", "2"]).stdout
    again = runner.invoke(cli, ["data", "generate", "facts", "--n", "5", "--seed", "2"]).stdout
    assert first == again
    for row in map(json.loads, first.splitlines()):
        assert row["object"] != row["new_object"]
        assert row["fact"] == f"{row['subject']} {row['relation']} {row['object']}."
        assert row["edit"] == f"{row['subject']} {row['relation']} {row['new_object']}."


def test_edit_spread_example_reports_adoption(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["run", str(REPO / "experiments" / "seeds" / "edit-spread.yaml"), "--out",
         str(tmp_path / "run"), "--quiet", "--limit", "4"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    analysis = load_run(tmp_path / "run")
    table = analysis.edit_adoption
    assert set(table["society"]) == {"one-edited", "two-edited"}
    # 4 cases x 3 repeats; the unbriefed agents have not heard the edit before round 1
    assert set(table["groups"]) == {12}
    assert (table.loc[table["round"] == 0, "adoption"] == 0).all()
    assert "edit_adoption" in analysis.tables()
    claims = analysis.claims
    assert len(claims) == 3 * 4  # three claiming agents x 4 stored cases
    stored = {c.id: c.fields["new_object"] for c in analysis.runs["edit-spread"].cases.values()}
    assert all(claims["claim"] == claims["case_id"].map(stored))
