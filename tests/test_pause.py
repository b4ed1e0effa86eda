"""The pause pattern: a sweep over M expands into societies, the pause reaches each backend as
a real model would see it (filler periods in the message over real HTTP; a generation
parameter for the transformers backend, tested with torch in test_transformers_backend.py),
is part of the request (hash, store, resume), moves the sim's accuracy, and is measured."""

from __future__ import annotations

import math
import os
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from societies.analysis.load import load_run
from societies.analysis.metrics import CELL
from societies.analysis.pause import pause_table, sweep_rows, sweep_table
from societies.backends.sim_server import SimServer
from societies.cli.main import cli
from societies.plan.plan import Overrides
from societies.plan.resolve import load_plan
from societies.report.render import render_report
from societies.scheduler.estimate import estimate_plan
from societies.scheduler.session import run_experiment
from societies.scheduler.tree import planned_calls
from societies.society.patterns import Pause, pause_filler, split_filler
from tests.backend_helpers import asked, calls, write_experiment
from tests.cdp import find_chromium, open_page
from tests.helpers import REPO
from tests.test_bad_input import GOOD, assert_one_line, run_cli
from tests.test_openai_backend import run_against

FILLER = "\n\n" + " ".join("." * 64)


def experiment(
    folder: Path,
    societies: list[dict[str, Any]],
    *,
    options: dict[str, Any] | None = None,
    backend: str = "sim",
    **kwargs: Any,
) -> Path:
    model = {"backend": backend, "name": "default", "options": options or {}}
    kwargs.setdefault("rounds", 1)
    kwargs.setdefault("strategies", ["0", "1"])
    return write_experiment(folder, model=model, extra={"societies": societies}, **kwargs)


def test_a_list_of_m_expands_into_one_society_per_value(tmp_path: Path) -> None:
    file = experiment(tmp_path, [{"agents": 3, "easy_going": [0, 1], "pause": [0, 2, 8]},
                                 {"name": "fixed", "agents": 2, "pause": 4}])  # fmt: skip
    plan = load_plan(file)
    assert [s.name for s in plan.societies] == [
        "3oc-pause0", "3oc-pause2", "3oc-pause8",
        "1eg-2oc-pause0", "1eg-2oc-pause2", "1eg-2oc-pause8", "fixed",
    ]  # fmt: skip
    pauses = {s.name: {a.pause for a in s.agents} for s in plan.societies}
    assert pauses["3oc-pause0"] == {None}  # M = 0 asks exactly what no pause asks
    assert pauses["1eg-2oc-pause8"] == {Pause(8, filler=True)}
    assert pauses["fixed"] == {Pause(4, filler=True)}
    # An API backend (the sim included) gets the filler, never a parameter it would not know.
    assert all(a.model.params == {} for s in plan.societies for a in s.agents)


def test_a_local_model_gets_m_as_a_generation_parameter(tmp_path: Path) -> None:
    """Resolved only: the transformers backend is not created (no torch needed)."""
    file = experiment(tmp_path, [{"agents": 2, "pause": [0, 8]}], backend="transformers")
    plan = load_plan(file)
    first, second = plan.societies
    assert [a.model.params for a in first.agents] == [{}, {}]
    assert [a.model.params for a in second.agents] == [{"pause_tokens": 8}] * 2
    assert {a.pause for a in second.agents} == {Pause(8, filler=False)}
    # --model decides too: the sim experiment pointed at a local model
    sim_file = experiment(tmp_path, [{"agents": 2, "pause": [0, 8]}], name="on-sim")
    moved = load_plan(sim_file, Overrides(model="transformers:some/model")).societies[1]
    assert [a.model.params for a in moved.agents] == [{"pause_tokens": 8}] * 2


