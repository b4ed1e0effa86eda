"""The size of a run, computed before anything starts: calls, tokens, store bytes, memory.

Nothing is simulated. Calls come from the prefix-tree formula; tokens from the real prompt
templates, rendered once per case, pattern, round and number of peers, with every reply
standing in as ``reply_tokens`` tokens (``max_tokens`` when the model sets it, the simulated
model's measured mean for the sim; a persona turn's reply as one token). A call's prompt is
its parent's plus the parent's reply and the new turn, so a tree is summed without building
a single conversation: the whole study (1.3M calls) is estimated in seconds.

The size guard refuses, in one line, a run whose estimate exceeds the machine (memory, free
disk) or ``MAX_CALLS``, unless the user accepts it (``--accept-size``); the estimate of a
plan too large to estimate exactly is refused as such, before anything grows.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from societies.backends.base import estimate_prompt_tokens, estimate_tokens
from societies.errors import SocietiesError
from societies.plan.plan import Plan
from societies.scheduler.questionnaire import QuestionnaireTurns
from societies.scheduler.tree import Node, build_tree
from societies.society.agents import Agent, Society
from societies.tasks.base import Case

log = logging.getLogger(__name__)

#: Overhead of one message in a prompt (``estimate_prompt_tokens``).
MESSAGE_TOKENS = 3
#: A run of more calls than this is refused unless accepted.
MAX_CALLS = 20_000_000
#: Store bytes per call in the compact store (store/compact.py: the row, its index entry and
#: the messages it adds, stored once and compressed), measured on the simulated model's
#: agents preset (517 B per call at 1,052,000 calls), and bytes per reply token beyond the
#: short simulated replies (a reply is stored once, as text, ~4 characters per token).
#: The simulated model's replies are short: their mean length (quickstart, 16,200 answers).
SIM_REPLY_TOKENS = 24
STORE_CALL_BYTES = 520
STORE_BYTES_PER_REPLY_TOKEN = 4.3
#: Peak memory of a run: the interpreter and libraries. It does not grow with the run: trees
#: stream through a bounded window and resume reads stored calls tree by tree (52 MB peak at
#: 21,040 and at 1,052,000 calls of the agents preset).
BASE_MEMORY = 150_000_000
#: Exact estimation walks every call of one repeat; above this many (case, society) trees the
#: first case stands for the others.
EXACT_TREES = 200_000


class SizeRefused(SocietiesError):
    """The run would exceed the machine or the call limit; ``--accept-size`` runs it anyway."""


@dataclass
class Estimate:
    """What a plan would send, in total and per model name."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Calls already stored in the run directory (not made again).
    reused: int = 0
    #: Per model: (calls, prompt tokens, completion tokens) of the calls still to make.
    by_model: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    store_bytes: int = 0
    memory_bytes: int = 0
    note: str = ""

    def add(self, model: str, calls: int, prompt: int, completion: int) -> None:
        n, p, c = self.by_model.get(model, (0, 0, 0))
        self.by_model[model] = (n + calls, p + prompt, c + completion)
        self.calls += calls
        self.prompt_tokens += prompt
        self.completion_tokens += completion


