"""Runs a plan: every repeat x case x society as a prefix tree, concurrently, into the store.

Streaming: trees enter in a fixed order (repeat, then case, then society) as capacity frees
up: a new tree starts only while fewer calls wait for the concurrency limit than it admits,
so the limit stays busy but the conversations in memory are those of a bounded number of
trees, whatever the number of cases; and the first cases finish (and are stored) first, so a
partial run is analysable case by case. Within the trees in flight every call that does not
wait on another (the agents of a round, sibling nodes) runs at once under one semaphore.
Simultaneous update: a node's calls are built from its parent's replies only, so no agent
ever sees a reply of its own round. The simulated model seeds every draw by the call's
position, so results do not depend on the order trees enter or calls finish.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from societies.backends.base import (
    AnyBackend,
    CallFailedError,
    CallRefusedError,
    ChatMessage,
    ContextExceededError,
    GenerateRequest,
    PermanentModelError,
    Step,
    create_backend,
)
from societies.backends.simulated import GroundTruth, SimulatedBackend, ask
from societies.config.models import ModelSpec
from societies.errors import StoreError
from societies.plan.plan import Plan
from societies.scheduler.questionnaire import QuestionnaireTurns, leaves
from societies.scheduler.tree import Node, build_tree, planned_calls
from societies.society.agents import CONFEDERATE_BACKEND, Agent, Society
from societies.society.questionnaire import PRE_NODE
from societies.society.scripted import scripted_reply
from societies.store.db import RunStore, now
from societies.store.records import CallKey, CallRecord, Outcome, StoredCall
from societies.tasks.agreement import agreed
from societies.tasks.base import Case

log = logging.getLogger(__name__)

Messages = tuple[ChatMessage, ...]
BackendFactory = Callable[[ModelSpec], AnyBackend]
#: Called once per finished call: (model call made?, total tokens of the call).
ProgressFn = Callable[[bool, int], None]


@dataclass(frozen=True, slots=True)
class AgentState:
    """An agent after a call: its whole conversation and the outcome of its latest turn."""

    messages: Messages
    reply: str | None
    outcome: str
    #: The stored call that gave this reply: the parent of the agent's next call.
    call_id: int | None = None


@dataclass
class RunSummary:
    planned: int
    made: int = 0
    reused: int = 0
    errors: int = 0
    context_exceeded: int = 0
    skipped: int = 0
    #: Calls not made because a stopping rule ended their branch.
    saved: int = 0
    tokens: int = 0
    elapsed: float = 0.0
    stopped: str | None = None
    error_samples: list[str] = field(default_factory=list)


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


class _Slots:
    """The concurrency limit, counting the calls that wait for it or hold it (``ready``):
    while fewer than the limit are ready, a slot would idle, and ``room`` is set so that
    the feeder starts another tree."""

    __slots__ = ("_semaphore", "limit", "ready", "room")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.ready = 0
        self.room = asyncio.Event()
        self._semaphore = asyncio.Semaphore(limit)

    async def __aenter__(self) -> None:
        self.ready += 1
        try:
            await self._semaphore.acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._semaphore.release()
        self._leave()

    def _leave(self) -> None:
        self.ready -= 1
        if self.ready < self.limit:
            self.room.set()


@dataclass(frozen=True, slots=True)
class _Tree:
    """One repeat x case x society in flight: what its calls share."""

    repeat: int
    case: Case
    society: Society
    #: The case's prompt variables, computed once per tree.
    variables: dict[str, Any]
    #: The tree's calls already stored (resume), by key.
    stored: dict[CallKey, StoredCall]

    def key(self, node: str, agent: int, step: Step) -> CallKey:
        return CallKey(self.repeat, self.case.id, self.society.name, node, agent, step)


class _StopRun(Exception):
    """Raised inside a tree to stop starting calls after a permanent error or a budget stop."""


def _spec_key(spec: ModelSpec) -> str:
    return json.dumps([spec.backend, spec.name, spec.options], sort_keys=True, default=str)


class Runner:
    def __init__(
        self,
        plan: Plan,
        store: RunStore,
        *,
        backend_factory: BackendFactory = create_backend,
        progress: ProgressFn | None = None,
        invocation: int = 0,
        concurrency: int | None = None,
    ) -> None:
        self.plan = plan
        self.store = store
        self.progress = progress
        self.invocation = invocation
        #: Whether anything is stored yet: a fresh run skips the per-tree look-up of stored calls.
        self._resuming = store.has_calls()
        self._trees: dict[str, Node] = {}
        # ``concurrency``: batch mode (scheduler/batch.py) admits every tree at once.
        self.slots = _Slots(concurrency or plan.experiment.concurrency)
        #: Trees started and not finished.
        self._active = 0
        self.backends: dict[str, AnyBackend] = {}
        self.backend_limits: dict[str, asyncio.Semaphore] = {}
        #: Per agent model (by identity: specs live as long as the plan): its backend key and
        #: its params as stored, serialised once rather than on every call.
        self._spec_info: dict[int, tuple[str, str]] = {}
        for society in plan.societies:
            for agent in society.callers:  # confederates ask no model
                key = _spec_key(agent.model)
                params = json.dumps(agent.model.params, sort_keys=True, default=str)
                self._spec_info[id(agent.model)] = (key, params)
                if key not in self.backends:
                    backend = backend_factory(agent.model)
                    self.backends[key] = backend
                    limit = backend.max_concurrency()
                    if limit is not None:
                        self.backend_limits[key] = asyncio.Semaphore(limit)
        self.summary = RunSummary(planned=planned_calls(plan))
        self.stopping = False
        self.fatal: BaseException | None = None
        #: A paid answer is buffered, not yet committed (see _call).
        self._paid_unflushed = False
        self._questionnaire = QuestionnaireTurns(plan) if plan.questionnaire else None

    def _tree(self, society: Society, case: Case, repeat: int) -> Node:
        strategies = self.plan.strategies_for(society, case, repeat)
        if strategies is self.plan.strategies[society.name]:
            tree = self._trees.get(society.name)
            if tree is None:
                tree = self._trees[society.name] = build_tree(strategies)
            return tree
        return build_tree(strategies)

    def stop(self, reason: str) -> None:
        """Start no new calls; calls in flight finish and are stored."""
        if not self.stopping:
            self.stopping = True
            self.summary.stopped = reason

    async def run(self) -> RunSummary:
        started = time.perf_counter()
        flusher = asyncio.create_task(self._flush_periodically())
        try:
            async with asyncio.TaskGroup() as group:
                await self._feed(group)
        except BaseExceptionGroup as group_error:
            # One failing tree cancels the others; report the failure, not the group.
            raise _first_leaf(group_error) from None
        finally:
            flusher.cancel()
            self.store.flush()
            for backend in self.backends.values():
                await backend.aclose()
            self.summary.elapsed = time.perf_counter() - started
        if self.fatal is not None:
            raise self.fatal
        return self.summary

    async def _feed(self, group: asyncio.TaskGroup) -> None:
        """Start the trees in order, each once there is room for it.

        Room: fewer calls ready than the limit admits (the limit would otherwise idle), and
        fewer trees in flight than twice the limit (trees whose calls are all stored make no
        call, and must not pile up either).
        """
        slots = self.slots
        trees_cap = 2 * slots.limit
        for repeat in range(self.plan.experiment.repeats):
            for case in self.plan.cases:
                for society in self.plan.societies:
                    while slots.ready >= slots.limit or self._active >= trees_cap:
                        slots.room.clear()
                        await slots.room.wait()
                    if self.stopping:
                        return
                    self._active += 1
                    group.create_task(self._run_tree(repeat, case, society))
                    # Let the new tree reach its first calls before judging the room left.
                    await asyncio.sleep(0)

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.store.batch_seconds)
            self.store.flush()

    # -- the tree ---------------------------------------------------------------------------
    async def _run_tree(self, repeat: int, case: Case, society: Society) -> None:
        stored = self.store.tree_calls(repeat, case.id, society.name) if self._resuming else {}
        t = _Tree(repeat, case, society, self.plan.task.prompt_vars(case), stored)
        try:
            states = await asyncio.gather(
                *(self._first_answer(t, agent) for agent in society.agents)
            )
            await self._children(self._tree(society, case, repeat), states, t)
        except _StopRun:
            return
        finally:
            self._active -= 1
            self.slots.room.set()

    async def _first_answer(self, t: _Tree, agent: Agent) -> AgentState:
        if agent.script is not None:
            return self._scripted(t, "", agent, 0, None)
        prompts, task, case = self.plan.prompts, self.plan.task, t.case
        persona, briefing = prompts.opening(agent, task, case)
        parent: AgentState | None = None
        added: Messages
        if self.plan.prompts.persona_call:
            parent = await self._call(
                t, "", agent, 0, "persona", None, None, ({"role": "user", "content": persona},), ()
            )
            if parent.outcome != "ok":
                return parent
            added = ()
        else:
            added = ({"role": "system", "content": persona},)
        variables = {**t.variables, "role": prompts.role(agent, task, case)}
        question = prompts.question(task, case, variables)
        turns = (*briefing, question)
        added = (*added, *({"role": "user", "content": text} for text in turns))
        first = self._call(t, "", agent, 0, "answer", None, parent, added, ())
        if self._questionnaire is None:
            return await first
        # Before round 0: off the persona only (the role-play turn, or the system message).
        before = (*added[: 0 if parent is not None else 1], self._questionnaire.pre)
        pre = self._call(t, PRE_NODE, agent, 0, "questionnaire", None, parent, before, ())
        state, _ = await asyncio.gather(first, pre)
        return state

    async def _children(self, node: Node, states: Sequence[AgentState], t: _Tree) -> None:
        """After a node's turns: the judge (when it judges here), the questionnaire (where a
        branch ends) and the child nodes, unless a call failed or the stopping rule ends the
        branch. Confederates never count towards agreement: only the model agents' answers do."""
        society = t.society
        n_model = len(society.model_agents)
        if not node.children and any(s.outcome != "ok" for s in states):
            await self._post_questionnaire(node, states, t)
            return
        if any(s.outcome == "context_exceeded" for s in states):
            for child in node.children:
                self._mark_exceeded(child, t)
            return
        if any(s.outcome != "ok" for s in states):
            self.summary.skipped += sum(len(c.walk()) for c in node.children) * n_model
            return
        stopped = False
        threshold = society.stop
        if threshold is not None and node.children:
            answers = [
                self.plan.task.parse_case(str(s.reply), t.case)
                for s, agent in zip(states, society.agents, strict=True)
                if agent.script is None
            ]
            # The branch ends here; analysis carries these answers to the later rounds.
            stopped = agreed(answers, threshold)
        steps = []
        judge = society.judge
        if judge is not None and (judge.after == "every" or stopped or not node.children):
            steps.append(self._judge(node, states, t))
        if stopped:
            self.summary.saved += sum(len(c.walk()) for c in node.children) * n_model
            if self._questionnaire is not None:  # asked here once, not at each leaf below
                self.summary.saved += (leaves(node) - 1) * n_model
        if stopped or not node.children:
            steps.append(self._post_questionnaire(node, states, t))
        else:
            steps.extend(self._run_node(c, states, t) for c in node.children)
        await asyncio.gather(*steps)

    async def _judge(self, node: Node, states: Sequence[AgentState], t: _Tree) -> None:
        """The judge reads every agent's latest reply (confederates' too, in index order) in
        one call of its own, which no agent ever sees."""
        judge = t.society.judge
        assert judge is not None
        replies = tuple(str(s.reply) for s in states)
        text = self.plan.prompts.judge_prompt(judge, self.plan.task, t.case, replies, node.round)
        await self._call(
            t, node.code, judge.agent, node.round, "judge", None, None,
            ({"role": "user", "content": text},), replies,
        )  # fmt: skip

    async def _run_node(self, node: Node, parent: Sequence[AgentState], t: _Tree) -> None:
        assert node.plan is not None
        plan = node.plan
        patterns = self.plan.patterns
        sees = [patterns[p].sees_peers for p in plan]
        graph, size = t.society.topology, t.society.size

        async def turn(agent: Agent) -> AgentState:
            i = agent.index
            pattern = patterns[plan[i]]
            if agent.script is not None:
                return self._scripted(t, node.code, agent, node.round, pattern.name)
            peers: tuple[str, ...] = ()
            if pattern.sees_peers:
                peers = tuple(
                    str(parent[j].reply) for j in graph.neighbours(node.round, i, size) if sees[j]
                )
            text = self.plan.prompts.turn(pattern, self.plan.task, t.variables, peers, node.round)
            return await self._call(
                t, node.code, agent, node.round, "answer", pattern.name, parent[i],
                ({"role": "user", "content": text},), peers,
            )  # fmt: skip

        states = await asyncio.gather(*(turn(a) for a in t.society.agents))
        await self._children(node, states, t)

    async def _post_questionnaire(self, node: Node, states: Sequence[AgentState], t: _Tree) -> None:
        """After the last round: each agent whose branch ends at ``node`` with an answer is
        asked the questionnaire off its whole conversation (a leaf call: no one reads it)."""
        if self._questionnaire is None:
            return
        turn = (self._questionnaire.post,)
        await asyncio.gather(
            *(
                self._call(t, node.code, a, node.round, "questionnaire", None, s, turn, ())
                for a, s in zip(t.society.agents, states, strict=True)
                if s.outcome == "ok" and a.script is None
            )
        )

    def _mark_exceeded(self, node: Node, t: _Tree) -> None:
        """Descendants of an overflowing call are recorded as ``context_exceeded`` unasked,
        as the study did, so that analysis sees them and resume does not retry them."""
        for n in node.walk():
            for agent in t.society.model_agents:
                key = t.key(n.code, agent.index, "answer")
                if key in t.stored:
                    continue
                pattern = None if n.plan is None else n.plan[agent.index]
                self.store.add_call(
                    CallRecord(key, n.round, pattern, None, (), None, None, None, 0, 0, 0, 0, None,
                               agent.model.backend, agent.model.name, self._params(agent.model),
                               0, "context_exceeded",
                               "an earlier call of this branch exceeded the context", "", None,
                               self.invocation, now())
                )  # fmt: skip
                self.summary.context_exceeded += 1

    # -- one call ---------------------------------------------------------------------------
    def _params(self, spec: ModelSpec) -> str:
        return self._spec_info[id(spec)][1]

    async def _call(
        self,
        t: _Tree,
        node: str,
        agent: Agent,
        round_index: int,
        step: Step,
        pattern: str | None,
        parent: AgentState | None,
        added: Messages,
        peers: tuple[str, ...],
    ) -> AgentState:
        """One call: the agent's conversation so far (``parent``'s, with its reply), then the
        ``added`` messages."""
        key = t.key(node, agent.index, step)
        if agent.pause is not None:
            added = agent.pause.delay(added)  # the pause pattern's filler, if it has one
        messages = added if parent is None else (*parent.messages, *added)
        parent_id = None if parent is None else parent.call_id
        case = t.case
        spec = agent.model
        spec_key, params_json = self._spec_info[id(spec)]
        messages_json = json.dumps(messages, ensure_ascii=False, separators=(",", ":"))
        request_hash = hashlib.blake2b(
            f"{spec.backend}\x00{spec.name}\x00{params_json}\x00{messages_json}".encode(),
            digest_size=16,
        ).hexdigest()
        stored = t.stored.get(key)
        if stored is not None and stored.outcome != "error":
            if stored.request_hash != request_hash:
                raise StoreError(
                    f"{self.store.path}: call {key.text} was stored with a different request (the "
                    "prompts, data or model changed); run into a new directory with --out"
                )
            self.summary.reused += 1
            if self.progress:
                self.progress(False, 0)
            return self._state(messages, stored.reply, stored.outcome, stored.id)
        if self.stopping:
            raise _StopRun
        backend = self.backends[spec_key]
        request = GenerateRequest(messages, spec.name, spec.params, key)
        truth = None
        if isinstance(backend, SimulatedBackend):
            truth = GroundTruth(
                key.text, self.plan.task, case, agent, round_index, step, pattern, peers,
                self.plan.experiment.seed,
                self.plan.prompts.briefing_answer(agent, self.plan.task, case),
                self.plan.questionnaire if step == "questionnaire" else (),
            )  # fmt: skip
        limit = self.backend_limits.get(spec_key)
        async with self.slots:
            if self.stopping:
                raise _StopRun
            # Durable before admitted: every paid answer received so far is committed before
            # this call is sent, so a crash re-sends at most the calls in flight (never a
            # paid, answered one). Answers arriving together share one commit.
            if self._paid_unflushed:
                self._paid_unflushed = False
                self.store.flush()
            started = time.perf_counter()
            text: str | None = None
            error: str | None = None
            outcome: Outcome
            usage = None
            attempts, model, request_id = 1, spec.name, None
            try:
                if limit is None:
                    result = await ask(backend, request, truth)
                else:
                    async with limit:
                        result = await ask(backend, request, truth)
                text, usage, attempts = result.text, result.usage, result.attempts
                model, request_id = result.model or spec.name, result.request_id
                outcome = "ok"
            except ContextExceededError as exc:
                outcome, error = "context_exceeded", str(exc)
            except CallFailedError as exc:
                outcome, error, attempts = "error", str(exc), exc.attempts
            except CallRefusedError as exc:
                self.stop(str(exc))
                raise _StopRun from None
            except PermanentModelError as exc:
                if self.fatal is None:
                    self.fatal = exc
                self.stop(str(exc))
                raise _StopRun from None
            latency_ms = (time.perf_counter() - started) * 1000
        answer = correct = None
        if text is not None and step in ("answer", "judge"):
            answer = self.plan.task.parse_case(text, case)
            correct = int(self.plan.task.score(answer, case))
        p, c, cached = (
            (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
            if (usage)
            else (0, 0, 0)
        )
        call_id = self.store.add_call(
            CallRecord(key, round_index, pattern, parent_id, added, text, answer, correct, p, c,
                       p + c, cached, latency_ms, spec.backend, model, params_json, attempts,
                       outcome, error, request_hash, request_id, self.invocation, now())
        )  # fmt: skip
        self._paid_unflushed |= not backend.free
        self.summary.made += 1
        self.summary.tokens += p + c
        if outcome == "error":
            self.summary.errors += 1
            if len(self.summary.error_samples) < 3:
                self.summary.error_samples.append(f"{key.text}: {error}")
        elif outcome == "context_exceeded":
            self.summary.context_exceeded += 1
        if self.progress:
            self.progress(True, p + c)
        return self._state(messages, text, outcome, call_id)

    def _scripted(
        self, t: _Tree, node: str, agent: Agent, round_index: int, pattern: str | None
    ) -> AgentState:
        """A confederate's turn: no model call. Its reply is stored (outcome ``scripted``, no
        tokens) so that transcripts read as the agents saw them; it is not counted as a call."""
        key = t.key(node, agent.index, "answer")
        stored = t.stored.get(key)
        if stored is not None:
            return AgentState((), stored.reply, "ok", stored.id)
        assert agent.script is not None
        task, case = self.plan.task, t.case
        text, answer = scripted_reply(self.plan.prompts, agent.script, task, case, round_index)
        call_id = self.store.add_call(
            CallRecord(key, round_index, pattern, None, (), text, answer,
                       int(task.score(answer, case)), 0, 0, 0, 0, None, CONFEDERATE_BACKEND,
                       agent.model.name, "{}", 0, "scripted", None, "", None, self.invocation,
                       now())
        )  # fmt: skip
        return AgentState((), text, "ok", call_id)

    @staticmethod
    def _state(messages: Messages, reply: str | None, outcome: str, call_id: int) -> AgentState:
        if reply is None:
            return AgentState(messages, None, outcome, call_id)
        return AgentState(
            (*messages, {"role": "assistant", "content": reply}), reply, outcome, call_id
        )
