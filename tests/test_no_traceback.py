"""One line, exit 2, nothing written: the inputs that used to end in a traceback."""

from __future__ import annotations

import pickle
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from societies.cli.main import cli
from tests.helpers import QUICKSTART_DATA, experiment, write


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def assert_refused(result: Result, expected: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0], lines[0]
    assert len(lines[0]) < 600


def run_args(file: Path, out: Path, *extra: str) -> list[str]:
    return ["run", str(file), "--out", str(out), "--quiet", *extra]


def test_out_naming_an_existing_file(tmp_path: Path) -> None:
    file = write(tmp_path, experiment())
    (tmp_path / "taken").write_text("mine")
    assert_refused(invoke(*run_args(file, tmp_path / "taken")), "exists and is not a directory")
    assert (tmp_path / "taken").read_text() == "mine"


def test_out_under_a_path_that_cannot_be_a_directory(tmp_path: Path) -> None:
    file = write(tmp_path, experiment())
    (tmp_path / "f").write_text("")
    assert_refused(
        invoke(*run_args(file, tmp_path / "f" / "run")), "cannot create the run directory"
    )


def test_out_name_too_long(tmp_path: Path) -> None:
    file = write(tmp_path, experiment())
    result = invoke(*run_args(file, tmp_path / ("x" * 300)))
    assert_refused(result, "File name too long")


def test_a_directory_where_the_store_should_be(tmp_path: Path) -> None:
    file = write(tmp_path, experiment())
    (tmp_path / "run" / "store.sqlite").mkdir(parents=True)
    assert_refused(
        invoke(*run_args(file, tmp_path / "run")), "a directory where the run store should be"
    )


def make_store(tmp_path: Path) -> tuple[Path, Path]:
    file = write(tmp_path, experiment())
    out = tmp_path / "run"
    assert invoke(*run_args(file, out, "--limit", "1")).exit_code == 0
    return file, out


def test_a_store_without_its_calls_table(tmp_path: Path) -> None:
    file, out = make_store(tmp_path)
    con = sqlite3.connect(out / "store.sqlite")
    con.execute("DROP TABLE calls")
    con.commit()
    con.close()
    before = (out / "store.sqlite").read_bytes()
    assert_refused(invoke(*run_args(file, out)), "a damaged store (no calls table)")
    assert (out / "store.sqlite").read_bytes() == before


def test_a_store_with_a_blob_reply(tmp_path: Path) -> None:
    file, out = make_store(tmp_path)
    con = sqlite3.connect(out / "store.sqlite")
    con.execute("UPDATE calls SET reply = x'00ff' WHERE rowid = 3")
    con.commit()
    con.close()
    assert_refused(invoke(*run_args(file, out)), "a damaged store (call")


def test_foreign_wal_file_gets_no_sidecar_files(tmp_path: Path) -> None:
    file = write(tmp_path, experiment())
    out = tmp_path / "run"
    out.mkdir()
    con = sqlite3.connect(out / "store.sqlite")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE photos (id INTEGER)")
    con.commit()
    con.close()
    assert_refused(invoke(*run_args(file, out)), "not a societies store")
    assert sorted(p.name for p in out.iterdir()) == ["store.sqlite"]


TEMPLATES = {
    "syntax": ("{% if %}", "template line 1"),
    "division": ("{{ 1 / 0 }}", "ZeroDivisionError"),
    "include": ("{% include 'nowhere.j2' %}", "includes nowhere.j2, which does not exist"),
    "recursion": ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "RecursionError"),
    "memory": ("{{ 'x' * 10**10 }}", "unsafe operation refused"),
    "power": ("{{ 9 ** 1000000000 }}", "unsafe operation refused"),
    "cpu": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "took more than 2 s to render",
    ),
}


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_a_persona_template_that_fails(tmp_path: Path, kind: str) -> None:
    template, expected = TEMPLATES[kind]
    data = experiment(traits={"odd": {"persona": template}}, societies=[{"agents": ["odd", "odd"]}])
    assert_refused(invoke(*run_args(write(tmp_path, data), tmp_path / "run")), expected)
    assert not (tmp_path / "run").exists()


