"""Answer-extraction throughput on hostile and ordinary replies (a benchmark, not a test).

Prints, per parser, the time to read 1 MB and 4 MB of each hostile input and the ratio of the
two: a linear parser shows about 4x, a quadratic one about 16x. Also the rate on ordinary
replies (the test corpora), in replies per second.

    python bench/parsers.py
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import corpus_chess, corpus_math, corpus_mmlu, corpus_numeric
from tests.test_extraction_hostile import PARSERS, _hostile


def _time(fn: Callable[[str], object], text: str, runs: int = 3) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn(text)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    small, large = _hostile(1_000_000), _hostile(4_000_000)
    print(f"{'parser':<14} {'worst input (1 MB)':<28} {'1 MB s':>8} {'4 MB s':>8} {'ratio':>6}")
    for name, parse in PARSERS.items():
        worst = max(small, key=lambda k: _time(parse, small[k], 1))
        t1, t4 = _time(parse, small[worst]), _time(parse, large[worst])
        print(f"{name:<14} {worst:<28} {t1:8.3f} {t4:8.3f} {t4 / max(t1, 1e-9):6.1f}")
    replies = [e[1] for e in corpus_mmlu.CORPUS] + [e[0] for e in corpus_math.CORPUS]
    replies += [e[0] for e in corpus_chess.CORPUS] + [e[0] for e in corpus_numeric.CORPUS]
    for name, parse in PARSERS.items():
        started = time.perf_counter()
        for _ in range(20):
            for reply in replies:
                parse(reply)
        rate = 20 * len(replies) / (time.perf_counter() - started)
        print(f"{name:<14} ordinary replies: {rate:,.0f} per second")


if __name__ == "__main__":
    main()
