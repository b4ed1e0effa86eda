"""How complete each cell of a run is: the report and the viewer mark cells that mix sample
sizes (an interrupted or budget-stopped run) instead of presenting them as finished."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from societies.analysis.load import Analysis


def cell_counts(analysis: Analysis) -> pd.DataFrame:
    """Per run, society and strategy at the society's last round: ``n`` society answers whose every
    agent's call is stored, out of ``planned`` (repeats x cases scheduled), and ``incomplete``."""
    votes = analysis.votes
    # per society: a baseline's last round is 0
    last = votes[votes["round"] == votes.groupby(["run", "society"])["round"].transform("max")]
    counts = last.groupby(["run", "society", "strategy"], observed=True, sort=False).agg(
        n=("complete", "sum"), planned=("complete", "size")
    )
    out = counts.reset_index()
    out["n"] = out["n"].astype(int)
    out["incomplete"] = out["n"] < out["planned"]
    return out


def cell_count_map(analysis: Analysis) -> dict[tuple[object, object, object], tuple[int, int]]:
    """``cell_counts`` keyed by (run, society, strategy): (complete answers, planned)."""
    frame = cell_counts(analysis)[["run", "society", "strategy", "n", "planned"]]
    return {(r, so, st): (n, p) for r, so, st, n, p in frame.itertuples(index=False, name=None)}


def incomplete_runs(analysis: Analysis) -> dict[str, tuple[int, int]]:
    """Runs with any incomplete cell: label → (complete society answers, planned)."""
    counts = cell_counts(analysis)
    out = {}
    for run, sub in counts.groupby("run", observed=True, sort=False):
        if sub["incomplete"].any():
            out[str(run)] = (int(sub["n"].sum()), int(sub["planned"].sum()))
    return out
