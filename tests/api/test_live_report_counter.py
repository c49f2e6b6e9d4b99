"""The workers' copy of the report signals follows the store's reports change counter.

:class:`api.live.LiveDoors` reads the reports of the rule's window only when the counter moved;
with no change it asks the store for the counter alone, and a signal whose window ended goes out
without a read. Both store backends; the store underneath is real, wrapped only to count reads.
(That a report through one server flips the answer of another within the documented time is
``test_api_report_signals.py``.)
"""

from __future__ import annotations

import datetime as dt
import io
import time

from PIL import Image

from api.live import SIGNALS_EVERY_S, LiveDoors
from geodata.events import event_log
from geodata.photos import photo_from_bytes
from geodata.schema import Report
from geodata.store import FacilityStore, StoredPhoto


class CountingReports:
    """The store's reports, counting the queries :class:`LiveDoors` makes of them."""

    def __init__(self, store: FacilityStore) -> None:
        self.store = store
        self.counter_reads = 0
        self.report_reads = 0

    def report_counter(self) -> int:
        self.counter_reads += 1
        return self.store.report_counter()

    def reports(
        self, *, since: dt.datetime | None = None, limit: int | None = 1000
    ) -> list[Report]:
        self.report_reads += 1
        return self.store.reports(since=since, limit=limit)


def _locked(store: FacilityStore, facility_id: str, source: str) -> None:
    store.add_report(facility_id, "locked_during_hours", note=None, source=source, token_hash="h")


def test_the_counter_moves_with_reports_and_decisions_only(store: FacilityStore) -> None:
    start = store.report_counter()
    report = store.add_report("f1", "moved", note=None, source="a", token_hash="h")
    assert store.report_counter() == start + 1
    store.resolve_report(report.report_id, "dismissed", actor="staff")
    assert store.report_counter() == start + 2
    store.reports()
    store.add_photo("f1", _photo(), actor="staff")
    assert store.add_report_photo(report.report_id, _photo())
    assert store.report_counter() == start + 2


def _photo() -> StoredPhoto:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    return photo_from_bytes(buf.getvalue(), "image/png")


def test_no_change_no_read_a_report_one_read(store: FacilityStore) -> None:
    _locked(store, "f1", "a")
    _locked(store, "f1", "b")
    counting = CountingReports(store)
    doors = LiveDoors(event_log(store), reports=counting, poll_s=0.02)
    assert [s.count for s in doors.signals("f1")] == [2]
    assert counting.report_reads == 1
    with doors.polling():
        time.sleep(SIGNALS_EVERY_S * 2.5)  # the poller looks at the counter about twice
        assert counting.counter_reads >= 2
        assert counting.report_reads == 1  # nothing changed: nothing read again
        _locked(store, "f2", "a")
        _locked(store, "f2", "b")  # another worker's reports
        deadline = time.monotonic() + SIGNALS_EVERY_S * 3
        while not doors.signals("f2") and time.monotonic() < deadline:
            time.sleep(0.02)
    assert [s.count for s in doors.signals("f2")] == [2]
    assert counting.report_reads == 2  # the two reports were seen in one read


def test_a_signal_whose_window_ended_goes_out_without_a_read(store: FacilityStore) -> None:
    _locked(store, "f1", "a")
    _locked(store, "f1", "b")
    counting = CountingReports(store)
    now = dt.datetime.now(dt.UTC)
    doors = LiveDoors(event_log(store), reports=counting, clock=lambda: now)
    assert doors.signals("f1")
    version = doors.version
    now += dt.timedelta(hours=25)
    doors.refresh_signals()
    assert doors.signals("f1") == ()
    assert doors.version > version  # a change of the live state, pushed to /live
    assert counting.report_reads == 1
