"""The read-only queries of the viewer and the report (`societies view`, transcript samples), with
typed results: part of the store layer, like every SQL statement of the project.

The viewer never writes: each function opens the store read-only (``mode=ro``), runs a few
short statements and closes it, so a run writing in WAL mode is never blocked and the viewer
always sees committed rows only. Lists are paginated with ``LIMIT``/``OFFSET`` over the
primary-key order of ``strategy_nodes`` so the first page of a store of a million calls comes
back without scanning it; counts are separate calls a page can make afterwards.

A *transcript* is one (repeat, case, society, strategy): the calls of the tree nodes the
strategy passes through. Node codes are prefix codes ("" → "0" → "01" …), so the nodes of a
transcript are the prefixes of its last node.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from societies.store.compact import Conversations
from societies.store.records import prompt_text

#: Filters a transcript list can apply (name → SQL condition over ``sn``, the last-round row
#: of ``strategy_nodes``, and ``:q`` for the search text).
_IN_LAST = (
    "FROM calls x WHERE x.society = sn.society AND x.repeat = sn.repeat "
    "AND x.case_id = sn.case_id AND x.node = sn.node AND x.step = 'answer'"
)
_IN_ANY = (
    "FROM calls x WHERE x.society = sn.society AND x.repeat = sn.repeat "
    "AND x.case_id = sn.case_id AND substr(sn.node, 1, length(x.node)) = x.node"
)
FILTERS: dict[str, tuple[str, str]] = {
    "wrong": (
        "wrong final answer (most agents wrong in the last round)",
        f"(SELECT 2 * COALESCE(SUM(x.correct), 0) < COUNT(*) {_IN_LAST})",
    ),
    "changed": (
        "an agent's answer changed between round 0 and the last round",
        f"EXISTS (SELECT 1 {_IN_LAST} AND EXISTS (SELECT 1 FROM calls y WHERE "
        "y.society = x.society AND y.repeat = x.repeat AND y.case_id = x.case_id "
        "AND y.node = '' AND y.agent = x.agent AND y.step = 'answer' "
        "AND y.answer IS NOT x.answer))",
    ),
    "disagree": (
        "agents disagree in the last round",
        f"(SELECT COUNT(DISTINCT COALESCE(x.answer, '')) {_IN_LAST}) > 1",
    ),
    "parse": (
        "a parse failure (a reply without an answer)",
        f"EXISTS (SELECT 1 {_IN_ANY} AND x.step = 'answer' AND x.outcome = 'ok' "
        "AND x.answer IS NULL)",
    ),
    "context": (
        "a context-exceeded call",
        f"EXISTS (SELECT 1 {_IN_ANY} AND x.outcome = 'context_exceeded')",
    ),
    "error": ("a call that failed", f"EXISTS (SELECT 1 {_IN_ANY} AND x.outcome = 'error')"),
}
_SEARCH = (
    "(cs.fields_json LIKE :q ESCAPE '\\' OR EXISTS (SELECT 1 FROM hits h "
    "WHERE h.society = sn.society AND h.repeat = sn.repeat AND h.case_id = sn.case_id "
    "AND substr(sn.node, 1, length(h.node)) = h.node))"
)


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection that never creates or changes a file; closed on exit."""
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    try:
        yield con
    finally:
        con.close()


@dataclass(frozen=True, slots=True)
class Invocation:
    started_at: str
    finished_at: str | None
    status: str
    calls_made: int
    calls_reused: int


