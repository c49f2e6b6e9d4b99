"""``finder devices`` and ``finder usage`` as scripts call them, on each backend."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import finder

from api.auth import hash_key
from geodata.events import NewEvent, event_log
from geodata.sample import sample_frame
from geodata.store import FacilityStore, GeoPackageStore


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def named_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[FacilityStore, dict[str, str]]]:
    """A store with three sample facilities, and the environment that names it."""
    if request.param == "gpkg":
        store: FacilityStore = GeoPackageStore(tmp_path / "store.gpkg")
        env = {"FINDER_STORE": str(tmp_path / "store.gpkg")}
    else:
        from geodata.postgis import PostGISStore

        url = request.getfixturevalue("postgis_url")
        store = PostGISStore(url)
        env = {"FINDER_DATABASE_URL": url}
    store.upsert_frame(sample_frame(3), actor="test")
    try:
        yield store, env
    finally:
        store.close()


def test_devices_add_list_revoke(named_store: tuple[FacilityStore, dict[str, str]]) -> None:
    store, env = named_store
    fid = store.frame()["id"].iloc[0]
    added = finder("devices", "add", fid, env=env)
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()
    (device,) = event_log(store).devices()
    assert device.device_id in added.stderr and "only time" in added.stderr
    assert event_log(store).signing_keys() == {fid: [(device.device_id, hash_key(secret))]}
    listed = finder("devices", "list", "--json", env=env)
    assert secret not in listed.stdout
    assert [d["device_id"] for d in json.loads(listed.stdout)] == [device.device_id]
    revoked = finder("devices", "revoke", device.device_id, env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert event_log(store).signing_keys() == {}
    assert event_log(store).devices()[0].revoked_at is not None
    missing = finder("devices", "add", "no-such-facility", env=env)
    assert missing.returncode == 2 and "no-such-facility" in missing.stderr


def test_usage_table_of_a_district(named_store: tuple[FacilityStore, dict[str, str]]) -> None:
    store, env = named_store
    frame = store.frame()
    fid, adcode = frame["id"].iloc[0], frame["adcode"].iloc[0]
    log = event_log(store)
    log.add_device("dev-1", fid, "ab" * 32)
    # 2026-12-01 09:xx and 10:05 in Shanghai
    at = [dt.datetime(2026, 12, 1, 1, m, tzinfo=dt.UTC) for m in (5, 40)]
    at.append(dt.datetime(2026, 12, 1, 2, 5, tzinfo=dt.UTC))
    log.append(
        [NewEvent(fid, "dev-1", "entry", t, f"k{i}") for i, t in enumerate(at)]
        + [NewEvent(fid, "dev-1", "opened", at[0], "k-open")],
        prune_before=at[0] - dt.timedelta(days=1),
    )
    done = finder(
        "usage", "--district", adcode, "--from", "2026-12-01", "--to", "2026-12-01", env=env
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["id"], r["date"], r["hour"], r["visits"]) for r in rows] == [
        (fid, "2026-12-01", "9", "2"),
        (fid, "2026-12-01", "10", "1"),
    ]
