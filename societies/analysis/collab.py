"""What a society's own settings do to its answers: stopping rules and decision protocols.

The settings are read from the run's stored experiment (``config_json``): a society spec
expands to one society per ``easy_going`` value, named as the resolver names them, and each
society finds its settings by that name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from societies.analysis.accuracy import decide
from societies.analysis.metrics import ANSWERED
from societies.society.agents import default_society_name
from societies.tasks.agreement import agreed, stop_threshold

CASE = ["run", "task", "repeat", "case_id", "society", "strategy"]


def expanded_specs(config: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Per society name, the experiment's spec it expands from, named exactly as the resolver
    names them (``plan/resolve.py``): the spec's name; ``<name>-<k>eg`` for each value of an
    ``easy_going`` list; or, unnamed, the default name from its agents' traits."""
    out: dict[str, Mapping[str, Any]] = {}
    for spec in config.get("societies") or []:
        agents, eg, name = spec.get("agents"), spec.get("easy_going"), spec.get("name")
        if isinstance(agents, int):
            for k in eg if isinstance(eg, list) else [eg or 0]:
                traits = ["easy-going"] * k + ["overconfident"] * (agents - k)
                named = f"{name}-{k}eg" if name is not None and isinstance(eg, list) else None
                if not isinstance(eg, list):
                    named = name
                out[named or default_society_name(traits)] = spec
        else:
            traits = [a if isinstance(a, str) else a["trait"] for a in agents or []]
            out[name or default_society_name(traits)] = spec
    return out


