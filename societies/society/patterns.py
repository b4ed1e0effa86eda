"""Thinking patterns: what an agent is asked to do in a round after its first answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pattern:
    name: str
    #: One character used in strategy strings ("010").
    code: str
    #: Debate-like patterns show the agent the latest replies of the other agents that use a
    #: peer-seeing pattern in the same round (the study's Figure 5 setting).
    sees_peers: bool
    template: str | None = None


#: The study's patterns; strategy digit 0 = debate, 1 = reflection.
BUILTIN_PATTERNS: dict[str, Pattern] = {
    "debate": Pattern("debate", "0", sees_peers=True),
    "reflection": Pattern("reflection", "1", sees_peers=False),
}


#: The paper's pause token, added to a local model's tokenizer when it lacks one.
PAUSE_TOKEN = "<pause>"
#: The generation parameter that carries M to a backend that appends its own pause tokens
#: (``ModelBackend.native_pause``: the transformers backend).
PAUSE_PARAM = "pause_tokens"

_FILLER_SEPARATOR = "\n\n"
#: How every message with a filler ends (M = 1, M > 1): a cheap test that most messages fail.
FILLER_ENDS = ("\n\n.", " .")


@dataclass(frozen=True, slots=True)
class Pause:
    """The pause pattern ("Think before you speak: Training Language Models With Pause
    Tokens", Goyal et al., ICLR 2024): M pause tokens between the prompt and every reply of
    the agent (the role-play turn included: the pause belongs to the agent's model, not to a
    step), delaying the reply by M token positions of extra computation.

    A backend with a pause token of its own (``native_pause``) receives M as the generation
    parameter ``pause_tokens`` and appends M copies of ``<pause>`` after the prompt's token
    ids, exactly the paper's inference-time delay; the messages are untouched. Any other
    backend (an API cannot take token ids after the assistant's turn has begun) gets the
    approximation ``filler``: M periods, space-separated, on a last line of the call's last
    user message (which then stays in the conversation, as every message does). Periods
    rather than the string "<pause>": a period carries no instruction a chat model could
    answer or comment on, it is the filler token of the filler-token studies (Pfau et al.
    2024, "Let's Think Dot by Dot"), and spaced periods keep BPE tokenizers from merging them
    into "..." tokens, so M fillers are about M tokens, where "<pause>" would be several
    tokens each. Either way the pause is part of the request, so of its hash and of what is
    stored."""

    tokens: int
    #: ``True``: M filler periods in the messages; ``False``: the backend's own pause tokens.
    filler: bool

    def delay(self, added: tuple[Mapping[str, str], ...]) -> tuple[Mapping[str, str], ...]:
        """A call's new messages with the filler after its last user message."""
        users = [i for i, m in enumerate(added) if m["role"] == "user"]
        if not self.filler or not self.tokens or not users:
            return added
        last = users[-1]
        delayed = {**added[last], "content": added[last]["content"] + pause_filler(self.tokens)}
        return (*added[:last], delayed, *added[last + 1 :])


def pause_filler(tokens: int) -> str:
    """M filler tokens as appended to a user message (see ``Pause``)."""
    return _FILLER_SEPARATOR + " ".join("." * tokens) if tokens else ""


def split_filler(content: str) -> tuple[str, int]:
    """A user message's text without its pause filler, and M (0 without one)."""
    if not content.endswith(FILLER_ENDS):  # the common case, answered at once
        return content, 0
    head, sep, tail = content.rpartition(_FILLER_SEPARATOR)
    if not sep or not tail or tail != " ".join("." * ((len(tail) + 1) // 2)):
        return content, 0
    return head, (len(tail) + 1) // 2