def test_a_pattern_template_that_fails(tmp_path: Path) -> None:
    data = experiment(
        patterns={"odd": {"code": "x", "template": "{{ peers | length / 0 }}"}},
        strategies=[{"rounds": ["odd", "odd"]}],
    )
    assert_refused(invoke(*run_args(write(tmp_path, data), tmp_path / "run")), "ZeroDivisionError")


def test_a_deeply_nested_data_row(tmp_path: Path) -> None:
    rows = QUICKSTART_DATA.read_text().splitlines()[:3]
    rows.append('{"id": "deep", "question": ' + "[" * 100_000 + "]" * 100_000 + "}")
    data_file = tmp_path / "d.jsonl"
    data_file.write_text("\n".join(rows) + "\n")
    data = experiment()
    data["task"]["data"] = str(data_file)
    result = invoke(*run_args(write(tmp_path, data), tmp_path / "run"))
    assert_refused(result, "")
    assert not (tmp_path / "run").exists()


def test_a_five_megabyte_trait_name_gives_a_short_line(tmp_path: Path) -> None:
    data = experiment(societies=[{"agents": ["t" * 5_000_000]}])
    assert_refused(invoke(*run_args(write(tmp_path, data), tmp_path / "run")), "unknown trait")


def test_data_inspect_takes_a_template_option_as_text(tmp_path: Path) -> None:
    data_file = tmp_path / "g.jsonl"
    data_file.write_text('{"id": "a", "prompt": "2+2?", "answer": "4"}\n')
    result = invoke(
        "data", "inspect", str(data_file), "--task", "jsonl", "-o", "question={{ prompt }}"
    )
    assert result.exit_code == 0, result.output
    assert '"question": "2+2?"' in result.stdout


class _Reduce:
    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> Any:
        return (self.fn, self.args)


def hostile_pickles() -> dict[str, bytes]:
    loop: list[Any] = []
    loop.append(loop)
    dag: list[Any] = ["leaf"]
    for _ in range(80):
        dag = [dag, dag]
    return {
        "huge-bytes": pickle.dumps(_Reduce(bytes, 2**40)),
        "self-reference": pickle.dumps(loop),
        "shared-dag": pickle.dumps(dag),
    }


@pytest.mark.parametrize("kind", ["huge-bytes", "self-reference", "shared-dag"])
def test_hostile_pickles_in_import(tmp_path: Path, kind: str) -> None:
    results = tmp_path / "results"
    results.mkdir()
    bad = results / "1_harmony_3_agents_3_turns_010_strategy_case_0.pkl"
    bad.write_bytes(hostile_pickles()[kind])
    result = subprocess.run(
        [sys.executable, "-m", "societies", "import", "machinesom", str(results), "--task",
         "mmlu", "--data", str(QUICKSTART_DATA), "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=60,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3)),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0], result.stderr
    assert not (tmp_path / "run" / "store.sqlite").exists()


def test_missing_api_key_found_before_the_run_directory_exists(tmp_path: Path) -> None:
    data = experiment(
        model={
            "backend": "openai",
            "name": "gpt-4o-mini",
            "options": {"api_key_env": "SOCIETIES_NO_SUCH_KEY"},
        }
    )
    result = invoke(*run_args(write(tmp_path, data), tmp_path / "run"))
    assert_refused(result, "SOCIETIES_NO_SUCH_KEY is not set")
    assert not (tmp_path / "run").exists()


def test_full_disk_during_a_run_is_one_line_and_the_store_intact(tmp_path: Path) -> None:
    file = write(tmp_path, experiment(repeats=20))
    out = tmp_path / "run"
    # Bytes a file may grow to: the store fills up mid-run (the compact store keeps this run's
    # 3,840 calls in about 2 MB, so the limit sits well below that).
    limit = 1_000_000

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-m", "societies", "run", str(file), "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=120, preexec_fn=small_disk,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "full" in lines[0], result.stderr
    assert "no transaction is active" not in result.stderr
    con = sqlite3.connect(out / "store.sqlite")
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = con.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    finally:
        con.close()
    assert stored > 0
    # Room again: the run resumes to the end.
    resumed = subprocess.run(
        [sys.executable, "-m", "societies", "run", str(file), "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
