"""Confederates (scripted agents that make no call) and the judge protocol: exact call counts
on scripted models, what is stored and read, resume, the sim's behaviour, BenchForm's rates
on hand-computed grids, bad input and the examples."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from societies.analysis.benchform import by_majority_size, conformity_rates
from societies.analysis.load import load_run
from societies.backends.base import GenerateRequest
from societies.backends.fake import Asked, FunctionModel
from societies.backends.sim import SimBackend
from societies.backends.simulated import GroundTruth
from societies.cli.main import cli
from societies.config.models import ModelSpec
from societies.plan.plan import Overrides
from societies.plan.resolve import load_plan
from societies.scheduler.estimate import estimate_plan
from societies.society.agents import Agent
from societies.society.traits import BUILTIN_TRAITS
from societies.tasks.multiple_choice import MultipleChoiceTask
from tests.helpers import REPO, experiment, run, same_backend, write
from tests.test_bad_input import GOOD, assert_one_line, run_cli

# The quickstart data's answers: qs-01 is B, qs-02 is A.
TARGET = {"qs-01": "B", "qs-02": "A"}


def _small(**society: Any) -> dict[str, Any]:
    exp = experiment(prompts="default", rounds=2, strategies="all")
    exp["task"]["cases"] = 2
    exp["societies"] = [{"name": "s", **society}]
    return exp


def _says(letter: str) -> Any:
    def fn(asked: Asked) -> str:
        return f"({letter})"

    return fn


# -- confederates --------------------------------------------------------------------------
def test_confederates_make_no_call_and_are_stored_as_scripted(tmp_path: Path) -> None:
    exp = _small(agents=["easy-going"], confederates={"count": 4, "answer": "wrong"})
    model = FunctionModel(_says("A"))
    file = write(tmp_path, exp)
    _, summary = run(file, tmp_path / "out", same_backend(model))
    # 1 model agent x 7 tree nodes (2 rounds, every strategy) x 2 cases; confederates: 0.
    assert summary.made == len(model.requests) == 1 * 7 * 2
    assert summary.planned == 14
    assert estimate_plan(load_plan(file, Overrides(out=tmp_path / "dry"))).calls == 14
    calls = load_run(tmp_path / "out").calls
    scripted = calls[calls["outcome"] == "scripted"]
    assert len(scripted) == 4 * 7 * 2
    assert scripted["total_tokens"].sum() == 0
    assert set(scripted["backend"]) == {"confederate"}
    # Every confederate of a case gives the same wrong answer, in every round.
    for case_id, group in scripted.groupby("case_id"):
        assert group["answer"].nunique() == 1
        assert group["answer"].iloc[0] != TARGET[str(case_id)]
        assert not group["correct"].any()
    # The model agent reads the four confederates' replies when it debates.
    debate = [a for a in model.requests if a.truth.round > 0 and a.truth.pattern == "debate"]
    assert debate
    for asked in debate:
        wrong = {MultipleChoiceTask().parse(r) for r in asked.truth.peer_replies}
        assert len(asked.truth.peer_replies) == 4 and len(wrong) == 1
        assert wrong != {TARGET[asked.truth.case.id]}
    # A second invocation makes no call and reuses only the model agent's.
    _, again = run(file, tmp_path / "out", same_backend(model))
    assert again.made == 0 and again.reused == 14


def test_confederates_neither_vote_nor_stop_a_branch(tmp_path: Path) -> None:
    # Two model agents agree on (A) at once; four confederates say the right answer (B on
    # qs-01): the branch stops on the model agents alone, and the society answers (A).
    exp = _small(agents=["easy-going", "overconfident"], stop="unanimous",
                 confederates={"count": 4, "answer": "right"})  # fmt: skip
    _, summary = run(
        write(tmp_path, exp), tmp_path / "out", same_backend(FunctionModel(_says("A")))
    )
    assert summary.made == 2 * 2  # round 0 only, 2 agents x 2 cases
    assert summary.saved == 2 * 6 * 2
    a = load_run(tmp_path / "out")
    assert set(a.answers["agent"]) == {0, 1}
    last = a.votes[a.votes["round"] == 2].set_index("case_id")
    assert set(last["majority"]) == {"A"}
    right = last.groupby(level=0)["correct"].all()
    assert not right["qs-01"] and right["qs-02"]


def test_answer_dynamics_count_only_the_model_agents(tmp_path: Path) -> None:
    # Two model agents always right, three confederates always wrong: counted, the
    # confederates would outvote them (the vote wrong), move W→W and make the first answers
    # disagree.
    def right(asked: Asked) -> str:
        return f"({TARGET[asked.truth.case.id]})"

    exp = _small(agents=["easy-going", "overconfident"],
                 confederates={"count": 3, "answer": "wrong"})  # fmt: skip
    run(write(tmp_path, exp), tmp_path / "out", same_backend(FunctionModel(right)))
    a = load_run(tmp_path / "out")
    turns = a.transition_turns
    assert set(turns["agent"]) == {0, 1}
    assert len(turns) == 2 * 2 * 4 * 2  # agents x rounds 1-2 x strategies x cases
    assert set(turns["transition"]) == {"C→C"}
    by_agent = a.transitions_by_agent
    assert set(by_agent["agent"]) == {0, 1} and set(by_agent["turns"]) == {2 * 4 * 2}
    dvv = a.debate_vs_vote
    assert len(dvv) == 4 and set(dvv["vote_accuracy"]) == set(dvv["final_accuracy"]) == {1.0}
    assert set(a.oracle_gap["oracle_gap"]) == {0.0}
    collapse = a.disagreement_collapse
    assert len(collapse) == 4 and set(collapse["disagreed"]) == {0}


def test_a_confederate_reply_template_and_fixed_answer(tmp_path: Path) -> None:
    reply = "Round {{ round }}: {{ option }} ({{ answer }})"
    confederates = {"count": 2, "answer": {"fixed": "D"}, "reply": reply}
    exp = _small(agents=["easy-going"], confederates=confederates)
    run(write(tmp_path, exp), tmp_path / "out", same_backend(FunctionModel(_says("A"))))
    calls = load_run(tmp_path / "out").calls
    scripted = calls[calls["outcome"] == "scripted"]
    assert set(scripted["answer"]) == {"D"}
    assert set(scripted["model"]) == {"fixed:D"}


# -- the judge ------------------------------------------------------------------------------
def _agents_then_judge(asked: Asked) -> str:
    """Agents answer A, A, C; the judge answers the last agent's letter (C)."""
    if asked.truth.step == "judge":
        assert len(asked.truth.peer_replies) == 3
        return asked.truth.peer_replies[-1]
    return f"({'AAC'[asked.truth.agent.index]})"


