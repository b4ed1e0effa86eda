"""Significance tests and confidence intervals for the accuracy tables.

The reference ran its ANOVA on the first three groups only in two of its tests; here every
test takes every group. Levene's test (median-centred, Brown–Forsythe) comes first: when it
rejects equal variances at ``alpha`` the ANOVA's F is still reported, with the
Alexander–Govern test (which does not assume equal variances) beside it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from societies.analysis.metrics import CELL

BOOTSTRAP_SEED = 20240801
BOOTSTRAP_RESAMPLES = 2000


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` with a fixed seed (same data,
    same interval). An empty sample gives (nan, nan); a constant one gives (v, v)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return (float(low), float(high))


def _resample_weights(n: int, resamples: int, seed: int) -> np.ndarray:
    """How often each of n observations is drawn in each resample: the same draws as
    ``bootstrap_ci`` makes, as a (resamples, n) count matrix."""
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    flat = (idx + n * np.arange(resamples)[:, None]).ravel()
    return np.bincount(flat, minlength=resamples * n).reshape(resamples, n).astype(float)


def bootstrap_cis(
    samples: Sequence[np.ndarray],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> list[tuple[float, float]]:
    """``bootstrap_ci`` of each sample, the same intervals, with three or more samples of
    one size done together as one matrix product (as ``accuracy_cis``): many cells of
    thousands of cases stay fast."""
    out: list[tuple[float, float]] = [(float("nan"), float("nan"))] * len(samples)
    tail = (1 - level) / 2 * 100
    sizes = sorted({len(s) for s in samples if len(s)})
    for n in sizes:
        at = [i for i, s in enumerate(samples) if len(s) == n]
        if len(at) < 3:  # the weights matrix costs more than a few direct draws
            for i in at:
                out[i] = bootstrap_ci(samples[i], resamples=resamples, seed=seed, level=level)
            continue
        matrix = np.vstack([np.asarray(samples[i], dtype=float) for i in at])
        means = matrix @ _resample_weights(n, resamples, seed).T / n
        low, high = np.percentile(means, [tail, 100 - tail], axis=1)
        for j, i in enumerate(at):
            out[i] = (float(low[j]), float(high[j]))
    return out


def accuracy_cis(
    votes: pd.DataFrame,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> pd.DataFrame:
    """A bootstrap CI for every accuracy cell: resampling its (repeat, case) outcomes, the
    units the accuracy is a mean of. Each cell gets exactly ``bootstrap_ci`` of its outcomes
    in (repeat, case_id) order
    (same seed, so cells of one size share their resampling draws: reproducible and
    comparable). Cells of one size are done together as one matrix product."""
    done = votes[votes["complete"]].sort_values([*CELL, "repeat", "case_id"])
    grouped = done.groupby(CELL, observed=True, sort=True)["correct"]
    sizes = grouped.size()
    tail = (1 - level) / 2 * 100
    parts = []
    indexed = done.set_index(CELL)["correct"]
    for n in sorted(int(v) for v in sizes.unique()):
        keys = sizes.index[sizes.to_numpy() == n]
        matrix = indexed.loc[keys].to_numpy(dtype=float).reshape(len(keys), n)
        means = matrix @ _resample_weights(n, resamples, seed).T / n
        low, high = np.percentile(means, [tail, 100 - tail], axis=1)
        frame = keys.to_frame(index=False)
        parts.append(frame.assign(ci_low=low, ci_high=high))
    if not parts:
        return pd.DataFrame(columns=[*CELL, "ci_low", "ci_high"])
    out: pd.DataFrame = pd.concat(parts, ignore_index=True)
    return out.sort_values(CELL, ignore_index=True)


def one_way(groups: dict[str, np.ndarray], alpha: float = 0.05) -> dict[str, Any]:
    """Levene, then one-way ANOVA, over every group with at least two observations.

    Fewer than two such groups, or no variance at all, gives NaN statistics and a ``note``
    saying why: an F of 0/0 is not evidence either way.
    """
    usable = {k: v for k, v in groups.items() if len(v) >= 2}
    out: dict[str, Any] = {
        "groups": len(usable),
        "levene_W": np.nan,
        "levene_p": np.nan,
        "F": np.nan,
        "p": np.nan,
        "AG": np.nan,
        "AG_p": np.nan,
        "note": "",
    }
    if len(usable) < 2:
        out["note"] = "fewer than two groups with two or more observations (more repeats needed)"
        return out
    samples = list(usable.values())
    if all(np.ptp(s) == 0 for s in samples):
        out["note"] = "no variance within any group"
        if len({float(s[0]) for s in samples}) == 1:
            out["note"] = "every observation equal"
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lev = stats.levene(*samples, center="median")
        anova = stats.f_oneway(*samples)
        out.update(levene_W=float(lev.statistic), levene_p=float(lev.pvalue))
        out.update(F=float(anova.statistic), p=float(anova.pvalue))
        if out["levene_p"] < alpha:
            try:
                ag = stats.alexandergovern(*samples)
                out.update(AG=float(ag.statistic), AG_p=float(ag.pvalue))
            except (ValueError, ZeroDivisionError):
                pass
            out["note"] = "unequal variances (Levene): see the Alexander-Govern test"
    return out


def anova_tables(by_repeat: pd.DataFrame, round_index: int | None = None) -> pd.DataFrame:
    """ANOVA across strategies (per run and society) and across societies (per run and
    strategy), on the per-repeat accuracies of one round (default: each run's last)."""
    data = by_repeat
    if round_index is None:
        last = data.groupby("run")["round"].transform("max")
        data = data[data["round"] == last]
    else:
        data = data[data["round"] == round_index]
    rows = []
    for across, within in (("strategy", "society"), ("society", "strategy")):
        for (run, task, fixed), group in data.groupby(["run", "task", within], observed=True):
            samples = {
                str(k): g["accuracy"].to_numpy(dtype=float)
                for k, g in group.groupby(across, observed=True)
            }
            rows.append(
                {"run": run, "task": task, "across": across, "within": within, "fixed": fixed}
                | one_way(samples)
            )
    return pd.DataFrame(rows)


def bootstrap_diff_ci(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(a) - mean(b) for two independent samples (each
    resampled on its own, fixed seed); (nan, nan) when either is empty."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size == 0 or y.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    mx = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    my = y[rng.integers(0, y.size, size=(resamples, y.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(mx - my, [tail, 100 - tail])
    return (float(low), float(high))


def welch_p(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Two-sided p of Welch's t test (unequal variances); nan below two values a side or with
    no variance at all."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size < 2 or y.size < 2 or (np.ptp(x) == 0 and np.ptp(y) == 0):
        return float("nan")
    return float(stats.ttest_ind(x, y, equal_var=False).pvalue)
