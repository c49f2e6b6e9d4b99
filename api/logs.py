"""The service's log output: one write per batch of lines instead of one per request.

Every request writes one access-log line (:func:`api.middleware.log_access`); writing and
flushing each line on its own costs a system call per request, a good part of a ``/nearest``
answer's time. :class:`BatchedStreamHandler` keeps INFO and DEBUG lines for at most
:data:`FLUSH_S` (or until :data:`BATCH_BYTES` are pending) and writes them together, as nginx's
``access_log ... buffer= flush=`` does; a WARNING or worse is written at once, after the lines
before it, so the order of the lines is kept and errors are never delayed. The lines pending at
exit are written by :func:`logging.shutdown`.

:func:`log_info` writes an INFO line (the access log's) straight into that handler's batch when
the handler is the only place the line goes, in the same format, skipping the
:class:`logging.LogRecord` and the :class:`logging.Formatter` (about 7 us of a ``/nearest``
answer of 200); any other configuration gets the line through :mod:`logging` as usual.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TextIO

#: Longest time an INFO line waits before it is written, seconds.
FLUSH_S = 0.5
#: Pending bytes (about) that are written at once: one write below the pipe's atomic size, so
#: the batches of several workers sharing one pipe do not interleave within a line.
BATCH_BYTES = 3_500
#: The format of the service's log lines (:func:`api.app.create_app` configures it).
LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
            self._add(self.format(record), record.levelno)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def add_line(self, line: str) -> None:
        """Add an INFO line, already formatted, to the batch (:func:`log_info`)."""
        self.acquire()
        try:
            self._add(line, logging.INFO)
        finally:
            self.release()

    def _add(self, line: str, level: int) -> None:
        line += self.terminator
        self._pending.append(line)
        self._pending_bytes += len(line)
        if level >= logging.WARNING or self._pending_bytes >= BATCH_BYTES:
            self._write_pending()

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


def log_info(logger: logging.Logger, message: str) -> None:
    """Log ``message`` at INFO on ``logger`` (which the caller found enabled for INFO).

    When the line goes to one :class:`BatchedStreamHandler` in :data:`LINE_FORMAT` and nowhere
    else (no filters, no other handler on the way), it is formatted here and added to that
    handler's batch, exactly as the handler would have written it; otherwise it goes through
    :mod:`logging`.
    """
    handler = _sole_handler(logger)
    if handler is None:
        logger.info("%s", message)
    else:
        handler.add_line(f"{_asctime(time.time())} INFO {logger.name}: {message}")


def _sole_handler(logger: logging.Logger) -> BatchedStreamHandler | None:
    """The one handler ``logger``'s INFO records reach, when it is a plain
    :class:`BatchedStreamHandler` in :data:`LINE_FORMAT`; else None."""
    found: BatchedStreamHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            formatter = handler.formatter
            if (
                found is not None
                or type(handler) is not BatchedStreamHandler
                or handler.filters
                or handler.level > logging.INFO
                or type(formatter) is not logging.Formatter
                or formatter._fmt != LINE_FORMAT
                or formatter.datefmt is not None
            ):
                return None
            found = handler
        current = current.parent if current.propagate else None
    return found


_second: tuple[int, str] = (-1, "")


def _asctime(now: float) -> str:
    """``now`` as :class:`logging.Formatter` writes ``%(asctime)s`` by default (local time,
    milliseconds after a comma); the seconds part is formatted once a second."""
    global _second
    second = int(now)
    if _second[0] != second:
        _second = (
            second,
            time.strftime(logging.Formatter.default_time_format, time.localtime(second)),
        )
    return f"{_second[1]},{int((now - second) * 1000):03d}"