@pytest.mark.parametrize(("after", "judge_calls"), [("last", 4), ("every", 7)])
def test_judge_calls_are_exact_and_scored_beside_the_majority(
    tmp_path: Path, after: str, judge_calls: int
) -> None:
    exp = _small(agents=3, easy_going=1, decision="judge", judge={"after": after})
    model = FunctionModel(_agents_then_judge)
    file = write(tmp_path, exp)
    _, summary = run(file, tmp_path / "out", same_backend(model))
    # 3 agents x 7 nodes per case, plus the judge once per leaf (4) or per node (7).
    assert summary.made == 2 * (3 * 7 + judge_calls)
    assert sum(a.truth.step == "judge" for a in model.requests) == 2 * judge_calls
    assert estimate_plan(load_plan(file, Overrides(out=tmp_path / "dry"))).calls == summary.made
    a = load_run(tmp_path / "out")
    assert len(a.answers) == 2 * 4 * 3 * 3  # cases x strategies x rounds x model agents
    table = a.decisions.set_index(["strategy", "round"])
    rounds = {2} if after == "last" else {0, 1, 2}
    assert set(table.index.get_level_values("round")) == rounds
    assert set(table["decision"]) == {"judge"}
    # Majority (A): right on qs-02 only; the judge (C): never.
    assert (table["majority_accuracy"] == 0.5).all()
    assert (table["accuracy"] == 0).all()
    judged = a.calls[a.calls["step"] == "judge"]
    assert set(judged["agent"]) == {-1} and set(judged["answer"]) == {"C"}