class _Texts:
    """Token counts of rendered templates, memoised per case."""

    def __init__(self, plan: Plan, reply_tokens: int) -> None:
        self.plan = plan
        self.reply_tokens = reply_tokens
        self._turns: dict[tuple[str, str, int, int, int], int] = {}
        self._firsts: dict[tuple[str, str, str | None, str], tuple[int, int]] = {}
        self._questionnaires: dict[tuple[str, str, str | None, str], tuple[int, int]] = {}
        self._q_turns = QuestionnaireTurns(plan) if plan.questionnaire else None

    def reply(self, agent: Agent) -> int:
        max_tokens = agent.model.params.get("max_tokens") or agent.model.params.get(
            "max_completion_tokens"
        )
        if max_tokens:
            return int(max_tokens)
        return SIM_REPLY_TOKENS if agent.model.backend == "sim" else self.reply_tokens

    def first(self, agent: Agent, case: Case) -> tuple[int, int]:
        """(prompt tokens of the persona call or 0, prompt tokens of the first answer)."""
        key = (case.id, agent.trait.name, agent.role, agent.name)
        found = self._firsts.get(key)
        if found is None:
            found = self._firsts[key] = self._first(agent, case)
        return found

    def _first(self, agent: Agent, case: Case) -> tuple[int, int]:
        prompts, task = self.plan.prompts, self.plan.task
        persona = prompts.persona(agent, task, case)
        variables = {**task.prompt_vars(case), "role": prompts.role(agent, task, case)}
        question = estimate_tokens(prompts.question(task, case, variables))
        if prompts.persona_call:
            persona_prompt = estimate_prompt_tokens([{"role": "user", "content": persona}])
            # persona, its one-token reply, the question
            answer = persona_prompt + 2 * MESSAGE_TOKENS + 1 + question
            return persona_prompt, answer
        return 0, estimate_prompt_tokens([{"role": "system", "content": persona}]) + (
            MESSAGE_TOKENS + question
        )

    def questionnaire(self, agent: Agent, case: Case) -> tuple[int, int]:
        """(prompt tokens of the pre-debate questionnaire call, tokens of the post turn): the
        pre call continues the persona (its call and reply, or the system message)."""
        key = (case.id, agent.trait.name, agent.role, agent.name)
        found = self._questionnaires.get(key)
        if found is None:
            turns = self._q_turns
            assert turns is not None
            prompts, task = self.plan.prompts, self.plan.task
            persona = prompts.persona(agent, task, case)
            pre = estimate_tokens(turns.pre["content"])
            if prompts.persona_call:
                opening = estimate_prompt_tokens([{"role": "user", "content": persona}])
                first = opening + 2 * MESSAGE_TOKENS + 1 + pre
            else:
                opening = estimate_prompt_tokens([{"role": "system", "content": persona}])
                first = opening + MESSAGE_TOKENS + pre
            found = (first, estimate_tokens(turns.post["content"]))
            self._questionnaires[key] = found
        return found

    def turn(self, case: Case, pattern: str, round_index: int, peers: int, reply: int) -> int:
        key = (case.id, pattern, round_index, peers, reply)
        found = self._turns.get(key)
        if found is None:
            filler = "abc " * reply  # exactly `reply` tokens by estimate_tokens
            text = self.plan.prompts.turn(
                self.plan.patterns[pattern],
                self.plan.task,
                self.plan.task.prompt_vars(case),
                (filler,) * peers,
                round_index,
            )
            found = self._turns[key] = estimate_tokens(text)
        return found