async def test_over_http_the_stored_request_ends_with_m_filler_periods(tmp_path: Path) -> None:
    """The openai client against serve-sim: every call of the paused society carries the
    filler at the end of its new user message, and the server's simulated model reads it
    from the request (with pause_gain 1 and accuracy 0 only a pause makes answers right)."""
    options = {"accuracy": 0.0, "pause_gain": 1.0, "pause_half": 1, "unparsed_rate": 0.0}
    file = experiment(tmp_path, [{"name": "s", "agents": 3, "easy_going": 1, "pause": [0, 64]}],
                      options=options, cases=5, strategies=["0"])  # fmt: skip
    async with SimServer(experiments=[file]) as server:
        summary = await run_against(server, file, tmp_path / "run")
    assert summary.errors == 0 and summary.made == 2 * 5 * 3 * (1 + 2)
    requests = asked(tmp_path / "run")
    rows = {(c["society"], c["case_id"], c["node"], c["agent"], c["step"]): c
            for c in calls(tmp_path / "run")}  # fmt: skip
    for (rep, case, society, node, agent, step), messages in requests.items():
        users = [m["content"] for m in messages if m["role"] == "user"]
        fillers = sum(u.endswith(FILLER) for u in users)
        if society == "s-pause0":
            assert fillers == 0
            continue
        # every user message of the conversation: the role-play turn, the question, the turns
        assert fillers == len(users) == {"persona": 1, "answer": 2 + len(node)}[step]
        twin = requests[(rep, case, "s-pause0", node, agent, step)]
        if node == "":  # same persona, same question: the fillers are the only difference
            assert [split_filler(m["content"]) for m in messages] == [
                (m["content"], 64 if m["role"] == "user" else 0) for m in twin
            ]
            tokens = rows[(society, case, node, agent, step)]["prompt_tokens"]
            own = rows[("s-pause0", case, node, agent, step)]["prompt_tokens"]
            assert tokens == own + 64 * len(users)
    first = [c for c in calls(tmp_path / "run") if c["step"] == "answer" and c["node"] == ""]
    right = {
        s: sum(c["correct"] for c in first if c["society"] == s) for s in ("s-pause0", "s-pause64")
    }
    assert right["s-pause0"] == 0 and right["s-pause64"] >= 12  # of 15; P(right) = 64/65


async def test_over_http_a_paused_role_play_turn_still_names_the_trait(tmp_path: Path) -> None:
    """serve-sim recognises each agent's trait by its persona, which the pause extends: the
    overconfident agents (conformity 0, always keeping their answer) keep it; were they taken
    for the easy-going one (conformity 1), they would adopt their peers' majority."""
    options = {"accuracy": 0.5, "pause_gain": 0.0, "unparsed_rate": 0.0,
               "conformity": {"easy-going": 1.0, "overconfident": 0.0},
               "reflection_keep": 1.0, "reflection_fix": 0.0}  # fmt: skip
    file = experiment(tmp_path, [{"name": "s", "agents": 3, "easy_going": 1, "pause": 64}],
                      options=options, cases=10, strategies=["0"])  # fmt: skip
    async with SimServer(experiments=[file]) as server:
        summary = await run_against(server, file, tmp_path / "run")
    assert summary.errors == 0
    answer = {(c["case_id"], c["node"], c["agent"]): c["answer"]
              for c in calls(tmp_path / "run") if c["step"] == "answer"}  # fmt: skip
    cases = {case for case, _, _ in answer}
    assert all(answer[(c, "0", a)] == answer[(c, "", a)] for c in cases for a in (1, 2))
    assert len({answer[(c, "", a)] for c in cases for a in range(3)}) > 1  # answers vary
    assert all(answer[(c, "0", 0)] in {answer[(c, "", 1)], answer[(c, "", 2)]} for c in cases)


async def test_the_sweep_makes_its_planned_calls_and_a_resume_pays_nothing(tmp_path: Path) -> None:
    file = experiment(tmp_path, [{"agents": 3, "easy_going": 1, "pause": [0, 2, 8]}])
    plan = load_plan(file, Overrides(out=tmp_path / "run"))
    # 3 values of M x 3 cases x 3 agents x (role-play turn + 3 tree nodes)
    assert planned_calls(plan) == 3 * 3 * 3 * 4
    first = await run_experiment(plan)
    assert first.made == 108 and first.errors == 0
    again = await run_experiment(load_plan(file, Overrides(out=tmp_path / "run")))
    assert again.made == 0 and again.reused == 108


