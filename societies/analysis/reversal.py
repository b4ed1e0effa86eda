"""The reversal gap: forward accuracy minus backward accuracy on the same facts.

Each fact is asked twice (a ``pair_id`` with a ``forward`` and a ``backward`` probe, see
``societies.tasks.reversal``). For every society, strategy and round the gap is the mean over
(repeat, pair) of ``correct(forward) - correct(backward)`` of the society's majority answers,
so a pair counts only when both of its answers are complete; its bootstrap CI resamples those
pairs (``stats.bootstrap_ci``, fixed seed).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from societies.analysis.metrics import CELL
from societies.analysis.stats import bootstrap_ci
from societies.tasks.reversal import DIRECTIONS

__all__ = ["DIRECTIONS", "probe_table", "reversal_gap", "reversal_lines"]

PROBE_COLUMNS = ["run", "case_id", "pair_id", "direction"]
GAP_COLUMNS = [*CELL, "pairs", "forward", "backward", "gap", "ci_low", "ci_high"]


def probe_table(rows: Iterable[tuple[str, str, str, str]]) -> pd.DataFrame:
    """(run, case_id, pair_id, direction) rows as the frame ``reversal_gap`` joins on."""
    return pd.DataFrame(list(rows), columns=PROBE_COLUMNS)


def reversal_gap(votes: pd.DataFrame, probes: pd.DataFrame) -> pd.DataFrame:
    """Per cell (run, task, society, strategy, round): paired pairs, forward and backward
    accuracy, their difference and its 95% bootstrap CI. Empty when no case is a probe."""
    if probes.empty or votes.empty:
        return pd.DataFrame(columns=GAP_COLUMNS)
    done = votes.loc[votes["complete"], [*CELL, "repeat", "case_id", "correct"]]
    paired = done.merge(probes, on=["run", "case_id"])
    paired["correct"] = paired["correct"].astype(float)
    keys = [*CELL, "repeat", "pair_id"]
    wide = paired.set_index([*keys, "direction"])["correct"].unstack("direction")
    wide = wide.reindex(columns=["forward", "backward"]).dropna().reset_index()
    wide["diff"] = wide["forward"] - wide["backward"]
    rows = []
    for cell, group in wide.sort_values(keys).groupby(CELL, sort=True):
        low, high = bootstrap_ci(group["diff"].to_numpy())
        rows.append(
            (*cell, len(group), group["forward"].mean(), group["backward"].mean(),
             group["diff"].mean(), low, high)
        )  # fmt: skip
    return pd.DataFrame(rows, columns=GAP_COLUMNS)


def reversal_lines(gap: pd.DataFrame) -> list[str]:
    """One line per society and strategy: the reversal gap in the last round."""
    if gap.empty:
        return []
    last = gap[gap["round"] == gap["round"].max()]
    return [
        f"reversal gap, round {r.round}: {r.society} / {r.strategy}: {r.gap:+.3f} "
        f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}] (forward {r.forward:.3f}, backward "
        f"{r.backward:.3f}, {r.pairs} pairs)"
        for r in last.itertuples()
    ]
