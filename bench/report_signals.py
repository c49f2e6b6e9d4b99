"""Benchmark what one worker's look at the users' reports costs every second, when nothing
changed: reading the reports change counter (ours) beside re-reading the last 24 hours of
reports and working the signals out again (the reference: what every worker did before).

One command::

    python bench/report_signals.py            # 20,000 reports in the last 24 hours
    python bench/report_signals.py --quick    # 2,000
    python bench/report_signals.py --database-url postgresql://...   # also an empty PostGIS db

Fills a GeoPackage store (and, with ``--database-url``, a PostGIS store in that database, which
must be empty or hold a facility store) with reports from distinct sources spread over the last
day, builds :class:`api.live.LiveDoors` on it and times ``refresh_signals()`` (the poller's look)
with no change, beside the reference read. Prints the median time of each and the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from api.live import LiveDoors  # noqa: E402
from finder.reports import REPORT_WINDOW, active_signals  # noqa: E402
from geodata.events import event_log  # noqa: E402
from geodata.store import FacilityStore, GeoPackageStore  # noqa: E402


def _fill(store: FacilityStore, n: int) -> None:
    for i in range(n):
        store.add_report(
            f"f{i % 500}",
            "locked_during_hours" if i % 3 else "moved",
            note=None,
            source=f"s{i}",
            token_hash="h",
        )


def _median_ms(run: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _measure(name: str, store: FacilityStore, rounds: int) -> None:
    doors = LiveDoors(event_log(store), reports=store)

    def reference() -> object:
        now = dt.datetime.now(dt.UTC)
        return active_signals(store.reports(since=now - REPORT_WINDOW, limit=None), now)

    ours = _median_ms(doors.refresh_signals, rounds)
    ref = _median_ms(reference, rounds)
    print(
        f"{name:8s} ours (counter, no change) {ours:8.3f} ms   "
        f"reference (re-read 24 h) {ref:8.3f} ms   ratio {ref / ours:8.1f}x"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 reports")
    parser.add_argument("--database-url", help="also measure a PostGIS store in this database")
    args = parser.parse_args(argv)
    n = 2_000 if args.quick else 20_000
    rounds = 20 if args.quick else 50
    print(f"{n:,} reports in the last 24 hours; median of {rounds} looks")
    with tempfile.TemporaryDirectory() as tmp:
        gpkg = GeoPackageStore(Path(tmp) / "store.gpkg")
        try:
            _fill(gpkg, n)
            _measure("gpkg", gpkg, rounds)
        finally:
            gpkg.close()
    if args.database_url:
        from geodata.postgis import PostGISStore

        pg = PostGISStore(args.database_url)
        try:
            _fill(pg, n)
            _measure("postgis", pg, rounds)
        finally:
            pg.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
