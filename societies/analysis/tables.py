"""The study's Table 2 layout, and exports of every table (CSV, Parquet, LaTeX, Markdown).

Table 2: one block per run (one task each), a row per strategy, a column per society with the
last round's accuracy as mean ± std over repeats, and the ``W`` column. In each society's
column the best strategy is marked ``best``, the second ``second`` and the worst ``worst``
(ties share a mark). Renderings: LaTeX ``\\textbf`` / ``\\underline`` / ``\\textit``,
Markdown ``**best**`` / ``<u>second</u>`` / ``_worst_``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from societies.society.baselines import BASELINE_STRATEGY

if TYPE_CHECKING:
    from societies.analysis.load import Analysis


def all_debate(strategies: list[str]) -> str | None:
    """The all-debate strategy ("000" for 3 rounds) if the run has it."""
    found = [s for s in strategies if s and set(s) == {"0"}]
    return max(found, key=len) if found else None


def wins_by_society(by_repeat: pd.DataFrame) -> pd.DataFrame:
    """Per run, society and strategy: ``W``, the repeats in which the strategy's last-round
    accuracy is at least the all-debate strategy's (same society, same repeat), and ``W_of``,
    the repeats compared. A run without an all-debate strategy has no rows."""
    last = by_repeat[by_repeat["round"] == by_repeat.groupby("run")["round"].transform("max")]
    columns = ["run", "society", "strategy", "W", "W_of"]
    parts = []
    for run, group in last.groupby("run", observed=True):
        base_name = all_debate(sorted(group["strategy"].unique()))
        if base_name is None:
            continue
        keys = ["society", "repeat"]
        base = group[group["strategy"] == base_name].set_index(keys)["accuracy"].rename("base")
        joined = group.join(base, on=keys, how="inner")
        joined["W"] = joined["accuracy"] >= joined["base"] - 1e-12
        counted = joined.groupby(["society", "strategy"], observed=True)["W"].agg(
            W="sum", W_of="size"
        )
        parts.append(counted.reset_index().assign(run=run)[columns])
    if not parts:
        return pd.DataFrame(columns=columns)
    out: pd.DataFrame = pd.concat(parts, ignore_index=True)
    return out


def wins(by_repeat: pd.DataFrame) -> pd.DataFrame:
    """Table 2's ``W`` per run and strategy: summed over societies, i.e. the (society, repeat)
    pairs in which the strategy is at least as accurate as all-debate, out of ``W_of``."""
    per_society = wins_by_society(by_repeat)
    out = per_society.groupby(["run", "strategy"], observed=True)[["W", "W_of"]].sum()
    return out.astype(int).reset_index()


def _marks(values: pd.Series) -> list[str]:
    ranked = sorted(set(np.round(values.dropna().to_numpy(dtype=float), 12)), reverse=True)
    out = []
    for v in np.round(values.to_numpy(dtype=float), 12):
        if np.isnan(v) or len(ranked) < 2:
            out.append("")
        elif v == ranked[0]:
            out.append("best")
        elif v == ranked[-1]:
            out.append("worst")
        elif len(ranked) > 2 and v == ranked[1]:
            out.append("second")
        else:
            out.append("")
    return out


def table2_long(analysis: Analysis) -> pd.DataFrame:
    """Table 2 as a long table: run, task, strategy, society, mean, std, the cases scored and
    left out (``n_cases``, ``n_incomplete``), ``baseline`` (a row of ``baselines:``, at its
    only round, 0), mark, the society's W (``W_society`` of ``W_society_of`` repeats) and the
    strategy's W over all societies."""
    acc = analysis.accuracy
    base = {(run, name) for run, named in analysis.baselines.items() for name in named}
    is_base = pd.Series(
        [(r, s) in base for r, s in zip(acc["run"], acc["society"], strict=True)],
        index=acc.index,
        dtype=bool,
    )
    # A baseline's only round is 0: its row stands beside the societies' last round.
    last = acc[(acc["round"] == acc.groupby("run")["round"].transform("max")) | is_base]
    cols = ["run", "task", "strategy", "society", "mean", "std", "n_repeats", "n_cases"]
    cols += [c for c in ("n_incomplete",) if c in last]
    out = last[cols].copy()
    out["baseline"] = is_base[last.index].to_numpy()
    out["mark"] = ""
    for _, idx in out.groupby(["run", "society"], observed=True).groups.items():
        out.loc[idx, "mark"] = _marks(out.loc[idx, "mean"])
    per_society = wins_by_society(analysis.accuracy_by_repeat).rename(
        columns={"W": "W_society", "W_of": "W_society_of"}
    )
    out = out.merge(per_society, on=["run", "society", "strategy"], how="left")
    out = out.merge(wins(analysis.accuracy_by_repeat), on=["run", "strategy"], how="left")
    return out.reset_index(drop=True)


