"""Every task runs end to end on the sim model from a YAML experiment; data tools and rescore
work from the command line."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from random import Random

import pytest
from click.testing import CliRunner

from societies.backends.simulated import simulated_task
from societies.cli.main import cli
from societies.tasks.base import Case, Task, get_task_class, task_names
from societies.tasks.chess import ChessTask, generate_games
from societies.tasks.generate import generate_arithmetic
from societies.tasks.reversal import generate_reversal

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = ["quickstart", "chess", "math", "arithmetic", "capitals", "seeds/reversal",
               "seeds/reversal-relay"]  # fmt: skip


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_example_experiment_runs_on_the_sim_model(name: str, tmp_path: Path) -> None:
    code, _, err = _invoke("run", str(REPO / "experiments" / f"{name}.yaml"),
                             "--out", str(tmp_path / name), "--quiet", "--limit", "3")  # fmt: skip
    assert code == 0, err
    con = sqlite3.connect(tmp_path / name / "store.sqlite")
    total, parsed, correct = con.execute(
        "SELECT COUNT(*), COUNT(answer), SUM(correct) FROM calls WHERE step = 'answer'"
    ).fetchone()
    con.close()
    assert total > 0 and 0 < parsed <= total and 0 < correct < total


@pytest.mark.parametrize("name", ["mmlu", "math", "chess", "gsm8k", "jsonl", "reversal"])
@pytest.mark.parametrize("extraction", ["paper", "robust"])
def test_sim_replies_parse_back_to_their_answer(name: str, extraction: str) -> None:
    """The sim hooks and the parsers agree: what the simulated agent says is what is read."""
    task = get_task_class(name)(extraction)  # type: ignore[arg-type]
    sim = simulated_task(task)
    rng = Random(0)
    for case in _cases(task):
        for correct in (True, False):
            for _ in range(5):
                answer = sim.sim_answer(case, correct, rng)
                reply = sim.sim_reply(case, answer, rng)
                parsed = task.parse_case(reply, case)
                assert parsed == answer, (reply, answer)
                assert task.score(parsed, case) is (correct and _gradable(task, case)), reply
        if not (extraction == "paper" and name in ("jsonl", "reversal")):  # any last line
            assert task.parse_case(sim.sim_reply(case, None, rng), case) is None


def _gradable(task: Task, case: Case) -> bool:
    """Whether a right answer can be graded right at all. The reference's MATH grading
    removes every brace from the answer but none from the target, so in ``paper`` mode a
    target with braces (``\\frac{1}{2}``) never matches; the study's 50 targets are plain
    integers and never meet this."""
    return not (task.name == "math" and task.extraction == "paper" and "{" in str(case.target))


def _cases(task: Task) -> list[Case]:
    rows: list[dict[str, object]]
    if task.name == "chess":
        rows = list(generate_games(5, 1))
    elif task.name == "math":
        rows = [{"problem": "p", "answer": a} for a in ("7", "-3", "\\frac{1}{2}", "2\\sqrt{3}")]
    elif task.name == "mmlu":
        # option texts that the sim's explanations never contain, so the reference's rule
        # (the option text quoted last wins over the letter) reads the quoted option
        choices = ["mitochondria", "nucleus", "ribosome", "golgi apparatus"]
        rows = [{"question": "q", "choices": choices, "answer": "C"}]
    else:
        rows = [dict(r) for r in generate_arithmetic(5, 2)]
        if task.name == "jsonl":
            rows = [{"question": "capital of France?", "answer": "Paris"}]
        if task.name == "reversal":
            rows = [dict(r) for r in generate_reversal(2, 0)]
    assert hasattr(task, "check_row")
    fields = [task.check_row(f"row{i}", r) for i, r in enumerate(rows)]
    return [Case(str(i), i, dict(f), task.target_of(f)) for i, f in enumerate(fields)]


def test_generators_are_seeded_and_deterministic() -> None:
    code, first, _ = _invoke("data", "generate", "chess", "--n", "50", "--seed", "0")
    code2, second, _ = _invoke("data", "generate", "chess", "--n", "50", "--seed", "0")
    _, other, _ = _invoke("data", "generate", "chess", "--n", "50", "--seed", "1")
    assert code == code2 == 0 and first == second != other
    rows = [json.loads(line) for line in first.splitlines()]
    assert len(rows) == 50
    task = ChessTask()
    for row in rows:  # every generated question is valid and its target list is exact
        fields = task.check_row(row["id"], row)
        assert set(row["target"]) == task.target_of(fields)
        assert row["input"].split()[-1] == row["piece_square"]
    _, arith, _ = _invoke("data", "generate", "arithmetic", "--n", "3", "--seed", "7")
    for row in map(json.loads, arith.splitlines()):
        a, b, c, d, e, f = map(int, re.findall(r"\d+", row["question"]))
        assert row["question"] == f"What is the result of {a}+{b}*{c}+{d}-{e}*{f}?"
        assert row["answer"] == str(a + b * c + d - e * f)


def test_data_inspect_and_validate(tmp_path: Path) -> None:
    good = REPO / "experiments" / "data" / "chess_generated.jsonl"
    code, out, err = _invoke("data", "inspect", str(good), "--task", "chess")
    assert code == 0 and "50 cases for task chess" in out and "piece_square (50)" in out
    code, out, err = _invoke("data", "validate", str(good), "--task", "chess")
    assert code == 0 and "50 rows, 50 usable, 0 unusable" in out
    bad = tmp_path / "bad.jsonl"
    rows = [json.loads(x) for x in good.read_text().splitlines()[:3]]
    rows[1]["input"] = "e2e5 " + rows[1]["input"]
    rows.append(rows[0])
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows) + "oops\n")
    code, out, err = _invoke("data", "validate", str(bad), "--task", "chess")
    assert code == 2
    assert f"{bad}:2: input: move 1 'e2e5' is not legal here" in err
    assert f"{bad}:4: id: duplicate id 'chess-gen-0'" in err
    assert f"{bad}:5: invalid JSON" in err
    assert "5 rows, 2 usable, 3 unusable" in out
    code, out, err = _invoke("data", "inspect", str(bad), "--task", "chess")
    assert code == 2 and err.count("\n") == 1 and f"{bad}:2: input" in err
    code, out, err = _invoke("data", "inspect", str(bad), "--task", "chess", "--skip-invalid")
    assert code == 0 and "2 cases" in out
    code, out, err = _invoke("data", "inspect", str(bad), "--task", "nope")
    assert code == 2 and "unknown task 'nope'" in err
    code, out, err = _invoke("data", "validate", str(tmp_path / "missing.jsonl"), "--task", "math")
    assert code == 2 and "data file not found" in err


def test_rescore_switches_extraction_without_model_calls(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    code, _, err = _invoke("run", str(REPO / "experiments" / "math.yaml"), "--out", str(run_dir),
                           "--quiet", "--limit", "4")  # fmt: skip
    assert code == 0, err
    store = run_dir / "store.sqlite"

    def snapshot() -> tuple[int, int, str, list[str | None]]:
        con = sqlite3.connect(store)
        calls = con.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        correct = con.execute("SELECT SUM(correct) FROM calls WHERE step='answer'").fetchone()[0]
        mode = con.execute("SELECT extraction FROM run").fetchone()[0]
        modes = [r[0] for r in con.execute("SELECT DISTINCT extraction FROM calls")]
        con.close()
        return calls, correct, mode, modes

    calls, robust_correct, mode, modes = snapshot()
    assert mode == "robust" and modes == [None]
    code, out, err = _invoke("rescore", str(run_dir), "--extraction", "paper")
    assert code == 0, err
    assert "answers changed" in out and "unparsed replies by society, agent and round" in out
    from societies.analysis.rescore import unparsed_rates
    from societies.store.db import RunStore

    reader = RunStore.for_run_dir(run_dir, readonly=True)
    cells = unparsed_rates(reader)
    reader.con.close()
    assert sum(c.replies for c in cells) == calls - 4 * 4 * 3  # all but the role-play calls
    assert {c.round for c in cells} == {0, 1, 2, 3} and {c.agent for c in cells} == {0, 1, 2}
    after = snapshot()
    assert after[0] == calls and after[2] == "paper" and set(after[3]) == {None, "paper"}
    # The sim answers fractions and surds that the reference's string grading misses.
    assert after[1] < robust_correct
    code, out, err = _invoke("rescore", str(run_dir), "--extraction", "robust")
    assert snapshot()[1] == robust_correct
    code, out, err = _invoke("rescore", str(tmp_path), "--extraction", "robust")
    assert code == 2 and "no run store" in err


def test_task_names_and_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    assert {"chess", "gsm8k", "jsonl", "math", "mmlu"} <= set(task_names())
    plugin = metadata.EntryPoint(
        name="my-chess", value="societies.tasks.chess:ChessTask", group="societies.tasks"
    )
    broken = metadata.EntryPoint(name="broken", value="no_such_module:X", group="societies.tasks")

    def fake_entry_points(group: str) -> list[metadata.EntryPoint]:
        return [plugin, broken] if group == "societies.tasks" else []

    monkeypatch.setattr(metadata, "entry_points", fake_entry_points)
    assert get_task_class("my-chess") is ChessTask
    assert "my-chess" in task_names()
    with pytest.raises(KeyError, match="cannot load task 'broken'"):
        get_task_class("broken")
    assert get_task_class("societies.tasks.math:MathTask").name == "math"


def _experiment(tmp_path: Path, task: dict[str, object]) -> Path:
    file = tmp_path / "exp.yaml"
    body = {"name": "t", "task": task, "societies": [{"agents": 2}], "rounds": 1}
    file.write_text(json.dumps(body), encoding="utf-8")  # JSON is YAML
    return file


def test_run_with_a_bad_row_and_skip_invalid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "g.jsonl"
    data.write_text('{"question": "1+1?", "answer": 2}\n{"question": "2+2?"}\n')
    file = _experiment(tmp_path, {"name": "gsm8k", "data": str(data)})
    code, _, err = _invoke("run", str(file), "--out", str(tmp_path / "a"), "--quiet")
    assert code == 2 and f"{data}:2: answer: missing" in err and "Traceback" not in err
    assert not (tmp_path / "a").exists()
    code, _, err = _invoke("run", str(file), "--out", str(tmp_path / "b"), "--quiet",
                           "--skip-invalid")  # fmt: skip
    assert code == 0, err
    assert "skipped 1 of 2 rows" in caplog.text


def test_math_release_directory_as_experiment_data(tmp_path: Path) -> None:
    folder = tmp_path / "MATH" / "algebra"
    folder.mkdir(parents=True)
    problem = {"problem": "What is $1+1$?", "solution": "$\\boxed{2}$", "level": "Level 1"}
    (folder / "1.json").write_text(json.dumps(problem), encoding="utf-8")
    file = _experiment(tmp_path, {"name": "math", "data": str(tmp_path / "MATH")})
    code, _, err = _invoke("run", str(file), "--out", str(tmp_path / "run"), "--quiet")
    assert code == 0, err


def test_generic_task_option_errors_point_at_the_file(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"question": "q", "answer": "a"}\n')
    file = _experiment(tmp_path, {"name": "jsonl", "data": str(data),
                                  "options": {"scoring": "fuzzy"}})  # fmt: skip
    code, _, err = _invoke("run", str(file), "--out", str(tmp_path / "run"), "--quiet")
    assert code == 2
    assert err.startswith(f"{file}") and "task.options.scoring: Input should be" in err


def test_a_schema_1_store_gains_the_extraction_column(tmp_path: Path) -> None:
    from importlib import resources

    from societies.store.db import RunStore

    path = tmp_path / "store.sqlite"
    con = sqlite3.connect(path)
    sql = (resources.files("societies.store") / "migrations" / "0001_initial.sql").read_text()
    con.executescript(sql + ";CREATE TABLE schema_version (version INTEGER NOT NULL);"
                      "INSERT INTO schema_version VALUES (1);")  # fmt: skip
    con.close()
    store = RunStore(path)
    columns = {row[1] for row in store.con.execute("PRAGMA table_info(calls)")}
    version = store.con.execute("SELECT version FROM schema_version").fetchone()[0]
    store.close()
    assert "extraction" in columns and version >= 2
