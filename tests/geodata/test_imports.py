"""Import of the lists unions keep: every row accepted or rejected with the right reason."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyproj import Geod

from geodata.crs import from_wgs84, to_wgs84
from geodata.errors import InvalidInput, UnreadableFile
from geodata.imports import import_file
from geodata.readers import read_table
from geodata.store import FacilityStore

DATA = Path(__file__).resolve().parents[1] / "data"
GBK_LIST = DATA / "union_list_gbk.csv"

# What each row (spreadsheet row number) of union_list_gbk.csv must become.
EXPECTED_REJECTS = {
    5: ("lon", "outside [-180, 180]"),
    6: ("lon", "empty"),
    7: ("kind", "unknown kind"),
    8: ("opening_hours", "opening_hours"),
    9: ("id", "duplicate id 'JA-001': first given in row 2"),
    11: ("name", "same name as row 10"),
    12: ("lon", "outside the service region"),
    13: ("organization", "host organisation"),
}
EXPECTED_ACCEPTED = {"JA-001", "JA-002", "JA-003", "JA-008"}


def _reasons(report, row):  # type: ignore[no-untyped-def]
    return [(i.field, i.reason) for i in report.issues if i.row == row and i.level == "rejected"]


def test_gbk_csv_with_chinese_headers(store: FacilityStore, districts, tmp_path: Path) -> None:
    report_csv = tmp_path / "rejects.csv"
    report = import_file(store, GBK_LIST, districts=districts)
    with report_csv.open("wb") as handle:
        report.write_csv(handle)
    assert report.total_rows == 12
    assert report.accepted + report.rejected == report.total_rows
    assert set(store.frame()["id"]) == EXPECTED_ACCEPTED
    for row, (field, text) in EXPECTED_REJECTS.items():
        reasons = _reasons(report, row)
        assert any(f == field and text in r for f, r in reasons), (row, reasons)
    rejected_rows = {i.row for i in report.issues if i.level == "rejected"}
    assert rejected_rows == set(EXPECTED_REJECTS)
    # The reject report is a CSV Excel opens (BOM): one line per rejected row.
    with report_csv.open(encoding="utf-8-sig") as handle:
        written = list(csv.DictReader(handle))
    assert [int(r["row"]) for r in written] == sorted(EXPECTED_REJECTS)


def test_values_are_normalised(store: FacilityStore, districts) -> None:
    import_file(store, GBK_LIST, districts=districts)
    station = store.get("JA-001")
    assert station.kind == "worker_station"
    assert station.opening_hours == "24/7"
    assert station.amenities == ("microwave", "drinking_water", "charging", "toilet")
    assert station.access == "public"
    assert station.adcode == "310106"
    room = store.get("JA-002")
    assert (room.kind, room.access, room.organization) == (
        "mother_room",
        "employees",
        "某科技有限公司",
    )
    assert room.star_rating == 4
    assert room.opening_hours == "Mo-Fr 08:30-17:30; PH off"
    swapped = store.get("JA-003")
    assert (swapped.lon, swapped.lat) == pytest.approx((121.4571, 31.2788))
    assert swapped.kind == "rest_stop"


def test_swapped_columns_are_put_right_with_a_warning(store: FacilityStore) -> None:
    report = import_file(store, GBK_LIST)
    warnings = [i for i in report.issues if i.level == "warning" and i.row == 4]
    assert warnings and "swapped" in warnings[0].reason


def _write_variants(tmp_path: Path) -> dict[str, Path]:
    raw = read_table(GBK_LIST).drop(columns=["_row"])
    paths = {}
    for encoding in ("utf-8", "utf-8-sig", "gb18030"):
        path = tmp_path / f"list-{encoding}.csv"
        path.write_bytes(raw.to_csv(index=False).encode(encoding))
        paths[encoding] = path
    xlsx = tmp_path / "list.xlsx"
    raw.to_excel(xlsx, index=False)
    paths["xlsx"] = xlsx
    return paths


def test_every_encoding_and_xlsx_give_the_same_result(tmp_path: Path) -> None:
    from geodata.store import GeoPackageStore

    results = {}
    for name, path in _write_variants(tmp_path).items():
        store = GeoPackageStore(tmp_path / f"{name}.gpkg")
        report = import_file(store, path)
        results[name] = (
            report.accepted,
            report.rejected,
            sorted((i.row, i.field) for i in report.issues),
        )
        frame = store.frame()
        store.close()
        assert set(frame["id"]) == EXPECTED_ACCEPTED, name
    assert len(set(map(repr, results.values()))) == 1, results


def test_geojson_in_gcj02_is_converted_to_wgs84(store: FacilityStore, tmp_path: Path) -> None:
    wgs = np.array([[121.4453, 31.2235], [121.4998, 31.2397]])
    glon, glat = from_wgs84(wgs[:, 0], wgs[:, 1], "gcj02")
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
            "properties": {
                "id": f"g{i}",
                "name": f"驿站{i}",
                "type": "工会驿站",
                "access": "public",
            },
        }
        for i, (x, y) in enumerate(zip(glon, glat, strict=True))
    ]
    features.append(
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [[121.4, 31.2], [121.5, 31.3]]},
            "properties": {"id": "line", "name": "线", "type": "工会驿站", "access": "public"},
        }
    )
    path = tmp_path / "amap.geojson"
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8"
    )
    report = import_file(store, path, crs="gcj02")
    assert (report.accepted, report.rejected) == (2, 1)
    assert _reasons(report, 3) == [("geometry", "geometry is a LineString, not a point")]
    frame = store.frame().set_index("id")
    _, _, err = Geod(ellps="WGS84").inv(
        frame.loc[["g0", "g1"], "lon"], frame.loc[["g0", "g1"], "lat"], wgs[:, 0], wgs[:, 1]
    )
    assert np.max(err) < 0.01
    assert set(frame["source_crs"]) == {"gcj02"}


def test_shapefile_and_geopackage_inputs(store: FacilityStore, tmp_path: Path) -> None:
    import geopandas as gpd

    gdf = gpd.GeoDataFrame(
        {
            "id": ["s1", "s2"],
            "name": ["甲", "乙"],
            "kind": ["rest_stop", "worker_station"],
            "access": ["public", "members"],
        },
        geometry=gpd.points_from_xy([121.45, 121.46], [31.22, 31.23]),
        crs="EPSG:4326",
    )
    for suffix in ("shp", "gpkg"):
        path = tmp_path / f"in.{suffix}"
        gdf.to_file(path)
        report = import_file(store, path)
        assert (report.accepted, report.rejected) == (2, 0), suffix
    assert sorted(store.frame()["id"]) == ["s1", "s2"]


def test_reimport_updates_and_audits(store: FacilityStore, tmp_path: Path) -> None:
    first = import_file(store, GBK_LIST)
    assert first.inserted == 4
    again = import_file(store, GBK_LIST)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)
    raw = read_table(GBK_LIST).drop(columns=["_row"])
    raw.loc[raw["编号"] == "JA-001", "名称"] = "静安寺工会驿站（更名）"
    path = tmp_path / GBK_LIST.name  # same list name: the source field stays the same
    raw.to_csv(path, index=False, encoding="utf-8-sig")
    third = import_file(store, path, actor="staff-1")
    assert (third.inserted, third.updated, third.unchanged) == (0, 1, 3)
    entry = store.audit("JA-001")[0]
    assert entry["actor"] == "staff-1" and entry["action"] == "update"
    assert entry["changes"]["name"] == ["静安寺商圈工会驿站", "静安寺工会驿站（更名）"]
    assert store.get("JA-001").version == 2


def test_missing_access_is_rejected_not_guessed(store: FacilityStore, tmp_path: Path) -> None:
    path = tmp_path / "no_access.csv"
    pd.DataFrame(
        {"name": ["甲"], "类型": ["母婴室"], "经度": ["121.45"], "纬度": ["31.22"]}
    ).to_csv(path, index=False)
    report = import_file(store, path)
    assert _reasons(report, 2)[0][0] == "access"
    report = import_file(store, path, access="employees")
    assert _reasons(report, 2)[0][0] == "organization"
    report = import_file(store, path, access="public")
    assert report.accepted == 1
    # Without an id column, the id is derived from the row and is stable on re-import.
    ids = set(store.frame()["id"])
    import_file(store, path, access="public")
    assert set(store.frame()["id"]) == ids and len(ids) == 1


def test_failure_half_way_leaves_the_store_as_it_was(store: FacilityStore) -> None:
    import_file(store, GBK_LIST)
    before = store.frame()
    counter = store.change_counter()
    frame = before.drop(columns=["created_at", "updated_at", "version"]).copy()
    frame["name"] = frame["name"] + "改"
    bad = frame.iloc[[0]].assign(id="bad-row", kind="spaceship")  # the database refuses it
    with pytest.raises(Exception, match="refused"):
        store.upsert_frame(pd.concat([frame, bad]), actor="x")
    pd.testing.assert_frame_equal(store.frame(), before)
    assert store.change_counter() == counter


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "no such file"),
        ("list.pdf", b"%PDF-1.4", "unknown file type"),
        ("broken.xlsx", b"not a zip", "not a readable XLSX"),
        ("latin1.csv", "name\n\xff\xfe\xfa".encode("latin-1") + b"\x81", "neither UTF-8"),
    ],
)
def test_unreadable_files_raise_a_clear_error(
    store: FacilityStore, tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UnreadableFile, match=message):
        import_file(store, path)


def test_malformed_rows_are_rejected_and_row_numbers_kept(
    store: FacilityStore, tmp_path: Path
) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(
        "名称,类型,经度,纬度,开放对象\n"
        "甲驿站,工会驿站,121.45,31.22,公开\n"
        "\n"
        "乙驿站,工会驿站,121.46,31.23,公开,多余的格子\n"
        '"丙\n驿站",工会驿站,121.47,31.24,公开\n'
        "丁驿站,便利店,121.48,31.25,公开\n",
        encoding="utf-8",
    )
    report = import_file(store, path)
    assert report.total_rows == 4
    assert (report.accepted, report.rejected) == (2, 2)
    assert _reasons(report, 4) == [("row", "expected 5 cells, got 6")]
    assert _reasons(report, 6)[0][0] == "kind"
    assert sorted(store.frame()["name"]) == ["丙\n驿站", "甲驿站"]


CLERK_LIST = DATA / "clerk_list_gbk.csv"  # GBK as Excel writes it, GCJ-02 columns, messy rows


def test_a_clerk_fixes_the_rejects_report_and_imports_it_again(
    store: FacilityStore, tmp_path: Path
) -> None:
    report = import_file(store, CLERK_LIST)
    assert (report.accepted, report.rejected) == (3, 2)
    out = tmp_path / "rejects.csv"
    with out.open("wb") as handle:
        report.write_csv(handle)
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Excel on Chinese Windows
    with out.open(encoding="utf-8-sig", newline="") as handle:
        header, *lines = list(csv.reader(handle))
    source = read_table(CLERK_LIST)
    own = [c for c in source.columns if c != "_row"]
    assert header == [*own, "field", "reason", "row"]
    # One line per rejected row: its own cells, then every field and reason joined.
    assert [line[0] for line in lines] == ["GH-103", "GH-104"]
    for line, row in zip(lines, (4, 5), strict=True):
        cells = source.loc[source["_row"] == row, own].iloc[0].fillna("").tolist()
        assert line[: len(own)] == cells
        assert line[-1] == str(row)
    assert lines[0][-3] == "access" and "--access" in lines[0][-2]
    assert lines[1][-3] == "lon；kind"
    assert "'121.45.2' is not a number；unknown kind '便民服务点'" in lines[1][-2]
    # Accepted rows' warnings stay out of the rejects file (they are in the report).
    assert {i.field for i in report.issues if i.level == "warning"} >= {"备注", "amenities"}

    # The clerk fixes the two rows in Excel and saves the report as CSV (GBK) as it is.
    fixed = pd.read_csv(out, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    fixed.loc[0, "开放对象"] = "公开"
    fixed.loc[1, ["lng_gcj02", "类型"]] = ["121.4520", "工会驿站"]
    again_path = tmp_path / "rejects-fixed.csv"
    again_path.write_bytes(fixed.to_csv(index=False).encode("gbk"))
    again = import_file(store, again_path)
    assert (again.accepted, again.rejected, again.inserted) == (2, 0, 2)
    notes = [i for i in again.issues if i.field == "columns"]
    assert [n.level for n in notes] == ["warning"] and "rejects report" in notes[0].reason
    frame = store.frame().set_index("id")
    assert sorted(frame.index) == ["GH-101", "GH-102", "GH-103", "GH-104", "GH-105"]
    # The suffix _gcj02 said the system: the stored point is the WGS-84 one.
    wlon, wlat = to_wgs84(121.4520, 31.2300, "gcj02")
    assert (frame.loc["GH-104", "lon"], frame.loc["GH-104", "lat"]) == pytest.approx((wlon, wlat))
    assert set(frame["source_crs"]) == {"gcj02"}
    assert frame.loc["GH-102", "amenities"] == "fridge"  # unknown 按摩椅 left out, row kept


def test_crs_from_the_column_names_equals_the_crs_option(tmp_path: Path) -> None:
    from geodata.store import GeoPackageStore

    frames = []
    for crs in (None, "gcj02"):
        store = GeoPackageStore(tmp_path / f"{crs}.gpkg")
        import_file(store, CLERK_LIST, crs=crs)
        frames.append(store.frame().drop(columns=["created_at", "updated_at"]))
        store.close()
    pd.testing.assert_frame_equal(frames[0], frames[1])
    store = GeoPackageStore(tmp_path / "conflict.gpkg")
    with pytest.raises(InvalidInput, match=r"wgs84.*lng_gcj02"):
        import_file(store, CLERK_LIST, crs="wgs84")
    store.close()
