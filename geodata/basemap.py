"""A base map we serve ourselves: OpenStreetMap extract -> vector tiles in one PMTiles archive.

:func:`basemap_from_osm` streams an extract (``.osm`` or ``.osm.pbf``) with pyosmium, keeps the
features a restrained street map draws and writes Mapbox Vector Tiles (``mapbox-vector-tile``)
into a PMTiles v3 archive (``pmtiles``). :class:`BasemapArchive` reads tiles back for the web
server (:mod:`geodata.basemap_archive`, apart so that serving tiles does not load the OSM
reader). Tiles are Web Mercator (EPSG:3857) on WGS-84 coordinates, exactly as in the extract: no
GCJ-02 shift, so the facilities (WGS-84) sit on the right street.

Layers (``class`` and ``name`` properties; ``name`` is ``name:zh``, else ``name``)
-------------------------------------------------------------------------------------
``roads``      lines; class motorway, trunk, primary, secondary, tertiary, minor, service, path
``railways``   lines; class rail, metro (subway, light rail, monorail), tram
``waterways``  lines; class river, canal, stream
``water``      polygons (lakes, reservoirs, river areas)
``landuse``    polygons; class park, wood, grass, industrial, commercial, education
``buildings``  polygons, at the highest zoom only
``places``     points; class city, district, town, suburb, village, quarter, neighbourhood;
               districts also come from administrative boundaries of ``admin_level`` 5-6
               (label at a point inside the area)

Each feature first appears at the zoom its class merits (motorways from zoom 6, minor streets
from 12, buildings at the maximum zoom); a polygon also waits until it covers a few pixels.

Memory stays bounded on a province-sized extract: node locations live in a file-backed index
(``sparse_file_array``), features and their tile addresses go to a temporary SQLite file in
batches, and tiles are then encoded one at a time in tile-id order.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import mapbox_vector_tile
import numpy as np
import osmium
import shapely
from mapbox_vector_tile.encoder import on_invalid_geometry_make_valid
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

from geodata.basemap_archive import BASEMAP_SUFFIX, BasemapArchive, basemap_path_for
from geodata.errors import InvalidInput

#: Highest zoom of the archive; clients draw deeper zooms from these tiles (overzoom).
MAX_ZOOM = 14
#: Tile extent of the vector tiles (coordinate units per tile side).
EXTENT = 4096
#: Clip buffer around each tile, in tile units (lines and outlines continue under the seam).
BUFFER = 64
#: Attribution the data licence (ODbL) requires wherever the map is shown.
ATTRIBUTION = "© OpenStreetMap contributors"
#: Half the circumference of the Web Mercator world, metres.
_HALF_WORLD_M = 20037508.342789244
_MAX_LAT = 85.0511287798066
#: A polygon is drawn from the zoom at which it covers this many pixels (256-pixel tiles).
_MIN_POLYGON_PX2 = 24.0
#: Features are written to the work file in batches of this many.
_BATCH = 20_000
#: Progress is reported every this many OSM objects.
_PROGRESS_EVERY = 250_000

Progress = Callable[[str], None]

#: ``highway`` value -> (road class, first zoom).
ROAD_CLASSES: dict[str, tuple[str, int]] = {
    "motorway": ("motorway", 6),
    "trunk": ("trunk", 6),
    "primary": ("primary", 8),
    "secondary": ("secondary", 10),
    "tertiary": ("tertiary", 11),
    "motorway_link": ("motorway", 11),
    "trunk_link": ("trunk", 11),
    "primary_link": ("primary", 12),
    "secondary_link": ("secondary", 12),
    "tertiary_link": ("tertiary", 12),
    "residential": ("minor", 12),
    "unclassified": ("minor", 12),
    "living_street": ("minor", 13),
    "road": ("minor", 13),
    "service": ("service", 13),
    "pedestrian": ("path", 14),
    "footway": ("path", 14),
    "cycleway": ("path", 14),
    "path": ("path", 14),
    "steps": ("path", 14),
    "track": ("path", 14),
}
#: ``railway`` value -> (class, first zoom).
RAILWAY_CLASSES: dict[str, tuple[str, int]] = {
    "rail": ("rail", 8),
    "subway": ("metro", 10),
    "light_rail": ("metro", 10),
    "monorail": ("metro", 10),
    "tram": ("tram", 12),
}
#: ``waterway`` value (lines) -> (class, first zoom).
WATERWAY_CLASSES: dict[str, tuple[str, int]] = {
    "river": ("river", 8),
    "canal": ("canal", 10),
    "stream": ("stream", 13),
    "drain": ("stream", 13),
    "ditch": ("stream", 14),
}
#: ``(key, value)`` of an area -> landuse class.
LANDUSE_CLASSES: dict[tuple[str, str], str] = {
    ("leisure", "park"): "park",
    ("leisure", "garden"): "park",
    ("leisure", "nature_reserve"): "park",
    ("landuse", "recreation_ground"): "park",
    ("landuse", "village_green"): "park",
    ("landuse", "cemetery"): "park",
    ("landuse", "forest"): "wood",
    ("natural", "wood"): "wood",
    ("landuse", "grass"): "grass",
    ("landuse", "meadow"): "grass",
    ("natural", "grassland"): "grass",
    ("landuse", "industrial"): "industrial",
    ("landuse", "commercial"): "commercial",
    ("landuse", "retail"): "commercial",
    ("amenity", "school"): "education",
    ("amenity", "university"): "education",
    ("amenity", "college"): "education",
}
#: ``place`` value -> (class, first zoom) of a place label.
PLACE_CLASSES: dict[str, tuple[str, int]] = {
    "city": ("city", 4),
    "district": ("district", 9),
    "city_district": ("district", 9),
    "county": ("district", 9),
    "town": ("town", 9),
    "suburb": ("suburb", 11),
    "village": ("village", 12),
    "quarter": ("quarter", 13),
    "neighbourhood": ("neighbourhood", 14),
}
#: First zoom of district labels taken from administrative boundaries.
DISTRICT_LABEL_ZOOM = 9
#: The archive's layers and their properties, for the ``vector_layers`` metadata.
LAYER_FIELDS: dict[str, dict[str, str]] = {
    "water": {},
    "landuse": {"class": "String"},
    "waterways": {"class": "String", "name": "String"},
    "buildings": {},
    "railways": {"class": "String", "name": "String"},
    "roads": {"class": "String", "name": "String"},
    "places": {"class": "String", "name": "String"},
}
_LINE_LAYERS = frozenset({"roads", "railways", "waterways"})


def label_name(tags: Mapping[str, str] | osmium.osm.TagList) -> str:
    """The name a Chinese map shows: ``name:zh``, else ``name``, else ``""``."""
    for key in ("name:zh", "name"):
        value = tags.get(key)
        if value:
            return str(value).strip()
    return ""


def lonlat_to_mercator(
    lon: np.ndarray[Any, np.dtype[np.float64]], lat: np.ndarray[Any, np.dtype[np.float64]]
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.float64]]]:
    """Web Mercator metres (EPSG:3857) of WGS-84 degrees; latitudes are clamped to ±85.0511°."""
    x = np.radians(lon) * (_HALF_WORLD_M / math.pi)
    phi = np.radians(np.clip(lat, -_MAX_LAT, _MAX_LAT))
    y = np.log(np.tan(math.pi / 4 + phi / 2)) * (_HALF_WORLD_M / math.pi)
    return x, y


def tile_bounds_m(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Web Mercator bounds ``(xmin, ymin, xmax, ymax)`` in metres of tile ``z/x/y`` (XYZ)."""
    span = 2 * _HALF_WORLD_M / (1 << z)
    xmin = -_HALF_WORLD_M + x * span
    ymax = _HALF_WORLD_M - y * span
    return xmin, ymax - span, xmin + span, ymax


