"""The holiday calendar of the service: provisional days, ``finder calendar load``, ``/health``.

``calendar_live`` serves with a base calendar lacking the current year, so today (the real
clock) is a provisional day until the year is loaded into the store with the command line, as an
administrator does; every server worker must then answer from the loaded year. Each test runs on
both store backends.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from api_support import CENTRE, ROOT, Live, facility_rows

from api.state import CalendarWarning, LiveFacilities
from finder.calendar import statutory_holidays
from finder.hours import CalendarSource, HolidayCalendar, local_today, state_and_source
from geodata.sample import sample_frame
from geodata.store import FacilityStore, GeoPackageStore

PICKUP_TIMEOUT_S = 30.0


def _calendar_cli(live: Live, *args: str) -> subprocess.CompletedProcess[str]:
    """``finder calendar ARGS`` against the live server's store, in its own process."""
    env = {**os.environ}
    if isinstance(live.store, GeoPackageStore):
        args = (*args, "--store", str(live.store.path))
    else:
        env["FINDER_DATABASE_URL"] = live.store.database_url  # type: ignore[attr-defined]
    return subprocess.run(
        [sys.executable, "-m", "api.cli", "calendar", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _arrangement(tmp_path: Path, year: int) -> Path:
    """A calendar file for ``year`` (its statutory days), standing in for the official one."""
    path = tmp_path / f"{year}.csv"
    rows = [f"{day},holiday,{name}" for day, name in statutory_holidays(year).items()]
    path.write_text("date,type,name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _sources(client: httpx.Client) -> dict[str, str | None]:
    body = client.get("/nearest", params={"lon": CENTRE[0], "lat": CENTRE[1], "k": 100}).json()
    return {f["id"]: f["properties"]["open_state_calendar"] for f in body["features"]}


def _wait_for(check: object, what: str) -> None:
    deadline = time.monotonic() + PICKUP_TIMEOUT_S
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {PICKUP_TIMEOUT_S} s: {what}"
        time.sleep(0.2)


def test_today_is_provisional_until_the_year_is_loaded(calendar_live: Live, tmp_path: Path) -> None:
    today = local_today()
    hours = facility_rows().set_index("id")["opening_hours"]
    provisional = HolidayCalendar.default().with_provisional()
    without_today = HolidayCalendar(
        entries={d: e for d, e in provisional.entries.items() if d.year != today.year},
        years=provisional.years - {today.year},
        provisional=True,
    )
    noon = dt.datetime.combine(today, dt.time(12))
    with calendar_live.client() as client:
        sources = _sources(client)
        expected = {fid: state_and_source(hours[fid], noon, without_today)[1] for fid in sources}
        assert sources == expected
        assert CalendarSource.PROVISIONAL in sources.values()

        loaded = _calendar_cli(calendar_live, "load", str(_arrangement(tmp_path, today.year)))
        assert loaded.returncode == 0, loaded.stderr
        assert f"of {today.year} from" in loaded.stdout

        official = {fid: s and CalendarSource.OFFICIAL.value for fid, s in expected.items()}
        _wait_for(lambda: _sources(client) == official, "the loaded year is used")

    shown = _calendar_cli(calendar_live, "show", "--year", str(today.year))
    assert shown.returncode == 0, shown.stderr
    first, *days = shown.stdout.splitlines()
    assert first.startswith(f"{today.year}: store: {today.year}.csv, loaded ")
    assert len(days) == len(statutory_holidays(today.year))


def test_health_warns_until_next_years_arrangement_is_loaded(
    calendar_live: Live, tmp_path: Path
) -> None:
    today = local_today()
    with calendar_live.client() as client:
        health = client.get("/health")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "ok"
        if today.month >= 11:  # next year is in no calendar of the fixture
            [warning] = body["warnings"]
            assert str(today.year + 1) in warning and "finder calendar load" in warning
        else:
            assert body["warnings"] == []

        next_year = _arrangement(tmp_path, today.year + 1)
        assert _calendar_cli(calendar_live, "load", str(next_year)).returncode == 0
        _wait_for(lambda: client.get("/health").json()["warnings"] == [], "the warning ends")


def test_a_bad_file_is_refused_naming_row_and_field(calendar_live: Live, tmp_path: Path) -> None:
    before = calendar_live.store.calendar_days()
    bad = tmp_path / "2027.csv"
    bad.write_text(
        "date,type,name\n2027-01-01,holiday,元旦\n2027-02-30,holiday,春节\n", encoding="utf-8"
    )
    refused = _calendar_cli(calendar_live, "load", str(bad))
    assert refused.returncode == 2
    assert "2027.csv: line 3, field date: '2027-02-30' is not a date" in refused.stderr
    missing = _calendar_cli(calendar_live, "load", str(tmp_path / "2028.csv"))
    assert missing.returncode == 2 and "cannot read the file" in missing.stderr
    assert calendar_live.store.calendar_days() == before


def test_the_warning_is_logged_once_a_day(caplog: pytest.LogCaptureFixture) -> None:
    calendar = HolidayCalendar.default().with_provisional()
    watch = CalendarWarning()
    with caplog.at_level(logging.WARNING, logger="api.state"):
        assert watch.check(calendar, dt.date(2026, 10, 31)) is None
        for _ in range(3):
            assert watch.check(calendar, dt.date(2026, 11, 1)) is not None
        watch.check(calendar, dt.date(2026, 11, 2))
    lines = [r.getMessage() for r in caplog.records if r.name == "api.state"]
    assert len(lines) == 2 and all("2027" in line for line in lines)


def test_start_up_logs_the_warning_once(
    store: FacilityStore, caplog: pytest.LogCaptureFixture
) -> None:
    """One line at start-up, none for the rebuilds of the same day (the real clock decides
    whether there is a warning: from 1 November while next year is missing)."""
    store.upsert_frame(sample_frame(5), actor="test")
    base = HolidayCalendar.default().with_provisional()
    expected = base.missing_next_year(local_today())
    with caplog.at_level(logging.WARNING, logger="api.state"):
        live = LiveFacilities(store, base, poll_s=0)
        for n in (6, 7):
            store.upsert_frame(sample_frame(n), actor="test")
            live.refresh()
    lines = [r.getMessage() for r in caplog.records if r.name == "api.state"]
    assert lines == ([f"holiday calendar: {expected}"] if expected else [])
