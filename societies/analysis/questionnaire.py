"""The manipulation check: questionnaire ratings by trait, before round 0 and after the last.

Did the trait prompt take effect? Each agent rated itself (``questionnaire:``) on a branch of
its conversation the debate never saw; here the ratings are read back from the stored
replies (``society.questionnaire.read_ratings``, the one parser), averaged per trait with
bootstrap CIs, and traits are compared pairwise (the difference of means with a two-sample
bootstrap CI and Welch's p).

Unit of analysis: one agent in one tree (repeat x case x society), for one item and timing.
An agent answers the post questionnaire once per node where its branches end (each
strategy's last node); those ratings are averaged first, so an agent counts once however
many strategies the run has. A rating that cannot be read (no number, two numbers, off the
scale, a failed call) is missing: counted in ``missing``, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from societies.analysis import stats
from societies.config.models import QuestionnaireSpec
from societies.society.questionnaire import PRE_NODE, Item, read_ratings, resolve_items

RESPONSE_COLUMNS = ["run", "repeat", "case_id", "society", "agent", "trait", "timing", "node",
                    "item", "value", "problem"]  # fmt: skip
TRAIT_COLUMNS = ["run", "item", "trait", "timing", "n", "missing", "mean", "ci_low", "ci_high"]
DIFF_COLUMNS = ["run", "item", "timing", "trait", "vs", "difference", "ci_low", "ci_high",
                "p_welch"]  # fmt: skip
_UNIT = ["run", "repeat", "case_id", "society", "agent", "trait", "timing", "item"]


def items_of(config: Mapping[str, Any]) -> tuple[Item, ...]:
    """The questionnaire a stored run asked (its experiment config), or none."""
    value = config.get("questionnaire")
    if value is None or isinstance(value, str):
        return resolve_items(value)
    return resolve_items(QuestionnaireSpec.model_validate(value))


def responses(
    run: str,
    rows: Iterable[tuple[int, str, str, str, int, str, str | None]],
    items: tuple[Item, ...],
    traits: Mapping[tuple[str, int], str],
) -> pd.DataFrame:
    """One row per questionnaire call x item: the rating (NaN when missing, with the reason).
    ``rows`` as ``store.queries.questionnaire_replies`` gives them."""
    out = []
    for repeat, case_id, society, node, agent, outcome, reply in rows:
        timing = "pre" if node == PRE_NODE else "post"
        ratings = read_ratings(reply if outcome == "ok" else None, items)
        trait = traits.get((society, agent), "")
        for item, rating in zip(items, ratings, strict=True):
            value = np.nan if rating.value is None else rating.value
            out.append((run, repeat, case_id, society, agent, trait, timing, node, item.id,
                        value, rating.problem))  # fmt: skip
    return pd.DataFrame(out, columns=RESPONSE_COLUMNS)


def read_responses(
    runs: Mapping[str, tuple[Path, Mapping[str, Any]]], agents: pd.DataFrame
) -> pd.DataFrame:
    """Every run's questionnaire responses: per run label, its store file and config."""
    from societies.store.queries import questionnaire_replies

    frames = [pd.DataFrame(columns=RESPONSE_COLUMNS)]
    for label, (store, config) in runs.items():
        items = items_of(config)
        if not items:
            continue
        mine = agents[agents["run"] == label]
        traits = {
            (str(s), int(a)): str(t)
            for s, a, t in mine[["society", "agent", "trait"]].itertuples(index=False)
        }
        frames.append(responses(label, questionnaire_replies(store), items, traits))
    return pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)


def _units(resp: pd.DataFrame) -> pd.DataFrame:
    """Each agent-tree's mean rating per item and timing (post: over the nodes its branches
    end at), NaN when none of its ratings could be read."""
    return resp.groupby(_UNIT, observed=True, sort=False)["value"].mean().reset_index()


