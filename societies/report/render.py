"""``societies report``: one HTML file with the summary, tables, figures and transcripts.

The file is self-contained (figures as data URIs, data as inline JSON, plain inline JS and
CSS, no external URL) so it can be mailed, archived with a paper, or opened offline. The
transcript browser reads the messages straight from the stores; to keep the file small it
carries the first ``transcript_repeats`` repeats (and, if given, the first
``transcript_cases`` cases) of every run.
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
from societies.analysis.figures import render as render_figures
from societies.analysis.load import Analysis
from societies.analysis.tables import table2_blocks
from societies.store.db import RunStore

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
        outcomes = mine["outcome"].value_counts().to_dict()
        answer = mine[(mine["step"] == "answer") & (mine["outcome"] == "ok")]
        experiment = info.config
        rows.append(
            {
                "label": label,
                "path": str(info.path),
                "task": info.task_name,
                "prompts": experiment.get("prompts", ""),
                "models": ", ".join(sorted(set(map(_model_name, mine["backend"], mine["model"])))),
                "cases": len(info.cases),
                "repeats": int(mine["repeat"].max()) + 1 if len(mine) else 0,
                "societies": ", ".join(analysis.society_order(label)),
                "rounds": info.rounds,
                "calls": len(mine),
                "outcomes": ", ".join(f"{k} {v:,}" for k, v in sorted(outcomes.items())),
                "tokens": int(mine["total_tokens"].sum()),
                "parse_failure": float(answer["answer"].isna().mean()) if len(answer) else 0.0,
            }
        )
    return rows


def _transcripts(analysis: Analysis, repeats: int, max_cases: int | None) -> dict[str, Any]:
    """The browser's data: per run, the cases, societies, strategies' nodes, every call's new
    prompt and reply, and the society's majority at each node."""
    out: dict[str, Any] = {"runs": []}
    votes = analysis.votes
    for label, info in analysis.runs.items():
        store = RunStore(info.path if info.path.is_file() else info.path / "store.sqlite",
                         readonly=True)  # fmt: skip
        calls: dict[str, list[Any]] = {}
        persona: dict[str, list[Any]] = {}
        try:
            rows = store.con.execute(
                "SELECT repeat, case_id, society, node, agent, round, step, pattern, "
                "messages_json, reply, answer, correct, outcome, total_tokens FROM calls "
                "JOIN cases USING (case_id) WHERE repeat < ? AND idx < ? "
                "ORDER BY repeat, case_id, society, node, agent",
                (repeats, len(info.cases) if max_cases is None else max_cases),
            )
            for rep, case_id, society, node, agent, round_index, step, pattern, messages, \
                    reply, answer, correct, outcome, tokens in rows:  # fmt: skip
                msgs = json.loads(messages) if messages else []
                prompt = msgs[-1]["content"] if msgs else ""
                key = f"{rep}|{case_id}|{society}"
                if step == "persona":
                    persona.setdefault(key, []).append([agent, prompt, reply])
                    continue
                # A prompt set without a role-play turn puts the persona in a system message.
                first = round_index == 0 and bool(msgs) and msgs[0]["role"] == "system"
                system = msgs[0]["content"] if first else None
                calls.setdefault(f"{key}|{node}", []).append(
                    {"g": agent, "p": prompt, "s": system, "r": reply, "a": answer,
                     "c": bool(correct), "o": outcome, "t": tokens, "k": pattern}
                )  # fmt: skip
        except sqlite3.DatabaseError as exc:
            log.warning("%s: transcripts unavailable (%s)", info.path, exc)
        finally:
            store.con.close()
        mine = votes[(votes["run"] == label) & (votes["repeat"] < repeats)]
        nodes = analysis.answers[analysis.answers["run"] == label][
            ["society", "strategy", "round", "node"]
        ].drop_duplicates()
        majority = {}
        node_of = {(s, st, r): n for s, st, r, n in nodes.itertuples(index=False, name=None)}
        for rep, case_id, society, strategy, r, maj, ok in mine[
            ["repeat", "case_id", "society", "strategy", "round", "majority", "correct"]
        ].itertuples(index=False, name=None):
            node = node_of.get((society, strategy, r))
            majority[f"{rep}|{case_id}|{society}|{node}"] = [maj, bool(ok)]
        strategies: dict[str, dict[str, list[str]]] = {}
        for (society, strategy, _round), node in sorted(node_of.items()):
            strategies.setdefault(society, {}).setdefault(strategy, []).append(node)
        agents = analysis.agents[analysis.agents["run"] == label]
        out["runs"].append(
            {
                "label": label,
                "task": info.task_name,
                "repeats": sorted({int(k.split("|")[0]) for k in calls}),
                "cases": [
                    {"id": c.id, "target": _fmt(c.target)}
                    for c in sorted(info.cases.values(), key=lambda c: c.index)
                    if max_cases is None or c.index < max_cases
                ],
                "societies": {
                    s: [
                        str(t) for t in agents[agents["society"] == s].sort_values("agent")["trait"]
                    ]
                    for s in analysis.society_order(label)
                },
                "strategies": strategies,
                "calls": calls,
                "persona": persona,
                "majority": majority,
            }
        )
    return out


def script_json(data: Any) -> str:
    """JSON safe inside a <script> element: with every "<" escaped, no reply can close the
    element ("</script>") or open a comment ("<!--"); JSON.parse reads it back unchanged."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def render_report(
    analysis: Analysis,
    *,
    transcript_repeats: int = 1,
    transcript_cases: int | None = None,
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
    }
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("societies.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    template = env.get_template("report.html.j2")
    return template.render(
        title=title or "societies report: " + ", ".join(analysis.runs),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        summary=_summary(analysis),
        table2=table2_blocks(analysis),
        tables={name: Markup(_html_table(t)) for name, t in tables.items()},
        images=images,
        transcripts=Markup(
            script_json(_transcripts(analysis, transcript_repeats, transcript_cases))
        ),
    )


def write_report(analysis: Analysis, out: Path, **options: Any) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(analysis, **options), encoding="utf-8")
    return out
