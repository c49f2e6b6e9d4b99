"""The one least-recently-used cache of the project (compiled filters, KD-trees, answers, pages).

:class:`LRUCache` is thread-safe: insertions take a lock (lookups need none), values are built
outside it (two threads may build the same value once each; the later one is kept), so a slow
build never blocks readers of other keys.

Examples
--------
>>> cache: LRUCache[str, int] = LRUCache(2)
>>> cache.get_or_build("a", lambda: 1), cache.get_or_build("b", lambda: 2)
(1, 2)
>>> cache.get("a")  # "a" is now the most recently used
1
>>> cache.put("c", 3)  # evicts "b"
>>> "b" in cache, len(cache)
(False, 2)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """At most ``maxsize`` entries, and (with ``weight``) at most ``max_weight`` in total.

    Parameters
    ----------
    maxsize
        Most entries kept; the least recently used go first.
    weight, max_weight
        Optional size of a value (e.g. points in a KD-tree) and the most total size kept. The
        newest entry is always kept, even when it alone weighs more than ``max_weight``.
    """

    def __init__(
        self,
        maxsize: int,
        *,
        weight: Callable[[V], int] | None = None,
        max_weight: int | None = None,
    ) -> None:
        self.maxsize = maxsize
        self._weight = weight
        self._max_weight = max_weight
        self._total = 0
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        """The value of ``key`` (now the most recently used), or ``None``.

        Without the lock: each ``OrderedDict`` call is atomic under the GIL, and an entry evicted
        between the lookup and the move is simply not moved.
        """
        entries = self._entries
        value = entries.get(key)
        if value is not None:
            # Not contextlib.suppress: it costs 0.3 µs per call, and every query looks up a few
            # caches; a try block costs nothing unless it raises.
            try:  # noqa: SIM105
                entries.move_to_end(key)
            except KeyError:
                pass
        return value

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` under ``key`` and evict the least recently used beyond the limits."""
        weigh = self._weight
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None and weigh is not None:
                self._total -= weigh(old)
            self._entries[key] = value
            if weigh is not None:
                self._total += weigh(value)
            while len(self._entries) > 1 and (
                len(self._entries) > self.maxsize
                or (self._max_weight is not None and self._total > self._max_weight)
            ):
                _key, evicted = self._entries.popitem(last=False)
                if weigh is not None:
                    self._total -= weigh(evicted)

    def get_or_build(self, key: K, build: Callable[[], V]) -> V:
        """The value of ``key``, built (outside the lock) and kept when missing."""
        value = self.get(key)
        if value is None:
            value = build()
            self.put(key, value)
        return value
