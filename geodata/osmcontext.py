"""Map context from an OpenStreetMap extract: roads, water, railways and 街道/镇 boundaries.

Printed maps draw these lightly under the coverage colours so a reader can say where a gap is,
and name gaps by their nearest named roads. The extract (``.osm`` or ``.osm.pbf``) is read once
with pyosmium; everything is WGS-84 lon/lat.

* roads: ``highway`` ways of the drivable classes in :data:`ROAD_CLASS` (footways and paths are
  too fine for a district sheet), with ``name`` and a drawing class ``major`` or ``minor``;
* water: ``natural=water`` / ``waterway=riverbank`` / ``landuse=reservoir`` areas and
  ``waterway=river|canal|stream`` lines, ``natural=coastline`` lines;
* railways: ``railway=rail|subway|light_rail`` ways not in tunnels;
* sub-districts: ``boundary=administrative`` areas with ``admin_level`` 8 (街道、镇) and a name.

Example
-------
>>> context = context_from_osm("shanghai.osm.pbf")  # doctest: +SKIP
>>> nearest_road_names(context.roads, 121.47, 31.23)  # doctest: +SKIP
['南京西路', '成都北路']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmium
import shapely

from geodata.errors import InvalidInput

#: Drawn road classes of OSM ``highway``: ``major`` roads are drawn wider and named on the map.
ROAD_CLASS: dict[str, str] = {
    "motorway": "major",
    "trunk": "major",
    "primary": "major",
    "secondary": "major",
    "tertiary": "minor",
    "unclassified": "minor",
    "residential": "minor",
    "living_street": "minor",
    "motorway_link": "minor",
    "trunk_link": "minor",
    "primary_link": "minor",
    "secondary_link": "minor",
    "tertiary_link": "minor",
}
_WATER_LINES = {"river", "canal", "stream"}
_RAILWAYS = {"rail", "subway", "light_rail"}
_SUBDISTRICT_LEVEL = "8"
#: Metres per degree of latitude (for the local planar distances of nearest-road look-ups).
_M_PER_DEG = 111_320.0


@dataclass(frozen=True)
class MapContext:
    """Context layers of a map, WGS-84 GeoDataFrames.

    Attributes
    ----------
    roads
        ``name`` (may be empty), ``road_class`` (``major``/``minor``), line geometry.
    water
        ``kind`` (``area``/``line``), geometry.
    railways
        Line geometry.
    subdistricts
        ``name``, polygon geometry (街道/镇).
    source
        File name of the extract, for the sources line.
    """

    roads: gpd.GeoDataFrame
    water: gpd.GeoDataFrame
    railways: gpd.GeoDataFrame
    subdistricts: gpd.GeoDataFrame
    source: str


def _frame(records: list[dict[str, object]], columns: list[str]) -> gpd.GeoDataFrame:
    if not records:
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs="EPSG:4326")
    return gpd.GeoDataFrame(records, geometry="geometry", crs="EPSG:4326")


def _line(way: osmium.osm.Way) -> shapely.LineString | None:
    coords = [(n.location.lon, n.location.lat) for n in way.nodes if n.location.valid()]
    return shapely.LineString(coords) if len(coords) >= 2 else None


def _area(area: osmium.osm.Area) -> shapely.MultiPolygon | None:
    polygons = []
    for outer in area.outer_rings():
        shell = [(n.lon, n.lat) for n in outer]
        holes = [[(n.lon, n.lat) for n in inner] for inner in area.inner_rings(outer)]
        if len(shell) >= 4:
            polygons.append(shapely.Polygon(shell, [h for h in holes if len(h) >= 4]))
    return shapely.MultiPolygon(polygons) if polygons else None


def context_from_osm(path: str | Path) -> MapContext:
    """Read the context layers of an OpenStreetMap extract.

    Parameters
    ----------
    path
        ``.osm`` (XML) or ``.osm.pbf`` file, WGS-84.

    Returns
    -------
    MapContext

    Raises
    ------
    InvalidInput
        If the file is missing or pyosmium cannot read it.
    """
    file_path = Path(path)
    if not file_path.is_file():
        raise InvalidInput(f"no OpenStreetMap file at {file_path}", field="basemap")
    roads: list[dict[str, object]] = []
    water: list[dict[str, object]] = []
    railways: list[dict[str, object]] = []
    subdistricts: list[dict[str, object]] = []
    processor = (
        osmium.FileProcessor(str(file_path))
        .with_locations()
        .with_areas()
        .with_filter(
            osmium.filter.KeyFilter(
                "highway", "waterway", "natural", "landuse", "railway", "boundary"
            )
        )
    )
    try:
        for obj in processor:
            tags = {tag.k: tag.v for tag in obj.tags}
            if isinstance(obj, osmium.osm.Way):
                line = _line(obj)
                road_class = ROAD_CLASS.get(tags.get("highway", ""))
                if line is None:
                    continue
                if road_class is not None:
                    roads.append(
                        {"name": tags.get("name", ""), "road_class": road_class, "geometry": line}
                    )
                elif tags.get("waterway") in _WATER_LINES or tags.get("natural") == "coastline":
                    water.append({"kind": "line", "geometry": line})
                elif tags.get("railway") in _RAILWAYS and tags.get("tunnel") != "yes":
                    railways.append({"geometry": line})
            elif isinstance(obj, osmium.osm.Area):
                if (
                    tags.get("natural") == "water"
                    or tags.get("waterway") == "riverbank"
                    or tags.get("landuse") == "reservoir"
                ):
                    if (shape := _area(obj)) is not None:
                        water.append({"kind": "area", "geometry": shape})
                elif (
                    tags.get("boundary") == "administrative"
                    and tags.get("admin_level") == _SUBDISTRICT_LEVEL
                    and tags.get("name")
                    and (shape := _area(obj)) is not None
                ):
                    subdistricts.append({"name": tags["name"], "geometry": shape})
    except RuntimeError as exc:
        raise InvalidInput(f"cannot read OSM file {file_path.name}", field="basemap") from exc
    return MapContext(
        roads=_frame(roads, ["name", "road_class"]),
        water=_frame(water, ["kind"]),
        railways=_frame(railways, []),
        subdistricts=_frame(subdistricts, ["name"]),
        source=file_path.name,
    )


def nearest_road_names(
    roads: gpd.GeoDataFrame, lon: float, lat: float, *, n: int = 2, within_m: float = 1000.0
) -> list[str]:
    """Names of the ``n`` nearest distinct named roads to a point, nearest first.

    Distances are planar in a local equirectangular frame (metres; < 0.1 % off within a few
    kilometres), enough to rank roads.

    Parameters
    ----------
    roads
        :attr:`MapContext.roads`.
    lon, lat
        The point, WGS-84 degrees.
    n
        How many names.
    within_m
        Ignore roads farther than this, metres.
    """
    named = roads[roads["name"].astype(str) != ""]
    if named.empty:
        return []
    kx = _M_PER_DEG * np.cos(np.radians(lat))

    def to_local(coords: np.ndarray) -> np.ndarray:
        return np.column_stack([(coords[:, 0] - lon) * kx, (coords[:, 1] - lat) * _M_PER_DEG])

    lines = shapely.transform(np.asarray(named.geometry.values), to_local)
    distance = shapely.distance(lines, shapely.Point(0.0, 0.0))
    order = np.argsort(distance)
    names: list[str] = []
    for i in order:
        if distance[i] > within_m or len(names) == n:
            break
        name = str(named["name"].iloc[i])
        if name not in names:
            names.append(name)
    return names
