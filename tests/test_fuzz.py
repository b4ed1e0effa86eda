"""Bounded, seeded fuzzing of the command line with mutated experiment and data files derived
from the shipped experiments: never a traceback, and every refusal is exit 2 in at most 3
lines. In-process (click's CliRunner), a few hundred inputs in well under a minute."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from societies.cli.main import cli
from tests.helpers import REPO

SEED = 20240601
EXPERIMENT_CASES = 220
DATA_CASES = 100
#: Of the experiment cases, every n-th is run for real on the sim (--limit 1), not dry.
REAL_EVERY = 10

ODD_VALUES: list[Any] = [
    None, -1, 0, 1, 10**30, -(10**30), 1.5, -0.5, float("nan"), "", "x" * 5000, "{{ 1/0 }}",
    "{% for i in range(99999) %}{% endfor %}", [], {}, [1, 2], {"a": 1}, True, "../../../etc",
    "é\u0000\u202e", "a|b", "*", "&", "0" * 400, [[[[[]]]]], {"name": None}, "sim:default",
]  # fmt: skip
ODD_TEXT = [
    "\t",
    ":",
    "'",
    '"',
    "&a ",
    "*a ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    "#",
    "\\",
    "%",
    "!!python/object ",
]


def shipped_experiments() -> list[Path]:
    return sorted((REPO / "experiments").glob("*.yaml")) + sorted(
        (REPO / "experiments" / "paper").glob("*.yaml")
    )


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


def mutate_tree(data: Any, rng: random.Random) -> Any:
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(paths(data)[1:] or [()])
        if not path:
            return rng.choice(ODD_VALUES)
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        key = path[-1]
        action = rng.random()
        if action < 0.25 and isinstance(parent, dict):
            del parent[key]
        elif action < 0.35 and isinstance(parent, dict):
            parent[f"{key}_typo"] = parent[key]
        elif action < 0.45 and isinstance(parent, list):
            parent.append(parent[key])
        else:
            parent[key] = rng.choice(ODD_VALUES)
    return data


def mutate_text(text: str, rng: random.Random) -> str:
    action = rng.random()
    if action < 0.3:
        return text[: rng.randrange(len(text))]
    lines = text.splitlines()
    i = rng.randrange(len(lines))
    if action < 0.5:
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    else:
        pos = rng.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:pos] + rng.choice(ODD_TEXT) + lines[i][pos:]
    return "\n".join(lines) + "\n"


def check(result: Any, label: str) -> int:
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        label,
        repr(result.exception),
    )
    assert "Traceback" not in result.output, label
    if result.exit_code != 0:
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2, (label, result.exit_code, result.stderr)
        assert 1 <= len(lines) <= 3, (label, result.stderr)
    return int(result.exit_code)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(REPO / "experiments" / "data", root / "data")
    return root


def test_mutated_experiment_files(workspace: Path) -> None:
    rng = random.Random(SEED)
    sources = shipped_experiments()
    runner = CliRunner()
    codes = []
    for n in range(EXPERIMENT_CASES):
        source = rng.choice(sources)
        text = source.read_text(encoding="utf-8")
        if rng.random() < 0.5:
            data = yaml.safe_load(text)
            text = yaml.safe_dump(mutate_tree(data, rng), sort_keys=False, allow_unicode=True)
        else:
            text = mutate_text(text, rng)
        file = workspace / f"e{n}.yaml"
        file.write_text(text, encoding="utf-8")
        out = workspace / f"run{n}"
        real = n % REAL_EVERY == 0
        args = ["run", str(file), "--out", str(out), "--quiet", "--limit", "1" if real else "2"]
        if not real:
            args.append("--dry-run")
        codes.append(check(runner.invoke(cli, args), f"{source.name} #{n}: {text[:2000]}"))
    # Both kinds happen: the mutations neither all break nor all miss the files.
    assert codes.count(0) > 10 and codes.count(2) > 100


def test_mutated_data_files(workspace: Path) -> None:
    rng = random.Random(SEED + 1)
    runner = CliRunner()
    base = yaml.safe_load((REPO / "experiments" / "quickstart.yaml").read_text(encoding="utf-8"))
    rows = (REPO / "experiments" / "data" / "quickstart_mmlu.jsonl").read_text().splitlines()[:6]
    codes = []
    for n in range(DATA_CASES):
        lines = list(rows)
        i = rng.randrange(len(lines))
        action = rng.random()
        if action < 0.4:
            row = json.loads(lines[i])
            row = mutate_tree(row, rng)
            lines[i] = json.dumps(row, ensure_ascii=False, default=str)
        elif action < 0.7:
            lines[i] = mutate_text(lines[i], rng).rstrip("\n")
        elif action < 0.8:
            lines[i] = '{"id": "deep", "question": ' + "[" * 50_000 + "]" * 50_000 + "}"
        else:
            lines.insert(i, rng.choice(["", "null", "[]", '"text"', "{}", "\ufeff{}", "1e999"]))
        data_file = workspace / f"d{n}.jsonl"
        data_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        experiment = dict(base, output=None, repeats=1)
        experiment["task"] = dict(base["task"], data=str(data_file))
        file = workspace / f"de{n}.yaml"
        file.write_text(yaml.safe_dump(experiment, sort_keys=False), encoding="utf-8")
        args = ["run", str(file), "--out", str(workspace / f"drun{n}"), "--quiet", "--dry-run"]
        codes.append(check(runner.invoke(cli, args), f"data #{n}: {lines[i][:300]}"))
    assert codes.count(0) > 5 and codes.count(2) > 50
