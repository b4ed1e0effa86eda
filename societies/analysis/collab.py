"""What a society's own settings do to its answers: stopping rules and decision protocols.

The settings are read from the run's stored experiment (``config_json``): a society spec
expands to one society per ``easy_going`` value, confederate count and ``pause`` value,
named as the resolver names them, and each society finds its settings by that name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from societies.analysis.accuracy import decide
from societies.analysis.metrics import ANSWERED, clean_answers
from societies.config.models import SocietySpec
from societies.society.agents import CONFEDERATE_BACKEND, JUDGE_AGENT, expanded_names
from societies.tasks.agreement import agreed, stop_threshold

log = logging.getLogger(__name__)

CASE = ["run", "task", "repeat", "case_id", "society", "strategy"]


def model_agents(agents: pd.DataFrame) -> pd.DataFrame:
    """The rows of an agents table that answer through a model: not the judge (agent
    ``JUDGE_AGENT``, step ``judge``), not a confederate (backend ``CONFEDERATE_BACKEND``).
    Only they are scored, vote, agree (stopping) and count as the society's answer calls."""
    keep = (agents["agent"] != JUDGE_AGENT) & (agents["backend"] != CONFEDERATE_BACKEND)
    return agents[keep]


def seated(agents: pd.DataFrame) -> pd.DataFrame:
    """A society's agents in the order a transcript shows them: by index, the judge (agent
    ``JUDGE_AGENT``, who speaks after everyone) last."""
    judge = agents["agent"] == JUDGE_AGENT
    return agents.assign(_judge=judge).sort_values(["_judge", "agent"]).drop(columns="_judge")


def expanded_specs(config: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Per society name, the experiment's spec it expands from, named by the resolver's own
    rule (``society.agents.expanded_names``: easy_going x confederate counts x M). A
    stored spec is read with the fields this version knows (a store written by a newer one
    may have more); one it cannot read at all names no society."""
    out: dict[str, Mapping[str, Any]] = {}
    known = SocietySpec.model_fields
    for raw in config.get("societies") or []:
        try:
            spec = SocietySpec.model_validate({k: v for k, v in raw.items() if k in known})
        except ValidationError:
            log.warning("a stored society spec this version cannot read: %s", raw.get("name"))
            continue
        for name, *_ in expanded_names(spec):
            out[name] = raw
    return out


def society_settings(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per society name: its spec's ``stop``, ``decision``, ``judge`` (the judge's settings,
    or ``None``) and ``confederates`` (keyed by name, so societies added beside the
    experiment's own, or listed in another order, cannot shift them)."""
    return {
        name: {
            "stop": stop_threshold(spec.get("stop")),
            "decision": spec.get("decision") or "majority",
            "judge": spec.get("judge"),
            "confederates": spec.get("confederates"),
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
        made = calls[
            (calls["run"] == run) & (calls["society"] == society) & (calls["outcome"] != "scripted")
        ]
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


def judge_answers(grid: pd.DataFrame, calls: pd.DataFrame) -> pd.DataFrame:
    """Per society answer (case, strategy, round) that a judge gave: its answer (``decided``)
    and whether it is right. A judge answers at the node of each round it judged (every round,
    or the last); a round a stopping rule left unrun takes the judge's answer where the branch
    stopped, as the agents' answers are carried there."""
    cols = [*CASE, "round", "decided", "decided_correct"]
    verdicts = calls[calls["step"] == "judge"]
    if verdicts.empty or grid.empty:
        return pd.DataFrame(columns=cols)
    where = ["run", "repeat", "case_id", "society", "node"]
    verdicts = verdicts[[*where, "answer", "correct"]].rename(
        columns={"answer": "decided", "correct": "decided_correct"}
    )
    heads = (
        grid.assign(stopped=grid["outcome"] == "stopped")
        .groupby([*CASE, "round"], observed=True, sort=True)
        .agg(node=("node", "first"), stopped=("stopped", "all"))
        .reset_index()
    )
    heads = heads[heads.set_index(["run", "society"]).index.isin(
        verdicts.set_index(["run", "society"]).index.unique()
    )]  # fmt: skip
    out = heads.merge(verdicts, on=where, how="left")
    out = out.sort_values([*CASE, "round"], ignore_index=True)
    judged = out["decided_correct"].notna()
    carry = out.groupby(CASE, observed=True, sort=False)
    filled_answer = carry["decided"].ffill()
    filled_correct = carry["decided_correct"].ffill()
    take = ~judged & out["stopped"] & filled_correct.notna()
    out.loc[take, "decided"] = filled_answer[take]
    out.loc[take, "decided_correct"] = filled_correct[take]
    out = out[judged | take].copy()
    out["decided"] = pd.Series(clean_answers(out["decided"]), index=out.index, dtype=object)
    out["decided_correct"] = out["decided_correct"].astype(bool)
    return out[cols].reset_index(drop=True)


def judge_table(votes: pd.DataFrame, judged: pd.DataFrame) -> pd.DataFrame:
    """The judge's answers in the shape of :func:`decision_table` (protocol ``judge``), each
    beside the majority of the same agents' answers."""
    cols = [*CASE, "round", "decision", "majority", "correct", "decided", "decided_correct",
            "complete"]  # fmt: skip
    if judged.empty:
        return pd.DataFrame(columns=cols)
    heads = votes[[*CASE, "round", "majority", "correct", "complete"]]
    out = judged.merge(heads, on=[*CASE, "round"], how="inner").assign(decision="judge")
    return out[cols]


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
    """Per run and society: calls and tokens per case (role-play turns and a judge's calls
    included, a confederate's scripted turns not: they are no call), the figure a sparse
    topology or a stopping rule changes."""
    keys = ["run", "task", "society"]
    calls = calls[calls["outcome"] != "scripted"]
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