def test_a_judge_under_a_stopping_rule_judges_where_the_branch_stops(tmp_path: Path) -> None:
    exp = _small(agents=3, easy_going=1, decision="judge", stop="unanimous")
    model = FunctionModel(lambda a: "(B)" if a.truth.step != "judge" else "(A)")
    _, summary = run(write(tmp_path, exp), tmp_path / "out", same_backend(model))
    assert summary.made == 2 * (3 + 1)  # round 0 agrees: one judge call at the root
    a = load_run(tmp_path / "out")
    last = a.decisions[a.decisions["round"] == 2]
    # Every strategy's last round carries the verdict given where the branch stopped.
    assert len(last) == 4 and set(last["n"]) == {2}
    assert (last["accuracy"] == 0.5).all() and (last["majority_accuracy"] == 0.5).all()


def test_judge_calls_resume_without_paying_twice_after_sigkill(tmp_path: Path) -> None:
    from societies.backends.sim_server import Faults, SimServer
    from tests.backend_helpers import write_experiment
    from tests.test_crash import query, start, stored

    server = SimServer(Faults(latency_ms=15)).start_in_thread()
    try:
        model = {"backend": "openai", "name": "sim-model",
                 "options": {"base_url": server.base_url, "api_key_env": None}}  # fmt: skip
        society = {"name": "j", "agents": 3, "easy_going": 1, "decision": "judge",
                   "judge": {"after": "every"}}  # fmt: skip
        file = write_experiment(tmp_path, cases=4, model=model, rounds=2,
                                extra={"concurrency": 4, "societies": [society]})  # fmt: skip
        total = 4 * (3 * (1 + 7) + 7)  # persona + 7 nodes per agent, a verdict per node
        out = tmp_path / "run"
        proc = start(file, out)
        try:
            deadline = time.monotonic() + 60
            while server.stats["answered"] < total // 2:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.002)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        sent, kept = server.stats["requests"], stored(out)
        assert 0 < kept < total and sent - kept <= 4
        resumed = subprocess.run(
            [sys.executable, "-m", "societies", "run", str(file), "--out", str(out), "--quiet"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        assert stored(out) == total
        assert server.stats["requests"] - sent == total - kept
        assert query(out, "SELECT COUNT(*) FROM calls WHERE step = 'judge'")[0][0] == 4 * 7
    finally:
        server.stop_thread()


# -- the simulated model ---------------------------------------------------------------------
def _truth(task: MultipleChoiceTask, case: Any, peers: tuple[str, ...], i: int, **kw: Any) -> Any:
    agent = Agent(0, "a", BUILTIN_TRAITS["overconfident"], None, ModelSpec())
    return GroundTruth(f"p{i}", task, case, agent, 1, "answer", "debate", peers, 0, **kw)


def test_sim_conformity_grows_with_a_unanimous_majority() -> None:
    import asyncio

    task = MultipleChoiceTask()
    case = task.case_from_stored(
        "c", 0, {"question": "q", "choices": ["w", "x", "y", "z"], "answer": "A"}
    )
    sim = SimBackend(ModelSpec(options={"unparsed_rate": 0}))
    wrong = task.answer_reply(case, "C")
    assert wrong is not None
    rates = {}
    for k in (1, 2, 5):
        adopted = 0
        for i in range(400):
            truth = _truth(task, case, (wrong,) * k, i)
            own = [{"role": "assistant", "content": "The answer is (A)."}]
            req = GenerateRequest(tuple(own), "default", {}, None)
            reply = asyncio.run(sim.simulate(req, truth)).text
            adopted += task.parse(reply) == "C"
        rates[k] = adopted / 400
    # overconfident: 0.25 at the study's two peers; 1-(0.75)^(k/2) otherwise.
    assert rates[1] < rates[2] < rates[5]
    assert rates[2] == pytest.approx(0.25 * 1 + 0.75 * 0.1 * 1 / 3, abs=0.06)


def test_sim_judge_picks_the_majority_or_the_right_answer() -> None:
    import asyncio

    task = MultipleChoiceTask()
    case = task.case_from_stored(
        "c", 0, {"question": "q", "choices": ["w", "x", "y", "z"], "answer": "A"}
    )
    replies = tuple(task.answer_reply(case, x) or "" for x in "CCA")
    judge = Agent(-1, "judge", BUILTIN_TRAITS["easy-going"], None, ModelSpec())
    picks = {}
    for insight in (0.0, 1.0):
        sim = SimBackend(ModelSpec(options={"unparsed_rate": 0, "judge_insight": insight}))
        got = set()
        for i in range(50):
            truth = GroundTruth(f"j{i}", task, case, judge, 2, "judge", None, replies, 0)
            req = GenerateRequest(({"role": "user", "content": "judge"},), "d", {}, None)
            got.add(task.parse(asyncio.run(sim.simulate(req, truth)).text))
        picks[insight] = got
    assert picks == {0.0: {"C"}, 1.0: {"A"}}


# -- BenchForm's rates on hand-computed grids ------------------------------------------------
def _grid(spec: str) -> pd.DataFrame:
    """One subject (agent 0, trait eg) per line: ``society case answers`` with one answer per
    round, upper case right (the target is A), lower case wrong, ``-`` no answer."""
    rows = []
    for line in spec.strip().splitlines():
        society, case, answers = line.split()
        for rd, ans in enumerate(answers):
            rows.append(
                {"run": "r", "task": "t", "repeat": 0, "case_id": case, "society": society,
                 "strategy": "00", "round": rd, "agent": 0, "trait": "eg",
                 "correct": ans == "A", "answer": None if ans == "-" else ans.upper()}
            )  # fmt: skip
    return pd.DataFrame(rows)


# Society w3: 3 confederates say D (wrong) on c0..c3: c0 right throughout (independent); c1
# right, then D twice (conforms, adopts); c2 wrong throughout; c3 right, wrong (c), right.
# Society r2: 2 confederates say the right A on c0, c1: c0 wrong then right (conforms); c1
# right throughout. Society ctl: the control (no confederate): c0 right, then wrong twice.
GRID = """
w3 c0 AAA
w3 c1 Add
w3 c2 bb-
w3 c3 AcA
r2 c0 bAA
r2 c1 AAA
ctl c0 Abb
"""


def test_benchform_rates_match_hand_computed_values() -> None:
    majorities = pd.DataFrame(
        [("r", 0, f"c{c}", "w3", 3, 3, "D", "wrong") for c in range(4)]
        + [("r", 0, f"c{c}", "r2", 2, 2, "A", "right") for c in range(2)],
        columns=["run", "repeat", "case_id", "society", "confederates", "majority", "pressed",
                 "guidance"],
    )  # fmt: skip
    controls = {("r", "w3"): True, ("r", "r2"): True, ("r", "ctl"): True}
    rates = conformity_rates(_grid(GRID), majorities, controls).set_index(["society", "round"])
    w3 = rates.loc[[("w3", 1)]].iloc[0]
    assert w3["conformity_rate"] == pytest.approx(2 / 4)  # c1, c3
    assert w3["independence_rate"] == pytest.approx(1 / 4)  # c0
    assert w3["adoption_rate"] == pytest.approx(1 / 4)  # c1 says D
    # Round 2: c1 still conforms, c3 is right again; independence needs every round right.
    assert rates.loc[("w3", 2), "conformity_rate"] == pytest.approx(1 / 4)
    assert rates.loc[("w3", 2), "independence_rate"] == pytest.approx(1 / 4)
    assert rates.loc[("w3", 2), "n"] == 4 and rates.loc[("w3", 2), "majority"] == 3
    # Right guidance: conformity is wrong alone, right under the majority.
    assert rates.loc[("r2", 1), "conformity_rate"] == pytest.approx(1 / 2)
    assert rates.loc[("r2", 1), "independence_rate"] == pytest.approx(1 / 2)
    assert rates.loc[("r2", 1), "adoption_rate"] == pytest.approx(1 / 2)
    assert rates.loc[("ctl", 1), "majority"] == 0 and rates.loc[("ctl", 1), "guidance"] == "none"
    assert rates.loc[("ctl", 1), "conformity_rate"] == 1.0
    sizes = by_majority_size(conformity_rates(_grid(GRID), majorities, controls))
    at = sizes[(sizes["round"] == 1)].set_index("majority")
    assert at.loc[3, "conformity_rate"] == pytest.approx(0.5) and at.loc[3, "n"] == 4


# -- bad input -------------------------------------------------------------------------------
SOCIETY = "  - name: mixed\n"


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ("    judge: {role: a referee}\n",
         "quickstart.yaml:9: societies[0].judge: a judge needs `decision: judge` (this "
         "society decides by majority)"),
        ("    decision: judge\n    judge: {trait: wise}\n",
         "quickstart.yaml:10: societies[0].judge.trait: unknown trait 'wise'"),
        ("    confederates: {answer: {fixed: E}}\n",
         "quickstart.yaml:9: societies[0].confederates.answer: task mmlu cannot give the "
         "answer 'E' (case qs-01 admits A, B, C, D)"),
        ("    confederates: {answer: wrong, reply: 'I say {{ answer }}'}\n",
         "quickstart.yaml:9: societies[0].confederates.reply: case qs-01: the reply 'I say"),
        ("    confederates: {answer: wrong, reply: '{{ nothing }}'}\n",
         "quickstart.yaml:9: societies[0].confederates.reply: case qs-01: template"),
        ("    confederates: [{count: [1, 2]}, {count: 1}]\n",
         "quickstart.yaml:9: societies[0].confederates[0].count: a list of counts goes with a "
         "single group"),
        ("    confederates: {count: -1}\n",
         "quickstart.yaml:9: societies[0].confederates.count: must be between 0 and"),
        ("    confederates: {answer: maybe}\n",
         "quickstart.yaml:9: societies[0].confederates.answer"),
    ],
)  # fmt: skip
def test_bad_judge_and_confederate_settings_are_one_clear_line(
    tmp_path: Path, new: str, expected: str
) -> None:
    assert SOCIETY in GOOD
    code, stderr, out = run_cli(tmp_path, GOOD.replace(SOCIETY, SOCIETY + new))
    assert_one_line(code, stderr, out, expected)


