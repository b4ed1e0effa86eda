"""The end-of-run table of the pause pattern: accuracy and tokens against M."""

from __future__ import annotations

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table


def print_pause_table(out: Console, table: pd.DataFrame) -> None:
    """Last round, per base society, strategy and M: accuracy, gain over M = 0 (both with
    their 95% CIs) and tokens per case (billed). Prints nothing for a run without a pause."""
    if table.empty:
        return
    last = table[table["round"] == table["round"].max()]
    view = Table(
        title=f"accuracy against M (pause tokens), round {int(last['round'].iloc[0])}",
        box=box.SIMPLE,
    )
    for name in ("society", "strategy", "M", "accuracy (95% CI)", "gain vs M=0 (95% CI)",
                 "tokens"):  # fmt: skip
        left = name in ("society", "strategy")
        view.add_column(name, justify="left" if left else "right", no_wrap=True)
    for r in last.itertuples():
        gain = "-"
        if r.pause and r.pairs:
            gain = f"{r.gain:+.3f} ({r.gain_ci_low:+.2f}, {r.gain_ci_high:+.2f})"
        view.add_row(
            str(r.base), str(r.strategy), str(r.pause),
            f"{r.accuracy:.3f} ({r.ci_low:.2f}, {r.ci_high:.2f})", gain,
            f"{r.tokens_per_case:,.0f}",
        )  # fmt: skip
    out.print(view)
