"""MATH and chess: every message the scheduler builds in machinesom mode equals the reference's.

Like the MMLU check, the reference transcripts' assistant replies are fed back through the
scheduler and every request is compared with the transcript's prefix, byte for byte.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from societies.backends.base import GenerateRequest, ModelBackend
from societies.backends.fake import FunctionModel
from societies.config.load import Overrides, load_plan
from societies.config.models import ModelSpec
from societies.scheduler.session import open_store, run_plan

DATA_FILES = {"math": "math.jsonl", "chess": "chess.jsonl"}


def _reference(shared: Path, dataset: str, strategy: str) -> dict[str, Any]:
    data = json.loads((shared / "reference" / "machinesom_transcripts.json").read_text())
    (run,) = [r for r in data["runs"] if r["dataset"] == dataset and r["strategy"] == strategy]
    return dict(run)


@pytest.mark.parametrize("dataset", ["math", "chess"])
@pytest.mark.parametrize("strategy", ["010", "101"])
def test_messages_are_byte_identical(
    shared_dir: Path, tmp_path: Path, dataset: str, strategy: str
) -> None:
    reference = _reference(shared_dir, dataset, strategy)
    agents: list[list[dict[str, str]]] = reference["agents"]
    compared = 0

    def answer(request: GenerateRequest) -> str:
        nonlocal compared
        assert request.context is not None
        expected = agents[request.context.agent.index]
        sent = [dict(m) for m in request.messages]
        assert sent == expected[: len(sent)], f"agent {request.context.agent.index} differs"
        compared += 1
        return expected[len(sent)]["content"]

    exp = {
        "name": "ref",
        "task": {
            "name": dataset,
            "data": str(shared_dir / "benchmarks" / "machinesom" / DATA_FILES[dataset]),
            "cases": [reference["case_id"]],
        },
        "prompts": "machinesom",
        "societies": [{"agents": reference["society"]}],
        "strategies": [strategy],
    }
    file = tmp_path / "exp.yaml"
    file.write_text(yaml.safe_dump(exp), encoding="utf-8")
    model = FunctionModel(answer)

    def factory(spec: ModelSpec) -> ModelBackend:
        return model

    plan = load_plan(file, Overrides(out=tmp_path / "run"))
    store = open_store(plan)
    try:
        summary = asyncio.run(run_plan(plan, store, backend_factory=factory, argv=["test"]))
    finally:
        store.close()
    assert summary.errors == 0
    assert compared == sum(len(a) // 2 for a in agents) == 15