@dataclass(frozen=True, slots=True)
class Usage:
    """Calls and tokens of one model with one outcome, over a range of call ids."""

    backend: str
    model: str
    outcome: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What the runs list shows of one store, from statements that stay fast at any size
    (no scan of the calls table: the count walks an index, the last call is by rowid)."""

    name: str
    task: str
    prompts: str
    created_at: str
    config: dict[str, Any]
    societies: list[str]
    agent_models: list[str]
    calls_done: int
    last_call_id: int
    last_call_at: str | None
    invocations: list[Invocation]


@dataclass(frozen=True, slots=True)
class TranscriptRef:
    repeat: int
    case_id: str
    society: str
    strategy: str


@dataclass(frozen=True, slots=True)
class TranscriptQuery:
    """Which transcripts a list shows: search text, filters and exact fields."""

    q: str = ""
    filters: tuple[str, ...] = ()
    repeat: int | None = None
    case_id: str | None = None
    society: str | None = None
    strategy: str | None = None


@dataclass(frozen=True, slots=True)
class Agent:
    agent: int
    name: str
    trait: str
    role: str | None
    backend: str
    model: str


@dataclass(frozen=True, slots=True)
class Turn:
    """One stored call. ``step`` and ``outcome`` are shown as they are, so kinds of turn this
    viewer does not know yet (judge, briefing, questionnaire …) still render."""

    agent: int
    round: int
    node: str
    step: str
    pattern: str | None
    system: str | None
    prompt: str
    reply: str | None
    answer: str | None
    correct: bool | None
    outcome: str
    error: str | None
    tokens: int
    model: str


@dataclass(frozen=True, slots=True)
class Transcript:
    ref: TranscriptRef
    case_index: int
    case_fields: dict[str, Any]
    agents: list[Agent]
    nodes: list[str]
    turns: list[Turn] = field(default_factory=list)


def _invocations(con: sqlite3.Connection) -> list[Invocation]:
    rows = con.execute(
        "SELECT started_at, finished_at, status, calls_made, calls_reused FROM invocations "
        "ORDER BY id"
    )
    return [Invocation(*row) for row in rows]


def planned_calls(con: sqlite3.Connection) -> int:
    """Calls the scheduled grid needs: each distinct tree node costs one call per agent of its
    society, plus one role-play call per agent and tree when the run has persona turns. A
    confederate's stored turn counts as its call would; a judge (agent -1) is left out (how
    many nodes it judges is not in the store)."""
    sizes = "(SELECT society, COUNT(*) AS n FROM agents WHERE agent >= 0 GROUP BY society)"
    answers = con.execute(
        f"SELECT COALESCE(SUM(a.n), 0) FROM (SELECT DISTINCT repeat, case_id, society, node "
        f"FROM strategy_nodes) d JOIN {sizes} a USING (society)"
    ).fetchone()[0]
    # Those who are asked (role-play turn, questionnaire): not the judge, not a confederate.
    asked = (
        "(SELECT society, COUNT(*) AS n FROM agents WHERE agent >= 0 "
        "AND backend != 'confederate' GROUP BY society)"
    )
    trees = (
        f"SELECT COALESCE(SUM(a.n), 0) FROM (SELECT DISTINCT repeat, case_id, society "
        f"FROM strategy_nodes) d JOIN {asked} a USING (society)"
    )
    persona = 0
    if con.execute("SELECT 1 FROM calls WHERE step = 'persona' LIMIT 1").fetchone():
        persona = con.execute(trees).fetchone()[0]
    return int(answers) + int(persona) + _planned_questionnaire(con, asked, trees)


def _planned_questionnaire(con: sqlite3.Connection, sizes: str, trees: str) -> int:
    """A run with a questionnaire asks each agent once per tree before round 0 and once at
    each strategy's last node (every strategy of a run has the same number of rounds)."""
    run = con.execute("SELECT config_json FROM run").fetchone()
    if run is None or json.loads(run[0]).get("questionnaire") is None:
        return 0
    leaves = con.execute(
        "SELECT COALESCE(SUM(a.n), 0) FROM (SELECT DISTINCT repeat, case_id, society, node "
        "FROM strategy_nodes WHERE round = (SELECT MAX(round) FROM strategy_nodes)) d "
        f"JOIN {sizes} a USING (society)"
    ).fetchone()[0]
    return int(con.execute(trees).fetchone()[0]) + int(leaves)


