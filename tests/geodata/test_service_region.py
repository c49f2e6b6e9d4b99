"""The service region: mainland China, Hong Kong, Macau and Taiwan, checked on every write."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geodata.crs import in_service_region
from geodata.errors import InvalidCoordinate
from geodata.validate import outside_service_region, require_in_service_region, validate_frame

#: Places that must be refused: the defects of issue 11 and neighbours just across the sea.
OUTSIDE = {
    "Paris": (2.3522, 48.8566),
    "null island": (0.0, 0.0),
    "Seoul": (126.978, 37.5665),
    "Kobe": (135.1955, 34.6901),
    "Hanoi": (105.8542, 21.0285),
    "Ulaanbaatar": (106.9057, 47.8864),
    "Busan": (129.0756, 35.1796),
    "Yonaguni (Japan)": (122.9957, 24.4676),
    "Manila": (120.9842, 14.5995),
}
#: Places that must be accepted: cities, the SARs, Taiwan, islands and ferry piers off the coast.
INSIDE = {
    "People's Square, Shanghai": (121.4737, 31.2304),
    "Hong Kong, Central Ferry Pier 5": (114.1605, 22.2875),
    "Hong Kong, Cheung Chau pier": (114.0287, 22.2103),
    "Hong Kong, Tung Ping Chau": (114.4293, 22.5445),
    "Macau Outer Harbour Ferry Terminal": (113.5560, 22.1970),
    "Taipei": (121.5654, 25.0330),
    "Kinmen, Shuitou pier": (118.4283, 24.4112),
    "Matsu, Nangan": (119.9430, 26.1600),
    "Orchid Island": (121.5490, 22.0450),
    "Green Island": (121.4920, 22.6610),
    "Penghu, Magong": (119.5660, 23.5650),
    "Shengsi islands, Zhoushan": (122.4510, 30.7250),
    "Sheshan island lighthouse": (122.2370, 31.4180),
    "Changdao, Shandong": (120.7380, 37.9190),
    "Weizhou island, Guangxi": (109.1100, 21.0400),
    "Yongxing island, Sansha": (112.3380, 16.8330),
    "Xiamen, Dongdu ferry": (118.0730, 24.4950),
    "Dandong, Yalu bank": (124.3940, 40.1200),
    "Kashgar": (75.9898, 39.4704),
    "Mohe, Beiji village": (122.3510, 53.4830),
}


@pytest.mark.parametrize("name", sorted(OUTSIDE))
def test_places_outside_are_refused(name: str) -> None:
    lon, lat = OUTSIDE[name]
    assert not in_service_region(lon, lat)
    with pytest.raises(InvalidCoordinate, match="outside the service region") as err:
        require_in_service_region(lon, lat)
    assert err.value.field == "lon"
    assert "Hong Kong" in str(err.value) and f"lon={lon}" in str(err.value)


@pytest.mark.parametrize("name", sorted(INSIDE))
def test_places_inside_are_accepted(name: str) -> None:
    lon, lat = INSIDE[name]
    assert in_service_region(lon, lat)
    require_in_service_region(lon, lat)


def test_vectorised_check_equals_the_scalar_one() -> None:
    rng = np.random.default_rng(11)
    lon = np.concatenate([rng.uniform(60, 145, 20_000), [np.nan, np.inf, 121.47]])
    lat = np.concatenate([rng.uniform(-5, 60, 20_000), [31.2, 31.2, np.nan]])
    outside = outside_service_region(lon, lat)
    scalar = [not in_service_region(float(x), float(y)) for x, y in zip(lon, lat, strict=True)]
    assert outside.tolist() == scalar
    assert outside[-3:].all()  # NaN and infinity are outside
    assert 0.1 < outside.mean() < 0.9


def _raw(points: dict[str, tuple[float, float]]) -> pd.DataFrame:
    names = sorted(points)
    return pd.DataFrame(
        {
            "名称": names,
            "类型": "爱心驿站",
            "开放对象": "公开",
            "经度": [str(points[n][0]) for n in names],
            "纬度": [str(points[n][1]) for n in names],
            "_row": np.arange(2, len(names) + 2),
        }
    )


def test_import_rejects_points_outside_and_keeps_islands_and_piers() -> None:
    raw = _raw(OUTSIDE | INSIDE)
    accepted, issues = validate_frame(raw)
    assert set(accepted["name"]) == set(INSIDE)
    rejected = {i.row: i for i in issues if i.level == "rejected"}
    names = dict(zip(raw["_row"], raw["名称"], strict=True))
    assert {names[row] for row in rejected} == set(OUTSIDE)
    for issue in rejected.values():
        assert issue.field == "lon"
        assert "outside the service region" in issue.reason


def test_import_checks_the_region_after_converting_gcj02() -> None:
    # Amap (GCJ-02) coordinates of Central Ferry Pier 5: Hong Kong is unshifted, still inside.
    accepted, issues = validate_frame(_raw({"pier": (114.1605, 22.2875)}), crs="gcj02")
    assert len(accepted) == 1 and not [i for i in issues if i.level == "rejected"]
