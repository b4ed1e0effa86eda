"""The end-of-run table of the manipulation check (runs with ``questionnaire:``)."""

from __future__ import annotations

import math

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from societies.analysis.load import Analysis
from societies.analysis.questionnaire import trait_table


def print_questionnaire(out: Console, analysis: Analysis) -> None:
    """Mean ratings by trait before and after the debate, then each trait difference."""
    checks = analysis.manipulation_check
    if not len(checks):
        return
    table = Table(title=escape("manipulation check: self-ratings by trait, mean [95% CI]"))
    for name in ("item", "trait", "before round 0", "after the last"):
        table.add_column(name, justify="left" if name in ("item", "trait") else "right")
    for rec in trait_table(checks, digits=1).to_dict("records"):
        table.add_row(str(rec["item"]), str(rec["trait"]), str(rec["pre"]), str(rec["post"]))
    out.print(table)
    ratings = analysis.questionnaire
    problems = ratings["problem"].value_counts()
    reasons = ", ".join(f"{str(k).replace('_', ' ')} {v:,}" for k, v in problems.items())
    out.print(
        f"ratings not read: {int(problems.sum()):,} of {len(ratings):,}"
        + (f" ({reasons})" if reasons else ""),
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip
    for rec in analysis.trait_differences.to_dict("records"):
        if math.isnan(rec["difference"]):
            continue
        out.print(
            f"{rec['item']} ({rec['timing']}): {rec['trait']} - {rec['vs']} = "
            f"{rec['difference']:+.2f} [{rec['ci_low']:+.2f}, {rec['ci_high']:+.2f}], "
            f"Welch p = {rec['p_welch']:.2g}",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
