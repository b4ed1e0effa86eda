"""Private briefings: rendered per case, given to their agent only, stored with its requests;
the simulated model answers from them; a template that cannot render is the file's error."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from societies.analysis.load import load_run
from societies.cli.main import cli
from societies.plan.plan import Overrides
from societies.plan.resolve import load_plan
from societies.scheduler.session import run_experiment
from societies.store.db import RunStore
from societies.store.queries import TranscriptRef, transcript

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "experiments" / "data" / "capitals.jsonl"


def _experiment(tmp_path: Path, societies: list[Any], **model_options: Any) -> Path:
    spec = {
        "name": "briefed",
        "seed": 3,
        "task": {
            "name": "jsonl",
            "data": str(DATA),
            "options": {"question": "{{ country }}?", "answer_field": "capital"},
        },
        "model": {"backend": "sim", "options": {"accuracy": {"jsonl": 0.5}, **model_options}},
        "societies": societies,
        "rounds": 1,
        "strategies": ["0"],
    }
    file = tmp_path / "briefed.yaml"
    file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return file


def _run(file: Path, out: Path, limit: int = 3) -> None:
    asyncio.run(run_experiment(load_plan(file, Overrides(out=out, limit=limit)), argv=[]))


def _conversations(out: Path) -> list[tuple[Any, list[dict[str, str]]]]:
    store = RunStore.for_run_dir(out, readonly=True)
    try:
        return list(store.conversations())
    finally:
        store.close()


def _cases(limit: int) -> dict[str, dict[str, Any]]:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()[:limit]]
    return {r["id"]: r for r in rows}


def test_briefings_reach_only_their_agent_in_the_stored_requests(tmp_path: Path) -> None:
    agent_turn = {"template": "Secret for {{ id }}: think of {{ capital }}.", "placement": "turn"}
    society_system = {"template": "Confidential: {{ country }} is on the agenda."}
    file = _experiment(
        tmp_path,
        [
            {"name": "one-briefed",
             "agents": ["easy-going", {"trait": "overconfident", "briefing": agent_turn},
                        "easy-going"]},
            {"name": "all-briefed", "agents": 2, "briefing": society_system},
        ],
    )  # fmt: skip
    out = tmp_path / "run"
    _run(file, out)
    cases = _cases(3)
    seen = 0
    for key, messages in _conversations(out):
        case = cases[key.case_id]
        turn_text = f"Secret for {case['id']}: think of {case['capital']}."
        system_text = f"Confidential: {case['country']} is on the agenda."
        texts = [m["content"] for m in messages]
        joined = "\n".join(texts)
        if key.society == "one-briefed" and key.agent == 1:
            # its own user turn, right after the persona and before the question
            assert messages[0]["role"] == "system" and "Secret" not in messages[0]["content"]
            assert messages[1] == {"role": "user", "content": turn_text}
            assert case["country"] in messages[2]["content"] and messages[2]["role"] == "user"
            seen += 1
        elif key.society == "all-briefed":
            assert messages[0]["role"] == "system"
            assert messages[0]["content"].endswith("\n\n" + system_text)
            assert joined.count("Confidential") == 1
            seen += 1
        else:
            assert "Secret" not in joined and "Confidential" not in joined
        # a briefing never leaks into another case's requests
        for other in cases.values():
            if other["id"] != case["id"]:
                assert f"Secret for {other['id']}:" not in joined
    # 3 cases x (1 briefed agent x 2 rounds + 2 agents x 2 rounds)
    assert seen == 3 * (2 + 4)

    # the transcripts show them: the viewer's and the report's
    turns = transcript(out / "store.sqlite", TranscriptRef(0, "cap-02", "one-briefed", "0"))
    assert turns is not None
    first = {t.agent: t for t in turns.turns if t.round == 0}
    assert first[1].prompt.startswith("Secret for cap-02: think of Tokyo.\n\n")
    assert "Japan" in first[1].prompt and "Secret" not in first[0].prompt + first[2].prompt
    store = RunStore.for_run_dir(out, readonly=True)
    try:
        calls = store.tree_transcript(0, "cap-02", "all-briefed")
    finally:
        store.close()
    systems = [c.added[0]["content"] for c in calls if c.round == 0]
    assert len(systems) == 2
    assert all(x.endswith("Confidential: Japan is on the agenda.") for x in systems)


def test_no_briefing_leaves_the_requests_unchanged_and_the_sim_answers_from_one(
    tmp_path: Path,
) -> None:
    plain = _experiment(tmp_path, [{"name": "s", "agents": 3}])
    _run(plain, tmp_path / "plain")
    briefing = {"template": "A colleague insists it is Atlantis.", "answer": "Atlantis"}
    trusting = tmp_path / "trust"
    trusting.mkdir()
    briefed = _experiment(trusting, [{"name": "s", "agents": 3, "briefing": briefing}],
                          briefing_trust=1.0)  # fmt: skip
    _run(briefed, tmp_path / "briefed")
    doubting = tmp_path / "doubt"
    doubting.mkdir()
    ignored = _experiment(doubting, [{"name": "s", "agents": 3, "briefing": briefing}],
                          briefing_trust=0.0)  # fmt: skip
    _run(ignored, tmp_path / "ignored")

    def answers(out: Path) -> dict[tuple[str, int, int], str | None]:
        grid = load_run(out).answers
        return {
            (str(r["case_id"]), int(r["agent"]), int(r["round"])): r["answer"]
            for r in grid.to_dict("records")
        }

    base = answers(tmp_path / "plain")
    trusted = answers(tmp_path / "briefed")
    untrusted = answers(tmp_path / "ignored")
    # briefing_trust 0: the same draws as without a briefing, so the same answers
    assert untrusted == base
    first = {k: v for k, v in trusted.items() if k[2] == 0}
    assert first and set(first.values()) == {"atlantis"}
    assert set(base.values()) != {"atlantis"}
    # the plain run's requests hold no trace of the feature
    for _, messages in _conversations(tmp_path / "plain"):
        assert all("colleague" not in m["content"] for m in messages)


def test_a_briefing_with_an_unknown_variable_is_one_line_exit_2_nothing_written(
    tmp_path: Path,
) -> None:
    file = _experiment(
        tmp_path,
        [{"name": "s", "agents": ["easy-going",
                                  {"trait": "overconfident",
                                   "briefing": {"template": "You know {{ capitol }}."}}]}],
    )  # fmt: skip
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", str(file), "--out", str(out), "--quiet"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    line = lines[0]
    spec_line = next(
        i for i, text in enumerate(file.read_text().splitlines(), 1) if "capitol" in text
    )
    assert line.startswith(f"{file}:{spec_line}:") or f"{file}:{spec_line - 1}:" in line, line
    assert "societies[0].agents[1].briefing.template" in line and "capitol" in line
    assert not out.exists()


def test_a_changed_briefing_is_never_mixed_with_stored_calls(tmp_path: Path) -> None:
    """Resuming reuses every stored call; a different briefing on the same run directory is
    refused rather than answered from calls made with the old one."""
    briefing = {"template": "Note: {{ capital }}."}
    file = _experiment(tmp_path, [{"name": "s", "agents": 2, "briefing": briefing}])
    out = tmp_path / "run"
    args = ["run", str(file), "--out", str(out), "--limit", "2"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and "0 calls made, 8 reused" in again.stdout
    spec = yaml.safe_load(file.read_text(encoding="utf-8"))
    spec["societies"][0]["briefing"]["template"] = "Note: not {{ capital }}."
    file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    changed = CliRunner().invoke(cli, args)
    assert changed.exit_code == 2
    assert "different experiment (changed: societies)" in changed.stderr
