"""``societies report``: one HTML file with the summary, tables, figures and transcripts.

The file is self-contained (figures as data URIs, data as inline JSON, plain inline JS and
CSS, no external URL) so it can be mailed, archived with a paper, or opened offline. The
transcript browser reads the messages straight from the stores; to keep the file small it
carries a bounded sample of transcript trees (``transcripts`` per run, spread evenly over
repeats, cases and societies, and at most ``MAX_TRANSCRIPT_CHARS`` of text) and says which;
``societies view`` browses them all.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from societies import __version__
from societies.analysis.baselines import BASELINE_STRATEGY
from societies.analysis.collab import seated as _seated
from societies.analysis.completeness import cell_count_map, incomplete_runs
from societies.analysis.figures import render as render_figures
from societies.analysis.load import Analysis
from societies.analysis.tables import table2_blocks
from societies.store.db import RunStore
from societies.store.records import prompt_text

log = logging.getLogger(__name__)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if value != value else f"{value:.3f}"
    return str(value)


def _model_name(backend: str, model: str) -> str:
    return model if model.startswith(f"{backend}:") else f"{backend}:{model}"


def _html_table(frame: pd.DataFrame) -> str:
    """A DataFrame as an HTML table (escaped), numbers right-aligned with 3 decimals."""
    return frame.to_html(
        index=False, classes="data", border=0, float_format=lambda v: f"{v:.3f}", na_rep="–"
    )


def _accuracy_by_round(analysis: Analysis) -> pd.DataFrame:
    acc = analysis.accuracy.copy()
    acc["cell"] = [
        f"{m:.3f} ± {s:.3f} [{lo:.2f}, {hi:.2f}]"
        for m, s, lo, hi in zip(acc["mean"], acc["std"], acc["ci_low"], acc["ci_high"], strict=True)
    ]
    wide = acc.pivot_table(
        index=["run", "society", "strategy"], columns="round", values="cell", aggfunc="first"
    )
    wide.columns = [f"round {c}" for c in wide.columns]
    return wide.reset_index()


def _cost_last_round(analysis: Analysis) -> pd.DataFrame:
    cost = analysis.cost
    last = cost[cost["round"] == cost.groupby("run")["round"].transform("max")]
    return last.drop(columns=["round"]).round(1)


def _summary(analysis: Analysis) -> list[dict[str, Any]]:
    rows = []
    calls = analysis.calls
    for label, info in analysis.runs.items():
        mine = calls[calls["run"] == label]
        outcomes = {k: v for k, v in mine["outcome"].value_counts().to_dict().items() if v}
        answer = mine[(mine["step"] == "answer") & (mine["outcome"] == "ok")]
        experiment = info.config
        # One name per distinct backend and model, not per call (a million at scale).
        pairs = mine[["backend", "model"]].drop_duplicates().itertuples(index=False, name=None)
        rows.append(
            {
                "label": label,
                "path": str(info.path),
                "task": info.task_name,
                "prompts": experiment.get("prompts", ""),
                "models": ", ".join(sorted({_model_name(str(b), str(m)) for b, m in pairs})),
                "cases": len(info.cases),
                "repeats": int(mine["repeat"].max()) + 1 if len(mine) else 0,
                "societies": ", ".join(analysis.society_order(label)),
                "rounds": info.rounds,
                "calls": int((mine["outcome"] != "scripted").sum()),  # a confederate's: none
                "outcomes": ", ".join(f"{k} {v:,}" for k, v in sorted(outcomes.items())),
                "tokens": int(mine["total_tokens"].sum()),
                "parse_failure": float(answer["answer"].isna().mean()) if len(answer) else 0.0,
            }
        )
    return rows


#: Transcript trees (repeat x case x society, every strategy) a report carries by default, and
#: a cap on their text: together they keep the file small whatever the run's size.
DEFAULT_TRANSCRIPTS = 50
MAX_TRANSCRIPT_CHARS = 6_000_000


def _question(fields: Mapping[str, Any]) -> dict[str, Any]:
    text = next((fields[k] for k in ("question", "problem", "prompt", "text") if k in fields), "")
    choices = fields.get("choices")
    return {"q": str(text), "ch": [str(c) for c in choices] if isinstance(choices, list) else []}


def _agent_labels(agents: pd.DataFrame, society: str) -> list[str]:
    """Each agent's header: trait, role (when set) and model, so that the agents of a
    heterogeneous society can be told apart."""
    rows = _seated(agents[agents["society"] == society])
    out = []
    for trait, role, backend, model in rows[["trait", "role", "backend", "model"]].itertuples(
        index=False, name=None
    ):
        parts = [
            str(trait),
            f"role: {role}" if isinstance(role, str) else "",
            _model_name(backend, model),
        ]
        out.append(" · ".join(p for p in parts if p))
    return out


def _transcripts(
    analysis: Analysis,
    repeats: int | None,
    max_cases: int | None,
    limit: int = DEFAULT_TRANSCRIPTS,
) -> dict[str, Any]:
    """The browser's data: per run, a sample of at most ``limit`` trees spread evenly over
    repeats, cases and societies (``queries.sample_groups``), each with every call's new prompt
    and reply and the society's majority at each node. Says how many trees it left out."""
    from societies.store.queries import sample_groups

    out: dict[str, Any] = {"runs": []}
    votes = analysis.votes
    budget = MAX_TRANSCRIPT_CHARS
    for label, info in analysis.runs.items():
        path = info.path if info.path.is_file() else info.path / "store.sqlite"
        chosen, total = sample_groups(
            path, limit, None if repeats is None else list(range(repeats)), max_cases
        )
        store = RunStore(path, readonly=True)
        calls: dict[str, list[Any]] = {}
        persona: dict[str, list[Any]] = {}
        kept: list[tuple[int, str, str]] = []
        seats = {
            (str(s), int(a)): i
            for s, group in analysis.agents[analysis.agents["run"] == label].groupby("society")
            for i, a in enumerate(_seated(group)["agent"])
        }
        try:
            for rep, case_id, society in chosen:
                if budget <= 0:
                    break
                kept.append((rep, case_id, society))
                key = _browser_key(rep, case_id, society)
                for call in store.tree_transcript(rep, case_id, society):
                    k, msgs = call.key, call.added
                    if k.step == "questionnaire":
                        continue  # the manipulation check is a table, not a debate turn
                    prompt = prompt_text(msgs)
                    budget -= len(prompt) + len(call.reply or "")
                    if k.step == "persona":
                        persona.setdefault(key, []).append([k.agent, prompt, call.reply])
                        continue
                    # A prompt set without a role-play turn puts the persona in a system message.
                    first = call.round == 0 and bool(msgs) and msgs[0]["role"] == "system"
                    system = msgs[0]["content"] if first else None
                    calls.setdefault(_browser_key(rep, case_id, society, k.node), []).append(
                        {"g": seats.get((k.society, k.agent), k.agent), "p": prompt,
                         "s": system, "r": call.reply, "a": call.answer,
                         "c": bool(call.correct), "o": call.outcome, "t": call.total_tokens,
                         "k": call.pattern, "st": k.step}
                    )  # fmt: skip
        except sqlite3.DatabaseError as exc:
            log.warning("%s: transcripts unavailable (%s)", info.path, exc)
        finally:
            store.close()
        mine = votes[votes["run"] == label]
        trees = pd.MultiIndex.from_frame(mine[["repeat", "case_id", "society"]])
        mine = mine[trees.isin(kept)]
        nodes = analysis.answers[analysis.answers["run"] == label][
            ["society", "strategy", "round", "node"]
        ].drop_duplicates()
        majority = {}
        node_of = {(s, st, r): n for s, st, r, n in nodes.itertuples(index=False, name=None)}
        for rep, case_id, society, strategy, r, maj, ok in mine[
            ["repeat", "case_id", "society", "strategy", "round", "majority", "correct"]
        ].itertuples(index=False, name=None):
            node = node_of.get((society, strategy, r))
            majority[_browser_key(int(rep), str(case_id), str(society), node)] = [maj, bool(ok)]
        strategies: dict[str, dict[str, list[str]]] = {}
        for (society, strategy, _round), node in sorted(node_of.items()):
            strategies.setdefault(society, {}).setdefault(strategy, []).append(node)
        agents = analysis.agents[analysis.agents["run"] == label]
        case_ids = {c for _, c, _ in kept}
        out["runs"].append(
            {
                "label": label,
                "task": info.task_name,
                "trees": [list(t) for t in kept],
                "total_trees": total,
                "repeats": sorted({r for r, _, _ in kept}),
                "cases": [
                    {"id": c.id, "target": _fmt(c.target), **_question(c.fields)}
                    for c in sorted(info.cases.values(), key=lambda c: c.index)
                    if c.id in case_ids
                ],
                "societies": {s: _agent_labels(agents, s) for s in analysis.society_order(label)},
                "strategies": strategies,
                "calls": calls,
                "persona": persona,
                "majority": majority,
            }
        )
    return out


