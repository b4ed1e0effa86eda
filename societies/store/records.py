"""The typed records of the run store: where a call sits (``CallKey``) and what it was.

A call is identified by its position, never by a string built from it: names may hold any
character (``|``, quotes, slashes, any script), and a key is compared field by field, in
Python and in SQL alike. ``CallKey.text`` spells a key for people (messages, logs) and for
the simulated model's seeds; nothing reads it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Step = Literal["persona", "answer", "judge", "questionnaire"]
Outcome = Literal["ok", "context_exceeded", "error", "scripted"]


@dataclass(frozen=True, slots=True)
class CallKey:
    """One call's position: repeat, case, society, tree node (prefix code), agent, step."""

    repeat: int
    case_id: str
    society: str
    node: str
    agent: int
    step: Step

    @property
    def text(self) -> str:
        """The key for people to read (and the seed text of the simulated model's draws)."""
        return f"{self.repeat}|{self.case_id}|{self.society}|{self.node}|{self.agent}|{self.step}"

    def as_dict(self) -> dict[str, object]:
        return {
            "repeat": self.repeat,
            "case_id": self.case_id,
            "society": self.society,
            "node": self.node,
            "agent": self.agent,
            "step": self.step,
        }


@dataclass(slots=True)
class CallRecord:
    """Everything stored about one model call (or one call recorded unasked). Not frozen: one
    is built per call, and a frozen dataclass's ``__init__`` (``object.__setattr__`` per
    field) cost several times as much."""

    key: CallKey
    round: int
    #: This agent's pattern in this round; ``None`` for round 0 and the role-play turn.
    pattern: str | None
    #: The call whose request and reply this call's request continues (its id, as returned
    #: by ``RunStore.add_call``); ``None`` for a first call, or a call never asked.
    parent: int | None
    #: The request's messages after the parent's reply (all of them without a parent).
    added: Sequence[Mapping[str, str]]
    reply: str | None
    answer: str | None
    correct: int | None
    prompt_tokens: int
    completion_tokens: int
    #: Usually prompt + completion; an imported record keeps the total it was billed.
    total_tokens: int
    cached_tokens: int
    latency_ms: float | None
    backend: str
    model: str
    params_json: str
    attempts: int
    outcome: Outcome
    error: str | None
    request_hash: str
    request_id: str | None
    invocation: int
    created_at: str


@dataclass(frozen=True, slots=True)
class StoredCall:
    """What resume needs of a stored call: whether the request is the same, and the reply."""

    id: int
    request_hash: str
    reply: str | None
    outcome: str


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """A stored call as a replay source sees it: what was asked (by which model), the reply."""

    key: CallKey
    #: The model the agent asked for (the stored call holds the one that answered).
    asked_model: str | None
    messages: list[dict[str, str]]
    reply: str | None
    outcome: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    model: str
    request_id: str | None


@dataclass(frozen=True, slots=True)
class TranscriptCall:
    """One call as the transcript browser shows it."""

    key: CallKey
    round: int
    pattern: str | None
    #: The messages this call added to its conversation (the new prompt; at round 0 also the
    #: persona's system message).
    added: list[dict[str, str]]
    reply: str | None
    answer: str | None
    correct: int | None
    outcome: str
    total_tokens: int


def prompt_text(messages: Sequence[Mapping[str, str]]) -> str:
    """What a call asked, as a transcript shows it: the user turns after the conversation's
    last reply, joined by blank lines (at round 0 a private briefing turn, then the question)."""
    turns: list[str] = []
    for message in messages:
        if message.get("role") == "assistant":
            turns = []
        elif message.get("role") == "user":
            turns.append(message["content"])
    return "\n\n".join(turns)
