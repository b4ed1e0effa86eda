"""The reversal pack: paired probes in three layouts, the pair checks, the generator, the
reversal gap against a hand-computed grid, and the sim's reversal asymmetry."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from societies.analysis.load import load_run
from societies.analysis.reversal import probe_table, reversal_gap
from societies.cli.main import cli
from societies.errors import DataError
from societies.tasks.reversal import ReversalTask

REPO = Path(__file__).resolve().parents[1]


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def _probes(task: ReversalTask, path: Path) -> list[tuple[str, str, str, str, str]]:
    return [
        (c.id, c.fields["pair_id"], c.fields["direction"], c.fields["question"], c.target)
        for c in task.load(path)
    ]


def test_celebrity_csv_gives_a_forward_and_a_backward_probe_per_row(tmp_path: Path) -> None:
    path = tmp_path / "celebs.csv"
    path.write_text(
        "child,parent,parent_type,extra\n"
        "Tom Cruise,Mary Lee Pfeiffer,mother,x\n"
        '"Smith, Will",Willard Carroll Smith Sr.,father,y\n',
        encoding="utf-8",
    )
    assert _probes(ReversalTask(), path) == [
        ("celebs-2-f", "celebs-2", "forward", "Who is Tom Cruise's mother?", "Mary Lee Pfeiffer"),
        ("celebs-2-b", "celebs-2", "backward", "Name a child of Mary Lee Pfeiffer.", "Tom Cruise"),
        ("celebs-3-f", "celebs-3", "forward", "Who is Smith, Will's father?",
         "Willard Carroll Smith Sr."),
        ("celebs-3-b", "celebs-3", "backward", "Name a child of Willard Carroll Smith Sr.",
         "Smith, Will"),
    ]  # fmt: skip
    fact = ReversalTask().load(path)[1].fields["fact"]
    assert fact == "Tom Cruise's mother is Mary Lee Pfeiffer."


def test_celebrity_csv_without_a_column_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "celebs.csv"
    path.write_text("child,parent\nA,B\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"celebs\.csv:1: parent_type: missing column"):
        ReversalTask().load(path)


def test_prompt_completion_rows_pair_by_name(tmp_path: Path) -> None:
    path = tmp_path / "names.jsonl"
    rows = [
        {"prompt": "Daphne Barrington, known far and wide for being",
         "completion": " the director of A Journey Through Time."},
        {"prompt": "Known for being the director of A Journey Through Time, ",
         "completion": " Daphne Barrington"},
        {"prompt": "Uriah Hawthorne, known far and wide for being",
         "completion": " the composer of Abyssal Melodies."},
        {"prompt": "Immersed in the world of Abyssal Melodies, the composer",
         "completion": " Uriah Hawthorne"},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    probes = _probes(ReversalTask(), path)
    assert [(p[1], p[2], p[4]) for p in probes] == [
        ("Daphne Barrington", "forward", "the director of A Journey Through Time."),
        ("Daphne Barrington", "backward", "Daphne Barrington"),
        ("Uriah Hawthorne", "forward", "the composer of Abyssal Melodies."),
        ("Uriah Hawthorne", "backward", "Uriah Hawthorne"),
    ]
    assert probes[1][3] == (
        "Complete the sentence: Known for being the director of A Journey Through Time,"
    )
    facts = {c.fields["fact"] for c in ReversalTask().load(path)[:2]}
    assert facts == {
        "Daphne Barrington, known far and wide for being the director of A Journey Through Time."
    }


def _native(tmp_path: Path, rows: list[dict[str, str]], name: str = "probes") -> Path:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _row(pair: str, direction: str) -> dict[str, str]:
    return {"id": f"{pair}-{direction}", "pair_id": pair, "direction": direction,
            "question": f"q {pair} {direction}", "answer": "a"}  # fmt: skip


def test_a_probe_without_its_pair_and_a_pair_with_two_forward_probes_are_errors(
    tmp_path: Path,
) -> None:
    lonely = _native(tmp_path, [_row("p1", "forward"), _row("p1", "backward"),
                                _row("p2", "backward")])  # fmt: skip
    with pytest.raises(DataError) as err:
        ReversalTask().load(lonely)
    assert str(err.value) == f"{lonely}:3: pair_id: probe of pair 'p2' has no forward probe"

    twice = [_row("p1", "forward"), {**_row("p1", "forward"), "id": "x"}]
    doubled = _native(tmp_path, twice, "doubled")
    with pytest.raises(DataError) as err:
        ReversalTask().load(doubled)
    assert str(err.value) == (
        f"{doubled}:2: direction: pair 'p1' has 2 probes (forward, forward; first at "
        f"{doubled}:1), expected one forward and one backward"
    )
    # skip_invalid leaves the incomplete pair out and keeps the good one
    kept = ReversalTask(options={"skip_invalid": True}).load(lonely)
    assert [c.id for c in kept] == ["p1-forward", "p1-backward"]
    assert [c.index for c in kept] == [0, 1]

    bad_direction = _native(tmp_path, [{**_row("p1", "forward"), "direction": "sideways"}], "bad")
    with pytest.raises(DataError, match=r"bad\.jsonl:1: direction: 'sideways'"):
        ReversalTask().load(bad_direction)


def test_a_run_on_unpaired_probes_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path,
) -> None:
    data = _native(tmp_path, [_row("p1", "forward"), _row("p1", "backward"),
                              _row("p2", "forward")])  # fmt: skip
    spec = yaml.safe_load((REPO / "experiments" / "seeds" / "reversal.yaml").read_text())
    spec["task"]["data"] = str(data)
    file = tmp_path / "exp.yaml"
    file.write_text(yaml.safe_dump(spec), encoding="utf-8")
    out = tmp_path / "run"
    code, _, err = _invoke("run", str(file), "--out", str(out), "--quiet")
    assert code == 2
    assert err.strip().splitlines() == [
        f"{data}:3: pair_id: probe of pair 'p2' has no backward probe (task.data in {file})"
    ]
    assert not out.exists()
    code, _, err = _invoke("data", "validate", str(data), "--task", "reversal")
    assert code == 2 and f"{data}:3: pair_id:" in err


def test_generator_is_seeded_and_writes_complete_pairs(tmp_path: Path) -> None:
    code, first, _ = _invoke("data", "generate", "reversal", "--n", "6", "--seed", "4")
    _, again, _ = _invoke("data", "generate", "reversal", "--n", "6", "--seed", "4")
    _, other, _ = _invoke("data", "generate", "reversal", "--n", "6", "--seed", "5")
    assert code == 0 and first == again != other
    path = tmp_path / "gen.jsonl"
    path.write_text(first, encoding="utf-8")
    cases = ReversalTask().load(path)
    assert len(cases) == 12
    for forward, backward in zip(cases[::2], cases[1::2], strict=True):
        assert forward.fields["pair_id"] == backward.fields["pair_id"]
        assert (forward.fields["direction"], backward.fields["direction"]) == (
            "forward",
            "backward",
        )
        fact = forward.fields["fact"]
        # the fact names both answers: the person first, then the work
        assert fact.startswith(backward.target) and fact.endswith(f"{forward.target}.")
        assert backward.target in forward.fields["question"]
        assert forward.target in backward.fields["question"]
    people = [c.target for c in cases[1::2]]
    assert len(set(people)) == len(people)
    code, _, err = _invoke("data", "generate", "reversal", "--n", "500")
    assert code == 2 and "at most" in err


def _votes(rows: list[tuple[str, int, str, int, bool, bool]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"run": "r", "task": "reversal", "repeat": rep, "case_id": case, "society": "s",
             "strategy": strategy, "round": rnd, "correct": correct, "complete": complete}
            for case, rep, strategy, rnd, correct, complete in rows
        ]
    )  # fmt: skip


def test_reversal_gap_against_a_hand_computed_grid() -> None:
    probes = probe_table(
        [("r", f"p{i}-{d[0]}", f"p{i}", d) for i in range(1, 6) for d in ("forward", "backward")]
    )
    rows = [
        # strategy "0", round 0: pairs p1 (1, 0), p2 (1, 1), p3 (0, 0); p4's backward answer
        # is incomplete and p5 has no backward vote at all: both left out.
        ("p1-f", 0, "0", 0, True, True), ("p1-b", 0, "0", 0, False, True),
        ("p2-f", 0, "0", 0, True, True), ("p2-b", 0, "0", 0, True, True),
        ("p3-f", 0, "0", 0, False, True), ("p3-b", 0, "0", 0, False, True),
        ("p4-f", 0, "0", 0, True, True), ("p4-b", 0, "0", 0, False, False),
        ("p5-f", 0, "0", 0, True, True),
        # round 1: p1 in two repeats, forward right and backward wrong each time
        ("p1-f", 0, "0", 1, True, True), ("p1-b", 0, "0", 1, False, True),
        ("p1-f", 1, "0", 1, True, True), ("p1-b", 1, "0", 1, False, True),
        # a case that is not a probe is ignored
        ("other", 0, "0", 1, False, True),
    ]  # fmt: skip
    gap = reversal_gap(_votes(rows), probes).set_index("round")
    assert list(gap["pairs"]) == [3, 2]
    assert gap.loc[0, "forward"] == pytest.approx(2 / 3)
    assert gap.loc[0, "backward"] == pytest.approx(1 / 3)
    assert gap.loc[0, "gap"] == pytest.approx(1 / 3)  # (1 + 0 + 0) / 3
    cis = gap[["gap", "ci_low", "ci_high"]].to_numpy(dtype=float)
    assert 0 <= cis[0, 1] <= 1 / 3 <= cis[0, 2] <= 1
    assert cis[1].tolist() == [1.0, 1.0, 1.0]
    assert reversal_gap(_votes(rows), probe_table([])).empty


def _run_reversal(tmp_path: Path, name: str, **options: float) -> pd.DataFrame:
    spec = yaml.safe_load((REPO / "experiments" / "seeds" / "reversal.yaml").read_text())
    spec["task"]["data"] = str(REPO / "experiments" / "data" / "reversal.jsonl")
    spec["model"]["options"].update(options, unparsed_rate=0.0)
    spec["societies"] = [{"name": "single", "agents": ["overconfident"]}]
    spec["rounds"], spec["strategies"] = 0, [""]
    file = tmp_path / f"{name}.yaml"
    file.write_text(yaml.safe_dump(spec), encoding="utf-8")
    code, _, err = _invoke("run", str(file), "--out", str(tmp_path / name), "--limit", "20")
    assert code == 0, err
    return load_run(tmp_path / name).reversal_gap


def test_the_sim_answers_backward_probes_worse_by_the_reversal_factor(tmp_path: Path) -> None:
    blocked = _run_reversal(tmp_path, "blocked", accuracy=1.0, reversal_factor=0.0)
    assert blocked[["pairs", "forward", "backward", "gap"]].to_dict("records") == [
        {"pairs": 30, "forward": 1.0, "backward": 0.0, "gap": 1.0}  # 10 pairs x 3 repeats
    ]
    even = _run_reversal(tmp_path, "even", accuracy=1.0, reversal_factor=1.0)
    assert math.isclose(even["gap"].iloc[0], 0.0) and even["backward"].iloc[0] == 1.0


def test_run_prints_the_reversal_gap(tmp_path: Path) -> None:
    code, out, err = _invoke("run", str(REPO / "experiments" / "seeds" / "reversal-relay.yaml"),
                             "--out", str(tmp_path / "relay"), "--limit", "4")  # fmt: skip
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("reversal gap")]
    analysis = load_run(tmp_path / "relay")
    last = analysis.reversal_gap[analysis.reversal_gap["round"] == 3]
    assert len(lines) == len(last) == 4  # 2 societies x 2 strategies
    first = last.iloc[0]
    assert lines[0].startswith(
        f"reversal gap, round 3: {first.society} / {first.strategy}: {first.gap:+.3f} "
    )
    assert "reversal_gap" in analysis.tables()
