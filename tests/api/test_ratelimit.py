"""The per-source throttle of users' reports (:class:`api.ratelimit.SourceLimiter`)."""

from __future__ import annotations

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
