"""Base maps: tile sources and attributions per base map and language."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from geodata.errors import InvalidInput
from maps.webmap.labels import BASE_MAPS, DisplayCrs

if TYPE_CHECKING:
    from maps.basemap import VectorTiles

_TIANDITU_KEY_RE = re.compile(r"^[A-Za-z0-9]{8,64}$")


@dataclass(frozen=True)
class TileSource:
    """One tile layer of a base map: URL template, subdomains and HTML attribution."""

    url: str
    subdomains: str
    attribution: str
    max_zoom: int


@dataclass(frozen=True)
class BaseMapSpec:
    """A base map: its raster tile layers (bottom first) or served vector tiles, and the
    coordinate system its tiles use."""

    key: str
    crs: DisplayCrs
    tiles: tuple[TileSource, ...]
    max_zoom: int
    vector: VectorTiles | None = None


_TIANDITU_WMTS = (
    "https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)
_TIANDITU_ATTRIBUTION = '&copy; <a href="https://www.tianditu.gov.cn/">天地图</a>'


def base_map_spec(
    base_map: str,
    *,
    tianditu_key: str | None = None,
    vector_tiles: VectorTiles | None = None,
) -> BaseMapSpec:
    """Describe a base map.

    Parameters
    ----------
    base_map
        ``"none"`` (blank background), ``"vector"`` (our served tiles), ``"osm"``,
        ``"tianditu"`` or ``"amap"``.
    tianditu_key
        Tianditu browser key (``tk``), required for ``"tianditu"``.
    vector_tiles
        Where the served vector tiles are, required for ``"vector"``.

    Returns
    -------
    BaseMapSpec

    Raises
    ------
    InvalidInput
        For an unknown base map, ``"tianditu"`` without a well-formed key or ``"vector"``
        without tiles.
    """
    if base_map == "none":
        return BaseMapSpec("none", "wgs84", (), 19)
    if base_map == "vector":
        if vector_tiles is None:
            raise InvalidInput("no vector base map is configured", field="base_map")
        return BaseMapSpec("vector", "wgs84", (), 19, vector_tiles)
    if base_map == "osm":
        osm = TileSource(
            "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
            "",
            '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> '
            "contributors",
            19,
        )
        return BaseMapSpec("osm", "wgs84", (osm,), 19)
    if base_map == "tianditu":
        if not tianditu_key or not _TIANDITU_KEY_RE.match(tianditu_key):
            raise InvalidInput(
                "the Tianditu base map needs a Tianditu key (letters and digits)",
                field="tianditu_key",
            )
        layers = tuple(
            TileSource(
                _TIANDITU_WMTS.format(layer=layer, key=tianditu_key),
                "01234567",
                _TIANDITU_ATTRIBUTION,
                18,
            )
            for layer in ("vec", "cva")
        )
        return BaseMapSpec("tianditu", "wgs84", layers, 18)
    if base_map == "amap":
        amap = TileSource(
            "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
            "&x={x}&y={y}&z={z}",
            "1234",
            '&copy; <a href="https://www.amap.com/">高德地图</a>',
            18,
        )
        return BaseMapSpec("amap", "gcj02", (amap,), 18)
    raise InvalidInput(
        f"unknown base map {base_map!r}; use one of {', '.join(BASE_MAPS)}", field="base_map"
    )
