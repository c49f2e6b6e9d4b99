"""The service's log output: one write per batch of lines instead of one per request.

Every request writes one access-log line (:func:`api.middleware.log_access`); writing and
flushing each line on its own costs a system call per request, a good part of a ``/nearest``
answer's time. :class:`BatchedStreamHandler` keeps INFO and DEBUG lines for at most
:data:`FLUSH_S` (or until :data:`BATCH_BYTES` are pending) and writes them together, as nginx's
``access_log ... buffer= flush=`` does; a WARNING or worse is written at once, after the lines
before it, so the order of the lines is kept and errors are never delayed. The lines pending at
exit are written by :func:`logging.shutdown`.
"""

from __future__ import annotations

import logging
import threading
from typing import TextIO

#: Longest time an INFO line waits before it is written, seconds.
FLUSH_S = 0.5
#: Pending bytes (about) that are written at once: one write below the pipe's atomic size, so
#: the batches of several workers sharing one pipe do not interleave within a line.
BATCH_BYTES = 3_500


class BatchedStreamHandler(logging.StreamHandler[TextIO]):
    """A :class:`logging.StreamHandler` that writes lines in batches (see the module docstring).

    Parameters
    ----------
    stream
        Where the lines go (default ``sys.stderr``).
    flush_s
        Longest wait of a line below WARNING, seconds.
    """

    def __init__(self, stream: TextIO | None = None, *, flush_s: float = FLUSH_S) -> None:
        super().__init__(stream)
        self.flush_s = flush_s
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._stop = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_regularly, daemon=True, name="log-flush"
        )
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
        """Add the record's line to the batch; write the batch when it is full or the record
        is a warning or worse (called with the handler's lock held)."""
        try:
            line = self.format(record) + self.terminator
            self._pending.append(line)
            self._pending_bytes += len(line)
            if record.levelno >= logging.WARNING or self._pending_bytes >= BATCH_BYTES:
                self._write_pending()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _write_pending(self) -> None:
        if self._pending:
            lines, self._pending, self._pending_bytes = self._pending, [], 0
            self.stream.write("".join(lines))
        super().flush()

    def flush(self) -> None:
        """Write the pending lines and flush the stream."""
        self.acquire()
        try:
            self._write_pending()
        finally:
            self.release()

    def _flush_regularly(self) -> None:
        while not self._stop.wait(self.flush_s):
            try:
                self.flush()
            except Exception:  # a closed stream: nothing more to write
                return

    def close(self) -> None:
        """Write the pending lines and stop the flushing thread."""
        self._stop.set()
        self.flush()
        super().close()