def _tree_tokens(
    texts: _Texts, tree: Node, society: Society, case: Case
) -> list[tuple[int, int, int]]:
    """Per agent of one tree: (calls, prompt tokens, completion tokens)."""
    plan = texts.plan
    out = []
    sees = {name: p.sees_peers for name, p in plan.patterns.items()}
    for agent in society.agents:
        if agent.script is not None:  # a confederate: no call, no tokens
            out.append((0, 0, 0))
            continue
        i = agent.index
        reply = texts.reply(agent)
        persona, first = texts.first(agent, case)
        # The pause pattern: M more prompt tokens in every call; the filler of an API backend
        # stays in the conversation, a local model's pause tokens do not.
        pause = agent.pause.tokens if agent.pause is not None else 0
        kept = pause if agent.pause is not None and agent.pause.filler else 0
        first += pause
        calls, prompt, completion = 1, first, reply
        if plan.prompts.persona_call:
            first += kept  # the role-play turn's filler, read again by the first answer
            calls, prompt, completion = 2, first + persona + pause, reply + 1
        stack = [(child, first - pause + kept) for child in tree.children]
        post = None
        if plan.questionnaire:  # before round 0, and after the last round at each leaf
            pre, post = texts.questionnaire(agent, case)
            calls, prompt, completion = calls + 1, prompt + pre, completion + reply
            if not tree.children:
                calls, completion = calls + 1, completion + reply
                prompt += first - pause + kept + 2 * MESSAGE_TOKENS + reply + post
        while stack:
            node, parent_prompt = stack.pop()
            assert node.plan is not None
            pattern = node.plan[i]
            peers = 0
            if sees[pattern]:
                heard = society.topology.neighbours(node.round, i, society.size)
                peers = sum(1 for j in heard if sees[node.plan[j]])
            turn = texts.turn(case, pattern, node.round, peers, reply)
            here = parent_prompt + 2 * MESSAGE_TOKENS + reply + turn + pause
            calls += 1
            prompt += here
            completion += reply
            stack.extend((child, here - pause + kept) for child in node.children)
            if post is not None and not node.children:
                calls, completion = calls + 1, completion + reply
                prompt += here - pause + kept + 2 * MESSAGE_TOKENS + reply + post
        out.append((calls, prompt, completion))
    return out


def _judge_tokens(texts: _Texts, tree: Node, society: Society, case: Case) -> tuple[int, int, int]:
    """The judge's calls in one tree (every node, or every leaf: the most a stopping rule
    leaves), each reading one reply per agent (confederates' as long as a model's)."""
    judge = society.judge
    if judge is None:
        return 0, 0, 0
    nodes = tree.walk()
    judged = nodes if judge.after == "every" else [n for n in nodes if not n.children]
    reply = texts.reply(judge.agent)
    peer = max((texts.reply(a) for a in society.model_agents), default=reply)
    filler = ("abc " * peer,) * society.size
    plan = texts.plan
    prompt = estimate_prompt_tokens(
        [{"role": "user", "content": plan.prompts.judge_prompt(judge, plan.task, case, filler, 1)}]
    )
    return len(judged), prompt * len(judged), reply * len(judged)


def estimate_plan(plan: Plan, reply_tokens: int = 250) -> Estimate:
    """Calls and tokens of the whole plan, less what its run directory already holds.

    A tree's calls and tokens depend on its case, not its repeat (unless a random reflector
    is drawn per repeat), so each case is summed once and counted ``repeats`` times.
    """
    est = Estimate()
    stored = _stored_per_tree(plan)
    texts = _Texts(plan, reply_tokens)
    repeats, cases = plan.experiment.repeats, plan.cases
    exact = len(cases) * len(plan.societies) <= EXACT_TREES
    tree_cases: Sequence[Case] = cases if exact else cases[:1]
    case_scale = 1 if exact else len(cases)
    shared: dict[str, Node] = {}
    for society in plan.societies:
        drawn = any(s.random_reflector for s in plan.strategies[society.name])
        for repeat in range(repeats if drawn else 1):
            for case in tree_cases:
                strategies = plan.strategies_for(society, case, repeat)
                if strategies is plan.strategies[society.name]:
                    tree = shared.get(society.name) or shared.setdefault(
                        society.name, build_tree(strategies)
                    )
                else:
                    tree = build_tree(strategies)
                per_agent = _tree_tokens(texts, tree, society, case)
                judge = _judge_tokens(texts, tree, society, case)
                total = sum(c for c, _, _ in per_agent) + judge[0]
                same = [repeat] if drawn else range(repeats)
                done = sum(min(total, stored.get((r, case.id, society.name), 0)) for r in same)
                copies = len(same) * case_scale
                left = 1.0 - done / (total * len(same)) if total else 0.0
                est.reused += done * case_scale
                callers = list(zip(society.agents, per_agent, strict=True))
                if society.judge is not None:
                    callers.append((society.judge.agent, judge))
                for agent, (c, p, r) in callers:
                    if agent.script is not None:
                        continue
                    est.add(
                        agent.model.name,
                        round(c * copies * left),
                        round(p * copies * left),
                        round(r * copies * left),
                    )
    if not exact:
        est.note = f"estimated from the first case ({len(cases):,} cases)"
    # What a full store and a full run take, stored calls included.
    total_calls = est.calls + est.reused
    longer_replies = max(0, est.completion_tokens - SIM_REPLY_TOKENS * est.calls)
    est.store_bytes = int(
        total_calls * STORE_CALL_BYTES + longer_replies * STORE_BYTES_PER_REPLY_TOKEN
    )
    est.memory_bytes = BASE_MEMORY
    return est


