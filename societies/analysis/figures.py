"""The report's figures (matplotlib's Agg canvas, no pyplot), each from one metric table.

Every function takes an :class:`Analysis` and returns a Figure, or ``None`` when the figure
would say nothing (a line through a single point); ``save_figures`` writes PNG and SVG. One
panel per run: a run holds one task, so a panel is a task. Societies always appear in the
experiment's order; past ``HEATMAP_SOCIETIES`` societies, bars and lines per society become a
society x strategy (or x round) heatmap, because 40 bars per group cannot be read. Legends sit
outside the axes; error bars never cross [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from societies.analysis.cost import pareto_front
from societies.analysis.metrics import BEHAVIOURS, CONFORMITY_TYPES
from societies.analysis.pause import pause_figure

if TYPE_CHECKING:
    from societies.analysis.load import Analysis

_COLORS = {"T→F": "#d62728", "F→T": "#2ca02c", "T→T": "#1f77b4", "F→F": "#7f7f7f"}
_BEHAVIOUR_COLORS = ["#2ca02c", "#d62728", "#ff7f0e", "#bcbd22", "#1f77b4", "#7f7f7f"]


_MAX_COLUMNS = 3


def _panels(n: int, width: float = 5.0, height: float = 3.4) -> tuple[Figure, list[Any]]:
    """One panel per run, at most three to a row, so that many runs stay readable."""
    # Figures are built without pyplot: no global state, no GUI backend, always Agg.
    n = max(n, 1)
    cols = min(n, _MAX_COLUMNS)
    rows = -(-n // cols)
    fig = Figure(figsize=(width * cols, height * rows))
    FigureCanvasAgg(fig)
    grid = [ax for row in fig.subplots(rows, cols, squeeze=False) for ax in row]
    for spare in grid[n:]:
        spare.set_visible(False)
    return fig, grid[:n]


_MAX_LEGEND = 12
#: More societies than this and per-society bars and lines become heatmaps.
HEATMAP_SOCIETIES = 8
_STYLE = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "xtick.labelsize": 10,
          "ytick.labelsize": 10, "legend.fontsize": 10}  # fmt: skip


def _legend(ax: Any, **kwargs: Any) -> None:
    """A legend outside the axes (never over the data), only while it stays readable: a run
    with dozens of series gets a note instead."""
    handles, labels = ax.get_legend_handles_labels()
    if len(labels) <= _MAX_LEGEND:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0, frameon=False, **kwargs)  # fmt: skip
    else:
        ax.text(0.01, 0.01, f"{len(labels)} series (legend omitted)", transform=ax.transAxes)


def _clipped_errors(mean: pd.Series, std: pd.Series) -> np.ndarray:
    """Asymmetric error bars of ± std that stop at 0 and 1 (an accuracy cannot leave them)."""
    m = mean.to_numpy(dtype=float)
    sd = np.nan_to_num(std.to_numpy(dtype=float))
    return np.vstack([np.minimum(sd, m), np.minimum(sd, 1 - m)])


def _heatmap(ax: Any, fig: Figure, table: pd.DataFrame, label: str, vmax: float = 1.0) -> None:
    """Rows and columns of ``table`` as a heatmap with a colour bar (values annotated while
    the cells are large enough to hold them)."""
    values = table.to_numpy(dtype=float)
    image = ax.imshow(values, aspect="auto", cmap="viridis", vmin=0, vmax=vmax)
    ax.set_yticks(range(len(table.index)), [str(i) for i in table.index])
    ax.set_xticks(range(len(table.columns)), [str(c) for c in table.columns], rotation=45)
    if values.size <= 120:
        for (i, j), v in np.ndenumerate(values):
            if v == v:
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if v < 0.6 * vmax else "black")  # fmt: skip
    fig.colorbar(image, ax=ax, label=label, fraction=0.04)


def _last_round(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["round"] == table.groupby("run")["round"].transform("max")]


def _title(analysis: Analysis, run: str) -> str:
    info = analysis.runs[run]
    return run if info.task_name in run else f"{run} ({info.task_name})"


def accuracy_by_strategy(analysis: Analysis) -> Figure:
    """Last-round accuracy per strategy: one bar per society with std over repeats as error
    bars, or a society x strategy heatmap when there are many societies."""
    acc = _last_round(analysis.accuracy)
    runs = list(analysis.runs)
    many = max(len(analysis.society_order(r)) for r in runs) > HEATMAP_SOCIETIES
    height = 0.28 * max(len(analysis.society_order(r)) for r in runs) + 1.5 if many else 3.6
    fig, axes = _panels(len(runs), width=7.0, height=height)
    for ax, run in zip(axes, runs, strict=False):
        sub = acc[acc["run"] == run]
        strategies = sorted(sub["strategy"].unique())
        societies = [s for s in analysis.society_order(run) if s in set(sub["society"])]
        ax.set_title(_title(analysis, run))
        if many:
            grid = sub.pivot_table(index="society", columns="strategy", values="mean")
            _heatmap(ax, fig, grid.reindex(index=societies, columns=strategies), "accuracy")
            ax.set_xlabel("strategy")
            continue
        width = 0.8 / max(len(societies), 1)
        x = np.arange(len(strategies))
        for i, society in enumerate(societies):
            s = sub[sub["society"] == society].set_index("strategy").reindex(strategies)
            ax.bar(x + i * width, s["mean"], width, label=society, capsize=2,
                   yerr=_clipped_errors(s["mean"], s["std"]))  # fmt: skip
        ax.set_xticks(x + width * (len(societies) - 1) / 2, strategies, rotation=45)
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy (majority vote)")
        _legend(ax)
    fig.tight_layout()
    return fig


def accuracy_vs_round(analysis: Analysis) -> Figure:
    """Accuracy by round, one line per strategy, averaged over societies."""
    acc = analysis.accuracy.groupby(["run", "strategy", "round"], as_index=False)["mean"].mean()
    runs = list(analysis.runs)
    fig, axes = _panels(len(runs))
    for ax, run in zip(axes, runs, strict=False):
        sub = acc[acc["run"] == run]
        for strategy, s in sub.groupby("strategy"):
            ax.plot(s["round"], s["mean"], marker="o", label=str(strategy))
        ax.set_xticks(sorted(sub["round"].unique()))
        ax.set_xlabel("round")
        ax.set_ylabel("accuracy (mean over societies)")
        ax.set_title(_title(analysis, run))
        _legend(ax, ncols=2)
    fig.tight_layout()
    return fig


def accuracy_vs_agents(analysis: Analysis) -> Figure | None:
    """Last-round accuracy against society size, averaged over strategies and societies of a
    size; one line per run. None when every society has the same size (a single point)."""
    sizes = analysis.agents.groupby(["run", "society"], as_index=False).size()
    acc = _last_round(analysis.accuracy).merge(sizes, on=["run", "society"])
    if acc["size"].nunique() < 2:
        return None
    fig, axes = _panels(1, width=5.5)
    ax = axes[0]
    for run, sub in acc.groupby("run"):
        means = sub.groupby("size")["mean"].mean()
        ax.plot(means.index, means.to_numpy(), marker="o", label=_title(analysis, str(run)))
        ax.set_xticks(sorted(acc["size"].unique()))
    ax.set_xlabel("agents in the society")
    ax.set_ylabel("accuracy (last round)")
    ax.set_ylim(0, 1)
    _legend(ax)
    fig.tight_layout()
    return fig


def conformity_by_round(analysis: Analysis) -> Figure:
    """Conforming debate turns per round as a share of debate turns, stacked by type."""
    table = analysis.conformity.groupby(["run", "round"], as_index=False)[
        ["debate_turns", *CONFORMITY_TYPES]
    ].sum()
    runs = list(analysis.runs)
    fig, axes = _panels(len(runs), width=4.5)
    for ax, run in zip(axes, runs, strict=False):
        sub = table[table["run"] == run]
        bottom = np.zeros(len(sub))
        turns = sub["debate_turns"].to_numpy(dtype=float)
        for kind in CONFORMITY_TYPES:
            share = np.divide(sub[kind].to_numpy(dtype=float), turns, where=turns > 0,
                              out=np.zeros_like(turns))  # fmt: skip
            ax.bar(sub["round"], share, bottom=bottom, color=_COLORS[kind], label=kind)
            bottom += share
        ax.set_xticks(sub["round"])
        ax.set_xlabel("debate round")
        ax.set_ylabel("share of debate turns")
        ax.set_ylim(0, 1)
        ax.set_title(_title(analysis, run))
        _legend(ax)
    fig.tight_layout()
    return fig


def conformity_by_trait(analysis: Analysis) -> Figure | None:
    """Conforming debate turns by the agent's trait, as a share of that trait's debate turns,
    stacked by type (T→F, F→T …); one group of bars per debate round."""
    table = analysis.conformity
    if "trait" not in table or table.empty:
        return None
    grouped = table.groupby(["run", "trait", "round"], as_index=False)[
        ["debate_turns", *CONFORMITY_TYPES]
    ].sum()
    runs = list(analysis.runs)
    fig, axes = _panels(len(runs), width=5.5)
    for ax, run in zip(axes, runs, strict=False):
        sub = grouped[grouped["run"] == run]
        traits = list(dict.fromkeys(sub["trait"]))
        rounds = sorted(sub["round"].unique())
        width = 0.8 / max(len(traits), 1)
        for i, trait in enumerate(traits):
            t = sub[sub["trait"] == trait].set_index("round").reindex(rounds)
            turns = t["debate_turns"].to_numpy(dtype=float)
            bottom = np.zeros(len(rounds))
            x = np.arange(len(rounds)) + i * width
            for kind in CONFORMITY_TYPES:
                share = np.divide(t[kind].to_numpy(dtype=float), turns, where=turns > 0,
                                  out=np.zeros_like(turns))  # fmt: skip
                ax.bar(x, share, width, bottom=bottom, color=_COLORS[kind],
                       label=kind if i == 0 else None, edgecolor="white")  # fmt: skip
                bottom += share
            for xi in x:
                ax.text(xi, 1.01, trait[:4], ha="center", va="bottom", fontsize=8, rotation=90)
        ax.set_xticks(np.arange(len(rounds)) + width * (len(traits) - 1) / 2, rounds)
        ax.set_xlabel("debate round (bars: " + ", ".join(traits) + ")")
        ax.set_ylabel("share of the trait's debate turns")
        ax.set_ylim(0, 1.15)
        ax.set_title(_title(analysis, run), pad=22)
        _legend(ax)
    fig.tight_layout()
    return fig


def consensus_vs_round(analysis: Analysis) -> Figure:
    """Distinct answers as a share of agents, by round: one line per society, or a society x
    round heatmap when there are many societies."""
    table = analysis.consensus.groupby(["run", "society", "round"], as_index=False)[
        "distinct_share"
    ].mean()
    runs = list(analysis.runs)
    many = max(len(analysis.society_order(r)) for r in runs) > HEATMAP_SOCIETIES
    height = 0.28 * max(len(analysis.society_order(r)) for r in runs) + 1.5 if many else 3.4
    fig, axes = _panels(len(runs), width=5.5, height=height)
    for ax, run in zip(axes, runs, strict=False):
        sub = table[table["run"] == run]
        societies = analysis.society_order(run)
        ax.set_title(_title(analysis, run))
        if many:
            grid = sub.pivot_table(index="society", columns="round", values="distinct_share")
            _heatmap(ax, fig, grid.reindex(index=societies), "distinct answers / agents")
            ax.set_xlabel("round")
            continue
        for society in societies:
            s = sub[sub["society"] == society]
            ax.plot(s["round"], s["distinct_share"], marker="o", label=str(society))
        ax.set_xticks(sorted(sub["round"].unique()))
        ax.set_xlabel("round")
        ax.set_ylabel("distinct answers / agents")
        ax.set_ylim(0, 1.05)
        _legend(ax)
    fig.tight_layout()
    return fig


def behaviour_categories(analysis: Analysis) -> Figure:
    """Share of cases per answer-change category, per strategy (over societies)."""
    table = analysis.behaviour.groupby(["run", "strategy"], as_index=False)[
        [*BEHAVIOURS, "n_cases"]
    ].sum()
    runs = list(analysis.runs)
    fig, axes = _panels(len(runs), width=5.0)
    for ax, run in zip(axes, runs, strict=False):
        sub = table[table["run"] == run]
        left = np.zeros(len(sub))
        total = sub["n_cases"].to_numpy(dtype=float)
        for kind, color in zip(BEHAVIOURS, _BEHAVIOUR_COLORS, strict=True):
            share = sub[kind].to_numpy(dtype=float) / np.maximum(total, 1)
            ax.barh(sub["strategy"], share, left=left, color=color, label=kind)
            left += share
        ax.set_xlabel("share of cases")
        ax.set_xlim(0, 1)
        ax.set_title(_title(analysis, run))
    axes[-1].legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=3, frameon=False)
    fig.tight_layout()
    return fig


def cost_vs_accuracy(analysis: Analysis) -> Figure:
    """Last-round accuracy against the study's token cost per case, one point per strategy
    (mean over societies); the strategies on the Pareto front (none cheaper and at least as
    accurate) are ringed and joined. A run with baselines (``baselines:``) is drawn against
    the billed tokens instead, the budget its equal-budget k matches, with the baselines as
    squares and their bootstrap 95% CI."""
    acc = _last_round(analysis.accuracy)
    cost = _last_round(analysis.cost)
    both = acc.merge(cost, on=["run", "task", "society", "strategy", "round"])
    columns = ["mean", "study_per_case", "billed_per_case"]
    points = both.groupby(["run", "strategy"], as_index=False)[columns].mean()
    runs = list(analysis.runs)
    fig, axes = _panels(len(runs), width=4.8)
    for ax, run in zip(axes, runs, strict=False):
        x = "billed_per_case" if analysis.baselines.get(run) else "study_per_case"
        sub = points[points["run"] == run].reset_index(drop=True)
        ax.scatter(sub[x], sub["mean"], color="#1f77b4")
        for _, row in sub.iterrows():
            ax.annotate(str(row["strategy"]), (row[x], row["mean"]), fontsize=9,
                        xytext=(3, 3), textcoords="offset points")  # fmt: skip
        front = pareto_front(sub[x].to_numpy(), sub["mean"].to_numpy())
        f = sub.iloc[front].sort_values(x)
        ax.plot(f[x], f["mean"], color="#d62728", lw=1)
        ax.scatter(f[x], f["mean"], s=120, facecolors="none", edgecolors="#d62728",
                   label="Pareto front")  # fmt: skip
        _baseline_points(ax, analysis, run)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel(
            "tokens per case (" + ("billed" if x == "billed_per_case" else "study's cost") + ")"
        )
        ax.set_ylabel("accuracy (last round)")
        ax.set_title(_title(analysis, run))
        _legend(ax)
    fig.tight_layout()
    return fig


def _baseline_points(ax: Any, analysis: Analysis, run: str) -> None:
    """The run's baselines on the cost-accuracy axes: accuracy with its CI against their
    billed tokens per case (round 0, their only round)."""
    named = analysis.baselines.get(run, {})
    if not named:
        return
    acc = analysis.accuracy
    cost = analysis.cost
    keys = ["run", "society", "strategy", "round"]
    rows = acc[(acc["run"] == run) & acc["society"].isin(list(named))].merge(
        cost[[*keys, "billed_per_case"]], on=keys
    )
    if rows.empty:
        return
    mean = rows["mean"].to_numpy(dtype=float)
    errors = np.vstack([mean - rows["ci_low"].to_numpy(dtype=float),
                        rows["ci_high"].to_numpy(dtype=float) - mean])  # fmt: skip
    ax.errorbar(rows["billed_per_case"], mean, yerr=np.clip(errors, 0, None), fmt="s",
                color="#ff7f0e", capsize=3, label="baselines (95% CI)")  # fmt: skip
    for x, y, name in zip(rows["billed_per_case"], mean, rows["society"], strict=True):
        ax.annotate(str(name), (x, y), fontsize=9, xytext=(3, -10), textcoords="offset points")


FIGURES: dict[str, Callable[[Analysis], Figure | None]] = {
    "accuracy_by_strategy": accuracy_by_strategy,
    "accuracy_vs_round": accuracy_vs_round,
    "accuracy_vs_agents": accuracy_vs_agents,
    "conformity_by_round": conformity_by_round,
    "conformity_by_trait": conformity_by_trait,
    "consensus_vs_round": consensus_vs_round,
    "behaviour_categories": behaviour_categories,
    "cost_vs_accuracy": cost_vs_accuracy,
    "accuracy_vs_pause": lambda analysis: pause_figure(analysis.pause),
}


def render(
    analysis: Analysis, formats: tuple[str, ...] = ("png", "svg")
) -> dict[str, dict[str, bytes]]:
    """Every figure that applies, in every format, as bytes: {name: {format: data}}."""
    import io

    out: dict[str, dict[str, bytes]] = {}
    for name, make in FIGURES.items():
        with rc_context(_STYLE):  # type: ignore[arg-type]
            fig = make(analysis)
        if fig is None:
            continue
        out[name] = {}
        for fmt in formats:
            buf = io.BytesIO()
            fig.savefig(
                buf,
                format=fmt,
                dpi=110,
                bbox_inches="tight",
                metadata={"Date": None} if fmt == "svg" else None,
            )
            out[name][fmt] = buf.getvalue()
    return out


def save_figures(analysis: Analysis, folder: Path) -> list[Path]:
    """Every figure as PNG and SVG in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, formats in render(analysis).items():
        for fmt, data in formats.items():
            path = folder / f"{name}.{fmt}"
            path.write_bytes(data)
            written.append(path)
    return written
