"""The batched log output: INFO lines wait a little, warnings go out at once, none is lost."""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Iterator

import pytest

from api.logs import BATCH_BYTES, LINE_FORMAT, BatchedStreamHandler, log_info


class _Stream(io.StringIO):
    """A text stream that counts its writes."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, BatchedStreamHandler, _Stream]]:
    stream = _Stream()
    handler = BatchedStreamHandler(stream, flush_s=3600)  # the thread stays out of the way
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.Logger("test-batched")
    logger.addHandler(handler)
    yield logger, handler, stream
    handler.close()


def test_info_lines_wait_and_a_warning_writes_them_first_in_one_write(
    logged: tuple[logging.Logger, BatchedStreamHandler, _Stream],
) -> None:
    logger, _, stream = logged
    for i in range(3):
        logger.info("request %d", i)
    assert stream.getvalue() == ""
    logger.warning("store down")
    assert stream.getvalue() == (
        "INFO request 0\nINFO request 1\nINFO request 2\nWARNING store down\n"
    )
    assert stream.writes == 1


def test_a_full_batch_is_written_at_once_and_close_writes_the_rest(
    logged: tuple[logging.Logger, BatchedStreamHandler, _Stream],
) -> None:
    logger, handler, stream = logged
    line = "x" * 99  # 105 bytes with "INFO " and the line feed
    count = BATCH_BYTES // 105 + 3
    for _ in range(count):
        logger.info(line)
    assert stream.writes == 1
    assert stream.getvalue().count("\n") == BATCH_BYTES // 105 + 1
    handler.close()
    assert stream.getvalue().count("\n") == count


def test_pending_lines_are_written_within_the_flush_interval() -> None:
    stream = _Stream()
    handler = BatchedStreamHandler(stream, flush_s=0.05)
    logger = logging.Logger("test-batched-timer")
    logger.addHandler(handler)
    try:
        logger.info("one line")
        deadline = time.monotonic() + 10.0  # generous: the machine may be busy
        while stream.getvalue() == "" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stream.getvalue() == "one line\n"
    finally:
        handler.close()


def _service_logger(stream: _Stream) -> tuple[logging.Logger, BatchedStreamHandler]:
    """A logger tree as the service configures it: ``parent.child`` propagating to ``parent``,
    whose one handler is batched in :data:`api.logs.LINE_FORMAT`."""
    parent = logging.Logger("svc")
    handler = BatchedStreamHandler(stream, flush_s=3600)
    handler.setFormatter(logging.Formatter(LINE_FORMAT))
    parent.addHandler(handler)
    child = logging.Logger("svc.access")
    child.parent = parent
    return child, handler


def test_log_info_writes_the_line_logging_would_write() -> None:
    """The direct line equals the line of a LogRecord through the same handler and format,
    but for the milliseconds of the clock."""
    fast, slow = _Stream(), _Stream()
    logger, handler = _service_logger(fast)
    reference, reference_handler = _service_logger(slow)
    records: list[logging.LogRecord] = []
    make_record = logger.makeRecord

    def counted(*args: object, **kwargs: object) -> logging.LogRecord:
        records.append(make_record(*args, **kwargs))  # type: ignore[arg-type]
        return records[-1]

    logger.makeRecord = counted  # type: ignore[method-assign]
    log_info(logger, "GET /nearest 200 0.3ms -")
    assert records == []  # written straight into the batch
    reference.info("GET /nearest 200 0.3ms -")
    handler.close()
    reference_handler.close()
    got, expected = fast.getvalue(), slow.getvalue()
    stamp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
    assert stamp.match(got) and stamp.match(expected), (got, expected)
    assert (
        stamp.sub("", got)
        == stamp.sub("", expected)
        == "INFO svc.access: GET /nearest 200 0.3ms -\n"
    )
    # the same second, formatted as logging's Formatter does
    assert (
        got[:19] == expected[:19]
        or abs(
            time.mktime(time.strptime(got[:19], "%Y-%m-%d %H:%M:%S"))
            - time.mktime(time.strptime(expected[:19], "%Y-%m-%d %H:%M:%S"))
        )
        <= 1
    )


@pytest.mark.parametrize("change", ["filter", "second handler", "other format"])
def test_log_info_goes_through_logging_when_the_line_goes_elsewhere_too(change: str) -> None:
    """A filter, another handler or another format: the line is a LogRecord again, so the
    configuration applies (here the filter drops it; the second handler gets it too)."""
    stream, other = _Stream(), _Stream()
    logger, handler = _service_logger(stream)
    if change == "filter":
        logger.addFilter(lambda record: False)
    elif change == "second handler":
        logger.addHandler(logging.StreamHandler(other))
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s|%(message)s"))
    log_info(logger, "GET /nearest 200 0.3ms -")
    handler.close()
    if change == "filter":
        assert stream.getvalue() == ""
    elif change == "second handler":
        assert other.getvalue() == "GET /nearest 200 0.3ms -\n"
        assert stream.getvalue().endswith("INFO svc.access: GET /nearest 200 0.3ms -\n")
    else:
        assert stream.getvalue() == "INFO|GET /nearest 200 0.3ms -\n"
