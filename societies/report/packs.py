"""The report's study sections: one per pack a run has (edit adoption, knowledge conflict, the
reversal curse, ...), each a short explanation and its tables by round.

A builder returns ``None`` when no run of the report has its pack, so a report of the study's
own grid shows none of them. Cells read "mean [95% CI]" over the units the metric module
names; the tables themselves (with every column) are in ``--export``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from societies.analysis.load import Analysis
from societies.analysis.questionnaire import trait_table


@dataclass(frozen=True)
class PackSection:
    """One study section of the report: an HTML id, a title, what it measures, its tables."""

    id: str
    title: str
    intro: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def _ci(mean: Any, low: Any, high: Any, signed: bool = False) -> str:
    """``mean [low, high]`` (numbers from a table row)."""
    if mean != mean:
        return "–"
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(mean)} [{f.format(low)}, {f.format(high)}]"


def by_round(
    analysis: Analysis, frame: pd.DataFrame, value: Callable[[pd.Series], str]
) -> pd.DataFrame:
    """One row per run, society and strategy (societies in the experiment's order), a column
    per round holding ``value(row)``."""
    keys = ["run", "society", "strategy"]
    cells = frame.assign(cell=[value(row) for _, row in frame.iterrows()])
    wide = cells.pivot_table(index=keys, columns="round", values="cell", aggfunc="first")
    wide.columns = [f"round {c}" for c in wide.columns]
    out = wide.reset_index()
    rank = {
        (run, society): (i, j)
        for i, run in enumerate(analysis.runs)
        for j, society in enumerate(analysis.society_order(run))
    }
    keys_of = zip(out["run"], out["society"], out["strategy"], strict=True)
    ranked = [(rank.get((run, society), (0, 0)), strategy) for run, society, strategy in keys_of]
    order = sorted(range(len(out)), key=ranked.__getitem__)
    return out.iloc[order].reset_index(drop=True)


def edit_adoption(analysis: Analysis) -> PackSection | None:
    if not len(analysis.claims):
        return None
    table = by_round(
        analysis, analysis.edit_adoption, lambda r: _ci(r.adoption, r.ci_low, r.ci_high)
    )
    return PackSection(
        "pack-edit-adoption",
        "Edit adoption by round",
        "Societies in which a private briefing claims an answer (an in-context edit): the "
        "share of the other agents answering what the briefing claims, over (repeat, case), "
        "with a bootstrap 95% CI.",
        {"Edit adoption (share of unbriefed agents holding the claim)": table},
    )


def knowledge_conflict(analysis: Analysis) -> PackSection | None:
    if not len(analysis.triples):
        return None
    outcome = analysis.conflict_outcome

    def shares(r: pd.Series) -> str:
        return f"A {r.a:.2f} · B {r.b:.2f} · original {r.original:.2f} · none {r.none:.2f}"

    def distorted(r: pd.Series) -> str:
        drop = _ci(r.distortion, r.ci_low, r.ci_high, signed=True)
        return f"{drop}; changed {r.changed:.2f}"

    last = outcome[outcome["round"] == outcome.groupby("run")["round"].transform("max")]
    detail = pd.DataFrame(
        {
            "run": last["run"], "society": last["society"], "strategy": last["strategy"],
            "round": last["round"], "answers": last["n"],
            "edit A": [_ci(r.a, r.a_low, r.a_high) for r in last.itertuples()],
            "edit B": [_ci(r.b, r.b_low, r.b_high) for r in last.itertuples()],
            "original": [_ci(r.original, r.original_low, r.original_high)
                         for r in last.itertuples()],
            "none": [_ci(r.none, r.none_low, r.none_high) for r in last.itertuples()],
        }
    )  # fmt: skip
    return PackSection(
        "pack-conflict",
        "Knowledge conflict: clashing edits, consistency, distortion",
        "Questions over fact triples with in-context edits (the triples task). Conflict "
        "outcome: on questions where the two edits imply different answers, the share of the "
        "society's majority answers holding edit A's answer, edit B's, the original one, or "
        "none. Consistency: the share of agents whose answers to an edit's question and to "
        "its inverse agree (both hold the edit, or neither). Distortion: on unedited facts of "
        "an edited subject, the control society's accuracy minus this society's (changed: "
        "answers differing from the control's agent at the same slot). Round trip: the "
        "Jensen-Shannon divergence of the answers from the control's after an object is "
        "edited away and back. Bootstrap 95% CIs.",
        {
            "Conflict outcome by round (shares of society answers)": by_round(
                analysis, outcome, shares
            ),
            "Conflict outcome, last round [95% CI]": detail,
            "Consistency of forward and inverse answers by round": by_round(
                analysis, analysis.consistency, lambda r: _ci(r.consistency, r.ci_low, r.ci_high)
            ),
            "Distortion of related facts against the control, by round": by_round(
                analysis, analysis.distortion, distorted
            ),
            "Round-trip edits: JS divergence from the control, by round": by_round(
                analysis,
                analysis.round_divergence,
                lambda r: _ci(r.divergence, r.ci_low, r.ci_high),
            ),
        },
    )


def reversal(analysis: Analysis) -> PackSection | None:
    if not len(analysis.probes):
        return None
    gap = analysis.reversal_gap

    def cell(r: pd.Series) -> str:
        gap = _ci(r.gap, r.ci_low, r.ci_high, signed=True)
        return f"{gap} (F {r.forward:.2f}, B {r.backward:.2f})"

    return PackSection(
        "pack-reversal",
        "Reversal gap by round",
        "Each fact asked forward and backward (the reversal curse): forward minus backward "
        "accuracy of the society's majority answers, paired by fact, with a bootstrap 95% CI "
        "over (repeat, pair); F and B are the two accuracies.",
        {"Reversal gap (forward - backward accuracy) by round": by_round(analysis, gap, cell)},
    )


def manipulation_check(analysis: Analysis) -> PackSection | None:
    checks = analysis.manipulation_check
    if not len(checks):
        return None
    diffs = analysis.trait_differences
    differences = pd.DataFrame(
        {
            "run": diffs["run"], "item": diffs["item"], "timing": diffs["timing"],
            "trait": diffs["trait"], "vs": diffs["vs"],
            "difference [95% CI]": [_ci(r.difference, r.ci_low, r.ci_high, signed=True)
                                    for r in diffs.itertuples()],
            "Welch p": [f"{p:.2g}" for p in diffs["p_welch"]],
        }
    )  # fmt: skip
    return PackSection(
        "pack-manipulation-check",
        "Manipulation check: self-ratings by trait",
        "Did the trait prompt take effect? Each agent rated itself (the questionnaire) before "
        "round 0 and after its last round, on a branch of its conversation the debate never "
        "saw. Mean rating by trait with a bootstrap 95% CI over agents x cases x repeats (after "
        "the last round, an agent's ratings at the ends of its branches are averaged first); "
        "missing counts ratings that could not be read. Differences: the mean of trait minus "
        "the mean of vs, with a two-sample bootstrap 95% CI and Welch's p.",
        {
            "Self-ratings by trait, mean [95% CI]": trait_table(checks),
            "Differences between traits": differences,
        },
    )


#: The study sections in the order the report shows them. The pause pack's section
#: (accuracy and tokens against the number of pause tokens M; issue 12, item 4) goes here.
SECTIONS: tuple[Callable[[Analysis], PackSection | None], ...] = (
    edit_adoption,
    knowledge_conflict,
    reversal,
    manipulation_check,
)


def pack_sections(analysis: Analysis) -> list[PackSection]:
    """The sections of every pack some run of ``analysis`` has."""
    return [s for build in SECTIONS if (s := build(analysis)) is not None]