def _browser_key(*parts: object) -> str:
    """The page's lookup key of a tree (or node): a JSON array, so that names holding any
    character stay apart; the page builds the same string with ``JSON.stringify``."""
    return json.dumps(parts, ensure_ascii=False, separators=(",", ":"))


def script_json(data: Any) -> str:
    """JSON safe inside a <script> element: with every "<" escaped, no reply can close the
    element ("</script>") or open a comment ("<!--"); JSON.parse reads it back unchanged."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def _incomplete(analysis: Analysis) -> list[str]:
    """One line per run whose cells mix sample sizes (interrupted, stopped or failed calls)."""
    return [
        f"{run}: {done:,} of {planned:,} society answers in the last round are complete; "
        "cells with fewer are marked with their n"
        for run, (done, planned) in incomplete_runs(analysis).items()
    ]


def _table2(analysis: Analysis) -> list[dict[str, object]]:
    """Table 2's blocks, each cell with its n when the cell is incomplete."""
    counts = cell_count_map(analysis)
    blocks = table2_blocks(analysis)
    for block in blocks:
        rows = []
        for strategy, cells, w in block["rows"]:  # type: ignore[attr-defined]
            marked = []
            for society, (text, mark) in zip(block["societies"], cells, strict=True):  # type: ignore[call-overload]
                n, planned = counts.get((block["run"], society, strategy), (0, 0))
                marked.append((text, mark, f"n {n}/{planned}" if n < planned else ""))
            rows.append((strategy, marked, w))
        block["rows"] = rows
        baselines = []
        for label, text, society in block["baselines"]:  # type: ignore[attr-defined]
            n, planned = counts.get((block["run"], society, BASELINE_STRATEGY), (0, 0))
            baselines.append((label, text, f"n {n}/{planned}" if n < planned else ""))
        block["baselines"] = baselines
    return blocks


