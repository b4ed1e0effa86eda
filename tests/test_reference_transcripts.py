"""Every message the scheduler builds in machinesom mode equals the reference's, byte for byte,
for all six reference transcripts (MMLU, MATH, chess x strategies 010 and 101).

The reference transcripts come from running the study's own code; we feed their assistant
replies back through our scheduler and compare each request with the transcript's prefix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from societies.backends.fake import Asked, FunctionModel
from tests.helpers import run, same_backend, write

DATA_FILES = {"mmlu": "mmlu.jsonl", "math": "math.jsonl", "chess": "chess.jsonl"}


def transcripts(shared: Path, dataset: str) -> list[dict[str, Any]]:
    data = json.loads((shared / "reference" / "machinesom_transcripts.json").read_text())
    return [r for r in data["runs"] if r["dataset"] == dataset]


def replay_and_compare(shared: Path, tmp_path: Path, reference: dict[str, Any]) -> int:
    agents: list[list[dict[str, str]]] = reference["agents"]
    compared = 0

    def answer(asked: Asked) -> str:
        nonlocal compared
        expected = agents[asked.truth.agent.index]
        sent = [dict(m) for m in asked.request.messages]
        assert sent == expected[: len(sent)], f"agent {asked.truth.agent.index} differs"
        compared += 1
        return expected[len(sent)]["content"]

    exp = {
        "name": "ref",
        "task": {
            "name": reference["dataset"],
            "data": str(shared / "benchmarks" / "machinesom" / DATA_FILES[reference["dataset"]]),
            "cases": [reference["case_id"]],
        },
        "prompts": "machinesom",
        "societies": [{"agents": reference["society"]}],
        "strategies": [reference["strategy"]],
    }
    file = write(tmp_path, exp, f"{reference['strategy']}.yaml")
    model = FunctionModel(answer)
    _, summary = run(file, tmp_path / reference["strategy"], same_backend(model))
    assert summary.errors == 0
    # Every turn of every agent was requested: (messages / 2) calls per agent.
    assert compared == sum(len(a) // 2 for a in agents)
    return compared


@pytest.mark.parametrize("dataset", ["mmlu", "math", "chess"])
@pytest.mark.parametrize("strategy", ["010", "101"])
def test_messages_are_byte_identical(
    shared_dir: Path, tmp_path: Path, dataset: str, strategy: str
) -> None:
    (reference,) = [r for r in transcripts(shared_dir, dataset) if r["strategy"] == strategy]
    assert replay_and_compare(shared_dir, tmp_path, reference) == 15