def test_another_m_reuses_no_call_of_the_first(tmp_path: Path) -> None:
    """The same society name with another M: refused, nothing asked or written."""
    text = experiment(tmp_path, [{"name": "s", "agents": 2, "pause": 2}]).read_text()
    file = tmp_path / "m.yaml"
    file.write_text(text)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", str(file), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.stderr
    stored = [c["request_hash"] for c in calls(out)]
    file.write_text(text.replace("pause: 2", "pause: 4"))
    result = CliRunner().invoke(cli, ["run", str(file), "--out", str(out), "--quiet"])
    assert result.exit_code == 2 and "changed: societies" in result.stderr
    assert [c["request_hash"] for c in calls(out)] == stored


def _first_answers(run: Path) -> dict[str, list[int]]:
    con = sqlite3.connect(run / "store.sqlite")
    try:
        rows = con.execute(
            "SELECT society, correct FROM calls WHERE step = 'answer' AND node = '' "
            "ORDER BY society, repeat, case_id, agent"
        ).fetchall()
    finally:
        con.close()
    out: dict[str, list[int]] = {}
    for society, correct in rows:
        out.setdefault(society, []).append(correct)
    return out


async def test_the_sim_pause_effect_is_its_configured_share_and_deterministic(
    tmp_path: Path,
) -> None:
    """accuracy 0, pause_gain 0.5, pause_half 8: M = 8 makes 0.5 x 8 / 16 = 25% of first
    answers right, M = 0 none; the same run again gives the same answers."""
    options = {"accuracy": 0.0, "pause_gain": 0.5, "pause_half": 8, "unparsed_rate": 0.0}
    file = experiment(tmp_path, [{"name": "s", "agents": 3, "pause": [0, 8]}], options=options,
                      cases=30, rounds=0, strategies=[""])  # fmt: skip
    for name in ("a", "b"):
        await run_experiment(load_plan(file, Overrides(out=tmp_path / name)))
    a, b = _first_answers(tmp_path / "a"), _first_answers(tmp_path / "b")
    assert a == b
    assert sum(a["s-pause0"]) == 0
    assert len(a["s-pause8"]) == 90 and 0.13 <= sum(a["s-pause8"]) / 90 <= 0.37


def test_the_dry_run_counts_the_pause_tokens(tmp_path: Path) -> None:
    """One agent, no role-play turn, one debate round: M tokens in the first answer, and in
    the second M of its own plus the first's M, which an API conversation carries on; a local
    model's pause tokens are not part of the conversation."""

    def prompt_tokens(pause: int, backend: str) -> int:
        folder = tmp_path / f"{backend}{pause}"
        folder.mkdir()
        file = experiment(folder, [{"name": "s", "agents": 1, "pause": pause}], backend=backend,
                          strategies=["0"], cases=4)  # fmt: skip
        data = yaml.safe_load(file.read_text())
        data["prompts"] = "default"
        file.write_text(yaml.safe_dump(data))
        return estimate_plan(load_plan(file)).prompt_tokens

    assert prompt_tokens(8, "sim") - prompt_tokens(0, "sim") == 4 * (8 + 8 + 8)
    local = prompt_tokens(8, "transformers") - prompt_tokens(0, "transformers")
    assert local == 4 * (8 + 8)


def _votes(rows: list[tuple[str, int, str, int, bool, bool]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"run": "r", "task": "t", "repeat": rep, "case_id": case, "society": society,
          "strategy": "0", "round": rnd, "correct": correct, "complete": complete}
         for society, rep, case, rnd, correct, complete in rows]
    )  # fmt: skip