def test_a_task_without_a_wrong_answer_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "rx.jsonl"
    data.write_text('{"id": "a", "question": "q?", "answer": "x+"}\n', encoding="utf-8")
    text = (
        f"name: rx\ntask:\n  name: jsonl\n  data: {data}\n  options: {{scoring: regex}}\n"
        "prompts: default\nsocieties:\n  - agents: [easy-going]\n"
        "    confederates: {answer: wrong}\nstrategies: ['0']\n"
    )
    code, stderr, out = run_cli(tmp_path, text)
    assert_one_line(code, stderr, out, "societies[0].confederates.answer: task jsonl cannot "
                    "give a wrong answer (case a)")  # fmt: skip


# -- the examples ----------------------------------------------------------------------------
EXAMPLES = REPO / "experiments" / "modern"


def test_the_asch_example_runs_with_limit(tmp_path: Path) -> None:
    out = tmp_path / "asch"
    result = CliRunner().invoke(
        cli, ["run", str(EXAMPLES / "asch.yaml"), "--out", str(out), "--limit", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "conformity to confederates" in result.output
    # 12 societies x 1 model agent x 3 nodes x 2 cases x 3 repeats; the confederates: none.
    assert re.search(r"\b216 calls made", result.output), result.output
    a = load_run(out)
    sizes = a.benchform.groupby("society")["majority"].first()
    assert sizes["easy-going-0c"] == 0 and sizes["overconfident-5c"] == 5
    assert set(a.benchform["guidance"]) == {"none", "wrong"}


def test_the_judge_example_runs_with_limit(tmp_path: Path) -> None:
    out = tmp_path / "judge"
    result = CliRunner().invoke(
        cli, ["run", str(EXAMPLES / "judge.yaml"), "--out", str(out), "--limit", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "decision protocols" in result.output
    # Per case and repeat: 3 societies x 3 agents x 5 nodes, + 2 leaves, + 5 nodes judged.
    assert re.search(r"\b312 calls made", result.output), result.output
    a = load_run(out)
    assert set(a.decisions["society"]) == {"judge", "sharp-judge"}


def test_the_report_shows_the_judge_and_conformity_sections(tmp_path: Path) -> None:
    from societies.report.render import render_report

    exp = _small(agents=["easy-going"], confederates={"count": [0, 2]})
    exp["societies"].append({"name": "j", "agents": 2, "decision": "judge"})
    run(write(tmp_path, exp), tmp_path / "out")
    html = render_report(load_run(tmp_path / "out"), transcripts=10)
    assert "Conformity to confederates (BenchForm rates, per society)" in html
    assert "Conformity to confederates by majority size" in html
    assert "Decision protocols: accuracy beside the majority" in html
    assert "confederate · confederate:wrong" in html
    assert '"st":"judge"' in html


def test_model_override_replaces_the_judges_model_too(tmp_path: Path) -> None:
    plan = load_plan(EXAMPLES / "judge.yaml", Overrides(model="openai:m", limit=1))
    judges = [s.judge.agent.model for s in plan.societies if s.judge is not None]
    assert len(judges) == 2
    assert all(m.backend == "openai" and m.name == "m" and not m.options for m in judges)


def test_the_report_shows_judge_and_confederates_in_headless_chromium(tmp_path: Path) -> None:
    import os

    from societies.report.render import write_report
    from tests.cdp import find_chromium, open_page

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    exp = _small(agents=["easy-going"], confederates={"count": 2})
    exp["strategies"] = ["00"]
    exp["societies"].append({"name": "j", "agents": 2, "decision": "judge"})
    run(write(tmp_path, exp), tmp_path / "out")
    report = write_report(load_run(tmp_path / "out"), tmp_path / "report.html")
    shots = Path(os.environ.get("SOCIETIES_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with open_page(chromium, tmp_path / "profile", report.as_uri()) as page:
        text = page.evaluate("document.body.innerText")
        assert "Conformity to confederates (BenchForm rates, per society)" in text
        assert "Conformity to confederates by majority size (BenchForm rates)" in text
        shown = page.evaluate(
            """(function () {
                var s = document.getElementById('sel-society'); s.value = 'j';
                s.dispatchEvent(new Event('change'));
                document.getElementById('browser').scrollIntoView();
                return document.getElementById('transcript').getAttribute('data-calls-shown');
            })()"""
        )
        assert shown == "7"  # 2 agents x 3 rounds, and the judge once after the last
        transcript = page.evaluate("document.getElementById('transcript').innerText")
        assert "agent 2 (judge · role: an impartial judge · sim:default)" in transcript
        assert "You do not take part in the discussion" in page.evaluate(
            "document.getElementById('transcript').innerHTML"
        )
        page.screenshot(shots / "report-judge.png")
        confederates = page.evaluate(
            """(function () {
                var s = document.getElementById('sel-society'); s.value = 's';
                s.dispatchEvent(new Event('change'));
                return document.getElementById('transcript').innerText;
            })()"""
        )
        assert "agent 1 (confederate · confederate:wrong)" in confederates
        assert "I am sure of it" in confederates  # the built-in confederate reply
        assert page.errors() == []
    assert (shots / "report-judge.png").stat().st_size > 10_000