def _dynamics(analysis: Analysis) -> dict[str, pd.DataFrame]:
    """The tables of the "debate, vote and baselines" section (issue 11's analytics), those
    with rows: baselines and the stopping comparison only when a run has them."""
    tables = {
        "Baselines: single agent and self-consistency (accuracy with bootstrap 95% CI, tokens "
        "per case beside the matched society's)": analysis.baseline_accuracy,
        "Debate vs vote: round-0 majority against the last round (paired difference, "
        "bootstrap 95% CI)": analysis.debate_vs_vote,
        "Oracle gap: some agent was right in some round, the society's answer is wrong": (
            analysis.oracle_gap
        ),
        "Disagreement collapse: from disagreement to unanimity on a wrong answer": (
            analysis.disagreement_collapse
        ),
        "Answer transitions per round, pattern and trait (C correct, W wrong, ∅ no answer)": (
            analysis.transitions
        ),
        "Answer transitions per agent": analysis.transitions_by_agent,
        "Stopping rules: accuracy and tokens against the same society without stopping": (
            analysis.stopping_effect
        ),
        "Equal budget: independent answers that cost what one strategy of a society costs": (
            analysis.equal_budget
        ),
    }
    return {name: t for name, t in tables.items() if len(t)}


def _pause_section(analysis: Analysis, image: str | None) -> dict[str, Any] | None:
    """The "accuracy against M" section of a run with the pause pattern: its figure and the
    pause table (every round), or ``None``."""
    table = analysis.pause
    if table.empty:
        return None
    shown = table.drop(columns=["task"]).rename(
        columns={"base": "society", "society": "run society", "pause": "M"}
    )
    return {"image": image, "table": Markup(_html_table(shown))}


