"""Societies, traits, strategies and prompts as configured in YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from societies.backends.base import CallKey
from societies.backends.fake import FunctionModel, ScriptedModel, UnexpectedCallError
from societies.errors import ConfigError
from societies.plan.resolve import load_plan
from tests.helpers import experiment, run, same_backend, write


def test_shorthand_expands_to_the_study_societies(tmp_path: Path) -> None:
    exp = experiment(societies=[{"agents": 3, "easy_going": [0, 1, 2, 3]}])
    plan = load_plan(write(tmp_path, exp))
    assert [s.name for s in plan.societies] == ["3oc", "1eg-2oc", "2eg-1oc", "3eg"]
    assert [a.trait.name for a in plan.societies[1].agents] == [
        "easy-going",
        "overconfident",
        "overconfident",
    ]
    assert [s.code for s in plan.strategies["3oc"]] == ["00", "01", "10", "11"]


def test_user_trait_persona_and_agent_model_override(tmp_path: Path) -> None:
    exp = experiment(
        prompts="default",
        traits={"skeptic": {"persona": "You are {{ role }}; you doubt everything."}},
        societies=[
            {
                "name": "mixed",
                "agents": [
                    {"trait": "skeptic", "role": "a careful checker"},
                    {"trait": "easy-going", "model": {"params": {"temperature": 0.2}}},
                ],
            }
        ],
        strategies=["0"],
        rounds=None,
    )
    exp["task"]["cases"] = 1
    exp["model"] = {"backend": "sim", "name": "default", "params": {"temperature": 0.7}}
    model = FunctionModel(lambda r: "I pick (A).")
    plan, _ = run(write(tmp_path, exp), tmp_path / "out", same_backend(model))
    first = [a for a in model.requests if a.truth.round == 0]
    by_agent = {a.truth.agent.index: a.request for a in first}
    assert by_agent[0].messages[0] == {
        "role": "system",
        "content": "You are a careful checker; you doubt everything.",
    }
    assert by_agent[0].params == {"temperature": 0.7}
    assert by_agent[1].params == {"temperature": 0.2}
    assert plan.societies[0].agents[1].model.params == {"temperature": 0.2}


def test_user_templates_render_in_a_sandbox(tmp_path: Path) -> None:
    exp = experiment(
        prompts="default",
        traits={"evil": {"persona": "{{ role.__class__.__mro__[1].__subclasses__() }}"}},
        societies=[{"agents": ["evil"]}],
        strategies=["0"],
        rounds=None,
    )
    exp["task"]["cases"] = 1
    with pytest.raises(ConfigError, match="unsafe"):
        load_plan(write(tmp_path, exp))


def test_scripted_model_fails_loudly_on_unexpected_call(tmp_path: Path) -> None:
    exp = experiment(prompts="default", societies=[{"agents": 1}], strategies=["0"], rounds=None)
    exp["task"]["cases"] = 1
    script = {CallKey(0, "qs-01", "1oc", "", 0, "answer"): "It is (A)."}  # round 1: not scripted
    model = ScriptedModel(script)
    with pytest.raises(UnexpectedCallError, match=r"unexpected call 0\|qs-01\|1oc\|0\|0"):
        run(write(tmp_path, exp), tmp_path / "out", same_backend(model))
    assert model.unused() == set()


def test_cli_model_override_replaces_every_agent_model(tmp_path: Path) -> None:
    from societies.plan.plan import Overrides

    exp = experiment(
        societies=[{"agents": [{"trait": "easy-going", "model": {"backend": "sim", "name": "x"}}]}]
    )
    plan = load_plan(write(tmp_path, exp), Overrides(model="sim:other"))
    assert {a.model.name for s in plan.societies for a in s.agents} == {"other"}
    with pytest.raises(ConfigError, match="BACKEND:MODEL"):
        load_plan(write(tmp_path, exp), Overrides(model="nocolon"))


def test_sim_conformity_depends_on_trait(tmp_path: Path) -> None:
    """Easy-going agents adopt the others' majority far more often than overconfident ones."""
    exp = experiment(prompts="default", rounds=None, strategies=["0"], repeats=3)
    exp["task"]["cases"] = 30
    exp["societies"] = [{"agents": 3, "easy_going": [0, 3]}]
    run(write(tmp_path, exp), tmp_path / "out")
    import sqlite3

    con = sqlite3.connect(tmp_path / "out" / "store.sqlite")
    rows = list(
        con.execute(
            "SELECT a.society, a.repeat, a.case_id, a.agent, a.answer, b.answer FROM calls a "
            "JOIN calls b ON a.society = b.society AND a.repeat = b.repeat "
            "AND a.case_id = b.case_id AND a.agent = b.agent "
            "WHERE a.node = '' AND b.node = '0'"
        )
    )
    con.close()
    changed = {"3oc": 0, "3eg": 0}
    for society, _r, _c, _a, before, after in rows:
        changed[society] += before != after
    assert changed["3eg"] > changed["3oc"] * 1.5


def test_tasks_list_gives_one_run_per_task_and_data_candidates(tmp_path: Path) -> None:
    from societies.plan.plan import Overrides
    from societies.plan.resolve import load_plans

    exp = experiment()
    first = dict(exp["task"], data=["missing.jsonl", exp["task"]["data"]])
    second = dict(exp["task"], cases=2)
    del exp["task"]
    exp["tasks"] = [first, second]
    plans = load_plans(write(tmp_path, exp), Overrides(out=tmp_path / "out"))
    assert [p.output for p in plans] == [tmp_path / "out" / "mmlu-0", tmp_path / "out" / "mmlu-1"]
    assert [p.experiment.name for p in plans] == ["t-mmlu-0", "t-mmlu-1"]
    assert [len(p.cases) for p in plans] == [4, 2]
    assert plans[0].data.name == "quickstart_mmlu.jsonl"
    with pytest.raises(ConfigError, match="either `task` or `tasks`"):
        load_plans(write(tmp_path, dict(exp, task=first)))
