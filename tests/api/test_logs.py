"""The batched log output: INFO lines wait a little, warnings go out at once, none is lost."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator

import pytest

from api.logs import BATCH_BYTES, BatchedStreamHandler


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
