"""``load_run``: one or several run stores as pandas DataFrames, with every metric table.

Analysis reads only the store: the task is rebuilt from the run's recorded task name and its
cases from the stored fields, so a run can be analysed on a machine that has neither its
experiment file nor its data. Tables are computed on first use and kept.

At scale (the agent-number preset: 1,052,000 calls, a 2.1M-row answer grid) the frames are
compact: ``store/frames.py`` reads the store in chunks into categoricals (society, case_id,
node, strategy, step, pattern, outcome, model, ...: sorted categories, so sorting and grouping
order as the strings do) and int32/int64 arrays, and never reads reply texts. What a new
metric should read:

- ``answers``: the answer grid (one row per repeat x case x society x strategy x round x agent:
  ``answer``/``vote`` as Python objects with ``None``, ``correct``, ``outcome``, tokens, trait,
  pattern, ``sees_peers``, ``extraction``); ``votes``: one row per society answer. Most
  metrics are a function of these two (see ``metrics.py``).
- ``calls``: one row per stored call (persona, judge and questionnaire turns included), every
  column of the calls table but the conversation and the reply.
- ``agents``, ``cases``, ``runs`` (the task, cases and config of each run).

Group with ``observed=True`` (categoricals), and work per distinct answer rather than per row
where Python is needed (``accuracy.factorize`` gives codes): a per-row Python loop is seconds
at this size. Reply texts are read per tree from the store (``RunStore.tree_transcript``).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from societies.analysis import collab, metrics, transitions
from societies.analysis import cost as cost_mod
from societies.analysis.stored import check_prices, peer_patterns, stored_task
from societies.config.models import Price
from societies.cost import price_table
from societies.errors import StoreError
from societies.store.db import STORE_FILE, RunStore
from societies.store.frames import FrameReader, Raw, as_objects, read_store
from societies.tasks.base import Case, Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInfo:
    """A loaded run: its label in every table's ``run`` column, and how to re-score it."""

    label: str
    path: Path
    name: str
    task_name: str
    config: dict[str, Any]
    task: Task
    cases: dict[str, Case]
    rounds: int
    #: Per pattern name: whether it shows the agent its peers (conformity counts those turns).
    sees_peers: dict[str, bool]


def _store_path(path: Path) -> Path:
    return path if path.is_file() else path / STORE_FILE


def _read_run(
    path: Path, label: str | None, taken: set[str], reader: FrameReader
) -> tuple[RunInfo, dict[str, Raw]]:
    store = RunStore(_store_path(path), readonly=True)
    try:
        task, cases, config = stored_task(store)
        row = store.run_row()
        assert row is not None  # stored_task checked it
        name = label or str(row["name"])
        if name in taken:
            name = f"{name} ({path})"
        raw = read_store(reader, store.con, {"run": name, "task": str(row["task"])})
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot read the run store ({exc})") from None
    finally:
        store.close()
    rounds = raw["nodes"].columns["round"]
    info = RunInfo(
        name, path, str(row["name"]), str(row["task"]), config, task, cases,
        int(rounds.max()) if len(rounds) else 0, peer_patterns(config),
    )  # fmt: skip
    return info, raw


def _missing_answer_calls(frames: dict[str, pd.DataFrame]) -> int:
    """Answer calls the run's tree asks for that are not stored with an answer slot (not
    made yet, or failed for good): cheap, from the frames already read."""
    nodes = frames["nodes"][["repeat", "case_id", "society", "node"]].drop_duplicates()
    per_society = nodes.groupby("society", observed=True).size()
    sizes = collab.model_agents(frames["agents"]).groupby("society", observed=True).size()
    expected = int((per_society * sizes.reindex(per_society.index).fillna(0)).sum())
    calls = frames["calls"]
    answered = calls[(calls["step"] == "answer") & calls["outcome"].isin(metrics.ANSWERED)]
    return max(expected - len(answered), 0)


