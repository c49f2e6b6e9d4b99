"""A reproducible SAMPLE dataset of Shanghai facilities (synthetic, not real facilities).

About 1,500 facilities over the 16 districts, in proportion to the 2020 census population, with all
three kinds, all access classes, realistic hours, amenities and star grades. Every row says
``source = "SAMPLE ..."`` so it is never mistaken for real data. The same seed gives the same rows::

    python -m geodata.sample --out geodata/data/sample_shanghai.gpkg

Points are drawn around each district's representative point (a normal distribution scaled to the
district's size, kept inside the polygon), which keeps most of them off the estuary water that the
coastal district polygons include.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geodata.boundaries import load_districts
from geodata.kinds import KIND_BY_NAME
from geodata.schema import AMENITY_BIT, COLUMNS

SEED = 20261126
SOURCE = f"SAMPLE data (synthetic, seed {SEED}); not real facilities"
BUNDLED_SAMPLE = Path(__file__).resolve().parent / "data" / "sample_shanghai.gpkg"

_KIND_SHARE = {"mother_room": 0.45, "worker_station": 0.30, "rest_stop": 0.25}
_ACCESS_SHARE = {
    "mother_room": {"employees": 0.78, "members": 0.08, "public": 0.14},
    "worker_station": {"public": 0.60, "members": 0.30, "employees": 0.10},
    "rest_stop": {"public": 0.95, "members": 0.05},
}
_HOURS = {
    "mother_room": [
        ("Mo-Fr 08:30-17:30; PH off", 0.6),
        ("Mo-Fr 09:00-18:00; PH off", 0.2),
        ("Mo-Su 08:00-20:00", 0.1),
        ("24/7", 0.1),
    ],
    "worker_station": [
        ("24/7", 0.3),
        ("Mo-Su 07:00-21:00", 0.3),
        ("Mo-Fr 08:00-18:00; Sa 09:00-17:00; PH off", 0.2),
        ("Mo-Su 06:00-22:00", 0.2),
    ],
    "rest_stop": [
        ("Mo-Su 08:00-20:00", 0.4),
        ("24/7", 0.2),
        ("Mo-Fr 09:00-17:00", 0.2),
        ("Mo-Su 22:00-06:00", 0.05),
        ("Mo-Su 07:00-19:00", 0.15),
    ],
}
_AMENITIES = {
    "mother_room": [
        "fridge",
        "sink",
        "sofa",
        "nursing_chair",
        "changing_table",
        "privacy_curtain",
        "breast_pump",
        "disinfection_cabinet",
        "air_conditioning",
        "hot_water",
        "smart_lock",
    ],
    "worker_station": [
        "seating",
        "drinking_water",
        "hot_water",
        "microwave",
        "fridge",
        "charging",
        "toilet",
        "wifi",
        "air_conditioning",
        "first_aid",
        "books",
        "smart_lock",
        "umbrella",
        "bed",
    ],
    "rest_stop": [
        "seating",
        "drinking_water",
        "hot_water",
        "charging",
        "toilet",
        "microwave",
        "umbrella",
        "first_aid",
        "repair_kit",
        "parking_ebike",
        "wifi",
    ],
}
_HOSTS = [
    "科技",
    "金融",
    "医院",
    "商场",
    "物流",
    "制造",
    "电力",
    "银行",
    "通信",
    "地铁",
    "园区",
    "学校",
    "街道",
    "社区",
    "加油站",
]
_FORMATS = {
    "mother_room": [("room", 0.8), ("corner", 0.15), ("box", 0.05)],
    "worker_station": [("room", 0.9), ("mobile", 0.1)],
    "rest_stop": [("room", 0.5), ("corner", 0.4), ("box", 0.1)],
}


def _choice(rng: np.random.Generator, options: Sequence[tuple[str, float]]) -> str:
    names = [o[0] for o in options]
    weights = np.array([o[1] for o in options])
    return str(rng.choice(names, p=weights / weights.sum()))


def _points_in(
    rng: np.random.Generator, polygon: shapely.Geometry, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points inside ``polygon``, normally spread around its representative point."""
    centre = polygon.representative_point()
    minx, miny, maxx, maxy = polygon.bounds
    spread = 0.22 * math.sqrt((maxx - minx) * (maxy - miny))
    shapely.prepare(polygon)
    lon: list[float] = []
    lat: list[float] = []
    while len(lon) < n:
        x = rng.normal(centre.x, spread, 4 * n)
        y = rng.normal(centre.y, spread, 4 * n)
        inside = shapely.contains_xy(polygon, x, y)
        lon += x[inside].tolist()
        lat += y[inside].tolist()
    return np.round(np.array(lon[:n]), 6), np.round(np.array(lat[:n]), 6)