def _stored_per_tree(plan: Plan) -> dict[tuple[int, str, str], int]:
    """Calls already stored in the run directory, per (repeat, case, society), when it holds
    this experiment; read-only, so a dry run works on any run directory, even one in use."""
    from societies.scheduler.session import identity
    from societies.scheduler.transport import split_transport
    from societies.store import queries
    from societies.store.db import STORE_FILE, connect_readonly, inspect_existing

    path = plan.output / STORE_FILE
    if not path.is_file():
        return {}
    try:
        inspect_existing(path)
        con = connect_readonly(path)
        try:
            old = queries.stored_identity(con)
            if old is not None:
                split_transport(old)
            if old != identity(plan):
                log.warning("%s holds another experiment: a real run would be refused", path)
                return {}
            return queries.answered_per_tree(con)
        finally:
            con.close()
    except (sqlite3.Error, ValueError, TypeError, SocietiesError) as exc:
        # Typically a store another invocation is creating this moment: not worth a warning
        # (that invocation's lock refuses this one anyway when it is not a dry run).
        log.info("%s: not a readable run store (%s); counted as empty", path, exc)
        return {}


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def size_line(name: str, est: Estimate) -> str:
    return (
        f"{name}: {est.calls:,} calls to make ({est.reused:,} stored), "
        f"~{est.prompt_tokens + est.completion_tokens:,} tokens, store ~"
        f"{human_bytes(est.store_bytes)}, memory ~{human_bytes(est.memory_bytes)}"
    )


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_size(plan: Plan, est: Estimate) -> None:
    """Refuse, in one line, a run the machine cannot hold (see the module doc)."""
    problems = []
    memory = physical_memory()
    if memory is not None and est.memory_bytes > memory * 0.8:
        problems.append(
            f"memory ~{human_bytes(est.memory_bytes)} of this machine's {human_bytes(memory)}"
        )
    folder = plan.output
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if free is not None and est.store_bytes > free:
        problems.append(f"store ~{human_bytes(est.store_bytes)} with {human_bytes(free)} free")
    if est.calls > MAX_CALLS:
        problems.append(f"{est.calls:,} calls (more than {MAX_CALLS:,})")
    if problems:
        raise SizeRefused(
            f"{plan.experiment.name}: too large for this machine ({'; '.join(problems)}); "
            "reduce cases, repeats, agents or rounds, or pass --accept-size to run it anyway"
        )


def budget_estimate(plan: Plan, society: Society, sample: Agent) -> tuple[float, float]:
    """What ``k: {match: <society>}`` divides when no stored run is named, on the plan's first
    case: the society's tokens per case for one strategy run alone (mean over its strategies),
    and the tokens of one independent answer by ``sample`` (its persona turn included).
    Replies count as in a dry run (``max_tokens``, the sim's mean, else 250 tokens)."""
    case = plan.cases[0]
    texts = _Texts(plan, 250)
    paths = [
        sum(p + c for _, p, c in _tree_tokens(texts, build_tree([s]), society, case))
        for s in plan.strategies[society.name]
    ]
    ((_, prompt, completion),) = _tree_tokens(texts, build_tree([]), Society("k", (sample,)), case)
    return sum(paths) / max(len(paths), 1), float(prompt + completion)