def _fill_category(values: pd.Series, value: str, *more: str) -> pd.Series:
    """A categorical column with its missing values set to ``value`` and room for ``more``
    values (categories kept sorted)."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return values.fillna(value)
    categories = sorted({*values.cat.categories, value, *more})
    return values.cat.set_categories(categories).fillna(value)


class Analysis:
    """Every table of one or several runs. DataFrame attributes are computed once, on use."""

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        labels: Sequence[str] | None = None,
        prices: Mapping[str, Price | Mapping[str, float]] | None = None,
        ddof: int = 1,
    ) -> None:
        if not paths:
            raise ValueError("load_run needs at least one run directory")
        given = check_prices(prices) if prices is not None else None
        self.prices = given
        self.ddof = ddof
        self.runs: dict[str, RunInfo] = {}
        #: Per run label: answer calls its tree asks for that are not stored with an answer
        #: (a run still going, or calls that failed). Empty when every run is complete.
        self.incomplete: dict[str, int] = {}
        parts: dict[str, list[pd.DataFrame]] = {"calls": [], "nodes": [], "agents": [], "cases": []}
        stopping: list[str] = []
        reader = FrameReader()  # every run's text columns coded alike: they concatenate
        raws = []
        for i, path in enumerate(paths):
            info, raw = _read_run(Path(path), labels[i] if labels else None, set(self.runs), reader)
            self.runs[info.label] = info
            raws.append(raw)
        for info, raw in zip(self.runs.values(), raws, strict=True):
            frames = {key: reader.frame(table) for key, table in raw.items()}
            if collab.uses_stopping(info.config):
                stopping.append(info.label)  # counted on the grid, where stopped rounds show
            else:
                self._note_missing(info.label, _missing_answer_calls(frames))
            if given is not None:
                run_prices = check_prices(info.config.get("prices") or {}, "run prices")
                table = price_table({**run_prices, **given})
                frames["calls"]["usd"] = cost_mod.call_usd(frames["calls"], table)
                uncached = frames["calls"].assign(cached_tokens=0)
                frames["calls"]["usd_uncached"] = cost_mod.call_usd(uncached, table)
            for key, frame in frames.items():
                parts[key].append(frame)
        del raws
        calls, nodes, agents, cases = (
            parts[k][0] if len(parts[k]) == 1 else pd.concat(parts[k], ignore_index=True)
            for k in parts
        )
        self.agents: pd.DataFrame = agents
        self.cases: pd.DataFrame = cases
        calls = calls.merge(agents[["run", "society", "agent", "trait"]], how="left")
        calls["answer"] = as_objects(calls["answer"])
        #: One row per stored model call (persona turns included).
        self.calls: pd.DataFrame = calls
        self._nodes = nodes

        for label in stopping:
            self._note_missing(label, collab.missing_calls(self.answers, label))

    def _note_missing(self, label: str, missing: int) -> None:
        if missing:
            self.incomplete[label] = missing
            log.warning(
                "%s: incomplete run, %d answer calls not stored or failed; the tables "
                "leave their groups out (see n_incomplete)", label, missing,
            )  # fmt: skip

    # -- grids ------------------------------------------------------------------------------
    @cached_property
    def answers(self) -> pd.DataFrame:
        """repeat x case x society x strategy x round x agent, with the parsed answer, its
        correctness and the call's tokens. An agent whose call is not stored has a row with
        outcome ``missing`` and no answer, so incomplete groups can be told apart."""
        debaters = collab.model_agents(self.agents)[["run", "society", "agent", "trait"]]
        slots = self._nodes.merge(debaters, how="inner")
        keep = ["run", "repeat", "case_id", "society", "node", "agent", "pattern", "answer",
                "correct", "outcome", "prompt_tokens", "completion_tokens", "total_tokens",
                "model"]  # fmt: skip
        if "usd" in self.calls:
            keep.append("usd")
        answer_calls = self.calls.loc[self.calls["step"] == "answer", keep]
        grid = slots.merge(answer_calls, how="left")
        del slots, answer_calls
        grid["outcome"] = _fill_category(grid["outcome"], "missing", "stopped")
        grid["correct"] = grid["correct"].fillna(0).astype(bool)
        grid["extraction"] = pd.Categorical(
            grid["run"].map({k: i.task.extraction for k, i in self.runs.items()})
        )
        peers = {(k, p): s for k, i in self.runs.items() for p, s in i.sees_peers.items()}
        pairs = grid[["run", "pattern"]].drop_duplicates()
        pairs["sees_peers"] = [
            bool(peers.get((r, p), False))
            for r, p in zip(pairs["run"], pairs["pattern"], strict=True)
        ]
        grid = grid.merge(pairs, how="left", on=["run", "pattern"])
        order = ["run", "task", "repeat", "case_id", "society", "strategy", "round", "agent"]
        rest = [c for c in grid.columns if c not in order]
        grid = grid[order + rest].sort_values(order, ignore_index=True)
        grid["answer"] = as_objects(grid["answer"])  # after the merges, which make None NaN
        grid["vote"] = self._votes(grid)
        thresholds = {
            (run, society): settings["stop"]
            for run, by_society in self.settings.items()
            for society, settings in by_society.items()
            if settings["stop"] is not None
        }
        return collab.carry_stopped(grid, thresholds)

    @cached_property
    def settings(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Per run and society: its stopping share (``stop``) and decision protocol."""
        return {run: collab.society_settings(info.config) for run, info in self.runs.items()}

    def _votes(self, grid: pd.DataFrame) -> pd.Series:
        """Each answer as its round's vote counts it: the run's task vote rule (the study's
        MATH rule unifies ``x`` with a peer's ``{x}``) applied to each round's answers."""
        rules = {label: info.task.vote_rule() for label, info in self.runs.items()}
        if all(rule is None for rule in rules.values()):
            return pd.Series(grid["answer"].to_numpy(dtype=object), index=grid.index, dtype=object)
        votes = list(grid["answer"])
        for label, rule in rules.items():
            if rule is None:
                continue
            rows = grid.index[grid["run"] == label]
            for idx in grid.loc[rows].groupby(metrics.GROUP[1:], observed=True).indices.values():
                at = rows[idx]
                for i, v in zip(at, rule([votes[i] for i in at]), strict=True):
                    votes[i] = v
        return pd.Series(votes, index=grid.index, dtype=object)

    def society_order(self, run: str) -> list[str]:
        """The run's societies in the order its experiment lists them."""
        agents = self.agents[self.agents["run"] == run]
        return list(dict.fromkeys(agents["society"]))

    def score(self, run: str, case_id: str, answer: str | None) -> bool:
        """The run's task scores a majority answer against the stored case."""
        info = self.runs[run]
        return bool(info.task.score(answer, info.cases[case_id]))

    @cached_property
    def votes(self) -> pd.DataFrame:
        """One row per society answer (majority vote) — see ``metrics.vote_table``."""
        return metrics.vote_table(self.answers, self.score)

    # -- metric tables ----------------------------------------------------------------------
    @cached_property
    def accuracy_by_repeat(self) -> pd.DataFrame:
        return metrics.accuracy_by_repeat(self.votes)

    @cached_property
    def accuracy(self) -> pd.DataFrame:
        """Per society x strategy x round: mean ± std over repeats and a bootstrap 95% CI."""
        summary = metrics.accuracy_summary(self.accuracy_by_repeat, ddof=self.ddof)
        from societies.analysis import stats  # scipy: imported when a table needs it

        return summary.merge(stats.accuracy_cis(self.votes), on=metrics.CELL, how="left")

    @cached_property
    def cost_per_agent(self) -> pd.DataFrame:
        persona = self.calls[self.calls["step"] == "persona"]
        return cost_mod.cost_per_agent(self.answers, persona)

    @cached_property
    def cost(self) -> pd.DataFrame:
        """Tokens per cell (study's and billed), and dollars when prices were given."""
        table = cost_mod.cost_table(self.cost_per_agent)
        if self.prices:
            persona = self.calls[self.calls["step"] == "persona"]
            usd = cost_mod.cost_table(cost_mod.cost_per_agent(self.answers, persona, "usd"))
            usd = usd.rename(
                columns={c: f"usd_{c}" for c in ("study_per_case", "billed_per_case",
                                                  "study_total", "billed_total")}
            ).drop(columns=["n"])  # fmt: skip
            table = table.merge(usd, on=metrics.CELL, how="left")
        return table

    @cached_property
    def cost_by_agent(self) -> pd.DataFrame:
        return cost_mod.cost_by_agent(self.cost_per_agent)

    @cached_property
    def run_billed(self) -> pd.DataFrame:
        return cost_mod.run_billed(self.calls)

    @cached_property
    def cache(self) -> pd.DataFrame:
        """Prompt caching per agent and round: share of input served from cache, dollars
        saved (with prices)."""
        return cost_mod.cache_use(self.calls)

    @cached_property
    def self_consistency(self) -> pd.DataFrame:
        return cost_mod.self_consistency(self.votes, self.cost, ddof=self.ddof)

    @cached_property
    def conformity_turns(self) -> pd.DataFrame:
        return metrics.conformity(self.answers, self.score)

    @cached_property
    def conformity(self) -> pd.DataFrame:
        """Per run, society, round and trait: conforming debate turns by type."""
        return metrics.conformity_table(self.conformity_turns)

    @cached_property
    def consensus(self) -> pd.DataFrame:
        return metrics.consensus(self.votes)

    @cached_property
    def behaviour_cases(self) -> pd.DataFrame:
        return metrics.behaviour(self.votes)

    @cached_property
    def behaviour(self) -> pd.DataFrame:
        return metrics.behaviour_table(self.behaviour_cases)

    @cached_property
    def probes(self) -> pd.DataFrame:
        """The cases that are reversal probes: run, case_id, pair_id, direction."""
        from societies.analysis import reversal

        return reversal.probe_table(
            (label, cid, str(case.fields["pair_id"]), str(case.fields["direction"]))
            for label, info in self.runs.items()
            for cid, case in info.cases.items()
            if "pair_id" in case.fields and case.fields.get("direction") in reversal.DIRECTIONS
        )

    @cached_property
    def reversal_gap(self) -> pd.DataFrame:
        """Per society x strategy x round: forward - backward accuracy over paired probes,
        with a bootstrap 95% CI; empty for runs without reversal probes."""
        from societies.analysis import reversal

        return reversal.reversal_gap(self.votes, self.probes)

    @cached_property
    def claims(self) -> pd.DataFrame:
        """Per briefed agent and case: the answer its briefing supports."""
        from societies.analysis import adoption

        frames = [
            adoption.claim_table(label, info.config, self.society_order(label), info.task,
                                 info.cases)
            for label, info in self.runs.items()
        ]  # fmt: skip
        return pd.concat(frames, ignore_index=True)

    @cached_property
    def edit_adoption(self) -> pd.DataFrame:
        """Per society with briefed agents x strategy x round: the share of its unbriefed
        agents answering what the briefing says, with a bootstrap 95% CI."""
        from societies.analysis import adoption

        return adoption.edit_adoption(self.answers, self.claims, self.holds)

    def holds(self, run: str, case_id: str, answer: str | None, claim: str) -> bool:
        """The run's task scores ``answer`` as ``claim`` (an answer a briefing or edit claims)."""
        info = self.runs[run]
        case = info.cases[case_id]
        return bool(info.task.score(answer, Case(case.id, case.index, case.fields, claim)))

    @cached_property
    def triples(self) -> pd.DataFrame:
        """The cases that are triples questions: item, probe, and each edit's claim."""
        from societies.analysis import conflict

        keys = ("item", "probe", "claim_a", "via_a", "claim_b", "via_b")
        return conflict.item_table(
            (label, cid, *(str(case.fields.get(k) or "") for k in keys))
            for label, info in self.runs.items()
            for cid, case in info.cases.items()
            if case.fields.get("probe") in conflict.PROBES
        )

    @cached_property
    def control_society(self) -> dict[str, str]:
        """Per run with briefing claims: its first society in which no briefing claims one."""
        claiming = set(zip(self.claims["run"], self.claims["society"], strict=True))
        out = {}
        for run in sorted(set(self.claims["run"])):
            free = [s for s in self.society_order(run) if (run, s) not in claiming]
            if free:
                out[run] = free[0]
        return out

    @cached_property
    def conflict_outcome(self) -> pd.DataFrame:
        """Per cell: which edit the society's majority holds on conflict questions, with CIs."""
        from societies.analysis import conflict

        return conflict.conflict_outcome(self.votes, self.triples, self.holds)

    @cached_property
    def consistency(self) -> pd.DataFrame:
        """Per cell: agents whose forward and inverse answers agree on the first edit."""
        from societies.analysis import conflict

        return conflict.consistency(self.answers, self.triples, self.holds)

    @cached_property
    def distortion(self) -> pd.DataFrame:
        """Per cell: related, unedited answers changed against the control society."""
        from societies.analysis import conflict

        return conflict.distortion(self.answers, self.triples, self.control_society)

    @cached_property
    def round_divergence(self) -> pd.DataFrame:
        """Per cell: JS divergence of round-trip answers from the control society's."""
        from societies.analysis import conflict

        return conflict.round_divergence(self.answers, self.triples, self.control_society)

    @cached_property
    def pause(self) -> pd.DataFrame:
        """Per base society x strategy x round x M (the pause pattern's pause tokens):
        accuracy, its paired gain over M = 0 and tokens per case, each gain with a bootstrap
        95% CI; empty for runs without a pause."""
        from societies.analysis import pause

        sweep = pause.sweep_table(
            [row for label, info in self.runs.items()
             for row in pause.sweep_rows(label, info.config, self.society_order(label))]
        )  # fmt: skip
        if sweep.empty:  # no table computed for a run without a pause
            return pd.DataFrame(columns=pause.PAUSE_COLUMNS)
        return pause.pause_table(self.votes, self.accuracy, self.cost, sweep)

    @cached_property
    def parse_failures(self) -> pd.DataFrame:
        return metrics.parse_failures(self.calls)

    @cached_property
    def stopping(self) -> pd.DataFrame:
        """Per society with a stopping rule: calls made and saved, tokens and tokens saved."""
        return collab.stopping_table(self.answers, self.calls)

    @cached_property
    def society_tokens(self) -> pd.DataFrame:
        """Per society: calls and input/output tokens per case."""
        return collab.society_tokens(self.calls)

    @cached_property
    def decision_votes(self) -> pd.DataFrame:
        """Per answer of a society with a non-majority protocol: its answer beside the
        majority's, both scored."""
        decisions = {
            (run, society): settings["decision"]
            for run, by_society in self.settings.items()
            for society, settings in by_society.items()
            if settings["decision"] not in ("majority", "judge")
        }
        voted = collab.decision_table(self.votes, self.answers, decisions, self.score)
        judged = collab.judge_table(self.votes, self.judge_answers)
        if judged.empty:
            return voted
        return judged if voted.empty else pd.concat([voted, judged], ignore_index=True)

    @cached_property
    def benchform(self) -> pd.DataFrame:
        """Conformity to confederates as BenchForm defines it (conformity rate, independence
        rate, and the share adopting the confederates' answer) per society x strategy x round
        x subject trait, with the confederate-majority size (``analysis/benchform.py``)."""
        from societies.analysis import benchform

        controls = {
            (run, society): settings["confederates"] is not None
            for run, by_society in self.settings.items()
            for society, settings in by_society.items()
        }
        majorities = benchform.confederate_majorities(self.calls)
        return benchform.conformity_rates(self.answers, majorities, controls)

    @cached_property
    def benchform_by_size(self) -> pd.DataFrame:
        """BenchForm's rates by confederate-majority size (over societies and strategies)."""
        from societies.analysis import benchform

        return benchform.by_majority_size(self.benchform)

    @cached_property
    def judge_answers(self) -> pd.DataFrame:
        """Per society answer a judge gave: the judge's answer and whether it is right."""
        return collab.judge_answers(self.answers, self.calls)

    @cached_property
    def decisions(self) -> pd.DataFrame:
        """Per cell of a non-majority protocol: its accuracy beside the majority's."""
        return collab.decision_accuracy(self.decision_votes)

    # -- baselines (analysis/baselines.py) ------------------------------------------------
    @cached_property
    def baselines(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Per run, per baseline society: ``k`` and the society it matches (``match``)."""
        from societies.analysis.baselines import baselines_of

        agents = self.agents
        return {
            run: baselines_of(info.config, agents[agents["run"] == run]["society"].value_counts())
            for run, info in self.runs.items()
        }

    @cached_property
    def baseline_accuracy(self) -> pd.DataFrame:
        """Per baseline: k, accuracy with its CI, tokens per case beside the matched society's."""
        from societies.analysis.baselines import baseline_table

        return baseline_table(self.accuracy, self.cost, self.baselines)

    @cached_property
    def equal_budget(self) -> pd.DataFrame:
        """Per society: tokens per case, tokens of one first answer, and the k of independent
        answers that costs the same (``k: {match: <society>, run: <this run>}``)."""
        from societies.analysis.baselines import equal_budget

        return equal_budget(self.cost, self.cost_per_agent, self.baselines)

    @cached_property
    def stopping_effect(self) -> pd.DataFrame:
        """Per society with a stopping rule, per strategy: accuracy and billed tokens per case
        beside its twin without one (same agents and settings), when the run has it."""
        refs = {}
        for run, info in self.runs.items():
            agents = self.agents[self.agents["run"] == run].sort_values(["society", "agent"])
            cols = ["trait", "role", "backend", "model"]
            members = {
                str(society): list(
                    group[cols].astype(object).fillna("").itertuples(index=False, name=None)
                )
                for society, group in agents.groupby("society", sort=False)
            }
            for society, ref in collab.stopping_references(info.config, members).items():
                refs[(run, society)] = ref
        return collab.stopping_effect(self.accuracy, self.cost, refs)

    # -- answer dynamics (analysis/transitions.py) -----------------------------------------
    @cached_property
    def transition_turns(self) -> pd.DataFrame:
        """One row per agent turn of round ≥ 1: its state before and after (C, W, ∅)."""
        return transitions.transition_turns(self.answers)

    @cached_property
    def transitions(self) -> pd.DataFrame:
        """Per society, round, pattern and trait: turns by transition (C→C, C→W, ...)."""
        return transitions.transition_table(self.transition_turns)

    @cached_property
    def transitions_by_agent(self) -> pd.DataFrame:
        """Per society and agent: turns by transition, over every round."""
        return transitions.transition_table(self.transition_turns, by=("agent", "trait"))

    @cached_property
    def debate_vs_vote(self) -> pd.DataFrame:
        """Per society x strategy: round-0 majority vs final answer, paired difference with a
        bootstrap 95% CI."""
        return transitions.debate_vs_vote(self.votes)

    @cached_property
    def oracle_gap(self) -> pd.DataFrame:
        """Per society x strategy: cases some agent got right in some round but the society's
        final answer did not."""
        return transitions.oracle_gap(self.answers, self.votes)

    @cached_property
    def disagreement_collapse(self) -> pd.DataFrame:
        """Per society x strategy: cases from disagreement to unanimity on a wrong answer."""
        return transitions.disagreement_collapse(self.votes)

    @cached_property
    def questionnaire(self) -> pd.DataFrame:
        """One row per questionnaire call x item (runs with ``questionnaire:``): the rating
        read from the reply, NaN when missing with the reason in ``problem``."""
        from societies.analysis import questionnaire

        runs = {k: (_store_path(i.path), i.config) for k, i in self.runs.items()}
        return questionnaire.read_responses(runs, self.agents)

    @cached_property
    def manipulation_check(self) -> pd.DataFrame:
        """Per item, trait and timing (pre/post): mean rating with a bootstrap 95% CI."""
        from societies.analysis import questionnaire

        return questionnaire.by_trait(self.questionnaire)

    @cached_property
    def trait_differences(self) -> pd.DataFrame:
        """Per item and timing: each pair of traits' difference of mean ratings, with a
        bootstrap 95% CI and Welch's p."""
        from societies.analysis import questionnaire

        return questionnaire.trait_differences(self.questionnaire)

    @cached_property
    def anova(self) -> pd.DataFrame:
        from societies.analysis import stats

        return stats.anova_tables(self.accuracy_by_repeat)

    def conflict_tables(self) -> dict[str, pd.DataFrame]:
        """The knowledge-conflict pack's tables by name (see ``analysis.conflict``)."""
        return {
            "conflict_outcome": self.conflict_outcome,
            "consistency": self.consistency,
            "distortion": self.distortion,
            "round_divergence": self.round_divergence,
        }

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every metric table by name (what ``export`` writes and the report shows)."""
        from societies.analysis.tables import table2_long

        return {
            "accuracy": self.accuracy,
            "accuracy_by_repeat": self.accuracy_by_repeat,
            "table2": table2_long(self),
            **({"reversal_gap": self.reversal_gap} if len(self.probes) else {}),
            **({"edit_adoption": self.edit_adoption} if len(self.claims) else {}),
            **({"pause": self.pause} if len(self.pause) else {}),
            **(self.conflict_tables() if len(self.triples) else {}),
            "cost": self.cost,
            "cost_by_agent": self.cost_by_agent,
            "run_billed": self.run_billed,
            "cache": self.cache,
            "self_consistency": self.self_consistency,
            "conformity": self.conformity,
            "consensus": self.consensus,
            "behaviour": self.behaviour,
            "parse_failures": self.parse_failures,
            "anova": self.anova,
            "stopping": self.stopping,
            "society_tokens": self.society_tokens,
            "decisions": self.decisions,
            **({"baselines": self.baseline_accuracy} if len(self.baseline_accuracy) else {}),
            "equal_budget": self.equal_budget,
            "stopping_effect": self.stopping_effect,
            "debate_vs_vote": self.debate_vs_vote,
            "transitions": self.transitions,
            "transitions_by_agent": self.transitions_by_agent,
            "oracle_gap": self.oracle_gap,
            "disagreement_collapse": self.disagreement_collapse,
            **({"benchform": self.benchform} if len(self.benchform) else {}),
            **self._questionnaire_tables(),
        }

    def _questionnaire_tables(self) -> dict[str, pd.DataFrame]:
        if not len(self.questionnaire):
            return {}
        return {
            "manipulation_check": self.manipulation_check,
            "trait_differences": self.trait_differences,
        }


def load_run(
    *paths: str | Path | Sequence[str | Path],
    prices: Mapping[str, Price | Mapping[str, float]] | None = None,
    labels: Sequence[str] | None = None,
    ddof: int = 1,
) -> Analysis:
    """Load one or several run directories (or store files): ``load_run("runs/a", "runs/b")``
    or ``load_run(["runs/a", "runs/b"])``.

    ``prices`` adds dollar columns to the cost table. It uses the experiment file's schema,
    ``{"gpt-4o-mini": {"input": 0.15, "output": 0.6, "cached": 0.075}}`` (dollars per million
    tokens), over the built-in table and the run's own ``prices``, matched by longest model-id
    prefix exactly as the run's budget matched them; a bad key is a ``ConfigError``. ``ddof``
    is that of the std over repeats (1: the sample std, as the study's tables print).
    An incomplete run (``Analysis.incomplete``) is logged as a warning."""
    flat: list[Path] = []
    for p in paths:
        if isinstance(p, str | Path):
            flat.append(Path(p))
        else:
            flat.extend(Path(x) for x in p)
    return Analysis(flat, labels=labels, prices=prices, ddof=ddof)
