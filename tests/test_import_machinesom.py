"""``societies import machinesom``: result pickles built here, the restricted unpickler, and the
imported store analysed like any run."""

from __future__ import annotations

import os
import pickle
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import societies
from societies.cli.main import cli
from societies.errors import DataError
from societies.importers.machinesom import safe_load
from tests import reference_rules

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "experiments" / "data" / "quickstart_mmlu.jsonl"  # qs-01: B, qs-02: A


def _conversation(answers: list[str], strategy: str) -> list[dict[str, str]]:
    convo = [
        {
            "role": "user",
            "content": "Imagine you are an expert... If you understand please say ok only.",
        },
        {"role": "assistant", "content": "ok"},
        {
            "role": "user",
            "content": "Can you answer the following question as accurately as possible?",
        },
        {"role": "assistant", "content": f"Because reasons. ({answers[0]})"},
    ]
    for r, digit in enumerate(strategy, start=1):
        turn = "These are the solutions..." if digit == "0" else "Can you double check...?"
        convo.append({"role": "user", "content": turn})
        convo.append({"role": "assistant", "content": f"Updated: ({answers[r]})"})
    return convo


def _fake_openai(monkeypatch: pytest.MonkeyPatch) -> type:
    """A stand-in for openai 0.x's OpenAIObject, pickled the way the real one pickles."""

    class OpenAIObject(dict[str, Any]):
        def __init__(self, id: Any = None, api_key: Any = None, *rest: Any) -> None:
            super().__init__()
            self.api_key = api_key

        def __reduce__(self) -> Any:
            args = (self.get("id"), self.api_key, None, None, None, None, None)
            return (type(self), args, dict(self))

        def __setstate__(self, state: dict[str, Any]) -> None:
            self.update(state)

    OpenAIObject.__module__ = "openai.openai_object"
    OpenAIObject.__qualname__ = "OpenAIObject"
    module = types.ModuleType("openai.openai_object")
    module.OpenAIObject = OpenAIObject  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "openai", types.ModuleType("openai"))
    monkeypatch.setitem(sys.modules, "openai.openai_object", module)
    return OpenAIObject


def _usage(cls: type, prompt: int, completion: int) -> Any:
    record = cls(None, "sk-do-not-keep")
    record.update(prompt_tokens=prompt, completion_tokens=completion,
                  total_tokens=prompt + completion)  # fmt: skip
    return record


def write_results(folder: Path, monkeypatch: pytest.MonkeyPatch, with_persona: bool = True) -> None:
    """Society 1eg-2oc, strategy 010, cases 0 and 1, with token files."""
    folder.mkdir(parents=True)
    grids = {
        0: [list("BCBB"), list("ABBB"), list("BBBC")],  # majorities B B B B: right every round
        1: [list("AAAA"), list("BAAB"), list("CCAB")],  # r0 A,B,C tie; r1 A; r2 A; r3 B,B wins
    }
    with monkeypatch.context() as m:
        usage_cls = _fake_openai(m)
        for case, answers in grids.items():
            stem = f"1_harmony_3_agents_3_turns_010_strategy_case_{case}"
            convos = [_conversation(a, "010") for a in answers]
            (folder / f"{stem}.pkl").write_bytes(pickle.dumps(convos))
            per_agent = []
            for a in range(3):
                records = [_usage(usage_cls, 100 * (r + 1), 10 + a) for r in range(4)]
                if with_persona:
                    records.insert(0, _usage(usage_cls, 50, 1))
                per_agent.append(records)
            (folder / f"{stem}_token.pkl").write_bytes(pickle.dumps(per_agent))
    assert "openai" not in sys.modules or not hasattr(sys.modules["openai"], "openai_object")


