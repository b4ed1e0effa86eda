"""Runs a plan: every repeat x case x society as a prefix tree, concurrently, into the store.

Concurrency: every call that does not wait on another (the agents of a round, sibling nodes,
other cases, societies and repeats) is started at once and admitted by one semaphore, so the
number in flight never exceeds the configured limit. Simultaneous update: a node's calls are
built from its parent's replies only, so no agent ever sees a reply of its own round.
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
    CallContext,
    CallFailedError,
    CallRefusedError,
    ChatMessage,
    ContextExceededError,
    GenerateRequest,
    ModelBackend,
    PermanentModelError,
    Step,
    create_backend,
)
from societies.config.load import Plan
from societies.config.models import ModelSpec
from societies.errors import StoreError
from societies.scheduler.tree import Node, build_tree, planned_calls
from societies.society.agents import Agent, Society
from societies.store.db import RunStore, StoredCall, now
from societies.tasks.base import Case

log = logging.getLogger(__name__)

Messages = tuple[ChatMessage, ...]
BackendFactory = Callable[[ModelSpec], ModelBackend]
#: Called once per finished call: (model call made?, total tokens of the call).
ProgressFn = Callable[[bool, int], None]


@dataclass(frozen=True, slots=True)
class AgentState:
    """An agent after a call: its whole conversation and the outcome of its latest turn."""

    messages: Messages
    reply: str | None
    outcome: str


@dataclass
class RunSummary:
    planned: int
    made: int = 0
    reused: int = 0
    errors: int = 0
    context_exceeded: int = 0
    skipped: int = 0
    tokens: int = 0
    elapsed: float = 0.0
    stopped: str | None = None
    error_samples: list[str] = field(default_factory=list)


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


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
    ) -> None:
        self.plan = plan
        self.store = store
        self.progress = progress
        self.invocation = invocation
        self.done: dict[str, StoredCall] = store.done_calls()
        self._trees: dict[str, Node] = {}
        self.semaphore = asyncio.Semaphore(plan.experiment.concurrency)
        self.backends: dict[str, ModelBackend] = {}
        self.backend_limits: dict[str, asyncio.Semaphore] = {}
        #: Per agent model (by identity: specs live as long as the plan): its backend key and
        #: its params as stored, serialised once rather than on every call.
        self._spec_info: dict[int, tuple[str, str]] = {}
        for society in plan.societies:
            for agent in society.agents:
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
        self._vars: dict[str, dict[str, Any]] = {}

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
                for repeat in range(self.plan.experiment.repeats):
                    for case in self.plan.cases:
                        for society in self.plan.societies:
                            group.create_task(self._run_tree(repeat, case, society))
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

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.store.batch_seconds)
            self.store.flush()

    def _variables(self, case: Case) -> dict[str, Any]:
        found = self._vars.get(case.id)
        if found is None:
            found = self._vars[case.id] = self.plan.task.prompt_vars(case)
        return found

    # -- the tree ---------------------------------------------------------------------------
    async def _run_tree(self, repeat: int, case: Case, society: Society) -> None:
        prefix = f"{repeat}|{case.id}|{society.name}|"
        try:
            states = await asyncio.gather(
                *(self._first_answer(prefix, repeat, case, agent) for agent in society.agents)
            )
            tree = self._tree(society, case, repeat)
            await self._children(tree, states, prefix, repeat, case, society)
        except _StopRun:
            return

    async def _first_answer(self, prefix: str, repeat: int, case: Case, agent: Agent) -> AgentState:
        prompts, task = self.plan.prompts, self.plan.task
        persona = prompts.persona(agent, task, case)
        conversation: Messages
        if self.plan.prompts.persona_call:
            state = await self._call(
                prefix, "", agent, 0, "persona", None, ({"role": "user", "content": persona},),
                (), case, repeat,
            )  # fmt: skip
            if state.outcome != "ok":
                return state
            conversation = state.messages
        else:
            conversation = ({"role": "system", "content": persona},)
        variables = {**self._variables(case), "role": prompts.role(agent, task, case)}
        question = prompts.question(task, case, variables)
        messages = (*conversation, {"role": "user", "content": question})
        return await self._call(prefix, "", agent, 0, "answer", None, messages, (), case, repeat)

    async def _children(
        self,
        node: Node,
        states: Sequence[AgentState],
        prefix: str,
        repeat: int,
        case: Case,
        society: Society,
    ) -> None:
        if not node.children:
            return
        if any(s.outcome == "context_exceeded" for s in states):
            for child in node.children:
                self._mark_exceeded(child, prefix, society)
            return
        if any(s.outcome != "ok" for s in states):
            self.summary.skipped += sum(len(c.walk()) for c in node.children) * society.size
            return
        await asyncio.gather(
            *(self._run_node(c, states, prefix, repeat, case, society) for c in node.children)
        )

    async def _run_node(
        self,
        node: Node,
        parent: Sequence[AgentState],
        prefix: str,
        repeat: int,
        case: Case,
        society: Society,
    ) -> None:
        assert node.plan is not None
        plan = node.plan
        patterns = self.plan.patterns
        sees = [patterns[p].sees_peers for p in plan]
        variables = self._variables(case)

        async def turn(agent: Agent) -> AgentState:
            i = agent.index
            pattern = patterns[plan[i]]
            peers: tuple[str, ...] = ()
            if pattern.sees_peers:
                peers = tuple(
                    str(parent[j].reply) for j in range(len(parent)) if j != i and sees[j]
                )
            text = self.plan.prompts.turn(pattern, self.plan.task, variables, peers, node.round)
            messages = (*parent[i].messages, {"role": "user", "content": text})
            return await self._call(
                prefix, node.code, agent, node.round, "answer", pattern.name, messages, peers,
                case, repeat,
            )  # fmt: skip

        states = await asyncio.gather(*(turn(a) for a in society.agents))
        await self._children(node, states, prefix, repeat, case, society)

    def _mark_exceeded(self, node: Node, prefix: str, society: Society) -> None:
        """Descendants of an overflowing call are recorded as ``context_exceeded`` unasked,
        as the study did, so that analysis sees them and resume does not retry them."""
        for n in node.walk():
            for agent in society.agents:
                key = f"{prefix}{n.code}|{agent.index}|answer"
                if key in self.done:
                    continue
                repeat, case_id, society_name = prefix.split("|")[:3]
                pattern = None if n.plan is None else n.plan[agent.index]
                self.store.add_call(
                    (key, int(repeat), case_id, society_name, n.code, agent.index, n.round,
                     "answer", pattern, "[]", None, None, 0, 0, 0, 0, 0, None,
                     agent.model.backend, agent.model.name, self._params(agent.model), 0,
                     "context_exceeded", "an earlier call of this branch exceeded the context",
                     "", None, self.invocation, now())
                )  # fmt: skip
                self.summary.context_exceeded += 1

    # -- one call ---------------------------------------------------------------------------
    def _params(self, spec: ModelSpec) -> str:
        return self._spec_info[id(spec)][1]

    async def _call(
        self,
        prefix: str,
        node: str,
        agent: Agent,
        round_index: int,
        step: Step,
        pattern: str | None,
        messages: Messages,
        peers: tuple[str, ...],
        case: Case,
        repeat: int,
    ) -> AgentState:
        key = f"{prefix}{node}|{agent.index}|{step}"
        spec = agent.model
        spec_key, params_json = self._spec_info[id(spec)]
        messages_json = json.dumps(messages, ensure_ascii=False, separators=(",", ":"))
        request_hash = hashlib.blake2b(
            f"{spec.backend}\x00{spec.name}\x00{params_json}\x00{messages_json}".encode(),
            digest_size=16,
        ).hexdigest()
        stored = self.done.get(key)
        if stored is not None and stored.outcome != "error":
            if stored.request_hash != request_hash:
                raise StoreError(
                    f"{self.store.path}: call {key} was stored with a different request (the "
                    "prompts, data or model changed); run into a new directory with --out"
                )
            self.summary.reused += 1
            if self.progress:
                self.progress(False, 0)
            return self._state(messages, stored.reply, stored.outcome)
        if self.stopping:
            raise _StopRun
        backend = self.backends[spec_key]
        context = CallContext(
            key, self.plan.task, case, agent, round_index, step, pattern, peers,
            self.plan.experiment.seed, repeat,
        )  # fmt: skip
        request = GenerateRequest(messages, spec.name, spec.params, context)
        limit = self.backend_limits.get(spec_key)
        async with self.semaphore:
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
            usage = None
            attempts, model, request_id = 1, spec.name, None
            try:
                if limit is None:
                    result = await backend.generate(request)
                else:
                    async with limit:
                        result = await backend.generate(request)
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
        if text is not None and step == "answer":
            answer = self.plan.task.parse_case(text, case)
            correct = int(self.plan.task.score(answer, case))
        p, c, cached = (
            (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
            if (usage)
            else (0, 0, 0)
        )
        self.store.add_call(
            (key, repeat, case.id, prefix.split("|")[2], node, agent.index, round_index, step,
             pattern, messages_json, text, answer, correct, p, c, p + c, cached, latency_ms,
             spec.backend, model, params_json, attempts, outcome, error, request_hash,
             request_id, self.invocation, now())
        )  # fmt: skip
        self._paid_unflushed |= not backend.free
        self.summary.made += 1
        self.summary.tokens += p + c
        if outcome == "error":
            self.summary.errors += 1
            if len(self.summary.error_samples) < 3:
                self.summary.error_samples.append(f"{key}: {error}")
        elif outcome == "context_exceeded":
            self.summary.context_exceeded += 1
        if self.progress:
            self.progress(True, p + c)
        return self._state(messages, text, outcome)

    @staticmethod
    def _state(messages: Messages, reply: str | None, outcome: str) -> AgentState:
        if reply is None:
            return AgentState(messages, None, outcome)
        return AgentState((*messages, {"role": "assistant", "content": reply}), reply, outcome)
