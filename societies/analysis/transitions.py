"""How answers move between rounds, and what the debate adds to the first vote.

Every function reads an answer grid or a vote table (see ``metrics``) and nothing else, so each
can be checked against values worked out by hand:

- ``transition_turns`` / ``transition_table``: each agent's step from round r-1 to round r as a
  move between three states, ``C`` (correct answer), ``W`` (a wrong answer) and ``∅`` (no
  answer), counted per round, pattern and trait, or per agent;
- ``debate_vs_vote``: the society's final answer against the majority of its first answers
  (the "Debate or Vote" comparison), paired per case, with a bootstrap CI of the difference;
- ``oracle_gap``: cases some agent answered right in some round that the society still got
  wrong; ``disagreement_collapse``: cases whose agents disagreed at first and ended unanimous
  on a wrong answer (and, for contrast, on the right one).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from societies.analysis.metrics import ANSWERED, CASE, GROUP

#: Each turn is exactly one of these: from a correct answer (C), a wrong one (W) or no answer
#: (∅) to the next round's state; an answer of either kind lost is ``A→∅``.
TRANSITIONS = ("C→C", "C→W", "W→C", "W→W", "A→∅", "∅→C", "∅→W", "∅→∅")
#: Outcomes of calls that were made (a round a stopping rule left unrun is no turn).
_MADE = tuple(o for o in ANSWERED if o != "stopped")


#: The three states, by code.
STATES = ("C", "W", "∅")
#: TRANSITIONS' index of each (before, after) pair of state codes, at before * 3 + after.
_LOOKUP = np.array(
    [TRANSITIONS.index("A→∅" if b < 2 and a == 2 else f"{STATES[b]}→{STATES[a]}")
     for b in range(3) for a in range(3)],
    dtype=np.int8,
)  # fmt: skip


def _states(frame: pd.DataFrame) -> np.ndarray:
    """Each row's state code: 0 correct, 1 a wrong answer, 2 no answer."""
    answered = frame["answer"].notna().to_numpy()
    correct = frame["correct"].fillna(False).astype(bool).to_numpy()
    return np.where(~answered, 2, np.where(correct, 0, 1)).astype(np.int8)


def transition_turns(answers: pd.DataFrame) -> pd.DataFrame:
    """One row per agent turn of round r ≥ 1 (in the grid's order) with the agent's state
    before (round r-1) and after, and the ``transition``. Turns are counted per strategy (a
    tree node shared by several strategies counts once for each, as the conformity counts
    do). A turn whose call or whose previous call has no answer slot (not stored, or failed)
    is left out, and so is a round a stopping rule left unrun: nothing moved there."""
    cols = [*GROUP, "agent", "trait", "pattern", "before", "after", "transition"]
    if answers.empty:
        return pd.DataFrame(columns=cols)
    outcome = answers["outcome"] if "outcome" in answers else pd.Series("ok", index=answers.index)
    answered = outcome.isin(ANSWERED).to_numpy()
    made = outcome.isin(_MADE).to_numpy()
    # Each (case, strategy, agent)'s rows in round order: a turn is a row whose previous row
    # is the same agent's previous round with an answer slot.
    case = answers.groupby(CASE, sort=False, observed=True).ngroup().to_numpy()
    agent, rnd = answers["agent"].to_numpy(), answers["round"].to_numpy()
    order = np.lexsort((rnd, agent, case))
    c, a, r = case[order], agent[order], rnd[order]
    follows = (c[1:] == c[:-1]) & (a[1:] == a[:-1]) & (r[1:] == r[:-1] + 1)
    turn = np.r_[False, follows & answered[order][:-1]] & made[order] & (r > 0)
    states = _states(answers)[order]
    # Back to the grid's order (load_run's grid is sorted), so no sort is needed.
    rows = order[turn]
    mask = np.zeros(len(answers), dtype=bool)
    mask[rows] = True
    prev = np.zeros(len(answers), dtype=np.int8)
    prev[rows] = np.r_[states[:1], states[:-1]][turn]
    before, after = prev[mask], _states(answers)[mask]
    keep = [c for c in [*GROUP, "agent", "trait", "pattern"] if c in answers]
    turns = answers.loc[mask, keep].reset_index(drop=True)
    if "trait" not in turns:
        turns["trait"] = ""
    states_index, transitions_index = pd.Index(STATES), pd.Index(TRANSITIONS)
    turns["before"] = pd.Categorical.from_codes(before, states_index)
    turns["after"] = pd.Categorical.from_codes(after, states_index)
    turns["transition"] = pd.Categorical.from_codes(
        _LOOKUP[before.astype(np.int64) * 3 + after], transitions_index
    )
    return turns[cols]


def transition_table(
    turns: pd.DataFrame, by: Sequence[str] = ("round", "pattern", "trait")
) -> pd.DataFrame:
    """Per run, society and ``by``: the turns and how many made each transition."""
    keys = ["run", "task", "society", *by]
    if turns.empty:
        return pd.DataFrame(columns=[*keys, "turns", *TRANSITIONS])
    counts = turns.groupby([*keys, "transition"], observed=True, dropna=False).size()
    wide = counts.unstack("transition", fill_value=0).reindex(columns=list(TRANSITIONS))
    wide = wide.fillna(0).astype(int)
    wide.columns.name = None
    wide.insert(0, "turns", wide.sum(axis=1))
    return wide.reset_index()


def _last_rounds(votes: pd.DataFrame) -> pd.Series:
    """Each row's society's last round in its run (a baseline's is 0)."""
    return votes.groupby(["run", "society"], observed=True)["round"].transform("max")


