"""Significance tests, bootstrap intervals, Table 2 marks and the W column."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from societies.analysis import stats
from societies.analysis.tables import _marks, all_debate, wins, wins_by_society


def test_bootstrap_is_reproducible_and_brackets_the_mean() -> None:
    values = [1, 0, 1, 1, 0, 1, 0, 1, 1, 1]
    low, high = stats.bootstrap_ci(values)
    assert (low, high) == stats.bootstrap_ci(values)  # fixed seed
    assert low < 0.7 < high and low >= 0 and high <= 1
    assert stats.bootstrap_ci([1, 1, 1]) == (1.0, 1.0)
    assert all(np.isnan(stats.bootstrap_ci([])))


def test_one_way_anova_by_hand() -> None:
    # means 2 and 5, grand mean 3.5: SSB = 2 * 3 * 1.5^2 = 13.5 (df 1), SSW = 2 + 2 (df 4)
    out = stats.one_way({"a": np.array([1.0, 2, 3]), "b": np.array([4.0, 5, 6])})
    assert out["F"] == pytest.approx(13.5)
    assert out["levene_p"] == pytest.approx(1.0)  # identical spreads
    assert out["groups"] == 2 and out["note"] == ""


def test_one_way_uses_every_group_not_the_first_three() -> None:
    groups = {
        "a": np.array([1.0, 2, 3]),
        "b": np.array([1.5, 2.5, 3.5]),
        "c": np.array([1.0, 2.5, 3]),
        "d": np.array([9.0, 10, 11]),  # only this one differs
    }
    out = stats.one_way(groups)
    assert out["groups"] == 4
    assert out["F"] == pytest.approx(sps.f_oneway(*groups.values()).statistic)
    assert out["p"] < 0.001
    first_three = sps.f_oneway(*list(groups.values())[:3])
    assert first_three.pvalue > 0.5  # the reference's shortcut would have missed it


def test_one_way_edge_cases() -> None:
    one = stats.one_way({"a": np.array([1.0]), "b": np.array([2.0])})
    assert np.isnan(one["F"]) and "more repeats" in one["note"]
    flat = stats.one_way({"a": np.array([0.5, 0.5]), "b": np.array([0.5, 0.5])})
    assert np.isnan(flat["F"]) and flat["note"] == "every observation equal"
    unequal = stats.one_way(
        {"a": np.array([0.0, 0.01, 0.0, 0.01]), "b": np.array([0.0, 5.0, 10.0, 1.0]),
         "c": np.array([0.1, 0.11, 0.1, 0.12])}
    )  # fmt: skip
    assert unequal["levene_p"] < 0.05 and not np.isnan(unequal["AG_p"])


def _by_repeat(rows: list[tuple[str, str, int, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["society", "strategy", "repeat", "accuracy"])
    return frame.assign(run="r", task="t", round=3)


def test_w_counts_society_repeats_at_least_as_good_as_all_debate() -> None:
    by_repeat = _by_repeat(
        [
            ("s1", "000", 0, 0.5), ("s1", "000", 1, 0.6),
            ("s1", "101", 0, 0.5), ("s1", "101", 1, 0.4),  # tie counts, loss does not
            ("s2", "000", 0, 0.7), ("s2", "000", 1, 0.7),
            ("s2", "101", 0, 0.8), ("s2", "101", 1, 0.9),
        ]
    )  # fmt: skip
    table = wins(by_repeat).set_index("strategy")
    assert table.loc["101", "W"] == 3 and table.loc["101", "W_of"] == 4
    assert table.loc["000", "W"] == 4  # the baseline always ties itself
    per: Any = wins_by_society(by_repeat).set_index(["society", "strategy"])
    assert (per.loc[("s1", "101"), "W"], per.loc[("s1", "101"), "W_of"]) == (1, 2)
    assert (per.loc[("s2", "101"), "W"], per.loc[("s2", "101"), "W_of"]) == (2, 2)
    assert all_debate(["0", "00", "01", "000"]) == "000"
    assert all_debate(["1", "10"]) is None


def test_table2_marks_best_second_worst_with_ties() -> None:
    assert _marks(pd.Series([0.5, 0.7, 0.6, 0.4])) == ["", "best", "second", "worst"]
    assert _marks(pd.Series([0.7, 0.7, 0.6, 0.4])) == ["best", "best", "second", "worst"]
    assert _marks(pd.Series([0.7, 0.4])) == ["best", "worst"]
    assert _marks(pd.Series([0.5, 0.5])) == ["", ""]


def test_accuracy_cis_equal_bootstrap_ci_of_each_cell() -> None:
    rng = np.random.default_rng(1)
    rows = []
    cells: list[tuple[str, int]] = [("s", 12), ("t", 12), ("u", 7)]
    for society, n in cells:
        for case in range(n):
            rows.append({"run": "r", "task": "t", "society": society, "strategy": "0",
                         "round": 1, "repeat": 0, "case_id": f"c{case}",
                         "correct": bool(rng.random() < 0.6), "complete": True})  # fmt: skip
    votes = pd.DataFrame(rows)
    cis: Any = stats.accuracy_cis(votes, resamples=500).set_index("society")
    for name, group in votes.groupby("society"):
        ordered = group.sort_values(["repeat", "case_id"])["correct"].to_numpy(dtype=float)
        low, high = stats.bootstrap_ci(ordered, resamples=500)
        assert cis.loc[name, "ci_low"] == pytest.approx(low)
        assert cis.loc[name, "ci_high"] == pytest.approx(high)


def test_anova_tables_both_directions_over_every_group() -> None:
    rows = []
    accuracy = {
        ("s1", "00"): [0.5, 0.6, 0.55], ("s1", "01"): [0.7, 0.8, 0.75],
        ("s1", "10"): [0.6, 0.6, 0.65], ("s1", "11"): [0.9, 0.95, 0.9],
        ("s2", "00"): [0.5, 0.5, 0.6], ("s2", "01"): [0.4, 0.45, 0.5],
        ("s2", "10"): [0.6, 0.7, 0.65], ("s2", "11"): [0.5, 0.55, 0.6],
    }  # fmt: skip
    for (society, strategy), values in accuracy.items():
        for repeat, value in enumerate(values):
            rows.append(("r", "t", society, strategy, 2, repeat, value))
    by_repeat = pd.DataFrame(
        rows, columns=["run", "task", "society", "strategy", "round", "repeat", "accuracy"]
    )
    table = stats.anova_tables(by_repeat).set_index(["across", "fixed"])
    s1 = [np.array(accuracy[("s1", s)]) for s in ("00", "01", "10", "11")]
    assert table.loc[("strategy", "s1"), "groups"] == 4
    assert table.loc[("strategy", "s1"), "F"] == pytest.approx(sps.f_oneway(*s1).statistic)
    assert table.loc[("strategy", "s1"), "levene_p"] == pytest.approx(
        sps.levene(*s1, center="median").pvalue
    )
    across = [np.array(accuracy[(s, "11")]) for s in ("s1", "s2")]
    assert table.loc[("society", "11"), "groups"] == 2
    assert table.loc[("society", "11"), "F"] == pytest.approx(sps.f_oneway(*across).statistic)
    assert len(table) == 2 + 4  # one test per society, one per strategy