def polygon_min_zoom(area_m2: float, floor: int) -> int:
    """First zoom at which a polygon of ``area_m2`` (Mercator m²) covers a few pixels."""
    for z in range(floor, MAX_ZOOM):
        pixel_m = 2 * _HALF_WORLD_M / (256 << z)
        if area_m2 / (pixel_m * pixel_m) >= _MIN_POLYGON_PX2:
            return z
    return MAX_ZOOM


@dataclass(frozen=True)
class BasemapSummary:
    """What :func:`basemap_from_osm` wrote."""

    path: Path
    features: int
    tiles: int
    bytes: int
    seconds: float
    bounds: tuple[float, float, float, float]


class _Row(NamedTuple):
    """One kept feature: layer, properties (JSON), first zoom, WGS-84 WKB; with ``by_area`` the
    first zoom is only a floor, raised for small polygons (:func:`polygon_min_zoom`)."""

    layer: str
    props: str
    min_zoom: int
    wkb: bytes
    by_area: bool


class _Collector(osmium.SimpleHandler):
    """Collects the map's features from an OSM stream into batches of WKB (WGS-84)."""

    def __init__(self, flush: Callable[[list[_Row]], None]) -> None:
        super().__init__()
        self._flush = flush
        self._wkb = osmium.geom.WKBFactory()
        self.batch: list[_Row] = []
        self.seen = 0
        self.kept = 0
        self.skipped = 0
        self.progress: Progress | None = None

    def _add(
        self,
        layer: str,
        props: dict[str, str],
        min_zoom: int,
        wkb_hex: str,
        *,
        by_area: bool = False,
    ) -> None:
        props_json = json.dumps(props, ensure_ascii=False)
        self.batch.append(_Row(layer, props_json, min_zoom, bytes.fromhex(wkb_hex), by_area))
        self.kept += 1
        if len(self.batch) >= _BATCH:
            self._flush(self.batch)
            self.batch = []

    def _tick(self) -> None:
        self.seen += 1
        if self.progress is not None and self.seen % _PROGRESS_EVERY == 0:
            self.progress(f"read {self.seen:,} OSM objects, kept {self.kept:,} features")

    def node(self, n: osmium.osm.Node) -> None:
        self._tick()
        place = n.tags.get("place")
        if place not in PLACE_CLASSES:
            return
        name = label_name(n.tags)
        if not name or not n.location.valid():
            return
        cls, zoom = PLACE_CLASSES[place]
        self._add("places", {"class": cls, "name": name}, zoom, self._wkb.create_point(n))

    def way(self, w: osmium.osm.Way) -> None:
        self._tick()
        tags = w.tags
        found = None
        highway = tags.get("highway")
        if highway in ROAD_CLASSES and tags.get("area") != "yes":
            found = ("roads", *ROAD_CLASSES[highway])
        elif (railway := tags.get("railway")) in RAILWAY_CLASSES:
            found = ("railways", *RAILWAY_CLASSES[railway])
        elif (waterway := tags.get("waterway")) in WATERWAY_CLASSES:
            found = ("waterways", *WATERWAY_CLASSES[waterway])
        if found is None:
            return
        layer, cls, zoom = found
        try:
            wkb = self._wkb.create_linestring(w)
        except (osmium.InvalidLocationError, RuntimeError):  # nodes outside the extract
            self.skipped += 1
            return
        props = {"class": cls}
        name = label_name(tags)
        if name:
            props["name"] = name
        self._add(layer, props, zoom, wkb)

    def area(self, a: osmium.osm.Area) -> None:
        tags = a.tags
        kept: tuple[str, dict[str, str], int] | None = None
        if (
            tags.get("natural") == "water"
            or tags.get("waterway") == "riverbank"
            or tags.get("landuse") in ("reservoir", "basin")
        ):
            kept = ("water", {}, 4)
        elif (building := tags.get("building")) and building != "no":
            kept = ("buildings", {}, MAX_ZOOM)
        elif (
            not a.from_way()
            and tags.get("boundary") == "administrative"
            and tags.get("admin_level") in ("5", "6")
        ):
            name = label_name(tags)
            if name:
                self._add_district_label(a, name)
            return
        else:
            for key in ("leisure", "landuse", "natural", "amenity"):
                cls = LANDUSE_CLASSES.get((key, str(tags.get(key) or "")))
                if cls is not None:
                    kept = ("landuse", {"class": cls}, 10)
                    break
        if kept is None:
            return
        layer, props, floor = kept
        try:
            wkb = self._wkb.create_multipolygon(a)
        except (osmium.InvalidLocationError, RuntimeError):
            self.skipped += 1
            return
        self._add(layer, props, floor, wkb, by_area=True)

    def _add_district_label(self, a: osmium.osm.Area, name: str) -> None:
        try:
            polygon = shapely.from_wkb(bytes.fromhex(self._wkb.create_multipolygon(a)))
        except (osmium.InvalidLocationError, RuntimeError, shapely.errors.GEOSException):
            self.skipped += 1
            return
        point = shapely.point_on_surface(polygon)
        props = {"class": "district", "name": name}
        self._add("places", props, DISTRICT_LABEL_ZOOM, shapely.to_wkb(point, hex=True))


