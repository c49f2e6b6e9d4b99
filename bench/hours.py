"""Benchmark: "open now" for 1,000,000 facilities sharing ~50 distinct opening_hours expressions.

Prints the time of the index's "open at" filter (``FacilityIndex.mask`` of a
``FacilityFilter(open_at=...)``: each distinct expression evaluated once, then indexed) beside the
time of calling :func:`finder.hours.state_at` once per facility (parsed expressions cached, as a
per-row loop would do), measured in the same run, as a ratio. The
moment is the morning of a make-up working Sunday (2025-09-28 10:00), so the calendar logic runs.

    python bench/hours.py            # 1,000,000 facilities
    python bench/hours.py --quick    # 20,000 facilities
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import datetime

import numpy as np

from finder.hours import HolidayCalendar, OpenState, state_at
from finder.index import FacilityFilter, FacilityIndex
from geodata.schema import KINDS, STATUSES, Viewer

EVERYONE = Viewer(see_all=True)


def expressions() -> list[str | None]:
    """~50 distinct expressions of the kinds facility lists hold, plus unknown hours."""
    out: list[str | None] = ["24/7", "Mo-Su 00:00-24:00"]
    for start, end in (
        ("08:00", "17:00"),
        ("08:30", "17:30"),
        ("09:00", "18:00"),
        ("07:30", "16:30"),
    ):
        out += [
            f"Mo-Fr {start}-{end}; PH off",
            f"Mo-Fr {start}-{end}",
            f"Mo-Sa {start}-{end}; Su,PH off",
            f"Mo-Fr {start}-12:00,13:30-{end}; PH off",
            f"Mo-Fr {start}-{end}; Sa {start}-12:00; PH off",
            f"Mo-Su {start}-{end}",
            f"Mo-Su {start}-{end}; PH 10:00-16:00",
            f"Mar-Nov Mo-Fr {start}-{end}; Dec-Feb Mo-Fr 09:00-17:00; PH off",
        ]
    for start, end in (("20:00", "02:00"), ("22:00", "06:00"), ("18:00", "24:00")):
        out += [f"Mo-Su {start}-{end}", f"Mo-Fr {start}-{end}; PH off", f"Fr-Sa {start}-{end}"]
    out += [
        "Sa,Su,PH 10:00-16:00",
        "Tu-Sa 10:00-20:00; Fr 10:00-26:00; PH 12:00-18:00",
        "Mo-Fr 09:00-17:00; Sa 09:00-12:00 unknown; PH off",
        "Mo-Fr 07:00-19:00; PH off",
        "Mo-Su 06:00-22:00; PH 08:00-20:00",
        "Mo-Fr 08:00-11:30,14:30-18:00; PH off",
        None,
    ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20,000 facilities")
    parser.add_argument("--facilities", type=int)
    args = parser.parse_args()
    n = args.facilities or (20_000 if args.quick else 1_000_000)
    exprs = expressions()
    rng = np.random.default_rng(1)
    # Popular expressions are much more common than rare ones (Zipf-like shares).
    weights = 1.0 / np.arange(1, len(exprs) + 1)
    codes = rng.choice(len(exprs), size=n, p=weights / weights.sum()).astype(np.int32)
    codes[rng.random(n) < 0.05] = -1
    when = datetime(2025, 9, 28, 10, 0)
    calendar = HolidayCalendar.default()

    hours = [exprs[c] if c >= 0 else None for c in codes.tolist()]
    index = FacilityIndex.from_arrays(
        [f"f{i:07d}" for i in range(n)],
        rng.uniform(121.0, 122.0, n),
        rng.uniform(30.7, 31.8, n),
        kinds=["rest_stop"] * n,
        opening_hours=hours,
        calendar=calendar,
    )
    # Equivalent questions that are distinct cache keys: each is compiled afresh.
    questions = [
        FacilityFilter(open_at=when, viewer=EVERYONE, statuses=statuses, kinds=kinds)
        for statuses in (None, STATUSES)
        for kinds in (None, KINDS)
    ]
    t = time.perf_counter()
    is_open = index.mask(questions[0])
    cold_s = time.perf_counter() - t
    runs = []
    for question in questions[1:]:
        t = time.perf_counter()
        is_open = index.mask(question)
        runs.append(time.perf_counter() - t)
    ours_s = min(runs)

    t = time.perf_counter()
    states = [state_at(exprs[c] if c >= 0 else None, when, calendar) for c in codes.tolist()]
    loop_s = time.perf_counter() - t

    reference_open = np.array([s is OpenState.OPEN for s in states])
    order = np.argsort([f"f{i:07d}" for i in range(n)])  # index positions are in id order
    if not np.array_equal(is_open, reference_open[order]):
        raise SystemExit("the index's open filter and state_at disagree")

    print(
        f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print(f"facilities: {n:,}, distinct expressions: {len(exprs)}, at {when:%Y-%m-%d %H:%M} (调休)")
    print(f"open: {int(is_open.sum()):,}")
    print(f"index open filter (first call, parses):                {cold_s * 1e3:9.1f} ms")
    print(f"index open filter (same moment, new filter, best of 3): {ours_s * 1e3:8.1f} ms")
    print(f"state_at per facility (reference):                     {loop_s * 1e3:9.1f} ms")
    print(f"ratio state_at loop / index open filter:               {loop_s / ours_s:9.0f}x")


if __name__ == "__main__":
    main()
