"""Value normalisation of facility lists, and the sample dataset."""

from __future__ import annotations

import numpy as np
import opening_hours
import pandas as pd
import pytest

from geodata.errors import InvalidInput, InvalidOpeningHours
from geodata.sample import SOURCE, sample_frame
from geodata.schema import ACCESS_CLASSES, KINDS, Facility
from geodata.validate import (
    map_access,
    map_headers,
    map_kind,
    normalize_opening_hours,
    parse_amenities,
    parse_column_map,
    parse_star_rating,
    validate_frame,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("全天", "24/7"),
        ("24小时", "24/7"),
        ("周一至周五 08:30-17:30", "Mo-Fr 08:30-17:30"),
        ("周一至周五 08：30－17：30；节假日 关闭", "Mo-Fr 08:30-17:30; PH off"),
        ("星期一到星期六 9:00至18:00", "Mo-Sa 9:00-18:00"),
        ("工作日 09:00-18:00", "Mo-Fr 09:00-18:00"),
        ("每天 07:00-21:00", "Mo-Su 07:00-21:00"),
        ("Mo-Su 22:00-06:00", "Mo-Su 22:00-06:00"),
    ],
)
def test_opening_hours_normalised_to_valid_osm(text: str, expected: str) -> None:
    result = normalize_opening_hours(text)
    assert result == expected
    assert opening_hours.validate(result)


@pytest.mark.parametrize("text", ["周一至周五 25:00-17:30", "sometimes", "Mo-Fr 08:30-"])
def test_bad_opening_hours_name_the_field(text: str) -> None:
    with pytest.raises(InvalidOpeningHours, match="opening_hours") as err:
        normalize_opening_hours(text)
    assert err.value.field == "opening_hours"


@pytest.mark.parametrize(
    ("text", "stars"),
    [("4", 4), ("4星", 4), ("四星级", 4), ("★★★", 3), ("5.0", 5), ("6", None), ("好", None)],
)
def test_star_ratings(text: str, stars: int | None) -> None:
    assert parse_star_rating(text) == stars


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("爱心妈咪小屋", "mother_room"),
        ("母婴室", "mother_room"),
        ("工会驿站", "worker_station"),
        ("职工之家", "worker_station"),
        ("户外劳动者爱心驿站", "rest_stop"),
        ("rest_stop", "rest_stop"),
        ("便利店", None),
    ],
)
def test_kinds(text: str, kind: str | None) -> None:
    assert map_kind(text) == kind


@pytest.mark.parametrize(
    ("text", "access"),
    [
        ("对外开放", "public"),
        ("是", "public"),
        ("否", "employees"),
        ("本单位职工", "employees"),
        ("工会会员", "members"),
        ("public", "public"),
        ("随便", None),
    ],
)
def test_access(text: str, access: str | None) -> None:
    assert map_access(text) == access


def test_amenities_and_headers() -> None:
    assert parse_amenities("冰箱、微波炉,WiFi；卫生间") == ("fridge;microwave;toilet;wifi", [])
    assert parse_amenities("冰箱 飞机") == ("fridge", ["飞机"])
    mapping, ignored = map_headers(["名称", "经度", "纬度", "面积（㎡）", "备注", "_row"])
    assert mapping == {"名称": "name", "经度": "lon", "纬度": "lat", "面积（㎡）": "area_m2"}
    assert ignored == ["备注"]


def test_every_row_is_accounted_for_on_random_input() -> None:
    rng = np.random.default_rng(3)
    n = 400
    raw = pd.DataFrame(
        {
            "名称": rng.choice(["甲", "乙", None], n),
            "类型": rng.choice(["工会驿站", "母婴室", "奇怪", None], n),
            "经度": rng.choice(["121.45", "1120.36", "", "abc", "31.2"], n),
            "纬度": rng.choice(["31.22", "121.4", "", "95"], n),
            "开放对象": rng.choice(["公开", "会员", "本单位", None], n),
            "所属单位": rng.choice(["某公司", None], n),
            "开放时间": rng.choice(["24/7", "周一至周五 9:00-17:00", "乱写", None], n),
            "_row": np.arange(2, n + 2),
        }
    ).replace({"": None})
    raw = raw.astype(object).where(raw.notna(), None)
    accepted, issues = validate_frame(raw)
    rejected = {i.row for i in issues if i.level == "rejected"}
    assert len(accepted) + len(rejected) == n
    assert not set(accepted["_row"]) & rejected
    for row in accepted.to_dict("records"):
        row.pop("_row")
        Facility.model_validate({k: v for k, v in row.items() if not pd.isna(v)})


def test_sample_is_reproducible_and_marked() -> None:
    a, b = sample_frame(300), sample_frame(300)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(sample_frame(300, seed=1))
    assert set(a["source"]) == {SOURCE} and "SAMPLE" in SOURCE
    assert set(a["kind"]) == set(KINDS) and set(a["access"]) == set(ACCESS_CLASSES)
    assert a["name"].str.endswith("（示例）").all()


