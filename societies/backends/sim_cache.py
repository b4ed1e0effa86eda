"""serve-sim's model of one replica's KV prefix cache (vLLM automatic prefix caching, SGLang
RadixAttention), so that routing over several replicas can be measured.

The cache holds conversation prefixes at message boundaries: a request reuses the longest
prefix of its messages that the replica has seen, either as an earlier prompt or as an
earlier prompt followed by the reply it was given (which is how the next turn of an
append-only conversation begins). What is reused is reported as ``cached_tokens`` and skips
its share of the prefill latency. Entries are evicted least recently used first once the
cached tokens exceed the capacity.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

from societies.backends.base import ChatMessage, estimate_tokens


def _chain(model: str, messages: Sequence[ChatMessage]) -> list[tuple[bytes, int]]:
    """Per message: the hash of the prefix that ends with it, and the message's tokens (the
    same count as ``estimate_prompt_tokens``: its content plus 3)."""
    digest = hashlib.blake2b(model.encode(), digest_size=16)
    out = []
    for message in messages:
        digest.update(b"\x00" + message["role"].encode() + b"\x00" + message["content"].encode())
        out.append((digest.copy().digest(), 3 + estimate_tokens(message["content"])))
    return out


class PrefixCache:
    """One replica's cache; ``capacity`` in tokens."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self._entries: OrderedDict[bytes, int] = OrderedDict()

    def lookup(self, model: str, messages: Sequence[ChatMessage]) -> int:
        """Tokens of the longest cached prefix of the prompt (refreshed as recently used)."""
        cached, hits = 0, []
        for key, tokens in _chain(model, messages):
            if key not in self._entries:
                break
            hits.append(key)
            cached += tokens
        self._touch(hits)
        return cached

    def store(self, model: str, messages: Sequence[ChatMessage], reply: str) -> None:
        """Remember the prompt and the prompt followed by its reply."""
        chain = _chain(model, [*messages, {"role": "assistant", "content": reply}])
        for key, tokens in chain:
            if key not in self._entries:
                self._entries[key] = tokens
                self.size += tokens
        self._touch([key for key, _ in chain])
        while self.size > self.capacity and self._entries:
            _, tokens = self._entries.popitem(last=False)
            self.size -= tokens

    def _touch(self, keys: list[bytes]) -> None:
        """Mark as recently used, shortest prefix last: a prefix outlives its extensions."""
        for key in reversed(keys):
            self._entries.move_to_end(key)
