"""Knowledge conflict and distortion in a society: which edit wins, whether an agent's answers
stay consistent, and what an edit does to the facts beside it.

The cases are the ``triples`` task's questions (``societies.tasks.triples``): each knows what
the first edit (``claim_a``) and the second (``claim_b``) imply for it, and its ``probe`` kind.
``holds(run, case_id, answer, claim)`` says whether an answer is a claim (the task's scoring,
as edit adoption uses it). Every table has one row per cell (run, task, society, strategy,
round), a mean over units and a percentile bootstrap 95% CI over the same units
(``stats.bootstrap_ci``, fixed seed):

- ``conflict_outcome``: on conflict questions (the two edits imply different answers), the
  share of complete society answers (majority votes) that are edit A's claim, edit B's, the
  original answer, or none of them; units: (repeat, case).
- ``consistency``: for each record with a forward question (edit A's own) and an inverse one
  (what edit A implies on the inverse relation of its new object), an agent is consistent when
  it answers edit A's claim on both or on neither; agent answers without an answer on either
  side are left out; units: (repeat, record), each the mean over its agents.
- ``distortion``: on related questions (unedited facts of an edited subject), per agent slot
  against the run's control society (the first society in which no briefing claims an
  answer) at the same repeat, case, strategy, round and agent: ``changed`` (the answers
  differ; two missing answers do not) and ``distortion`` (control accuracy minus this
  society's); units: (repeat, case), each the mean over its agents.
- ``round_divergence``: on round-trip questions (an object edited away and back), the
  Jensen-Shannon divergence (base 2, in [0, 1]) between the distribution of the society's
  agents' answers and the control's, pooled over repeats and agents, per case; units: cases.
  The study measured distortion this way, over the relation's true objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from societies.analysis.metrics import CELL
from societies.analysis.stats import bootstrap_ci
from societies.tasks.triples import PROBES

__all__ = ["PROBES", "conflict_outcome", "consistency", "distortion", "item_table",
           "round_divergence"]  # fmt: skip

ITEM_COLUMNS = ["run", "case_id", "item", "probe", "claim_a", "via_a", "claim_b", "via_b"]
OUTCOMES = ("a", "b", "original", "none")
OUTCOME_COLUMNS = [*CELL, "n"] + [f"{o}{s}" for o in OUTCOMES for s in ("", "_low", "_high")]
CONSISTENCY_COLUMNS = [*CELL, "groups", "pairs", "consistency", "ci_low", "ci_high"]
DISTORTION_COLUMNS = [*CELL, "control", "groups", "changed", "changed_low", "changed_high",
                      "distortion", "ci_low", "ci_high"]  # fmt: skip
DIVERGENCE_COLUMNS = [*CELL, "control", "cases", "divergence", "ci_low", "ci_high"]

#: ``holds(run, case_id, answer, claim)``: the answer is the claim.
Holds = Callable[[str, str, "str | None", str], bool]
_SLOT = ["run", "task", "repeat", "case_id", "strategy", "round", "agent"]


def item_table(rows: Iterable[tuple[str, ...]]) -> pd.DataFrame:
    """(run, case_id, item, probe, claim_a, via_a, claim_b, via_b) of every triples case."""
    return pd.DataFrame(list(rows), columns=ITEM_COLUMNS)


def _mean_ci(values: pd.Series) -> tuple[float, float, float]:
    data = values.to_numpy(dtype=float)
    low, high = bootstrap_ci(data)
    return float(data.mean()), low, high


def conflict_outcome(votes: pd.DataFrame, items: pd.DataFrame, holds: Holds) -> pd.DataFrame:
    """Per cell: shares of conflict-question majorities holding edit A, edit B, the original
    answer, or none (see the module docstring)."""
    conflict = items.loc[items["probe"] == "conflict", ["run", "case_id", "claim_a", "claim_b"]]
    done = votes.loc[votes["complete"], [*CELL, "repeat", "case_id", "majority", "correct"]]
    grid = done.merge(conflict, on=["run", "case_id"])
    if grid.empty:
        return pd.DataFrame(columns=OUTCOME_COLUMNS)
    kinds = []
    for run, case, answer, a, b, ok in zip(grid["run"], grid["case_id"], grid["majority"],
                                           grid["claim_a"], grid["claim_b"], grid["correct"],
                                           strict=True):  # fmt: skip
        if answer is not None and holds(run, case, answer, a):
            kinds.append("a")
        elif answer is not None and holds(run, case, answer, b):
            kinds.append("b")
        else:
            kinds.append("original" if ok else "none")
    grid["kind"] = kinds
    rows = []
    for cell, group in grid.sort_values([*CELL, "repeat", "case_id"]).groupby(CELL, sort=True):
        stats: list[float] = []
        for kind in OUTCOMES:
            stats.extend(_mean_ci(group["kind"] == kind))
        rows.append((*cell, len(group), *stats))
    return pd.DataFrame(rows, columns=OUTCOME_COLUMNS)


def consistency(answers: pd.DataFrame, items: pd.DataFrame, holds: Holds) -> pd.DataFrame:
    """Per cell: the share of agents whose forward and inverse answers agree on edit A."""
    forward = items.loc[items["via_a"] == "direct", ["run", "item", "case_id", "claim_a"]]
    inverse = items.loc[items["via_a"] == "inverse", ["run", "item", "case_id", "claim_a"]]
    pairs = forward.merge(inverse, on=["run", "item"], suffixes=("_f", "_i"))
    if pairs.empty or answers.empty:
        return pd.DataFrame(columns=CONSISTENCY_COLUMNS)
    cols = [*CELL, "repeat", "case_id", "agent", "answer"]
    given = answers.loc[answers["answer"].notna(), cols]
    grid = given.merge(pairs, left_on=["run", "case_id"], right_on=["run", "case_id_f"])
    grid = grid.merge(
        given.rename(columns={"case_id": "case_id_i", "answer": "answer_i"}),
        on=[*CELL, "repeat", "agent", "case_id_i"],
    )
    if grid.empty:
        return pd.DataFrame(columns=CONSISTENCY_COLUMNS)
    grid["consistent"] = [
        holds(r, f, a, ca) == holds(r, i, b, cb)
        for r, f, a, ca, i, b, cb in zip(grid["run"], grid["case_id_f"], grid["answer"],
                                         grid["claim_a_f"], grid["case_id_i"], grid["answer_i"],
                                         grid["claim_a_i"], strict=True)
    ]  # fmt: skip
    units = grid.groupby([*CELL, "repeat", "item"], sort=True)["consistent"].agg(["mean", "size"])
    rows = []
    for cell, group in units.reset_index().groupby(CELL, sort=True):
        mean, low, high = _mean_ci(group["mean"])
        rows.append((*cell, len(group), int(group["size"].sum()), mean, low, high))
    return pd.DataFrame(rows, columns=CONSISTENCY_COLUMNS)


def _against_control(
    answers: pd.DataFrame, cases: pd.DataFrame, control: Mapping[str, str]
) -> pd.DataFrame:
    """Answers to ``cases`` of every non-control society beside the control's at the same slot."""
    mine = answers.merge(cases[["run", "case_id"]], on=["run", "case_id"])
    mine = mine[mine["run"].isin(list(control))]
    is_control = mine["society"] == mine["run"].map(control)
    base = mine.loc[is_control, [*_SLOT, "answer", "correct"]]
    return mine[~is_control].merge(base, on=_SLOT, suffixes=("", "_control"))