def render_report(
    analysis: Analysis,
    *,
    transcript_repeats: int | None = None,
    transcript_cases: int | None = None,
    transcripts: int = DEFAULT_TRANSCRIPTS,
    title: str | None = None,
) -> str:
    """The whole report as one HTML string."""
    figures = render_figures(analysis, formats=("png",))
    images = {
        name: "data:image/png;base64," + base64.b64encode(data["png"]).decode("ascii")
        for name, data in figures.items()
    }
    tables: Mapping[str, pd.DataFrame] = {
        "Accuracy by round (mean ± std over repeats [bootstrap 95% CI])": _accuracy_by_round(
            analysis
        ),
        "Self-consistency baseline (majority of round-0 answers)": analysis.self_consistency,
        "Token cost, last round (per case: study's definition and billed)": _cost_last_round(
            analysis
        ),
        "Tokens the runs really billed (shared prefixes once)": analysis.run_billed,
        "Prompt cache per agent and round (share of input cached, dollars saved)": analysis.cache,
        "Conformity in debate rounds": analysis.conformity,
        "Consensus (distinct answers per round)": analysis.consensus,
        "Answer-change behaviour (cases per category)": analysis.behaviour,
        "Parse failures (answer calls without an answer)": analysis.parse_failures,
        "Significance: one-way ANOVA after Levene, over all groups": analysis.anova,
        "Calls and tokens per case, by society": analysis.society_tokens,
    }
    extra = {
        "Stopping rules: calls made and saved": analysis.stopping,
        "Decision protocols: accuracy beside the majority's": analysis.decisions,
        "Conformity to confederates (BenchForm rates, per society)": analysis.benchform,
        "Conformity to confederates by majority size (BenchForm rates)": (
            analysis.benchform_by_size
        ),
    }
    tables = {**tables, **{name: t for name, t in extra.items() if len(t)}}
    pause = _pause_section(analysis, images.pop("accuracy_vs_pause", None))
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("societies.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    from societies.report.packs import pack_sections

    packs = [
        {"id": p.id, "title": p.title, "intro": p.intro,
         "tables": {name: Markup(_html_table(t)) for name, t in p.tables.items()}}
        for p in pack_sections(analysis)
    ]  # fmt: skip
    template = env.get_template("report.html.j2")
    return template.render(
        packs=packs,
        title=title or "societies report: " + ", ".join(analysis.runs),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        summary=_summary(analysis),
        table2=_table2(analysis),
        incomplete=_incomplete(analysis),
        tables={name: Markup(_html_table(t)) for name, t in tables.items()},
        dynamics={name: Markup(_html_table(t)) for name, t in _dynamics(analysis).items()},
        images=images,
        pause=pause,
        transcripts=Markup(
            script_json(_transcripts(analysis, transcript_repeats, transcript_cases, transcripts))
        ),
    )


def write_report(analysis: Analysis, out: Path, **options: Any) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(analysis, **options), encoding="utf-8")
    return out
