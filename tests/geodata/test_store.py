"""The store interface, on every backend: CRUD, versions, audit, queries, one-transaction writes."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geodata.errors import FacilityNotFound, StoreError, VersionConflict
from geodata.sample import sample_frame
from geodata.schema import Facility
from geodata.store import FacilityStore, GeoPackageStore, point_blobs, point_from_blob

XSS = "<img src=x onerror=alert(1)>"
SQL = "'; DROP TABLE facilities; --"


def _facility(**kw: object) -> Facility:
    base: dict[str, object] = {
        "id": "f1",
        "name": "静安工会驿站",
        "kind": "worker_station",
        "lon": 121.45,
        "lat": 31.22,
        "access": "public",
        "opening_hours": "24/7",
        "amenities": ("toilet", "wifi"),
    }
    return Facility.model_validate(base | kw)


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return sample_frame(300)


def test_create_get_and_audit(store: FacilityStore) -> None:
    created = store.create(_facility(), actor="alice")
    assert created.version == 1 and created.created_at is not None
    assert store.get("f1") == created
    entry = store.audit("f1")[0]
    assert (entry["actor"], entry["action"], entry["facility_id"]) == ("alice", "create", "f1")
    with pytest.raises(VersionConflict, match="exists already"):
        store.create(_facility(), actor="alice")
    with pytest.raises(FacilityNotFound):
        store.get("nope")


def test_text_is_stored_verbatim(store: FacilityStore) -> None:
    store.create(_facility(name=XSS, address=SQL, phone='" OR 1=1 --'), actor="a")
    got = store.get("f1")
    assert (got.name, got.address, got.phone) == (XSS, SQL, '" OR 1=1 --')
    assert len(store.frame()) == 1


def test_patch_replace_delete_with_versions(store: FacilityStore) -> None:
    store.create(_facility(), actor="a")
    patched = store.patch("f1", {"name": "新名", "star_rating": 4}, actor="bob", if_version=1)
    assert (patched.name, patched.star_rating, patched.version) == ("新名", 4, 2)
    assert store.audit("f1")[0]["changes"] == {
        "name": ["静安工会驿站", "新名"],
        "star_rating": [None, 4],
    }
    with pytest.raises(VersionConflict, match="version 2, not 1"):
        store.patch("f1", {"name": "lost update"}, actor="carol", if_version=1)
    replaced = store.replace(_facility(name="换"), actor="a", if_version=2)
    assert replaced.star_rating is None and replaced.version == 3
    unchanged = store.patch("f1", {"name": "换"}, actor="a", if_version=3)
    assert unchanged.version == 3
    with pytest.raises(ValueError, match="organization"):
        store.patch("f1", {"access": "employees"}, actor="a", if_version=3)
    with pytest.raises(StoreError, match="cannot be patched"):
        store.patch("f1", {"id": "f2"}, actor="a", if_version=3)
    with pytest.raises(VersionConflict):
        store.delete("f1", actor="a", if_version=1)
    store.delete("f1", actor="dave", if_version=3)
    with pytest.raises(FacilityNotFound):
        store.get("f1")
    last = store.audit("f1")[0]
    assert last["action"] == "delete" and last["changes"]["name"] == ["换", None]


def test_upsert_frame_and_queries(store: FacilityStore, sample: pd.DataFrame) -> None:
    counts = store.upsert_frame(sample, actor="sample")
    assert counts == {"inserted": len(sample), "updated": 0, "unchanged": 0}
    frame = store.frame()
    assert len(frame) == len(sample)
    assert list(frame["id"]) == sorted(sample["id"])
    merged = frame.set_index("id").loc[sample["id"]]
    np.testing.assert_array_equal(merged["lon"].to_numpy(), sample["lon"].to_numpy())
    assert list(merged["amenities"]) == list(sample["amenities"])
    bbox = (121.40, 31.15, 121.50, 31.25)
    inside = store.query(bbox=bbox)
    expected = sample[
        sample["lon"].between(bbox[0], bbox[2]) & sample["lat"].between(bbox[1], bbox[3])
    ]
    assert set(inside["id"]) == set(expected["id"]) and len(expected) > 0
    assert set(store.query(adcode="310106")["id"]) == set(
        sample.loc[sample["adcode"] == "310106", "id"]
    )
    kinds = store.query(kinds=["rest_stop"], adcode="310115")
    assert set(kinds["id"]) == set(
        sample.loc[(sample["kind"] == "rest_stop") & (sample["adcode"] == "310115"), "id"]
    )


def test_change_counter_grows_with_each_write(store: FacilityStore) -> None:
    c0 = store.change_counter()
    store.create(_facility(), actor="a")
    c1 = store.change_counter()
    store.patch("f1", {"name": "x"}, actor="a", if_version=1)
    assert c0 < c1 < store.change_counter()


def test_gpkg_is_a_real_geopackage(tmp_path: Path, sample: pd.DataFrame) -> None:
    import pyogrio

    path = tmp_path / "s.gpkg"
    store = GeoPackageStore(path)
    store.upsert_frame(sample, actor="t")
    store.close()
    info = pyogrio.read_info(path, layer="facilities")
    assert info["crs"] == "EPSG:4326" and info["geometry_type"] == "Point"
    gdf = pyogrio.read_dataframe(path, layer="facilities").set_index("id").loc[sample["id"]]
    np.testing.assert_allclose(gdf.geometry.x, sample["lon"])
    np.testing.assert_allclose(gdf.geometry.y, sample["lat"])


def test_point_blob_round_trip() -> None:
    lon = np.array([121.4737, -0.5, 180.0])
    lat = np.array([31.2304, 51.5, -90.0])
    for blob, x, y in zip(point_blobs(lon, lat), lon, lat, strict=True):
        assert point_from_blob(blob) == (x, y)


def test_readers_see_a_consistent_store_while_a_writer_imports(
    tmp_path: Path, sample: pd.DataFrame
) -> None:
    path = tmp_path / "c.gpkg"
    writer = GeoPackageStore(path)
    writer.upsert_frame(sample.iloc[:100], actor="t")
    reader = GeoPackageStore(path)
    seen: list[int] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append(len(reader.frame()))

    thread = threading.Thread(target=read)
    thread.start()
    for start in range(100, 300, 50):
        writer.upsert_frame(sample.iloc[start : start + 50], actor="t")
    stop.set()
    thread.join()
    writer.close()
    reader.close()
    assert set(seen) <= {100, 150, 200, 250, 300}
    assert seen == sorted(seen)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "future.gpkg"
    GeoPackageStore(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE store_meta SET value='99' WHERE key='schema_version'")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="schema version 99"):
        GeoPackageStore(path)
