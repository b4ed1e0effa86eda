"""Who sees whom: a society's communication topology, resolved to neighbour lists.

A debating agent sees the latest replies of its neighbours that debated in the same round, in
index order. ``full`` (every other agent) is the study's design and the default; it keeps
the exact peer order of the reference prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from societies.config.collab import Neighbours, OneTopology, PerRound, Star, Topology

#: Per agent, the indices of the agents it sees (sorted); ``None`` is ``full``.
Links = tuple[tuple[int, ...], ...] | None


class TopologyError(ValueError):
    """A topology that does not fit the society; ``path`` is the field under ``topology``."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class CommGraph:
    """Neighbour lists per round (round 1 first; the last holds for later rounds)."""

    rounds: tuple[Links, ...] = (None,)

    def neighbours(self, round_index: int, agent: int, n_agents: int) -> Sequence[int]:
        links = self.rounds[min(round_index, len(self.rounds)) - 1]
        if links is None:
            return [j for j in range(n_agents) if j != agent]
        return links[agent]

    @property
    def is_full(self) -> bool:
        return all(links is None for links in self.rounds)


FULL = CommGraph()


def _links(spec: OneTopology, n: int, path: tuple[str | int, ...]) -> Links:
    if spec == "full":
        return None
    if spec == "none":
        return tuple(() for _ in range(n))
    if spec == "ring":
        return tuple(tuple(sorted({(i - 1) % n, (i + 1) % n} - {i})) for i in range(n))
    if isinstance(spec, Star):
        c = spec.star
        if c >= n:
            raise TopologyError((*path, "star"), f"centre {c} is out of range (agents 0..{n - 1})")
        return tuple(tuple(j for j in range(n) if j != i) if i == c else (c,) for i in range(n))
    if isinstance(spec, Neighbours):
        lists = spec.neighbours
        if len(lists) != n:
            raise TopologyError(
                (*path, "neighbours"), f"gives {len(lists)} lists, the society has {n} agents"
            )
        out = []
        for i, items in enumerate(lists):
            for k, j in enumerate(items):
                if not 0 <= j < n:
                    raise TopologyError(
                        (*path, "neighbours", i, k),
                        f"neighbour {j} is out of range (agents 0..{n - 1})",
                    )
                if j == i:
                    raise TopologyError(
                        (*path, "neighbours", i, k), f"agent {i} cannot be its own neighbour"
                    )
            out.append(tuple(sorted(set(items))))
        return tuple(out)
    raise TopologyError(path, f"unknown topology {spec!r}")  # pragma: no cover (schema)


def resolve_topology(spec: Topology, n_agents: int) -> CommGraph:
    """The society's neighbour lists; raises ``TopologyError`` naming the offending field."""
    if isinstance(spec, PerRound):
        return CommGraph(
            tuple(_links(s, n_agents, ("rounds", r)) for r, s in enumerate(spec.rounds))
        )
    links = _links(spec, n_agents, ())
    return FULL if links is None else CommGraph((links,))