def table2_blocks(analysis: Analysis, long: pd.DataFrame | None = None) -> list[dict[str, object]]:
    """Per run: title, society columns, rows of (strategy, [(text, mark)...], W text), and
    ``baselines``: (label, text, society) per baseline, shown under the strategies."""
    long = table2_long(analysis) if long is None else long
    blocks: list[dict[str, object]] = []
    for run, everything in long.groupby("run", observed=True, sort=False):
        named = analysis.baselines.get(str(run), {})
        group = everything[~everything["baseline"]]
        societies = [s for s in analysis.society_order(str(run)) if s in set(group["society"])]
        rows = []
        for strategy, sub in group.groupby("strategy", observed=True, sort=True):
            by_soc = sub.set_index("society")
            cells = []
            for society in societies:
                if society not in by_soc.index:
                    cells.append(("–", ""))
                    continue
                r = by_soc.loc[society]
                cells.append((_cell_text(r), str(r["mark"])))
            w = sub["W"].iloc[0]
            w_text = "–" if pd.isna(w) else f"{int(w)}/{int(sub['W_of'].iloc[0])}"
            rows.append((str(strategy), cells, w_text))
        baselines = []
        found = {r["society"]: r for r in everything[everything["baseline"]].to_dict("records")}
        for rec in (found[name] for name in named if name in found):  # the file's order
            info = named[rec["society"]]
            how = f"k={info['k']}" + (f", budget of {info['match']}" if info["match"] else "")
            baselines.append((f"{rec['society']} ({how})", _cell_text(rec), str(rec["society"])))
        task = str(everything["task"].iloc[0])
        blocks.append({"run": str(run), "task": task, "societies": societies, "rows": rows,
                       "baselines": baselines})  # fmt: skip
    return blocks


def _cell_text(row: Any) -> str:
    """A Table 2 cell: mean ± std in percent (one repeat has no spread)."""
    text = f"{100 * row['mean']:.1f}"
    if not pd.isna(row["std"]):
        text += f" ± {100 * row['std']:.1f}"
    return text


def accuracy_rows(
    votes: pd.DataFrame, order: Sequence[tuple[str, Sequence[str]]], rounds: int
) -> tuple[list[list[str]], bool]:
    """The end-of-run table of ``societies run``, from ``load_run``'s vote table: per society
    and strategy (in ``order``: society, its strategies), for rounds 0..``rounds``, each
    round's accuracy over the complete case groups; a cell with incomplete groups says
    ``(n=complete/all)``, a cell with none complete ``-``. Also whether any cell is incomplete."""
    votes = votes.assign(right=votes["correct"] & votes["complete"])
    agg = votes.groupby(["society", "strategy", "round"], observed=True).agg(
        n=("complete", "size"), done=("complete", "sum"), right=("right", "sum")
    )
    cells = {
        (str(soc), str(strat), int(r)): (int(n), int(done), int(right))
        for soc, strat, r, n, done, right in agg.reset_index().itertuples(index=False)
    }
    rows, incomplete = [], False
    for society, strategies in order:
        for strategy in strategies:
            row = [society, strategy]
            for r in range(rounds + 1):
                n, done, right = cells.get((society, strategy, r), (0, 0, 0))
                text = "-" if done == 0 else f"{right / done:.3f}"
                if done < n:
                    incomplete = True
                    text += f" (n={done}/{n})"
                row.append(text)
            rows.append(row)
    return rows, incomplete


INCOMPLETE_NOTE = "(n=k/m): only k of the m planned cases are complete (calls not all stored)"


def _marked_blocks(analysis: Analysis) -> tuple[list[dict[str, object]], bool]:
    """Table 2's blocks with ``(n=k/m)`` after each incomplete cell (``cell_counts``, as the
    report and viewer mark them), and whether any cell is."""
    from societies.analysis.completeness import cell_count_map

    counts = cell_count_map(analysis)
    blocks, any_marked = table2_blocks(analysis), False
    for block in blocks:
        rows = []
        for strategy, cells, w in block["rows"]:  # type: ignore[attr-defined]
            marked = []
            for society, (text, mark) in zip(block["societies"], cells, strict=True):  # type: ignore[call-overload]
                n, planned = counts.get((block["run"], society, strategy), (0, 0))
                if n < planned:
                    text, any_marked = f"{text} (n={n}/{planned})", True
                marked.append((text, mark))
            rows.append((strategy, marked, w))
        block["rows"] = rows
        baselines = []
        for label, text, society in block["baselines"]:  # type: ignore[attr-defined]
            n, planned = counts.get((block["run"], society, BASELINE_STRATEGY), (0, 0))
            if n < planned:
                text, any_marked = f"{text} (n={n}/{planned})", True
            baselines.append((label, text, society))
        block["baselines"] = baselines
    return blocks, any_marked