def test_sample_follows_census_population(districts) -> None:  # type: ignore[no-untyped-def]
    frame = sample_frame(1500, districts=districts)
    share = frame["adcode"].value_counts(normalize=True)
    population = districts.set_index("adcode")["population"].astype(float)
    expected = population / population.sum()
    assert np.max(np.abs(share.reindex(expected.index) - expected)) < 0.002
    from geodata.boundaries import assign_adcode

    found = assign_adcode(frame["lon"].to_numpy(), frame["lat"].to_numpy(), districts)
    assert (found == frame["adcode"].to_numpy()).all()


def _point_list(lon_header: str, lat_header: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "名称": ["甲驿站", "乙驿站"],
            "类型": ["工会驿站", "母婴室"],
            lon_header: ["121.4498", "121.4490"],
            lat_header: ["31.2215", "31.2380"],
            "开放对象": ["公开", "会员"],
            "_row": [2, 3],
        }
    )


@pytest.mark.parametrize(
    ("lon_header", "lat_header", "crs"),
    [
        ("lng_gcj02", "lat_gcj02", "gcj02"),
        ("经度(GCJ02)", "纬度(GCJ02)", "gcj02"),
        ("经度（高德）", "纬度（高德）", "gcj02"),
        ("经度(百度坐标)", "纬度(百度坐标)", "bd09"),
        ("X坐标（WGS84坐标系）", "Y坐标（WGS84坐标系）", "wgs84"),
        ("GCJ-02 longitude", "GCJ-02 latitude", "gcj02"),
        ("lon_bd09", "lat", "bd09"),
        ("lng_wgs84", "lat_wgs84", "wgs84"),
        ("longitude", "latitude", "wgs84"),
    ],
)
def test_coordinate_system_from_column_names(lon_header: str, lat_header: str, crs: str) -> None:
    raw = _point_list(lon_header, lat_header)
    named, issues = validate_frame(raw)
    given, _ = validate_frame(raw.rename(columns={lon_header: "lon", lat_header: "lat"}), crs=crs)
    assert not [i for i in issues if i.level == "rejected"]
    pd.testing.assert_frame_equal(named, given)
    assert set(named["source_crs"]) == {crs}
    same, _ = validate_frame(raw, crs=crs)  # saying it again is no conflict
    pd.testing.assert_frame_equal(same, given)


def test_a_conflicting_crs_is_an_error_naming_both() -> None:
    raw = _point_list("lng_gcj02", "lat_gcj02")
    with pytest.raises(InvalidInput, match=r"wgs84.*lng_gcj02.*gcj02") as info:
        validate_frame(raw, crs="wgs84")
    assert info.value.field == "crs"
    with pytest.raises(InvalidInput, match=r"lng_gcj02.*纬度\(百度\)"):
        validate_frame(_point_list("lng_gcj02", "纬度(百度)"))


def test_column_names_of_real_lists() -> None:
    mapping, ignored = map_headers(
        ["lon", "lat", "facility_type", "open_hours", "经度", "备注", "field", "reason"]
    )
    assert mapping == {
        "lon": "lon",
        "lat": "lat",
        "facility_type": "kind",
        "open_hours": "opening_hours",
    }
    assert ignored == ["经度", "备注", "field", "reason"]


def test_columns_option_maps_any_header() -> None:
    raw = pd.DataFrame(
        {
            "点位": ["甲驿站"],
            "类型": ["工会驿站"],
            "东经X": ["121.4498"],
            "北纬X": ["31.2215"],
            "开放对象": ["公开"],
            "_row": [2],
        }
    )
    columns = parse_column_map("lon=东经X， lat = 北纬X,name=点位")
    assert columns == {"lon": "东经X", "lat": "北纬X", "name": "点位"}
    frame, issues = validate_frame(raw, columns=columns, crs="gcj02")
    assert list(frame["name"]) == ["甲驿站"] and not issues
    with pytest.raises(InvalidInput, match="'经度Y' is not a column of the file"):
        validate_frame(raw, columns={"lon": "经度Y"})
    with pytest.raises(InvalidInput, match="'where' is not a facility field"):
        parse_column_map("where=东经X")
    with pytest.raises(InvalidInput, match="FIELD=HEADER"):
        parse_column_map("lon")


def test_a_clerk_is_told_what_was_not_understood_and_how_to_fix() -> None:
    raw = _point_list("经度", "纬度").assign(备注=["靠近地铁", None], 设施=["冰箱、按摩椅", None])
    raw.loc[1, "开放对象"] = None
    frame, issues = validate_frame(raw)
    column = [i for i in issues if i.field == "备注"]
    assert len(column) == 1 and column[0].level == "warning"
    assert "'备注'" in column[0].reason and "名称 → name" in column[0].reason
    assert "--columns" in column[0].reason
    # An unknown amenity is a warning; the row is kept with the amenities that are known.
    assert list(frame["amenities"]) == ["fridge"]
    amenity = [i for i in issues if i.field == "amenities"]
    assert [(i.row, i.level) for i in amenity] == [(2, "warning")] and "按摩椅" in amenity[0].reason
    access = [i for i in issues if i.field == "access"]
    assert [(i.row, i.level) for i in access] == [(3, "rejected")]
    assert "--access" in access[0].reason and "开放对象" in access[0].reason
