"""Hand-built answer grids for the analysis tests: small enough to compute metrics by hand."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from societies.analysis.metrics import Scorer

#: (society, strategy, repeat, case_id) -> per round, each agent's answer.
Spec = Mapping[tuple[str, str, int, str], Sequence[Sequence[str | None]]]


def make_grid(
    spec: Spec,
    targets: Mapping[str, str],
    traits: Mapping[str, Sequence[str]] | None = None,
    run: str = "r",
    task: str = "t",
) -> pd.DataFrame:
    """An answer grid in ``load_run``'s layout. Round r > 0 uses pattern strategy[r-1]
    (0 = debate, 1 = reflection); ``None`` is an unparsed answer."""
    rows = []
    for (society, strategy, repeat, case_id), rounds in spec.items():
        for r, answers in enumerate(rounds):
            for agent, answer in enumerate(answers):
                pattern = None if r == 0 else ("debate" if strategy[r - 1] == "0" else "reflection")
                trait = traits[society][agent] if traits else "default"
                rows.append(
                    {
                        "run": run,
                        "task": task,
                        "repeat": repeat,
                        "case_id": case_id,
                        "society": society,
                        "strategy": strategy,
                        "round": r,
                        "agent": agent,
                        "trait": trait,
                        "pattern": pattern,
                        "sees_peers": pattern == "debate",
                        "answer": answer,
                        "correct": answer is not None and answer == targets[case_id],
                        "outcome": "ok",
                    }
                )
    grid = pd.DataFrame(rows)
    grid["answer"] = pd.Series(list(grid["answer"]), dtype=object)
    return grid


def scorer(targets: Mapping[str, str]) -> Scorer:
    """Scores a majority answer against ``targets`` by case id, as a task's ``score`` would."""

    def score(run: str, case_id: str, answer: str | None) -> bool:
        return answer is not None and answer == targets[case_id]

    return score
