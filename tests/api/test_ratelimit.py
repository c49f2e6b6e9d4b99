"""The per-source throttle of reports and device events (:class:`api.ratelimit.SourceLimiter`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.ratelimit import SourceLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_source_spends_its_burst_then_waits_for_the_refill() -> None:
    clock = Clock()
    limiter = SourceLimiter(6, clock=clock)
    assert [limiter.take("a") for _ in range(6)] == [0.0] * 6
    wait = limiter.take("a")
    assert wait == 600.0  # one report regained every 10 minutes
    assert limiter.take("b") == 0.0  # other sources are not held up
    clock.now += 600.0
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0


def test_memory_stays_bounded_under_a_flood_of_sources() -> None:
    limiter = SourceLimiter(6, max_sources=100, clock=Clock())
    for i in range(10_000):
        limiter.take(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 100
    # the most recent sources keep their (spent) buckets
    assert limiter.take("10.0.39.15") == 0.0


def test_limiters_on_one_file_share_each_sources_bucket(tmp_path: Path) -> None:
    """Two workers map the same file: a source gets its allowance once, not once per worker."""
    clock = Clock()
    path = tmp_path / "throttle.bin"
    first = SourceLimiter(6, path=path, clock=clock)
    second = SourceLimiter(6, path=path, clock=clock)
    try:
        taken = [(first if i % 2 else second).take("a") for i in range(8)]
        assert taken[:6] == [0.0] * 6
        assert min(taken[6:]) > 0
        assert second.take("b") == 0.0
        clock.now += 600.0
        assert first.take("a") == 0.0
        assert second.take("a") > 0
    finally:
        first.close()
        second.close()


def test_a_file_of_another_size_starts_afresh_and_a_later_stamp_counts_as_full(
    tmp_path: Path,
) -> None:
    clock = Clock()
    path = tmp_path / "throttle.bin"
    small = SourceLimiter(1, max_sources=10, path=path, clock=clock)
    assert [small.take("a"), small.take("a")] == [0.0, 3600.0]
    small.close()
    larger = SourceLimiter(1, max_sources=20, path=path, clock=clock)
    assert larger.take("a") == 0.0  # another table: every bucket full again
    clock.now = -100.0  # the machine restarted: its monotonic clock began again
    assert larger.take("a") == 0.0
    assert larger.take("a") == 3600.0
    larger.close()


def test_a_file_that_cannot_be_mapped_leaves_each_worker_its_own_buckets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "not-a-directory").write_text("")
    limiter = SourceLimiter(1, path=tmp_path / "not-a-directory" / "throttle.bin", clock=Clock())
    assert [limiter.take("a"), limiter.take("a")] == [0.0, 3600.0]
    assert "cannot map the throttle file" in caplog.text
    limiter.close()