def run_facts(path: Path) -> RunFacts:
    with connect(path) as con:
        con.execute("BEGIN")
        run = con.execute("SELECT name, task, prompts, created_at, config_json FROM run").fetchone()
        if run is None:
            con.execute("COMMIT")
            raise LookupError(f"{path}: the store holds no run yet")
        societies = [
            r[0]
            for r in con.execute("SELECT society FROM agents GROUP BY society ORDER BY MIN(rowid)")
        ]
        models = [
            f"{b}:{m}" if not m.startswith(f"{b}:") else m
            for b, m in con.execute("SELECT DISTINCT backend, model FROM agents ORDER BY 1, 2")
        ]
        done = int(con.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
        last = con.execute("SELECT id, created_at FROM calls ORDER BY id DESC LIMIT 1").fetchone()
        invocations = _invocations(con)
        con.execute("COMMIT")
    name, task, prompts, created, config = run
    return RunFacts(
        name=name, task=task, prompts=prompts, created_at=created, config=json.loads(config),
        societies=societies, agent_models=models, calls_done=done,
        last_call_id=last[0] if last else 0, last_call_at=last[1] if last else None,
        invocations=invocations,
    )  # fmt: skip


def usage_between(path: Path, after_id: int, upto_id: int) -> list[Usage]:
    """Calls and tokens per model and outcome for call ids in (after_id, upto_id]: the viewer
    adds up new rows only while a run writes (a full scan of a big store takes seconds)."""
    with connect(path) as con:
        rows = con.execute(
            "SELECT backend, model, outcome, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens),"
            " SUM(cached_tokens) FROM calls WHERE id > ? AND id <= ? GROUP BY 1, 2, 3",
            (after_id, upto_id),
        ).fetchall()
    return [Usage(*row) for row in rows]


def planned(path: Path) -> int:
    with connect(path) as con:
        return planned_calls(con)


def stored_identity(con: sqlite3.Connection) -> dict[str, Any] | None:
    """The identity of the experiment a store holds (``session.identity``), if any."""
    row = con.execute("SELECT identity_json FROM run").fetchone()
    return dict(json.loads(row[0])) if row else None


def answered_per_tree(con: sqlite3.Connection) -> dict[tuple[int, str, str], int]:
    """Stored calls that will not be made again (any outcome but ``error``; a confederate's
    scripted turn is no call), per repeat x case
    x society: what a dry run counts as reused."""
    return {
        (int(r), str(c), str(s)): int(n)
        for r, c, s, n in con.execute(
            "SELECT repeat, case_id, society, COUNT(*) FROM calls "
            "WHERE outcome NOT IN ('error', 'scripted') GROUP BY repeat, case_id, society"
        )
    }


def questionnaire_replies(path: Path) -> list[tuple[int, str, str, str, int, str, str | None]]:
    """The questionnaire calls of a run (repeat, case, society, node, agent, outcome, reply),
    and no other call's reply: analysis parses these few rows, never every reply text."""
    with connect(path) as con:
        return [
            (int(r), str(c), str(s), str(n), int(a), str(o), t)
            for r, c, s, n, a, o, t in con.execute(
                "SELECT repeat, case_id, society, node, agent, outcome, reply FROM calls "
                "WHERE step = 'questionnaire' ORDER BY id"
            )
        ]


def call_count(path: Path) -> int:
    with connect(path) as con:
        return int(con.execute("SELECT COUNT(*) FROM calls").fetchone()[0])


def invocation_marker(path: Path) -> tuple[int, str | None]:
    """(invocations, last status): cheap, changes whenever a run starts or ends."""
    with connect(path) as con:
        row = con.execute(
            "SELECT COUNT(*), (SELECT status FROM invocations ORDER BY id DESC LIMIT 1) "
            "FROM invocations"
        ).fetchone()
    return int(row[0]), row[1]


def last_round(con: sqlite3.Connection) -> int:
    return int(con.execute("SELECT COALESCE(MAX(round), 0) FROM strategy_nodes").fetchone()[0])


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(query: TranscriptQuery) -> tuple[str, str, dict[str, Any]]:
    """(WITH clause, WHERE clause, parameters) of a transcript query."""
    conditions = ["sn.round = :last"]
    params: dict[str, Any] = {}
    for column in ("repeat", "case_id", "society", "strategy"):
        value = getattr(query, column)
        if value is not None:
            conditions.append(f"sn.{column} = :{column}")
            params[column] = value
    for name in query.filters:
        if name not in FILTERS:
            raise KeyError(f"unknown filter '{name}' (known: {', '.join(FILTERS)})")
        conditions.append(FILTERS[name][1])
    with_clause = ""
    if query.q:
        params["q"] = _like(query.q)
        with_clause = (
            "WITH hits AS MATERIALIZED (SELECT DISTINCT repeat, case_id, society, node "
            "FROM calls WHERE reply LIKE :q ESCAPE '\\') "
        )
        conditions.append(_SEARCH)
    return with_clause, " AND ".join(conditions), params


@dataclass(frozen=True, slots=True)
class TranscriptRow:
    """A list row: the transcript and its last round at a glance."""

    ref: TranscriptRef
    last_answers: list[str | None]
    last_correct: int
    problems: list[str]


def transcripts(
    path: Path, query: TranscriptQuery, offset: int = 0, limit: int = 50
) -> tuple[list[TranscriptRow], bool]:
    """One page of matching transcripts in key order, and whether more follow."""
    with_clause, where, params = _where(query)
    sql = (
        f"{with_clause}SELECT sn.repeat, sn.case_id, sn.society, sn.strategy, sn.node "
        "FROM strategy_nodes sn JOIN cases cs ON cs.case_id = sn.case_id "
        f"WHERE {where} ORDER BY sn.repeat, sn.case_id, sn.society, sn.strategy "
        "LIMIT :limit OFFSET :offset"
    )
    out = []
    with connect(path) as con:
        con.execute("BEGIN")
        params |= {"last": last_round(con), "limit": limit + 1, "offset": offset}
        rows = con.execute(sql, params).fetchall()
        for repeat, case_id, society, strategy, node in rows[:limit]:
            last = con.execute(
                "SELECT answer, correct, outcome FROM calls WHERE society = ? AND repeat = ? "
                "AND case_id = ? AND node = ? AND step = 'answer' ORDER BY agent",
                (society, repeat, case_id, node),
            ).fetchall()
            out.append(
                TranscriptRow(
                    TranscriptRef(repeat, case_id, society, strategy),
                    [a for a, _c, _o in last],
                    sum(int(c or 0) for _a, c, _o in last),
                    sorted({o for _a, _c, o in last if o != "ok"}),
                )
            )
        con.execute("COMMIT")
    return out, len(rows) > limit


def count_transcripts(path: Path, query: TranscriptQuery) -> int:
    with_clause, where, params = _where(query)
    sql = (
        f"{with_clause}SELECT COUNT(*) FROM strategy_nodes sn "
        f"JOIN cases cs ON cs.case_id = sn.case_id WHERE {where}"
    )
    with connect(path) as con:
        params["last"] = last_round(con)
        return int(con.execute(sql, params).fetchone()[0])


def choices(path: Path) -> dict[str, list[Any]]:
    """The values each exact field can take (for the list's selects): repeats, societies,
    strategies; cases are too many to list, so they are typed."""
    with connect(path) as con:
        return {
            "repeat": [r[0] for r in con.execute("SELECT DISTINCT repeat FROM strategy_nodes")],
            "society": [
                r[0]
                for r in con.execute(
                    "SELECT society FROM agents GROUP BY society ORDER BY MIN(rowid)"
                )
            ],
            "strategy": [
                r[0]
                for r in con.execute(
                    "SELECT DISTINCT strategy FROM strategy_nodes WHERE repeat = "
                    "(SELECT MIN(repeat) FROM strategy_nodes) AND case_id = "
                    "(SELECT MIN(case_id) FROM strategy_nodes) ORDER BY strategy"
                )
            ],
        }


def transcript(path: Path, ref: TranscriptRef) -> Transcript | None:
    """Every call of one transcript, round by round; ``None`` if the store has no such one."""
    with connect(path) as con:
        con.execute("BEGIN")
        nodes = [
            r[0]
            for r in con.execute(
                "SELECT node FROM strategy_nodes WHERE repeat = ? AND case_id = ? AND society = ? "
                "AND strategy = ? ORDER BY round",
                (ref.repeat, ref.case_id, ref.society, ref.strategy),
            )
        ]
        case = con.execute(
            "SELECT idx, fields_json FROM cases WHERE case_id = ?", (ref.case_id,)
        ).fetchone()
        if not nodes or case is None:
            con.execute("COMMIT")
            return None
        agents = [
            Agent(*r)
            for r in con.execute(
                "SELECT agent, name, trait, role, backend, model FROM agents WHERE society = ? "
                "ORDER BY agent",
                (ref.society,),
            )
        ]
        marks = ", ".join("?" * len(nodes))
        rows = con.execute(
            "SELECT agent, round, node, step, pattern, parent, added, reply, answer, correct, "
            "outcome, error, total_tokens, model FROM calls WHERE society = ? AND repeat = ? "
            f"AND case_id = ? AND node IN ({marks}) ORDER BY round, id",
            (ref.society, ref.repeat, ref.case_id, *nodes),
        ).fetchall()
        # Each call's conversation, rebuilt from its parents (the compact store, compact.py).
        conversations = Conversations(con, cache=True)
        asked = [conversations.request(r[5], r[6]) for r in rows]
        con.execute("COMMIT")
    turns = []
    for (agent, rnd, node, step, pattern, _, _, reply, answer, correct, outcome, error, tokens,
         model), msgs in zip(rows, asked, strict=True):  # fmt: skip
        system = msgs[0]["content"] if msgs and msgs[0].get("role") == "system" else None
        prompt = prompt_text(msgs)
        turns.append(
            Turn(agent, rnd, node, step, pattern, system, prompt, reply, answer,
                 None if correct is None else bool(correct), outcome, error, tokens, model)
        )  # fmt: skip
    return Transcript(ref, int(case[0]), json.loads(case[1]), agents, nodes, turns)


def sample_groups(
    path: Path, limit: int, repeats: Sequence[int] | None = None, max_case_index: int | None = None
) -> tuple[list[tuple[int, str, str]], int]:
    """A deterministic sample of at most ``limit`` (repeat, case, society) trees spread evenly
    over the whole list, and how many trees there are (the report's bounded transcripts)."""
    conditions = ["1 = 1"]
    params: list[Any] = []
    if repeats is not None:
        conditions.append(f"sn.repeat IN ({', '.join('?' * len(repeats))})")
        params.extend(repeats)
    if max_case_index is not None:
        conditions.append("cs.idx < ?")
        params.append(max_case_index)
    with connect(path) as con:
        rows = con.execute(
            "SELECT DISTINCT sn.repeat, sn.case_id, sn.society FROM strategy_nodes sn "
            f"JOIN cases cs ON cs.case_id = sn.case_id WHERE {' AND '.join(conditions)} "
            "AND sn.round = 0 ORDER BY sn.repeat, cs.idx, sn.society",
            params,
        ).fetchall()
    total = len(rows)
    if total <= limit:
        return [tuple(r) for r in rows], total
    step = total / max(limit, 1)
    return [tuple(rows[int(i * step)]) for i in range(limit)], total
