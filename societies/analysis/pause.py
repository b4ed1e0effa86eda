"""Accuracy and tokens against M, the pause pattern's number of pause tokens.

A society spec with ``pause: [0, 2, 8]`` stands for one society per M, ``<name>-pause<M>``
(``society.agents.expand_specs``, the resolver's order); the name without the suffix is the
society's *base*, and a spec with one M (or none: M = 0) is its own base. For every base,
strategy and round each M gets:

- its accuracy, mean and bootstrap CI, from the accuracy table (one implementation);
- its gain over M = 0 of the same base: the mean over (repeat, case) of correct(M) -
  correct(0), paired (a pair counts when both society answers are complete), with a bootstrap
  CI over those pairs (``stats.bootstrap_ci``, fixed seed). Societies of a sweep draw their
  answers independently on the sim, so the CI holds the sampling noise of both;
- tokens per case, the cost table's billed tokens (every call of the strategy's path up to the
  round, prompt and completion), and their change over M = 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from societies.analysis.metrics import CELL
from societies.analysis.stats import bootstrap_ci
from societies.society.agents import expand_specs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SWEEP_COLUMNS = ["run", "society", "base", "pause"]
PAUSE_COLUMNS = [
    "run", "task", "base", "strategy", "round", "pause", "society", "accuracy", "ci_low",
    "ci_high", "pairs", "gain", "gain_ci_low", "gain_ci_high", "tokens_per_case",
    "extra_tokens_per_case",
]  # fmt: skip
_BASE = ["run", "task", "base", "strategy", "round"]


def sweep_rows(
    run: str, config: Mapping[str, Any], societies: Sequence[str]
) -> list[tuple[str, str, str, int]]:
    """(run, society, base, M) of every society of a run that uses the pause pattern
    anywhere; no rows for a run without one."""
    specs = config.get("societies") or []
    if all(spec.get("pause") is None for spec in specs):
        return []
    rows = []
    for name, (spec, tokens) in zip(societies, expand_specs(specs), strict=False):
        swept = isinstance(spec.get("pause"), list)
        base = name.removesuffix(f"-pause{tokens}") if swept else name
        rows.append((run, name, base, int(tokens or 0)))
    return rows


def sweep_table(rows: Sequence[tuple[str, str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=SWEEP_COLUMNS)


def pause_table(
    votes: pd.DataFrame, accuracy: pd.DataFrame, cost: pd.DataFrame, sweep: pd.DataFrame
) -> pd.DataFrame:
    """Per base x strategy x round x M: accuracy with its CI, the paired gain over M = 0 with
    its CI, tokens per case and their change over M = 0. Empty without a pause society."""
    if sweep.empty or votes.empty:
        return pd.DataFrame(columns=PAUSE_COLUMNS)
    acc = accuracy[[*CELL, "mean", "ci_low", "ci_high"]].rename(columns={"mean": "accuracy"})
    out = acc.merge(sweep, on=["run", "society"])
    out = out.merge(cost[[*CELL, "billed_per_case"]], on=CELL, how="left")
    out = out.rename(columns={"billed_per_case": "tokens_per_case"})
    zero_tokens = out.loc[out["pause"] == 0, [*_BASE, "tokens_per_case"]]
    out = out.merge(
        zero_tokens.rename(columns={"tokens_per_case": "zero_tokens"}), on=_BASE, how="left"
    )
    out["extra_tokens_per_case"] = out["tokens_per_case"] - out["zero_tokens"]

    done = votes.loc[votes["complete"], [*CELL, "repeat", "case_id", "correct"]]
    done = done.merge(sweep, on=["run", "society"])
    done["correct"] = done["correct"].astype(float)
    zero = done.loc[done["pause"] == 0, [*_BASE, "repeat", "case_id", "correct"]]
    paired = done.merge(zero.rename(columns={"correct": "zero"}), on=[*_BASE, "repeat", "case_id"])
    paired["diff"] = paired["correct"] - paired["zero"]
    gains = []
    for key, group in paired.sort_values([*_BASE, "pause", "repeat", "case_id"]).groupby(
        [*_BASE, "pause"], sort=True
    ):
        low, high = bootstrap_ci(group["diff"].to_numpy())
        gains.append((*key, len(group), group["diff"].mean(), low, high))
    gain = pd.DataFrame(
        gains, columns=[*_BASE, "pause", "pairs", "gain", "gain_ci_low", "gain_ci_high"]
    )
    out = out.merge(gain, on=[*_BASE, "pause"], how="left")
    out["pairs"] = out["pairs"].fillna(0).astype(int)
    order = {base: i for i, base in enumerate(dict.fromkeys(sweep["base"]))}
    out = out.assign(_order=out["base"].map(order))
    out = out.sort_values(["run", "_order", "strategy", "round", "pause"], ignore_index=True)
    return out[PAUSE_COLUMNS]


def pause_figure(table: pd.DataFrame) -> Figure | None:
    """Last-round accuracy (with its CI) and tokens per case against M, one line per base
    and strategy; ``None`` without a sweep of at least two values of M."""
    if table.empty or table.groupby(["run", "base"])["pause"].nunique().max() < 2:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    last = table[table["round"] == table.groupby("run")["round"].transform("max")]
    fig = Figure(figsize=(10, 3.6))
    FigureCanvasAgg(fig)
    acc_ax, tok_ax = fig.subplots(1, 2)
    many_runs = last["run"].nunique() > 1
    for (run, base, strategy), line in last.groupby(["run", "base", "strategy"], sort=False):
        label = f"{run}: {base} / {strategy}" if many_runs else f"{base} / {strategy}"
        m = line["pause"].to_numpy(dtype=float)
        acc = line["accuracy"].to_numpy(dtype=float)
        low, high = line["ci_low"].to_numpy(dtype=float), line["ci_high"].to_numpy(dtype=float)
        errors = np.vstack([acc - low, high - acc])
        acc_ax.errorbar(m, acc, yerr=np.nan_to_num(errors), marker="o", capsize=3, label=label)
        tok_ax.plot(m, line["tokens_per_case"].to_numpy(dtype=float), marker="o", label=label)
    for ax, ylabel in ((acc_ax, "accuracy (last round, 95% CI)"), (tok_ax, "tokens per case")):
        ax.set_xscale("symlog", linthresh=1)
        ticks = sorted(last["pause"].unique())
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_xlabel("M (pause tokens before each answer)")
        ax.set_ylabel(ylabel)
    acc_ax.set_ylim(0, 1)
    tok_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig
