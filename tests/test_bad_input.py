"""Bad input: one line naming file, line and field; exit code 2; nothing written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from societies.cli.main import cli
from tests.helpers import QUICKSTART_DATA

GOOD = f"""\
name: bad
task:
  name: mmlu
  data: {QUICKSTART_DATA}
  cases: 2
prompts: machinesom
societies:
  - name: mixed
    agents:
      - trait: easy-going
      - trait: overconfident
      - trait: overconfident
rounds: 2
strategies: all
"""


def run_cli(tmp_path: Path, text: str) -> tuple[int, str, Path]:
    file = tmp_path / "quickstart.yaml"
    file.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(file), "--out", str(out), "--quiet"])
    return result.exit_code, result.stderr, out


def assert_one_line(code: int, stderr: str, out: Path, expected: str) -> None:
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert expected in lines[0], lines[0]
    assert not out.exists(), "nothing may be written on bad input"


def test_good_experiment_runs(tmp_path: Path) -> None:
    code, stderr, out = run_cli(tmp_path, GOOD)
    assert code == 0, stderr
    assert (out / "store.sqlite").is_file()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("      - trait: overconfident\nrounds",
         "      - trait: bold\nrounds",
         "quickstart.yaml:12: societies[0].agents[2].trait: unknown trait 'bold' "
         "(known: easy-going, overconfident)"),
        ("      - trait: easy-going\n",
         "      - trait: easy-going\n        mood: calm\n",
         "quickstart.yaml:11: societies[0].agents[0].mood: unknown key 'mood'"),
        ("rounds: 2", "rounds: two", "quickstart.yaml:13: rounds: Input should be a valid integer"),
        ("name: bad\n", "name: bad\nseeds: 3\n", "quickstart.yaml:2: seeds: unknown key 'seeds'"),
        ("  name: mmlu", "  name: mmmlu", "quickstart.yaml:3: task.name: unknown task 'mmmlu'"),
        ("prompts: machinesom",
         "prompts: machinesom\nmodel:\n  backend: gpt\n  name: x",
         "quickstart.yaml:8: model.backend: unknown backend 'gpt'"),
        ("strategies: all", "strategies: ['0x']",
         "quickstart.yaml:14: strategies[0]: strategy '0x': bad character 'x' at position 1"),
        ("strategies: all", "strategies: ['010']",
         "quickstart.yaml:14: strategies[0]: strategy '010' has 3 rounds, expected 2"),
        ("strategies: all", "strategies:\n  - rounds: [debate, argue]",
         "quickstart.yaml:15: strategies[0]: unknown pattern 'argue'"),
        ("    agents:\n      - trait: easy-going\n      - trait: overconfident\n"
         "      - trait: overconfident\n",
         "    agents: []\n",
         "quickstart.yaml:9: societies[0].agents: a society needs at least one agent"),
        ("    agents:\n      - trait: easy-going\n      - trait: overconfident\n"
         "      - trait: overconfident\n",
         "    agents: 0\n",
         "quickstart.yaml:9: societies[0].agents: a society needs at least one agent"),
        (f"  data: {QUICKSTART_DATA}", "  data: nowhere.jsonl",
         "quickstart.yaml:4: task.data: data file not found"),
        ("  cases: 2", "  cases: 2\n  extraction: fuzzy",
         "quickstart.yaml:6: task.extraction: Input should be 'robust' or 'paper'"),
        ("rounds: 2\n", "rounds: 2\n  oops: [\n", "quickstart.yaml:14: malformed YAML"),
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_line(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in GOOD
    code, stderr, out = run_cli(tmp_path, GOOD.replace(old, new))
    assert_one_line(code, stderr, out, expected)


def test_missing_experiment_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2
    assert "none.yaml: file not found" in result.stderr


def test_bad_data_row_names_file_and_row(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(
        '{"id": "a", "question": "q", "choices": ["1","2","3","4"], "answer": "A"}\n'
        '{"id": "b", "question": "q", "choices": ["1","2","3"], "answer": "A"}\n'
    )
    code, stderr, out = run_cli(tmp_path, GOOD.replace(str(QUICKSTART_DATA), str(data)))
    assert_one_line(code, stderr, out, "d.jsonl:2: choices: expected 4 strings, found 3 values")


@pytest.mark.parametrize("kind", ["garbage", "foreign"])
def test_corrupt_or_foreign_store_is_refused_and_left_untouched(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    store = out / "store.sqlite"
    if kind == "garbage":
        store.write_bytes(b"SQLite format 3\x00" + b"\x07" * 5000)
    else:
        con = sqlite3.connect(store)
        con.execute("CREATE TABLE photos (id INTEGER)")
        con.commit()
        con.close()
    before = store.read_bytes()
    file = tmp_path / "quickstart.yaml"
    file.write_text(GOOD)
    result = CliRunner().invoke(cli, ["run", str(file), "--out", str(out), "--quiet"])
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert ("corrupt" if kind == "garbage" else "not a societies store") in result.stderr
    assert store.read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["store.sqlite"]


def test_changed_experiment_is_refused_not_mixed(tmp_path: Path) -> None:
    code, stderr, _ = run_cli(tmp_path, GOOD)
    assert code == 0
    code, stderr, _ = run_cli(tmp_path, GOOD.replace("prompts: machinesom", "prompts: default"))
    assert code == 2
    assert "different experiment (changed: prompts)" in stderr
    # More cases only extend the run.
    code, stderr, _ = run_cli(tmp_path, GOOD.replace("cases: 2", "cases: 3"))
    assert code == 0, stderr


def test_schema_command_prints_the_experiment_schema() -> None:
    import json

    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["additionalProperties"] is False
    assert {"name", "societies"} <= set(schema["required"])
    assert {"task", "tasks"} <= set(schema["properties"])


def test_published_schema_is_current() -> None:
    from societies.cli.schema_cmd import experiment_schema
    from tests.helpers import REPO

    published = (REPO / "experiments" / "schema.json").read_text(encoding="utf-8")
    assert published == experiment_schema(), "run: societies schema > experiments/schema.json"


def test_resume_after_rescore_refuses_mixed_extraction(tmp_path: Path) -> None:
    code, stderr, out = run_cli(tmp_path, GOOD)
    assert code == 0, stderr
    result = CliRunner().invoke(cli, ["rescore", str(out), "--extraction", "paper"])
    assert result.exit_code == 0, result.stderr
    code, stderr, _ = run_cli(tmp_path, GOOD)
    assert code == 2
    assert "extracted with 'paper'" in stderr
    code, stderr, _ = run_cli(tmp_path, GOOD.replace("cases: 2", "cases: 2\n  extraction: paper"))
    assert code == 0, stderr