def test_import_and_analyse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_results(tmp_path / "results", monkeypatch)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        ["import", "machinesom", str(tmp_path / "results"), "--task", "mmlu",
         "--data", str(DATA), "--out", str(out), "--model", "gpt-3.5-turbo"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 result files (30 calls)" in result.output  # 2 cases x 3 agents x (1 + 4)
    analysis = societies.load_run(out)
    acc = analysis.accuracy.set_index("round")
    assert list(acc["strategy"].unique()) == ["010"]
    # case 0 is right every round; case 1: tie (wrong), A, A, then B (wrong)
    assert list(acc["mean"]) == [0.5, 1.0, 1.0, 0.5]
    assert analysis.answers["pattern"].tolist()[3 * 1 : 3 * 2] == ["debate"] * 3
    cost = analysis.cost.set_index("round")
    # Study's cost: each agent's last call; agent a's completion is 10 + a tokens.
    assert cost.loc[3, "study_per_case"] == 3 * 400 + 10 + 11 + 12
    assert cost.loc[0, "billed_per_case"] == 3 * 51 + 3 * 100 + 10 + 11 + 12
    assert b"sk-do-not-keep" not in (out / "store.sqlite").read_bytes()
    conformity = analysis.conformity_turns
    assert len(conformity) == 2 * 3 * 2  # debates in rounds 1 and 3, 3 agents, 2 cases
    first = conformity[(conformity["case_id"] == "qs-01") & (conformity["round"] == 1)]
    # round 0 [B, A, B] (majority B), round 1 [C, B, B]
    assert first.sort_values("agent")["type"].tolist() == ["", "F→T", "T→T"]


def test_usage_without_a_role_play_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_results(tmp_path / "results", monkeypatch, with_persona=False)
    from societies.importers.machinesom import import_machinesom

    import_machinesom([tmp_path / "results"], task_name="mmlu", data=DATA, out=tmp_path / "run")
    calls = societies.load_run(tmp_path / "run").calls
    assert calls.loc[calls["step"] == "persona", "total_tokens"].eq(0).all()
    assert calls.loc[calls["round"] == 3, "prompt_tokens"].eq(400).all()


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps([{"role": "user", "content": "hi"}, _Evil(marker)]))
    with pytest.raises(DataError, match=r"refused to load (posix|os|nt)\.system"):
        safe_load(evil)
    assert not marker.exists()
    evil.write_bytes(pickle.dumps(eval))  # a builtin function, not a plain container
    with pytest.raises(DataError, match=r"refused to load builtins\.eval"):
        safe_load(evil)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps([{"a": (1, 2.5, "x")}, {1, 2}], protocol=2))
    assert safe_load(plain) == [{"a": [1, 2.5, "x"]}, {1, 2}]


def test_a_malicious_result_file_leaves_no_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_results(tmp_path / "results", monkeypatch)
    marker = tmp_path / "pwned"
    bad = tmp_path / "results" / "1_harmony_3_agents_3_turns_010_strategy_case_1.pkl"
    bad.write_bytes(pickle.dumps(_Evil(marker)))
    result = CliRunner().invoke(
        cli, ["import", "machinesom", str(tmp_path / "results"), "--task", "mmlu",
              "--data", str(DATA), "--out", str(tmp_path / "run")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "refused to load" in result.output and "Traceback" not in result.output
    assert not marker.exists()
    assert not (tmp_path / "run" / "store.sqlite").exists()


def test_bad_layout_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    result = CliRunner().invoke(
        cli, ["import", "machinesom", str(tmp_path / "results"), "--task", "mmlu",
              "--data", str(DATA), "--out", str(tmp_path / "run")],
    )  # fmt: skip
    assert result.exit_code == 2 and "no result files" in result.output


def test_import_of_the_reference_transcripts(tmp_path: Path, shared_dir: Path) -> None:
    """The reference's own message lists (MMLU runs), pickled as its result files are."""
    import json

    runs = json.loads((shared_dir / "reference" / "machinesom_transcripts.json").read_text())
    folder = tmp_path / "results"
    folder.mkdir()
    mmlu = [r for r in runs["runs"] if r["dataset"] == "mmlu"]
    for run in mmlu:
        name = f"1_harmony_3_agents_3_turns_{run['strategy']}_strategy_case_0.pkl"
        (folder / name).write_bytes(pickle.dumps(run["agents"]))
    data = shared_dir / "benchmarks" / "machinesom" / "mmlu.jsonl"
    from societies.importers.machinesom import import_machinesom

    calls, files = import_machinesom([folder], task_name="mmlu", data=data, out=tmp_path / "run")
    assert (calls, files) == (len(mmlu) * 3 * 5, len(mmlu))
    analysis = societies.load_run(tmp_path / "run")
    answers = analysis.answers
    assert (answers["outcome"] == "ok").all()
    choices = [json.loads(line)["choices"] for line in data.read_text().splitlines()]
    checked = 0
    for run in mmlu:
        for a, messages in enumerate(run["agents"]):
            mine = answers[(answers["strategy"] == run["strategy"]) & (answers["agent"] == a)]
            parsed = [reference_rules.mmlu(m["content"], choices[0]) for m in messages[3::2]]
            assert mine.sort_values("round")["answer"].tolist() == parsed
            checked += len(parsed)
    assert checked == len(mmlu) * 3 * 4