def _case_flags(votes: pd.DataFrame) -> pd.DataFrame:
    """Per case and strategy: the first and the last round's vote rows side by side, for the
    cases whose every round is complete."""
    last = _last_rounds(votes)
    complete = votes.groupby(CASE, observed=True)["complete"].transform("all")
    keep = ["correct", "majority", "n_distinct", "n_agents"]
    first = votes[(votes["round"] == 0) & complete & (last > 0)].set_index(CASE)[keep]
    final = votes[(votes["round"] == last) & complete & (last > 0)].set_index(CASE)
    final = final[[*keep, "round"]]
    both = first.merge(final, left_index=True, right_index=True, suffixes=("_first", ""))
    return both.reset_index()


def debate_vs_vote(votes: pd.DataFrame) -> pd.DataFrame:
    """Per run, society and strategy: accuracy of the majority of the first answers (round 0,
    the vote with no debate) and of the final round's majority, over the same complete cases;
    ``difference`` = final − vote with a bootstrap 95% CI of the paired per-case differences
    (``stats.bootstrap_ci``, batched as ``stats.bootstrap_cis``), and the cases the rounds
    ``gained`` (vote wrong, final right) and ``lost``. Societies whose last round is 0
    (baselines) have no row."""
    from societies.analysis import stats  # scipy: imported when the table is asked for

    cols = ["run", "task", "society", "strategy", "round", "n", "vote_accuracy",
            "final_accuracy", "difference", "ci_low", "ci_high", "gained", "lost"]  # fmt: skip
    flags = _case_flags(votes)
    if flags.empty:
        return pd.DataFrame(columns=cols)
    flags = flags.sort_values([*CASE])
    rows, diffs = [], []
    for key, g in flags.groupby(["run", "task", "society", "strategy"], observed=True):
        first = g["correct_first"].astype(bool).to_numpy()
        final = g["correct"].astype(bool).to_numpy()
        diff = final.astype(float) - first.astype(float)
        diffs.append(diff)
        rows.append(
            [*key, int(g["round"].iloc[0]), len(g), float(first.mean()), float(final.mean()),
             float(diff.mean()), int((final & ~first).sum()), int((first & ~final).sum())]
        )  # fmt: skip
    cis = stats.bootstrap_cis(diffs)
    rows = [[*row[:-2], *ci, *row[-2:]] for row, ci in zip(rows, cis, strict=True)]
    return pd.DataFrame(rows, columns=cols)


def oracle_gap(answers: pd.DataFrame, votes: pd.DataFrame) -> pd.DataFrame:
    """Per run, society and strategy, over the cases whose every round is complete: ``oracle``,
    the share in which some agent gave the right answer in some round (0 to the last);
    ``final_accuracy``; ``oracle_gap``, the share in which some agent held the right answer but
    the society's final answer is wrong; and ``lost_share``, that gap over the oracle share
    (of the cases the society could have got right, the share it did not)."""
    cols = ["run", "task", "society", "strategy", "n", "oracle", "final_accuracy",
            "oracle_gap", "lost_share"]  # fmt: skip
    flags = _case_flags(votes)
    if flags.empty:
        return pd.DataFrame(columns=cols)
    right = answers["correct"].fillna(False).astype(bool) & answers["answer"].notna()
    held = right.groupby([answers[k] for k in CASE], observed=True).any().rename("held")
    flags = flags.join(held, on=CASE)
    flags["held"] = flags["held"].fillna(False).astype(bool)
    flags["gap"] = flags["held"] & ~flags["correct"].astype(bool)
    out = flags.groupby(["run", "task", "society", "strategy"], observed=True).agg(
        n=("held", "size"),
        oracle=("held", "mean"),
        final_accuracy=("correct", "mean"),
        oracle_gap=("gap", "mean"),
    )
    out["lost_share"] = out["oracle_gap"] / out["oracle"].where(out["oracle"] > 0)
    return out.reset_index()[cols]


def disagreement_collapse(votes: pd.DataFrame) -> pd.DataFrame:
    """Per run, society and strategy, over the cases whose every round is complete: the cases
    whose first answers disagreed (more than one distinct answer, no answer counted as one),
    and of those, the ones whose last round is unanimous on a wrong answer (``to_wrong``: the
    collapse) or on the right one (``to_right``). ``collapse_rate`` is ``to_wrong`` over all
    cases, ``collapse_share`` over the disagreeing ones. Unanimous on no answer is neither."""
    cols = ["run", "task", "society", "strategy", "n", "disagreed", "to_wrong", "to_right",
            "collapse_rate", "collapse_share"]  # fmt: skip
    flags = _case_flags(votes)
    if flags.empty:
        return pd.DataFrame(columns=cols)
    disagreed = flags["n_distinct_first"] > 1
    unanimous = (flags["n_distinct"] == 1) & flags["majority"].notna()
    correct = flags["correct"].astype(bool)
    flags = flags.assign(
        disagreed=disagreed,
        to_wrong=disagreed & unanimous & ~correct,
        to_right=disagreed & unanimous & correct,
    )
    out = flags.groupby(["run", "task", "society", "strategy"], observed=True).agg(
        n=("disagreed", "size"),
        disagreed=("disagreed", "sum"),
        to_wrong=("to_wrong", "sum"),
        to_right=("to_right", "sum"),
    )
    out["collapse_rate"] = out["to_wrong"] / out["n"]
    out["collapse_share"] = out["to_wrong"] / out["disagreed"].where(out["disagreed"] > 0)
    return out.reset_index()[cols]