def test_pause_table_against_a_hand_computed_grid() -> None:
    config = {"societies": [{"agents": 3, "easy_going": [0, 1], "pause": [0, 4]},
                            {"name": "solo", "agents": 1, "pause": 2},
                            {"name": "plain", "agents": 2}]}  # fmt: skip
    names = ["3oc-pause0", "3oc-pause4", "1eg-2oc-pause0", "1eg-2oc-pause4", "solo", "plain"]
    rows = sweep_rows("r", config, names)
    assert rows == [
        ("r", "3oc-pause0", "3oc", 0), ("r", "3oc-pause4", "3oc", 4),
        ("r", "1eg-2oc-pause0", "1eg-2oc", 0), ("r", "1eg-2oc-pause4", "1eg-2oc", 4),
        ("r", "solo", "solo", 2), ("r", "plain", "plain", 0),
    ]  # fmt: skip
    assert sweep_rows("r", {"societies": [{"agents": 3}]}, ["3oc"]) == []

    votes = _votes([
        # round 0, M = 0: right in (0, c1) and (1, c2)
        ("3oc-pause0", 0, "c1", 0, True, True), ("3oc-pause0", 0, "c2", 0, False, True),
        ("3oc-pause0", 1, "c1", 0, False, True), ("3oc-pause0", 1, "c2", 0, True, True),
        # round 0, M = 4: right in three; (1, c2) incomplete, so 3 pairs: 0, +1, +1
        ("3oc-pause4", 0, "c1", 0, True, True), ("3oc-pause4", 0, "c2", 0, True, True),
        ("3oc-pause4", 1, "c1", 0, True, True), ("3oc-pause4", 1, "c2", 0, False, False),
        # round 1: M = 4 wrong where M = 0 was right, 1 pair: -1
        ("3oc-pause0", 0, "c1", 1, True, True), ("3oc-pause4", 0, "c1", 1, False, True),
        # a society without M = 0 beside it
        ("solo", 0, "c1", 0, True, True),
    ])  # fmt: skip
    cells = [("3oc-pause0", 0, 0.5, 100.0), ("3oc-pause4", 0, 1.0, 112.0),
             ("3oc-pause0", 1, 1.0, 250.0), ("3oc-pause4", 1, 0.0, 290.0),
             ("solo", 0, 1.0, 40.0)]  # fmt: skip
    accuracy = pd.DataFrame(
        [("r", "t", s, "0", rnd, acc, acc - 0.1, acc + 0.1) for s, rnd, acc, _ in cells],
        columns=[*CELL, "mean", "ci_low", "ci_high"],
    )
    cost = pd.DataFrame([("r", "t", s, "0", rnd, tok) for s, rnd, _, tok in cells],
                        columns=[*CELL, "billed_per_case"])  # fmt: skip
    table = pause_table(votes, accuracy, cost, sweep_table(rows))
    got = {(r["base"], r["round"], r["pause"]): r for r in table.to_dict("records")}
    assert list(got) == [("3oc", 0, 0), ("3oc", 0, 4), ("3oc", 1, 0), ("3oc", 1, 4),
                               ("solo", 0, 2)]  # fmt: skip
    r0 = got[("3oc", 0, 4)]
    assert r0["society"] == "3oc-pause4" and r0["accuracy"] == 1.0 and r0["ci_low"] == 0.9
    assert r0["pairs"] == 3 and r0["gain"] == pytest.approx(2 / 3)
    assert 0 <= r0["gain_ci_low"] <= 2 / 3 <= r0["gain_ci_high"] == 1.0
    assert r0["tokens_per_case"] == 112 and r0["extra_tokens_per_case"] == 12
    zero = got[("3oc", 0, 0)]
    assert zero["pairs"] == 4 and zero["gain"] == 0 and zero["extra_tokens_per_case"] == 0
    r1 = got[("3oc", 1, 4)]
    assert (r1["pairs"], r1["gain"], r1["gain_ci_low"], r1["gain_ci_high"]) == (1, -1, -1, -1)
    assert r1["extra_tokens_per_case"] == 40
    solo = got[("solo", 0, 2)]
    assert solo["pairs"] == 0 and math.isnan(solo["gain"])
    assert math.isnan(solo["extra_tokens_per_case"])


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """experiments/seeds/pause.yaml run as CI runs the examples (``--limit 2``)."""
    out = tmp_path_factory.mktemp("example") / "pause"
    result = CliRunner().invoke(cli, ["run", str(REPO / "experiments" / "seeds" / "pause.yaml"),
                                      "--out", str(out), "--quiet", "--limit", "2"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return out, result.stdout


def test_the_example_sweep_runs_and_reports_accuracy_against_m(example: tuple[Path, str]) -> None:
    out, stdout = example
    assert "accuracy against M (pause tokens), round 2" in stdout
    analysis = load_run(out)
    # 2 cases x 10 repeats x 4 values of M x (1 + 3 agents) x 5 tree nodes ("00", "11")
    assert len(analysis.calls) == 2 * 10 * 4 * 4 * 5
    table = analysis.pause
    assert sorted(table["pause"].unique()) == [0, 2, 8, 32]
    assert set(table["base"]) == {"single", "1eg-2oc"}
    first = table[(table["round"] == 0) & (table["strategy"] == "00")]
    for _, line in first.groupby("base"):
        assert line["tokens_per_case"].is_monotonic_increasing
    assert "pause" in analysis.tables()
    html = render_report(analysis)
    assert "Accuracy against M (the pause pattern)" in html
    assert 'alt="accuracy against M"' in html and 'alt="accuracy_vs_pause"' not in html


def test_the_report_shows_accuracy_against_m_in_headless_chromium(
    example: tuple[Path, str], tmp_path: Path
) -> None:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    report = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(example[0]), "-o", str(report)])
    assert result.exit_code == 0, result.output
    shots = Path(os.environ.get("SOCIETIES_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with open_page(chromium, tmp_path / "profile", report.as_uri()) as page:
        page.evaluate("document.getElementById('pause').scrollIntoView()")
        heading = page.evaluate("document.querySelector('#pause h2').innerText")
        assert heading == "Accuracy against M (the pause pattern)"
        assert page.evaluate("document.querySelector('#pause img').naturalWidth") > 500
        rows = page.evaluate(
            "Array.from(document.querySelectorAll('#pause tbody tr'))"
            ".map(function (r) { return r.cells[4].innerText; })"
        )
        # 2 societies x 2 strategies x 3 rounds, each for M = 0, 2, 8, 32
        assert len(rows) == 48 and sorted(set(rows), key=int) == ["0", "2", "8", "32"]
        page.screenshot(shots / "report-pause.png")
        assert page.errors() == []
    assert (shots / "report-pause.png").stat().st_size > 10_000


def test_a_run_without_a_pause_has_no_pause_section(tmp_path: Path) -> None:
    file = experiment(tmp_path, [{"agents": 3, "easy_going": 1}], cases=1)
    result = CliRunner().invoke(cli, ["run", str(file), "--out", str(tmp_path / "r"), "--quiet"])
    assert result.exit_code == 0, result.stderr
    assert "accuracy against M" not in result.stdout
    analysis = load_run(tmp_path / "r")
    assert analysis.pause.empty and "pause" not in analysis.tables()
    assert "Accuracy against M" not in render_report(analysis)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-1", "quickstart.yaml:9: societies[0].pause: Input should be greater than or equal to 0"),
        ("2.5", "quickstart.yaml:9: societies[0].pause: Input should be a valid integer"),
        ("'2'", "quickstart.yaml:9: societies[0].pause: Input should be a valid integer"),
        ("[0, -2]",
         "quickstart.yaml:9: societies[0].pause[1]: Input should be greater than or equal to 0"),
        ("[0, 1.5]", "quickstart.yaml:9: societies[0].pause[1]: Input should be a valid integer"),
        ("[]", "quickstart.yaml:9: societies[0].pause: give at least one M"),
        ("[2, 2]", "quickstart.yaml:9: societies[0].pause: lists M = 2 twice"),
        ("5000",
         "quickstart.yaml:9: societies[0].pause: Input should be less than or equal to 4096"),
    ],
)  # fmt: skip
def test_a_bad_m_is_one_line_and_writes_nothing(tmp_path: Path, value: str, expected: str) -> None:
    text = GOOD.replace("  - name: mixed\n", f"  - name: mixed\n    pause: {value}\n")
    code, stderr, out = run_cli(tmp_path, text)
    assert_one_line(code, stderr, out, expected)


def test_the_filler_is_read_back_exactly_and_only_from_the_end() -> None:
    for m in (1, 2, 8, 64):
        assert split_filler("Which? (A) or (B)." + pause_filler(m)) == ("Which? (A) or (B).", m)
    for text in ("It ends with a spaced period .", "a\n\n. x .", "a\n\n. .. .", "no filler"):
        assert split_filler(text) == (text, 0)
    turn = ({"role": "system", "content": "persona"}, {"role": "user", "content": "q"})
    assert Pause(3, filler=True).delay(turn) == (turn[0], {"role": "user", "content": "q\n\n. . ."})
    assert Pause(3, filler=False).delay(turn) == turn  # a local model's pause is no text
    assert Pause(3, filler=True).delay(turn[:1]) == turn[:1]  # no user message: nothing to add