_LATEX = {"best": "\\textbf{%s}", "second": "\\underline{%s}", "worst": "\\textit{%s}"}
_MD = {"best": "**%s**", "second": "<u>%s</u>", "worst": "_%s_"}


def _latex_escape(text: str) -> str:
    for a, b in (("\\", "\\textbackslash{}"), ("_", "\\_"), ("%", "\\%"), ("&", "\\&"),
                 ("#", "\\#"), ("$", "\\$"), ("{", "\\{"), ("}", "\\}")):  # fmt: skip
        text = text.replace(a, b)
    return text


def table2_latex(analysis: Analysis) -> str:
    """Table 2 in LaTeX (booktabs), accuracy in percent."""
    out = []
    blocks, marked = _marked_blocks(analysis)
    for block in blocks:
        societies = [str(s) for s in block["societies"]]  # type: ignore[attr-defined]
        out.append(f"% {block['run']} ({block['task']}): last-round accuracy, mean ± std (%)")
        out.append("\\begin{tabular}{l" + "r" * (len(societies) + 1) + "}")
        out.append("\\toprule")
        header = ["Strategy", *(_latex_escape(s) for s in societies), "W"]
        out.append(" & ".join(header) + " \\\\")
        out.append("\\midrule")
        for strategy, cells, w in block["rows"]:  # type: ignore[attr-defined]
            texts = [
                (_LATEX[m] % t.replace("±", "$\\pm$")) if m else t.replace("±", "$\\pm$")
                for t, m in cells
            ]
            out.append(" & ".join([_latex_escape(strategy), *texts, w]) + " \\\\")
        if block["baselines"]:
            out.append("\\midrule")
        for label, text, _ in block["baselines"]:  # type: ignore[attr-defined]
            value = text.replace("±", "$\\pm$")
            span = f"\\multicolumn{{{len(societies)}}}{{c}}{{{value}}}"
            out.append(f"{_latex_escape(label)} & {span} & – \\\\")
        out.append("\\bottomrule")
        out.append("\\end{tabular}")
        if marked:
            out.append(f"% {INCOMPLETE_NOTE}")
        out.append("")
    return "\n".join(out)


def table2_markdown(analysis: Analysis) -> str:
    """Table 2 in Markdown, one table per run."""
    out = []
    blocks, marked = _marked_blocks(analysis)
    for block in blocks:
        societies = [str(s) for s in block["societies"]]  # type: ignore[attr-defined]
        out.append(f"**{block['run']}** ({block['task']}): last-round accuracy, mean ± std (%)")
        out.append("")
        out.append("| Strategy | " + " | ".join(societies) + " | W |")
        out.append("|---|" + "---:|" * (len(societies) + 1))
        for strategy, cells, w in block["rows"]:  # type: ignore[attr-defined]
            texts = [(_MD[m] % t) if m else t for t, m in cells]
            out.append(f"| {strategy} | " + " | ".join(texts) + f" | {w} |")
        for label, text, _ in block["baselines"]:  # type: ignore[attr-defined]
            rest = " | " * (len(societies) - 1)
            out.append(f"| {label} | {text}{rest} | – |")
        if marked:
            out.append("")
            out.append(INCOMPLETE_NOTE)
        out.append("")
    return "\n".join(out)


def export(analysis: Analysis, folder: Path) -> list[Path]:
    """Every table as CSV and Parquet, and Table 2 as LaTeX and Markdown, into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in analysis.tables().items():
        for suffix in ("csv", "parquet"):
            path = folder / f"{name}.{suffix}"
            if suffix == "csv":
                table.to_csv(path, index=False)
            else:
                table.to_parquet(path, index=False)
            written.append(path)
    for name, text in (
        ("table2.tex", table2_latex(analysis)),
        ("table2.md", table2_markdown(analysis)),
    ):
        (folder / name).write_text(text, encoding="utf-8")
        written.append(folder / name)
    return written
