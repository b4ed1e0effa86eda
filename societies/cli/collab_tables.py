"""The end-of-run tables for societies with their own topology, stopping rule or decision."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from societies.analysis.load import Analysis
from societies.plan.plan import Plan
from societies.society.topology import FULL


def print_collab_tables(out: Console, plan: Plan, analysis: Analysis) -> None:
    """Tokens and calls per society when any society is not the study's (full topology, no
    stopping); each protocol's accuracy beside the majority's when any society uses one."""
    special = any(
        s.topology != FULL or s.stop is not None or len(s.model_agents) < s.size
        for s in plan.societies
    )
    if special:
        tokens = {r["society"]: r for r in analysis.society_tokens.to_dict("records")}
        stopping = {r["society"]: r for r in analysis.stopping.to_dict("records")}
        table = Table(title="calls and tokens per case, by society")
        for name in ("society", "calls", "input tokens", "output tokens", "calls saved"):
            table.add_column(name, justify="left" if name == "society" else "right")
        for society in plan.societies:
            if society.name not in tokens:
                continue
            row = tokens[society.name]
            saved = "-"
            if society.name in stopping:
                s = stopping[society.name]
                share = s["calls_saved"] / (s["calls_saved"] + s["calls_made"])
                saved = f"{int(s['calls_saved']):,} ({share:.0%})"
            elif society.stop is not None:
                saved = "0"
            table.add_row(
                society.name,
                f"{row['calls_per_case']:.1f}",
                f"{row['input_tokens_per_case']:,.0f}",
                f"{row['output_tokens_per_case']:,.0f}",
                saved,
            )
        out.print(table)
    decisions = analysis.decisions
    if len(decisions):
        last = decisions[decisions["round"] == plan.rounds]
        table = Table(title=f"decision protocols (round {plan.rounds}): accuracy")
        for name in (
            "society",
            "strategy",
            "protocol",
            "protocol acc",
            "majority acc",
            "no answer",
        ):
            table.add_column(
                name, justify="left" if name in ("society", "strategy", "protocol") else "right"
            )
        for rec in last.to_dict("records"):
            table.add_row(
                str(rec["society"]), str(rec["strategy"]), str(rec["decision"]),
                f"{rec['accuracy']:.3f}", f"{rec['majority_accuracy']:.3f}",
                f"{rec['no_answer']:.0%}",
            )  # fmt: skip
        out.print(table)
    _print_benchform(out, plan, analysis)


def _print_benchform(out: Console, plan: Plan, analysis: Analysis) -> None:
    """BenchForm's conformity and independence rates in the last round, per society with
    confederates (and its control), when the run has any."""
    bench = analysis.benchform
    if not len(bench):
        return
    last = bench[bench["round"] == plan.rounds]
    table = Table(
        title=f"conformity to confederates, round {plan.rounds} (BenchForm: CR conformity "
        "rate, IR independence rate)"
    )
    names = ("society", "strategy", "trait", "majority", "guidance", "n", "CR", "IR", "adopted")
    for name in names:
        left = name in ("society", "strategy", "trait", "guidance")
        table.add_column(name, justify="left" if left else "right")
    for rec in last.to_dict("records"):
        table.add_row(
            str(rec["society"]), str(rec["strategy"]), str(rec["trait"]), str(rec["majority"]),
            str(rec["guidance"]), str(rec["n"]), f"{rec['conformity_rate']:.3f}",
            f"{rec['independence_rate']:.3f}", f"{rec['adoption_rate']:.3f}",
        )  # fmt: skip
    out.print(table)


#: The debate-vs-vote table is printed at the end of a run up to this many rows.
MAX_DYNAMICS_ROWS = 12


def print_dynamics_table(out: Console, analysis: Analysis) -> None:
    """Round-0 majority against the final answer (with the paired difference's CI), the oracle
    gap (``gap``) and the disagreement collapse, per society and strategy, when the table is
    short; a line pointing to the tables otherwise."""
    table = analysis.debate_vs_vote
    if table.empty:
        return
    if len(table) > MAX_DYNAMICS_ROWS:
        out.print(
            f"debate vs vote, oracle gap, collapse: {len(table)} rows, see load_run(...)"
            ".debate_vs_vote, .oracle_gap, .disagreement_collapse or the report",
            highlight=False,
        )
        return
    keys = ["run", "society", "strategy"]
    gap = analysis.oracle_gap.set_index(keys)["oracle_gap"]
    collapse = analysis.disagreement_collapse.set_index(keys)["collapse_rate"]
    out_table = Table(title="debate vs vote: accuracy of the round-0 majority and the last round's")
    names = ("society", "strategy", "vote", "final", "diff", "95% CI", "gap", "collapse")
    for name in names:
        left = name in ("society", "strategy")
        out_table.add_column(name, justify="left" if left else "right", no_wrap=not left)
    for rec in table.to_dict("records"):
        key = (rec["run"], rec["society"], rec["strategy"])
        out_table.add_row(
            str(rec["society"]), str(rec["strategy"]), f"{rec['vote_accuracy']:.3f}",
            f"{rec['final_accuracy']:.3f}",
            f"{rec['difference']:+.3f}", f"[{rec['ci_low']:.2f}, {rec['ci_high']:.2f}]",
            f"{gap.get(key, float('nan')):.3f}", f"{collapse.get(key, float('nan')):.3f}",
        )  # fmt: skip
    out.print(out_table)
