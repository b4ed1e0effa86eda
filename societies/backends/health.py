"""How long to wait for a server, and when to stop waiting for it at all.

Two rules keep a run against an unhealthy server from hanging for minutes:

- **Attempt timeout that follows the server.** A fixed 120 s timeout made 5% hung requests
  cost a run 121x its time. Until ``MIN_SAMPLES`` calls have answered, an attempt may take the
  configured ``timeout`` (the ceiling). From then on it may take ``FACTOR`` x the 95th
  percentile of the last ``WINDOW`` answer times (at least ``FLOOR`` seconds), doubling with
  each retry of the same call (``GROWTH``), never above the ceiling. Attempts already in flight
  when the first estimate arrives are shortened to it too, so hangs in the first wave of calls
  are not waited out at the ceiling either. A slow but alive server is not cut short: its
  slowness raises the percentile, and each retry waits twice as long.
- **Circuit breaker.** When every attempt has failed to connect (refused, reset, unreachable)
  for ``down_after`` seconds with no answer in between, the server is down: the backend
  refuses every further attempt at once and wakes calls sleeping in back-off, so the run
  stops within seconds, resumable, instead of retrying each call for minutes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from societies.backends.base import PermanentModelError

log = logging.getLogger(__name__)

MIN_SAMPLES = 20
WINDOW = 200
FACTOR = 8.0
FLOOR = 1.0
GROWTH = 2.0
#: Connection failures (at least) before the breaker may trip, however long they took.
MIN_FAILURES = 3


class AttemptTimeout:
    """The deadline of each attempt, adapted to the answer times seen (see the module doc)."""

    def __init__(self, ceiling: float, *, adaptive: bool = True) -> None:
        self.ceiling = ceiling
        self.adaptive = adaptive
        self._times: deque[float] = deque(maxlen=WINDOW)
        self._base = ceiling
        self._seen = 0
        self._active: set[tuple[float, int, asyncio.Timeout]] = set()

    def limit(self, attempt: int) -> float:
        """Seconds attempt number ``attempt`` (1 = the first) may take."""
        return min(self.ceiling, self._base * GROWTH ** (attempt - 1))

    def observe(self, seconds: float) -> None:
        """An answer arrived after ``seconds``."""
        self._times.append(seconds)
        self._seen += 1
        if not self.adaptive or len(self._times) < MIN_SAMPLES:
            return
        if self._seen % 10 and len(self._times) != MIN_SAMPLES:
            return  # re-estimated every 10 answers
        ordered = sorted(self._times)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        base = min(self.ceiling, max(FLOOR, FACTOR * p95))
        if base != self._base:
            log.debug("attempt timeout now %.1f s (p95 of answers %.3f s)", base, p95)
        self._base = base
        for started, attempt, timer in list(self._active):
            when = started + self.limit(attempt)
            current = timer.when()
            if current is None or when < current:
                timer.reschedule(when)

    @asynccontextmanager
    async def attempt(self, number: int) -> AsyncIterator[float]:
        """Run one attempt under its deadline; yields the limit. Raises TimeoutError."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        limit = self.limit(number)
        async with asyncio.timeout_at(started + limit) as timer:
            entry = (started, number, timer)
            self._active.add(entry)
            try:
                yield limit
            finally:
                self._active.discard(entry)


class CircuitBreaker:
    """Trips after ``down_after`` seconds in which every attempt failed to connect."""

    def __init__(self, where: str, down_after: float) -> None:
        self.where = where
        self.down_after = down_after
        self._since: float | None = None
        self._failures = 0
        self._tripped = asyncio.Event()

    def answered(self) -> None:
        """Any HTTP response, even an error, shows the server is up."""
        self._since = None
        self._failures = 0

    def failed_to_connect(self) -> None:
        if self._since is None:
            self._since = time.monotonic()
        self._failures += 1
        self.check()

    def _down_for(self) -> float:
        return 0.0 if self._since is None else time.monotonic() - self._since

    def check(self) -> None:
        """Raise PermanentModelError if the server is down (and wake sleeping calls)."""
        if self._tripped.is_set() or (
            self._failures >= MIN_FAILURES and self._down_for() >= self.down_after
        ):
            if not self._tripped.is_set():
                log.info(
                    "circuit breaker: %s refused %d attempts in %.1f s; stopping the run",
                    self.where, self._failures, self._down_for(),
                )  # fmt: skip
                self._tripped.set()
            raise PermanentModelError(
                f"{self.where}: the server is down (no connection on {self._failures} attempts "
                f"over {self.down_after:g} s); stored calls are kept, re-run to resume when it "
                "is back"
            )

    async def sleep(self, seconds: float) -> None:
        """A back-off sleep that ends early when the breaker trips or may trip."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            wake = remaining
            if self._since is not None and self._failures >= MIN_FAILURES:
                wake = min(wake, max(0.01, self._since + self.down_after - time.monotonic()))
            with suppress(TimeoutError):
                await asyncio.wait_for(self._tripped.wait(), wake)
            self.check()
