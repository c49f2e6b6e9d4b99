"""The holiday calendar kept in the store (``finder calendar load``), on every backend."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from geodata.errors import StoreError
from geodata.store import CalendarDay, FacilityStore, GeoPackageStore

DAYS_2027 = [
    (date(2027, 2, 7), "workday", "春节"),
    (date(2027, 1, 1), "holiday", "元旦"),
    (date(2027, 2, 5), "holiday", "春节"),
]
DAYS_2028 = [(date(2028, 1, 1), "holiday", "元旦")]


def test_load_replaces_whole_years_and_raises_the_change_counter(store: FacilityStore) -> None:
    assert store.calendar_days() == []
    before = store.change_counter()
    store.load_calendar(DAYS_2027 + DAYS_2028, source="2027-28.csv", actor="admin")
    assert store.change_counter() > before
    days = store.calendar_days()
    assert [(d.day, d.type, d.name) for d in days] == [
        ("2027-01-01", "holiday", "元旦"),
        ("2027-02-05", "holiday", "春节"),
        ("2027-02-07", "workday", "春节"),
        ("2028-01-01", "holiday", "元旦"),
    ]
    assert {(d.source, d.actor) for d in days} == {("2027-28.csv", "admin")}
    assert days[0].loaded_at.endswith("+00:00")

    # loading 2027 again replaces 2027 whole and leaves 2028 alone
    store.load_calendar([(date(2027, 10, 1), "holiday", "国庆节")], source="fix.csv", actor="b")
    again = store.calendar_days()
    assert again[1] == days[-1]
    assert again[0]._replace(loaded_at="") == CalendarDay(
        "2027-10-01", "holiday", "国庆节", "fix.csv", "", "b"
    )


def test_an_empty_load_is_refused(store: FacilityStore) -> None:
    store.load_calendar(DAYS_2028, source="2028.csv", actor="admin")
    kept = store.calendar_days()
    with pytest.raises(StoreError):
        store.load_calendar([], source="empty.csv", actor="admin")
    assert store.calendar_days() == kept


def test_an_older_geopackage_gets_the_calendar_table(tmp_path: Path) -> None:
    path = tmp_path / "old.gpkg"
    GeoPackageStore(path).close()
    con = sqlite3.connect(path)
    con.execute("DROP TABLE holiday_calendar")
    con.execute("DELETE FROM gpkg_contents WHERE table_name = 'holiday_calendar'")
    con.commit()
    con.close()
    store = GeoPackageStore(path)
    try:
        store.load_calendar(DAYS_2028, source="2028.csv", actor="admin")
        assert [d.day for d in store.calendar_days()] == ["2028-01-01"]
    finally:
        store.close()
    con = sqlite3.connect(path)
    kind = con.execute(
        "SELECT data_type FROM gpkg_contents WHERE table_name = 'holiday_calendar'"
    ).fetchone()
    con.close()
    assert kind == ("attributes",)
