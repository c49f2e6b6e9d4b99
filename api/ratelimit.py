"""Throttling per source: a token bucket per source (a client address, a device), in bounded
memory, shared by the workers of one machine.

Each source may spend ``burst`` requests at once and regains ``per_hour`` of them an hour. The
buckets are a fixed table of ``max_sources`` slots (24 bytes each) in a memory-mapped file:
every worker process of the service maps the same file (:func:`throttle_file`) and takes a
source's tokens under a file lock, so ``n`` workers give a source the allowance once, not ``n``
times. Without a file (tests) the table lives in this process's memory.

A source's slot is found by a 64-bit hash of its name among :data:`PROBE` neighbouring slots;
when all of them are taken by other sources, the least recently used of them is dropped: a flood
from many sources costs bounded memory (a dropped source starts again with a full bucket, which
only helps the flood as much as a fresh source would). Times are ``time.monotonic()``, one clock
for every process of the machine; a slot stamped after "now" (written before a reboot) counts as
a full bucket.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import math
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

#: Neighbouring slots searched for a source (its own, a free one or the one to drop).
PROBE = 8
_HEADER = struct.Struct("<8sQ")  # magic, slot count
_MAGIC = b"FTHROT01"
_SLOT = struct.Struct("<Qdd")  # source hash (0: free), tokens, last take (monotonic s)


def throttle_file(table_dir: Path, store_identity: str, name: str) -> Path:
    """The bucket file of one throttle (``name``: ``reports``, ``devices``) of one store: in
    the directory every worker process of the service maps its facility tables from
    (``FINDER_TABLE_DIR``), named by a digest of the store's identity so that services of other
    stores on the machine keep their own."""
    digest = hashlib.sha256(store_identity.encode()).hexdigest()[:16]
    return table_dir / f"throttle-{name}-{digest}.bin"


class SourceLimiter:
    """Token buckets by source, safe across threads and (with ``path``) processes.

    Parameters
    ----------
    per_hour
        Requests a source regains per hour (refilled continuously).
    burst
        Requests a source may make at once (the bucket's size); default ``per_hour``.
    max_sources
        Buckets kept at most (least recently used of a neighbourhood dropped).
    path
        The shared bucket file (made when missing); ``None``, or a file that cannot be
        mapped (logged as a warning): this process's memory only.
        Every user of one file must give the same ``max_sources`` (a file of another size is
        started afresh).
    clock
        Monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        per_hour: float,
        *,
        burst: int | None = None,
        max_sources: int = 10_000,
        path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_s = per_hour / 3600.0
        self.burst = float(burst if burst is not None else max(1, math.ceil(per_hour)))
        self.max_sources = max_sources
        self._clock = clock
        self._lock = threading.Lock()
        size = _HEADER.size + _SLOT.size * max_sources
        self._fd: int | None = None
        if path is not None:
            try:
                self._map = self._shared(path, size)
                return
            except OSError:
                logger.warning(
                    "cannot map the throttle file %s: each worker keeps its own buckets",
                    path,
                    exc_info=True,
                )
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
        self._map = mmap.mmap(-1, size)
        _HEADER.pack_into(self._map, 0, _MAGIC, max_sources)

    def _shared(self, path: Path, size: int) -> mmap.mmap:
        """The table in ``path``, made (or started afresh) when missing or of another size."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        with _FileLock(self._fd):
            if os.fstat(self._fd).st_size != size:
                os.ftruncate(self._fd, 0)
                os.ftruncate(self._fd, size)
            table = mmap.mmap(self._fd, size)
            if _HEADER.unpack_from(table, 0) != (_MAGIC, self.max_sources):
                table[:] = bytes(size)
                _HEADER.pack_into(table, 0, _MAGIC, self.max_sources)
        return table

    def close(self) -> None:
        """Unmap the table and close the file."""
        self._map.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __len__(self) -> int:
        """Sources holding a bucket now."""
        with self._lock, _FileLock(self._fd):
            return sum(
                1
                for i in range(self.max_sources)
                if _SLOT.unpack_from(self._map, _HEADER.size + i * _SLOT.size)[0]
            )

    def take(self, source: str) -> float:
        """Spend one request of ``source``: 0 when allowed, else the seconds until it would be."""
        key = int.from_bytes(hashlib.blake2b(source.encode(), digest_size=8).digest()) or 1
        home = key % self.max_sources
        with self._lock, _FileLock(self._fd):
            now = self._clock()
            at, tokens, since = self._slot(key, home)
            if since is None or since > now:  # a new source, or stamped before a reboot
                tokens, since = self.burst, now
            tokens = min(self.burst, tokens + (now - since) * self.rate_s)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate_s if self.rate_s > 0 else math.inf
            _SLOT.pack_into(self._map, at, key, tokens, now)
        return wait

    def _slot(self, key: int, home: int) -> tuple[int, float, float | None]:
        """Offset, tokens and last take of the source's slot among the :data:`PROBE` slots
        from ``home``; for a source without one, the first free slot, else the least recently
        used (last take ``None``). Slots are never freed, so a source's slot comes before any
        free one."""
        oldest: tuple[float, int] | None = None
        for i in range(min(PROBE, self.max_sources)):
            at = _HEADER.size + ((home + i) % self.max_sources) * _SLOT.size
            held, tokens, since = _SLOT.unpack_from(self._map, at)
            if held == key:
                return at, tokens, since
            if held == 0:
                return at, 0.0, None
            if oldest is None or since < oldest[0]:
                oldest = (since, at)
        assert oldest is not None  # max_sources >= 1
        return oldest[1], 0.0, None


class _FileLock:
    """An exclusive ``flock`` of a file while the block runs (nothing without a file)."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def __enter__(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