class _Builder:
    """The work file: features (Mercator WKB) and the tiles each one is drawn in."""

    def __init__(self, db: sqlite3.Connection, max_zoom: int) -> None:
        self.db = db
        self.max_zoom = max_zoom
        self.bounds = [math.inf, math.inf, -math.inf, -math.inf]
        self.features = 0
        self.characters: set[str] = set()
        db.execute(
            "CREATE TABLE features (fid INTEGER PRIMARY KEY, layer TEXT, props TEXT, geom BLOB)"
        )
        db.execute("CREATE TABLE tiles (tile_id INTEGER, fid INTEGER)")

    def add_batch(self, batch: list[_Row]) -> None:
        if not batch:
            return
        geoms = shapely.from_wkb([row.wkb for row in batch], on_invalid="ignore")
        lonlat_bounds = shapely.bounds(geoms)
        ok = np.isfinite(lonlat_bounds).all(axis=1)
        if ok.any():
            b = lonlat_bounds[ok]
            self.bounds = [
                min(self.bounds[0], float(b[:, 0].min())),
                min(self.bounds[1], float(b[:, 1].min())),
                max(self.bounds[2], float(b[:, 2].max())),
                max(self.bounds[3], float(b[:, 3].max())),
            ]

        def project(coords: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
            x, y = lonlat_to_mercator(coords[:, 0], coords[:, 1])
            return np.column_stack([x, y])

        merc = shapely.transform(geoms, project)
        areas = shapely.area(merc)
        boxes = shapely.bounds(merc)
        rows: list[tuple[int, int]] = []
        features: list[tuple[int, str, str, bytes]] = []
        for i, (layer, props, min_zoom, _, by_area) in enumerate(batch):
            geom = merc[i]
            if geom is None or not ok[i] or shapely.is_empty(geom):
                continue
            if by_area:
                min_zoom = polygon_min_zoom(float(areas[i]), min_zoom)
            min_zoom = min(min_zoom, self.max_zoom)
            fid = self.features
            self.features += 1
            features.append((fid, layer, props, shapely.to_wkb(geom)))
            if '"name"' in props:
                self.characters.update(json.loads(props).get("name", ""))
            for z in range(min_zoom, self.max_zoom + 1):
                rows.extend((tile_id, fid) for tile_id in _tiles_of(geom, boxes[i], z))
        self.db.executemany("INSERT INTO features VALUES (?, ?, ?, ?)", features)
        self.db.executemany("INSERT INTO tiles VALUES (?, ?)", rows)


def _tiles_of(geom: shapely.Geometry, box: np.ndarray[Any, Any], z: int) -> Iterator[int]:
    """PMTiles ids of the zoom-``z`` tiles ``geom`` (Mercator) touches."""
    n = 1 << z
    span = 2 * _HALF_WORLD_M / n
    x0 = max(0, int((box[0] + _HALF_WORLD_M) // span))
    x1 = min(n - 1, int((box[2] + _HALF_WORLD_M) // span))
    y0 = max(0, int((_HALF_WORLD_M - box[3]) // span))
    y1 = min(n - 1, int((_HALF_WORLD_M - box[1]) // span))
    if (x1 - x0 + 1) * (y1 - y0 + 1) <= 4:
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                yield zxy_to_tileid(z, x, y)
        return
    grid_x, grid_y = np.meshgrid(np.arange(x0, x1 + 1), np.arange(y0, y1 + 1))
    xs, ys = grid_x.ravel(), grid_y.ravel()
    xmin = -_HALF_WORLD_M + xs * span
    ymax = _HALF_WORLD_M - ys * span
    tiles = shapely.box(xmin, ymax - span, xmin + span, ymax)
    shapely.prepare(geom)
    hit = shapely.intersects(geom, tiles)
    for x, y in zip(xs[hit], ys[hit], strict=True):
        yield zxy_to_tileid(z, int(x), int(y))


def _encode_tile(z: int, x: int, y: int, rows: list[tuple[str, str, bytes]]) -> bytes | None:
    """One gzip-compressed vector tile of the ``(layer, props, Mercator WKB)`` rows, or None."""
    xmin, ymin, xmax, ymax = tile_bounds_m(z, x, y)
    unit = (xmax - xmin) / EXTENT
    pad = BUFFER * unit
    geoms = shapely.from_wkb([row[2] for row in rows])
    geoms = shapely.clip_by_rect(geoms, xmin - pad, ymin - pad, xmax + pad, ymax + pad)
    # about a third of a screen pixel (tiles are drawn 512 px wide) below the highest zoom
    tolerance = unit * (2.0 if z < MAX_ZOOM else 1.0)
    geoms = shapely.simplify(geoms, tolerance, preserve_topology=False)

    def to_tile_units(coords: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        x = (coords[:, 0] - xmin) / unit
        y = (ymax - coords[:, 1]) / unit  # y down, as the encoder then expects
        return np.round(np.column_stack([x, y]))

    # on the integer grid, then without repeated vertices: a zero-length segment would give a
    # label direction of NaN in the browser, which spoils protomaps-leaflet's label index
    geoms = shapely.remove_repeated_points(shapely.transform(geoms, to_tile_units))
    dimensions = shapely.get_dimensions(geoms)
    size = np.where(dimensions == 2, shapely.area(geoms), shapely.length(geoms))
    keep = ~shapely.is_empty(geoms) & ((dimensions == 0) | (size > 0))
    layers: dict[str, dict[str, list[shapely.Geometry]]] = {}
    for (layer, props, _), geom, kept in zip(rows, geoms, keep, strict=True):
        if kept:
            layers.setdefault(layer, {}).setdefault(props, []).append(geom)
    encoded = []
    for layer in LAYER_FIELDS:  # bottom first
        groups = layers.get(layer)
        if not groups:
            continue
        features: list[dict[str, Any]] = []
        for props, parts in groups.items():
            if layer in _LINE_LAYERS and '"name"' in props:
                # one feature per name and class: fewer, longer labels. The union dissolves
                # overlaps (a way drawn there and back, two one-way halves of a street), which
                # would otherwise give a label a zero-length direction.
                lines = shapely.get_parts(parts)
                lines = lines[(shapely.get_type_id(lines) == 1) & (shapely.length(lines) > 0)]
                merged = shapely.line_merge(shapely.union_all(lines))
                if shapely.is_empty(merged):
                    continue
                parts = [merged]
            decoded = json.loads(props)
            features.extend({"geometry": part, "properties": decoded} for part in parts)
        if features:
            encoded.append({"name": layer, "features": features})
    if not encoded:
        return None
    data = mapbox_vector_tile.encode(
        encoded,
        default_options={
            "y_coord_down": True,
            "extents": EXTENT,
            "on_invalid_geometry": on_invalid_geometry_make_valid,
        },
    )
    return gzip.compress(data, compresslevel=6, mtime=0)


def basemap_from_osm(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    max_zoom: int = MAX_ZOOM,
    progress: Progress | None = None,
    work_dir: str | os.PathLike[str] | None = None,
) -> BasemapSummary:
    """Build a vector-tile base map (PMTiles v3) from an OpenStreetMap extract.

    Parameters
    ----------
    path
        ``.osm`` (XML) or ``.osm.pbf`` file; WGS-84 as OpenStreetMap stores it.
    out
        The archive to write (replaced if it exists; written beside it first, then renamed).
    max_zoom
        Highest zoom of the tiles (default 14; browsers overzoom beyond it).
    progress
        Called with a short line of progress now and then (the CLI prints it to stderr).
    work_dir
        Directory of the temporary node index and feature file (default the system's).

    Returns
    -------
    BasemapSummary

    Raises
    ------
    InvalidInput
        If the file is missing, unreadable as OSM data or holds nothing the map draws, or
        ``max_zoom`` is outside 0-16.

    Examples
    --------
    >>> basemap_from_osm("shanghai.osm.pbf", "facilities.gpkg.basemap.pmtiles")  # doctest: +SKIP
    """
    started = time.perf_counter()
    file_path = Path(path)
    out_path = Path(out)
    if not 0 <= max_zoom <= 16:
        raise InvalidInput("max_zoom must be between 0 and 16", field="max_zoom")
    if not file_path.is_file():
        raise InvalidInput(f"no OSM file at {file_path}", field="path")
    report = progress or (lambda _message: None)
    with tempfile.TemporaryDirectory(prefix="basemap-", dir=work_dir) as tmp:
        db = sqlite3.connect(Path(tmp) / "features.sqlite", isolation_level=None)
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("BEGIN")
        builder = _Builder(db, max_zoom)
        collector = _Collector(builder.add_batch)
        collector.progress = report
        report(f"reading {file_path.name}")
        try:
            collector.apply_file(
                str(file_path), locations=True, idx=f"sparse_file_array,{tmp}/nodes.idx"
            )
        except RuntimeError as exc:
            raise InvalidInput(f"cannot read OSM file {file_path.name}", field="path") from exc
        builder.add_batch(collector.batch)
        db.execute("COMMIT")
        if builder.features == 0:
            raise InvalidInput(f"nothing to draw in {file_path.name}", field="path")
        report(
            f"read {collector.seen:,} OSM objects in {time.perf_counter() - started:,.0f} s: "
            f"{builder.features:,} features "
            f"({collector.skipped:,} skipped for missing nodes); indexing tiles"
        )
        db.execute("CREATE INDEX tiles_by_id ON tiles (tile_id)")
        n_tiles = _write_archive(db, builder, out_path, max_zoom, report)
        db.close()
    size = out_path.stat().st_size
    seconds = time.perf_counter() - started
    report(f"wrote {n_tiles:,} tiles, {size / 1e6:,.1f} MB to {out_path} in {seconds:,.1f} s")
    return BasemapSummary(
        out_path,
        builder.features,
        n_tiles,
        size,
        seconds,
        tuple(builder.bounds),  # type: ignore[arg-type]
    )


def _write_archive(
    db: sqlite3.Connection,
    builder: _Builder,
    out_path: Path,
    max_zoom: int,
    report: Progress,
) -> int:
    from pmtiles.tile import tileid_to_zxy

    (total,) = db.execute("SELECT COUNT(DISTINCT tile_id) FROM tiles").fetchone()
    partial = out_path.with_name(out_path.name + ".partial")
    n_tiles = 0
    with partial.open("wb") as handle:
        writer = Writer(handle)  # type: ignore[no-untyped-call]
        query = db.execute(
            "SELECT t.tile_id, f.layer, f.props, f.geom FROM tiles t "
            "JOIN features f ON f.fid = t.fid ORDER BY t.tile_id"
        )
        current: int | None = None
        rows: list[tuple[str, str, bytes]] = []
        done = 0

        def flush() -> None:
            nonlocal n_tiles, done
            if current is None:
                return
            data = _encode_tile(*tileid_to_zxy(current), rows)
            if data is not None:
                writer.write_tile(current, data)  # type: ignore[no-untyped-call]
                n_tiles += 1
            done += 1
            if done % 5000 == 0:
                report(f"encoded {done:,} of {total:,} tiles")

        for tile_id, layer, props, geom in query:
            if tile_id != current:
                flush()
                current, rows = tile_id, []
            rows.append((layer, props, geom))
        flush()
        lon_min, lat_min, lon_max, lat_max = builder.bounds
        writer.finalize(  # type: ignore[no-untyped-call]
            {
                "tile_type": TileType.MVT,
                "tile_compression": Compression.GZIP,
                "min_zoom": 0,
                "max_zoom": max_zoom,
                "min_lon_e7": int(lon_min * 1e7),
                "min_lat_e7": int(lat_min * 1e7),
                "max_lon_e7": int(lon_max * 1e7),
                "max_lat_e7": int(lat_max * 1e7),
                "center_zoom": min(max_zoom, 12),
                "center_lon_e7": int((lon_min + lon_max) / 2 * 1e7),
                "center_lat_e7": int((lat_min + lat_max) / 2 * 1e7),
            },
            {
                "name": "职工设施地图 base map",
                "attribution": ATTRIBUTION,
                "license": "ODbL-1.0",
                "vector_layers": [
                    {"id": layer, "fields": fields, "minzoom": 0, "maxzoom": max_zoom}
                    for layer, fields in LAYER_FIELDS.items()
                ],
                "label_characters": "".join(sorted(builder.characters)),
            },
        )
    partial.replace(out_path)
    return n_tiles


__all__ = [
    "ATTRIBUTION",
    "BASEMAP_SUFFIX",
    "MAX_ZOOM",
    "BasemapArchive",
    "BasemapSummary",
    "basemap_from_osm",
    "basemap_path_for",
    "label_name",
    "lonlat_to_mercator",
    "tile_bounds_m",
]
