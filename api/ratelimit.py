"""Throttling per source: a token bucket per client address, in bounded memory.

Each source (the client's IP address) may spend ``burst`` requests at once and regains
``per_hour`` of them an hour. At most ``max_sources`` buckets are kept, least recently used
dropped first: a flood from many addresses costs bounded memory (the dropped sources start
again with a full bucket, which only helps the flood as much as a fresh address would). The
buckets live in one worker's memory; with ``n`` workers a source may make up to ``n`` times as
many requests (the durable rule of :mod:`finder.reports` counts each source once anyway).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class SourceLimiter:
    """Token buckets by source, thread-safe.

    Parameters
    ----------
    per_hour
        Requests a source regains per hour (refilled continuously).
    burst
        Requests a source may make at once (the bucket's size); default ``per_hour``.
    max_sources
        Buckets kept at most (least recently used dropped).
    clock
        Monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        per_hour: float,
        *,
        burst: int | None = None,
        max_sources: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_s = per_hour / 3600.0
        self.burst = float(burst if burst is not None else max(1, math.ceil(per_hour)))
        self.max_sources = max_sources
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, source: str) -> float:
        """Spend one request of ``source``: 0 when allowed, else the seconds until it would be."""
        now = self._clock()
        with self._lock:
            tokens, since = self._buckets.pop(source, (self.burst, now))
            tokens = min(self.burst, tokens + (now - since) * self.rate_s)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate_s if self.rate_s > 0 else math.inf
            self._buckets[source] = (tokens, now)
            while len(self._buckets) > self.max_sources:
                self._buckets.popitem(last=False)
        return wait