def distortion(
    answers: pd.DataFrame, items: pd.DataFrame, control: Mapping[str, str]
) -> pd.DataFrame:
    """Per cell of each non-control society: related answers changed against the control, and
    the control's accuracy on them minus this society's (see the module docstring)."""
    related = items[items["probe"] == "related"]
    grid = _against_control(answers, related, control)
    if grid.empty:
        return pd.DataFrame(columns=DISTORTION_COLUMNS)
    same = [a == b for a, b in zip(grid["answer"], grid["answer_control"], strict=True)]
    grid["changed"] = ~np.array(same, dtype=bool)
    grid["drop"] = grid["correct_control"].astype(float) - grid["correct"].astype(float)
    keys = [*CELL, "repeat", "case_id"]
    units = grid.groupby(keys, sort=True)[["changed", "drop"]].mean().reset_index()
    rows = []
    for cell, group in units.groupby(CELL, sort=True):
        changed = _mean_ci(group["changed"])
        drop = _mean_ci(group["drop"])
        rows.append((*cell, control[str(cell[0])], len(group), *changed, *drop))
    return pd.DataFrame(rows, columns=DISTORTION_COLUMNS)


def js_divergence(p: Mapping[Any, float], q: Mapping[Any, float]) -> float:
    """Jensen-Shannon divergence (base 2) of two distributions given as value -> weight."""
    keys = sorted(set(p) | set(q), key=str)
    a = np.array([p.get(k, 0.0) for k in keys], dtype=float)
    b = np.array([q.get(k, 0.0) for k in keys], dtype=float)
    a, b = a / a.sum(), b / b.sum()
    m = (a + b) / 2

    def kl(x: np.ndarray) -> float:
        nz = x > 0
        return float(np.sum(x[nz] * np.log2(x[nz] / m[nz])))

    return (kl(a) + kl(b)) / 2


def round_divergence(
    answers: pd.DataFrame, items: pd.DataFrame, control: Mapping[str, str]
) -> pd.DataFrame:
    """Per cell of each non-control society: the mean over round-trip cases of the JS
    divergence between its agents' answers and the control's (see the module docstring)."""
    grid = _against_control(answers, items[items["probe"] == "round"], control)
    if grid.empty:
        return pd.DataFrame(columns=DIVERGENCE_COLUMNS)
    label = {None: "(none)"}
    grid["value"] = [label.get(a, a) for a in grid["answer"]]
    grid["value_control"] = [label.get(a, a) for a in grid["answer_control"]]
    rows = []
    for cell, group in grid.groupby(CELL, sort=True):
        per_case = [
            js_divergence(g["value"].value_counts().to_dict(),
                          g["value_control"].value_counts().to_dict())
            for _, g in group.groupby("case_id", sort=True)
        ]  # fmt: skip
        mean, low, high = _mean_ci(pd.Series(per_case))
        rows.append((*cell, control[str(cell[0])], len(per_case), mean, low, high))
    return pd.DataFrame(rows, columns=DIVERGENCE_COLUMNS)


def conflict_lines(outcome: pd.DataFrame) -> list[str]:
    """One line per society and strategy: who wins the conflict questions in the last round."""
    if outcome.empty:
        return []
    last = outcome[outcome["round"] == outcome["round"].max()]
    return [
        f"conflict, round {r.round}: {r.society} / {r.strategy}: edit A {r.a:.3f} "
        f"[{r.a_low:.3f}, {r.a_high:.3f}], edit B {r.b:.3f} [{r.b_low:.3f}, {r.b_high:.3f}], "
        f"original {r.original:.3f}, none {r.none:.3f} ({r.n} answers)"
        for r in last.itertuples()
    ]