def sample_frame(
    total: int = 1500, *, seed: int = SEED, districts: gpd.GeoDataFrame | None = None
) -> pd.DataFrame:
    """The sample as a facility frame (WGS-84), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    districts = load_districts() if districts is None else districts
    population = districts["population"].astype(float).to_numpy()
    counts = np.floor(total * population / population.sum()).astype(int)
    exact = total * population / population.sum()
    counts[np.argsort(-(exact - counts))[: total - counts.sum()]] += 1
    rows = []
    for (_, district), n in zip(districts.iterrows(), counts, strict=True):
        lon, lat = _points_in(rng, district.geometry, int(n))
        for i in range(int(n)):
            kind = _choice(rng, list(_KIND_SHARE.items()))
            access = _choice(rng, list(_ACCESS_SHARE[kind].items()))
            host = f"示例{district['name'][:2]}{_HOSTS[int(rng.integers(len(_HOSTS)))]}单位{i + 1}"
            pool = _AMENITIES[kind]
            picked = rng.choice(
                pool, size=int(rng.integers(3, min(8, len(pool)) + 1)), replace=False
            )
            rows.append(
                {
                    "id": f"sample-{district['adcode']}-{i + 1:04d}",
                    "name": f"{host}{KIND_BY_NAME[kind].label_zh}（示例）",
                    "kind": kind,
                    "format": _choice(rng, _FORMATS[kind]),
                    "address": f"上海市{district['name']}示例路{int(rng.integers(1, 2000))}号",
                    "province": "上海市",
                    "city": "上海市",
                    "district": district["name"],
                    "adcode": district["adcode"],
                    "lon": float(lon[i]),
                    "lat": float(lat[i]),
                    "source_crs": "wgs84",
                    "access": access,
                    "organization": host if access == "employees" else None,
                    "opening_hours": _choice(rng, _HOURS[kind]),
                    "amenities": ";".join(
                        sorted((str(a) for a in picked), key=AMENITY_BIT.__getitem__)
                    ),
                    "star_rating": int(rng.choice([3, 4, 4, 5, 5]))
                    if kind == "mother_room"
                    else None,
                    "area_m2": float(round(rng.uniform(6, 60), 1)),
                    "phone": f"021-{int(rng.integers(5000_0000, 6999_9999))}",
                    "operator": f"{district['name']}总工会",
                    "status": _choice(
                        rng, [("open", 0.95), ("temporarily_closed", 0.04), ("closed", 0.01)]
                    ),
                    "verified_at": "2026-06-30",
                    "source": SOURCE,
                }
            )
    frame = pd.DataFrame(rows)
    frame["star_rating"] = frame["star_rating"].astype("Int64")
    return frame[[c for c in COLUMNS if c in frame.columns]]


def write_sample(out: str | Path, total: int = 1500, *, seed: int = SEED) -> int:
    """Write the sample into a new GeoPackage store at ``out``; returns the number written."""
    from geodata.store import GeoPackageStore

    out = Path(out)
    if out.exists():
        out.unlink()
    store = GeoPackageStore(out)
    try:
        counts = store.upsert_frame(
            sample_frame(total, seed=seed), actor="sample", source_name=SOURCE
        )
    finally:
        store.close()
    return counts["inserted"]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m geodata.sample --out FILE``: write the sample store."""
    parser = argparse.ArgumentParser(prog="python -m geodata.sample", description=__doc__)
    parser.add_argument("--out", default=str(BUNDLED_SAMPLE))
    parser.add_argument("--total", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    n = write_sample(args.out, args.total, seed=args.seed)
    print(f"wrote {n} sample facilities to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