def _orders(resp: pd.DataFrame) -> tuple[dict[str, int], dict[str, int]]:
    items = {v: i for i, v in enumerate(dict.fromkeys(resp["item"]))}
    traits = {v: i for i, v in enumerate(dict.fromkeys(resp["trait"]))}
    return items, traits


def by_trait(resp: pd.DataFrame) -> pd.DataFrame:
    """Per run, item, trait and timing: mean rating with a bootstrap 95% CI over agent-trees
    (``n``), and the responses that could not be read (``missing``)."""
    if not len(resp):
        return pd.DataFrame(columns=TRAIT_COLUMNS)
    missing = (
        resp.assign(missing=resp["value"].isna())
        .groupby(["run", "item", "trait", "timing"], observed=True)["missing"]
        .sum()
    )
    rows = []
    keys = ["run", "item", "trait", "timing"]
    for key, group in _units(resp).groupby(keys, observed=True, sort=False):
        values = group["value"].dropna().to_numpy()
        low, high = stats.bootstrap_ci(values)
        mean = float(values.mean()) if values.size else np.nan
        rows.append((*key, int(values.size), int(missing.get(key, 0)), mean, low, high))
    return _sorted(pd.DataFrame(rows, columns=TRAIT_COLUMNS), resp)


def trait_differences(resp: pd.DataFrame) -> pd.DataFrame:
    """Per run, item and timing, each pair of traits (in the order they first appear): the
    later trait's mean minus the earlier's, with a two-sample bootstrap 95% CI and Welch's p.
    The manipulation check: an overconfident agent should rate its confidence higher than
    an easy-going one, and its openness to persuasion lower."""
    rows = []
    units = _units(resp)
    for (run, item, timing), group in units.groupby(["run", "item", "timing"], sort=False):
        samples = {
            str(t): g["value"].dropna().to_numpy() for t, g in group.groupby("trait", sort=False)
        }
        names = list(samples)
        for i, earlier in enumerate(names):
            for later in names[i + 1 :]:
                a, b = samples[later], samples[earlier]
                diff = float(a.mean() - b.mean()) if a.size and b.size else np.nan
                low, high = stats.bootstrap_diff_ci(a, b)
                rows.append((run, item, timing, later, earlier, diff, low, high,
                             stats.welch_p(a, b)))  # fmt: skip
    return _sorted(pd.DataFrame(rows, columns=DIFF_COLUMNS), resp)


def _sorted(frame: pd.DataFrame, resp: pd.DataFrame) -> pd.DataFrame:
    """Items in questionnaire order, traits as they first appear, pre before post."""
    if not len(frame):
        return frame
    items, traits = _orders(resp)
    order = frame.assign(
        _i=frame["item"].map(items), _t=frame["trait"].map(traits),
        _w=(frame["timing"] == "post").astype(int),
    )  # fmt: skip
    order = order.sort_values(["run", "_i", "_w", "_t"], kind="stable")
    return order.drop(columns=["_i", "_t", "_w"]).reset_index(drop=True)


def trait_table(table: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """``by_trait`` one row per run, item and trait, pre and post side by side as
    "mean [low, high]" (the CLI's and the report's view)."""
    if not len(table):
        return pd.DataFrame(columns=["run", "item", "trait", "pre", "post", "missing"])
    cell = table.assign(
        text=[
            "-" if np.isnan(m) else f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
            for m, lo, hi in zip(table["mean"], table["ci_low"], table["ci_high"], strict=True)
        ]
    )
    keys = ["run", "item", "trait"]
    wide = cell.pivot(index=keys, columns="timing", values="text")
    missing = cell.groupby(keys, sort=False)["missing"].sum()
    out = pd.DataFrame(
        {
            "pre": wide.get("pre", pd.Series("-", index=wide.index)),
            "post": wide.get("post", pd.Series("-", index=wide.index)),
        }
    ).fillna("-")
    out["missing"] = missing
    first = table[keys].drop_duplicates()
    return first.merge(out.reset_index(), on=keys, how="left").reset_index(drop=True)