def society_settings(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per society name: its spec's ``stop`` and ``decision`` (keyed by name, so societies
    added beside the experiment's own, or listed in another order, cannot shift them)."""
    return {
        name: {
            "stop": stop_threshold(spec.get("stop")),
            "decision": spec.get("decision") or "majority",
        }
        for name, spec in expanded_specs(config).items()
    }


def uses_stopping(config: Mapping[str, Any]) -> bool:
    """Whether any society of the run's experiment has a stopping rule."""
    return any(spec.get("stop") is not None for spec in config.get("societies") or [])


def missing_calls(grid: pd.DataFrame, run: str) -> int:
    """Answer calls of a run's tree with no answer slot, rounds a stopping rule left unrun
    excluded (each tree node and agent counted once)."""
    rows = grid[(grid["run"] == run) & ~grid["outcome"].isin(ANSWERED)]
    return len(rows.drop_duplicates(["repeat", "case_id", "society", "node", "agent"]))


def carry_stopped(grid: pd.DataFrame, thresholds: Mapping[tuple[str, str], float]) -> pd.DataFrame:
    """Rounds a stopping rule left unrun take the answers of the round that stopped them.

    ``thresholds`` maps (run, society) to the society's stopping share. In each case and
    strategy, the first round whose answers are all stored (outcome ``ok``) and agree (see
    :func:`societies.tasks.agreement.agreed`, the scheduler's own test) ends the branch: the
    later rounds' rows with no stored call get each agent's answer (and vote) and correctness
    from that round, outcome ``stopped`` and no tokens.
    """
    if not thresholds or grid.empty:
        return grid
    grid = grid.copy()
    mask = np.array(
        [(r, s) in thresholds for r, s in zip(grid["run"], grid["society"], strict=True)]
    )
    if not mask.any():
        return grid
    carried_cols = [c for c in ("answer", "vote") if c in grid]
    token_cols = [c for c in ("prompt_tokens", "completion_tokens", "total_tokens", "usd")
                  if c in grid]  # fmt: skip
    sub = grid[mask]
    for key, rows in sub.groupby(CASE, observed=True, sort=False):
        threshold = thresholds[(str(key[0]), str(key[4]))]
        by_round = rows.sort_values(["round", "agent"]).groupby("round", sort=True)
        stopped: pd.DataFrame | None = None
        for _, group in by_round:
            if stopped is not None:
                source = stopped.set_index("agent")
                for idx, agent in zip(group.index, group["agent"], strict=True):
                    if grid.at[idx, "outcome"] != "missing":
                        continue
                    for col in carried_cols:
                        carried: Any = source.at[agent, col]
                        grid.at[idx, col] = carried
                    grid.at[idx, "correct"] = bool(source.at[agent, "correct"])
                    grid.at[idx, "outcome"] = "stopped"
                    for col in token_cols:
                        grid.at[idx, col] = 0
                continue
            if (group["outcome"] == "ok").all() and agreed(list(group["answer"]), threshold):
                stopped = group
    return grid


def stopping_table(grid: pd.DataFrame, calls: pd.DataFrame) -> pd.DataFrame:
    """Per run and society with a stopping rule: calls made, calls saved (tree nodes x agents
    left unrun, each counted once however many strategies share it) and an estimate of the
    tokens saved (each saved call at the society's mean tokens per answer call of its round)."""
    cols = ["run", "task", "society", "calls_made", "calls_saved", "tokens", "tokens_saved_est"]
    stopped = grid[grid["outcome"] == "stopped"]
    if stopped.empty:
        return pd.DataFrame(columns=cols)
    keys = ["run", "task", "repeat", "case_id", "society", "node", "agent"]
    saved = stopped.drop_duplicates(keys)
    answer_calls = calls[calls["step"] == "answer"]
    mean = answer_calls.groupby(["run", "society", "round"], observed=True)["total_tokens"].mean()
    est = saved.merge(mean.rename("mean_tokens").reset_index(), how="left")
    rows = []
    for (run, task, society), part in est.groupby(["run", "task", "society"], observed=True):
        made = calls[(calls["run"] == run) & (calls["society"] == society)]
        rows.append(
            {"run": run, "task": task, "society": society, "calls_made": len(made),
             "calls_saved": len(part), "tokens": int(made["total_tokens"].sum()),
             "tokens_saved_est": float(part["mean_tokens"].fillna(0).sum())}
        )  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def decision_table(
    votes: pd.DataFrame, answers: pd.DataFrame, decisions: Mapping[tuple[str, str], Any], score: Any
) -> pd.DataFrame:
    """Per society answer of a society whose protocol is not the majority: the protocol's answer
    (``decided``) and whether it is correct, beside the majority answer and its correctness."""
    cols = [
        *CASE,
        "round",
        "decision",
        "majority",
        "correct",
        "decided",
        "decided_correct",
        "complete",
    ]
    if not decisions:
        return pd.DataFrame(columns=cols)
    rows = []
    keys = [*CASE, "round"]
    sub = answers[
        [(r, s) in decisions for r, s in zip(answers["run"], answers["society"], strict=True)]
    ]
    heads = {
        tuple(row[:-3]): row[-3:]
        for row in votes[[*keys, "majority", "correct", "complete"]].itertuples(index=False)
    }
    for key, group in sub.groupby(keys, observed=True, sort=True):
        protocol = decisions[(str(key[0]), str(key[4]))]
        ordered = group.sort_values("agent")
        decided = decide(protocol, list(ordered["vote" if "vote" in ordered else "answer"]))
        majority, correct, complete = heads[tuple(key)]
        rows.append(
            (*key, protocol_name(protocol), majority, bool(correct), decided,
             decided is not None and bool(score(str(key[0]), str(key[3]), decided)),
             bool(complete))
        )  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def protocol_name(protocol: Any) -> str:
    return "weighted" if isinstance(protocol, Mapping) else str(protocol)


def decision_accuracy(table: pd.DataFrame) -> pd.DataFrame:
    """Per cell: the protocol's accuracy beside the majority's, over complete groups."""
    cell = ["run", "task", "society", "strategy", "round", "decision"]
    if table.empty:
        return pd.DataFrame(columns=[*cell, "accuracy", "majority_accuracy", "no_answer", "n"])
    done = table[table["complete"].astype(bool)]
    out = done.groupby(cell, observed=True).agg(
        accuracy=("decided_correct", "mean"),
        majority_accuracy=("correct", "mean"),
        no_answer=("decided", lambda s: float(s.isna().mean())),
        n=("decided", "size"),
    )
    return out.reset_index()


def society_tokens(calls: pd.DataFrame) -> pd.DataFrame:
    """Per run and society: calls and tokens per case (role-play turns included), the figure
    a sparse topology or a stopping rule changes."""
    keys = ["run", "task", "society"]
    per_case = calls.groupby([*keys, "repeat", "case_id"], observed=True).agg(
        calls=("total_tokens", "size"),
        input_tokens=("prompt_tokens", "sum"),
        output_tokens=("completion_tokens", "sum"),
    )
    out = per_case.groupby(keys, observed=True).agg(
        cases=("calls", "size"),
        calls_per_case=("calls", "mean"),
        input_tokens_per_case=("input_tokens", "mean"),
        output_tokens_per_case=("output_tokens", "mean"),
    )
    return out.reset_index()


def stopping_references(
    config: Mapping[str, Any], members: Mapping[str, Sequence[Any]]
) -> dict[str, str]:
    """Per society with a stopping rule: the first society of the same run without one that
    is otherwise the same (same agents as ``members`` lists them, per society name, and the
    same settings but for name and ``stop``): the run it is compared with. A society with no
    such twin has no entry."""
    specs = expanded_specs(config)

    def rest(spec: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in spec.items() if k not in ("name", "stop", "easy_going")}

    out = {}
    for name, spec in specs.items():
        if spec.get("stop") is None or name not in members:
            continue
        for other, candidate in specs.items():
            if (
                candidate.get("stop") is None
                and other in members
                and list(members[other]) == list(members[name])
                and rest(candidate) == rest(spec)
            ):
                out[name] = other
                break
    return out


def stopping_effect(
    accuracy: pd.DataFrame, cost: pd.DataFrame, references: Mapping[tuple[str, str], str]
) -> pd.DataFrame:
    """Per society with a stopping rule and a twin without one (``references``: (run,
    society) → twin), per strategy at the run's last round: both accuracies (mean over
    repeats) and their difference, both billed tokens per case and the share saved."""
    cols = ["run", "task", "society", "strategy", "reference", "accuracy",
            "reference_accuracy", "difference", "billed_per_case",
            "reference_billed_per_case", "tokens_saved"]  # fmt: skip
    if not references:
        return pd.DataFrame(columns=cols)
    keys = ["run", "task", "society", "strategy"]
    last = accuracy[accuracy["round"] == accuracy.groupby("run")["round"].transform("max")]
    both = last[[*keys, "round", "mean"]].merge(
        cost[[*keys, "round", "billed_per_case"]], on=[*keys, "round"], how="left"
    )
    both = both.rename(columns={"mean": "accuracy"}).drop(columns=["round"])
    refs = pd.DataFrame(
        [(run, society, ref) for (run, society), ref in references.items()],
        columns=["run", "society", "reference"],
    )
    mine = both.merge(refs, on=["run", "society"])
    twin = both.rename(
        columns={"society": "reference", "accuracy": "reference_accuracy",
                 "billed_per_case": "reference_billed_per_case"}
    )  # fmt: skip
    out = mine.merge(twin, on=["run", "task", "reference", "strategy"])
    out["difference"] = out["accuracy"] - out["reference_accuracy"]
    ref_billed = out["reference_billed_per_case"].astype(float)
    out["tokens_saved"] = 1 - out["billed_per_case"] / ref_billed.where(ref_billed > 0)
    return out[cols].reset_index(drop=True)
