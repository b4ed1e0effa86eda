"""Data the project makes itself, so that nothing has to be downloaded: seeded and
deterministic (the same arguments give the same bytes on every machine)."""

from __future__ import annotations

from collections.abc import Callable
from random import Random

from societies.tasks.chess import generate_games
from societies.tasks.reversal import generate_reversal
from societies.tasks.rows import Row


def generate_arithmetic(n: int, seed: int, high: int = 30) -> list[Row]:
    """Du et al.'s debate arithmetic: ``a+b*c+d-e*f`` with operands drawn from [0, high)."""
    rng = Random(seed)
    rows: list[Row] = []
    for i in range(n):
        a, b, c, d, e, f = (rng.randrange(high) for _ in range(6))
        rows.append(
            {
                "id": f"arith-{i}",
                "question": f"What is the result of {a}+{b}*{c}+{d}-{e}*{f}?",
                "answer": str(a + b * c + d - e * f),
            }
        )
    return rows


#: Generator name -> (function(n, seed), the task its rows are for).
GENERATORS: dict[str, tuple[Callable[[int, int], list[Row]], str]] = {
    "chess": (generate_games, "chess"),
    "arithmetic": (generate_arithmetic, "gsm8k"),
    "reversal": (generate_reversal, "reversal"),
}
