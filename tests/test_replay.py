"""The replay backend: answers from a recorded run, by request, with an optional fallback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from societies.backends.base import PermanentModelError
from societies.plan.plan import Overrides
from societies.plan.resolve import load_plan
from societies.scheduler.runner import RunSummary
from societies.scheduler.session import run_experiment
from tests.backend_helpers import answers, asked, calls, position, write_experiment


async def run(experiment: Path, out: Path) -> RunSummary:
    return await run_experiment(load_plan(experiment, Overrides(out=out)))


def replay_model(source: Path, **options: Any) -> dict[str, Any]:
    return {"backend": "replay", "name": "default", "options": {"source": str(source), **options}}


@pytest.fixture
async def recorded(tmp_path: Path) -> Path:
    experiment = write_experiment(tmp_path / "..", name="recorded")
    await run(experiment, tmp_path / "recorded")
    return tmp_path / "recorded"


async def test_replaying_a_run_gives_the_same_replies(tmp_path: Path, recorded: Path) -> None:
    experiment = write_experiment(tmp_path, name="again", model=replay_model(recorded))
    summary = await run(experiment, tmp_path / "again")
    assert summary.made == 72 and summary.errors == 0
    assert answers(tmp_path / "again") == answers(recorded)
    original = {position(c): c for c in calls(recorded)}
    for row in calls(tmp_path / "again"):
        assert row["prompt_tokens"] == original[position(row)]["prompt_tokens"]


async def test_an_unrecorded_request_is_named(tmp_path: Path, recorded: Path) -> None:
    experiment = write_experiment(tmp_path, name="more", rounds=3, model=replay_model(recorded))
    with pytest.raises(PermanentModelError, match=r"no recorded reply for call 0\|qs-0"):
        await run(experiment, tmp_path / "more")


async def test_one_more_round_pays_only_for_the_new_calls(tmp_path: Path, recorded: Path) -> None:
    """Every recorded call is replayed and only the new round's calls reach the fallback: the
    fallback is a sim model of another name, so each stored call says which of the two
    answered it (were replay never to match, the fallback would answer all of them)."""
    fallback = {"backend": "sim", "name": "fallback"}
    experiment = write_experiment(
        tmp_path, name="more", rounds=3, model=replay_model(recorded, fallback=fallback)
    )
    summary = await run(experiment, tmp_path / "more")
    assert summary.errors == 0 and summary.made == 3 * 3 * (1 + 1 + 2 + 4 + 8)
    old = answers(recorded)
    new = answers(tmp_path / "more")
    assert all(new[key] == value for key, value in old.items())
    by_model: dict[str, set[tuple[object, ...]]] = {}
    for row in calls(tmp_path / "more"):
        by_model.setdefault(row["model"], set()).add(position(row))
    recorded_model = {row["model"] for row in calls(recorded)}
    assert recorded_model == {"sim:default"}
    # the recorded run: 3 cases x 3 agents x (role-play + 7 nodes of 2 rounds)
    assert by_model["sim:default"] == set(old) and len(old) == 3 * 3 * (1 + 1 + 2 + 4)
    # the new round: 8 nodes per case and agent, all from the fallback
    assert len(by_model["sim:fallback"]) == 3 * 3 * 8
    assert set(by_model) == {"sim:default", "sim:fallback"}


async def test_replay_from_a_jsonl_transcript_into_another_model_name(
    tmp_path: Path, recorded: Path
) -> None:
    transcript = tmp_path / "transcript.jsonl"
    messages = asked(recorded)
    with transcript.open("w", encoding="utf-8") as fh:
        for row in calls(recorded):
            line = {
                "messages": messages[position(row)],
                "reply": row["reply"],
                "call": {
                    "repeat": row["repeat"],
                    "case_id": row["case_id"],
                    "society": "elsewhere",
                    "node": row["node"],
                    "agent": row["agent"],
                    "step": row["step"],
                },
            }
            fh.write(json.dumps(line) + "\n")
    model = replay_model(transcript, match="messages")
    model["name"] = "some-other-model"
    experiment = write_experiment(tmp_path, name="fromjsonl", easy_going=2, model=model)
    # Another society: the persona differs for one agent, so those calls are unmatched...
    with pytest.raises(PermanentModelError, match="no recorded reply"):
        await run(experiment, tmp_path / "fromjsonl")
    # ...but the same society replays completely.
    experiment = write_experiment(tmp_path, name="same", model=model)
    summary = await run(experiment, tmp_path / "same")
    assert summary.errors == 0
    replies = {k: v[0] for k, v in answers(tmp_path / "same").items()}
    assert replies == {k: v[0] for k, v in answers(recorded).items()}
