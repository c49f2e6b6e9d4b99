"""Pieces shared by the routes: GeoJSON responses, coordinate output, bbox parsing."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from starlette.responses import JSONResponse

from api.errors import invalid_parameter
from geodata.crs import from_wgs84, to_wgs84
from geodata.geodesy import invalid_degrees, range_text

GEOJSON_MEDIA_TYPE = "application/geo+json"


def dumps(document: Any) -> bytes:
    """Compact UTF-8 JSON (Chinese kept as is; ``<``, ``>`` and ``&`` as they are: JSON
    responses are never HTML)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )


class GeoJSONResponse(JSONResponse):
    """A response with ``Content-Type: application/geo+json``."""

    media_type = GEOJSON_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        """Serialise ``content`` (bytes pass through)."""
        if isinstance(content, bytes):
            return content
        return dumps(content)


class JSONBytesResponse(GeoJSONResponse):
    """A compact ``application/json`` response."""

    media_type = "application/json"


def lonlat_out(
    lon: np.ndarray | float, lat: np.ndarray | float, crs: str
) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 degrees converted to ``crs`` (wgs84, cgcs2000, gcj02, bd09), as float arrays."""
    lon_a = np.atleast_1d(np.asarray(lon, dtype=float))
    lat_a = np.atleast_1d(np.asarray(lat, dtype=float))
    if crs == "wgs84" or lon_a.size == 0:
        return lon_a, lat_a
    x, y = from_wgs84(lon_a, lat_a, crs)
    return np.atleast_1d(np.asarray(x, dtype=float)), np.atleast_1d(np.asarray(y, dtype=float))


def lonlat_in(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """A point given in ``crs`` converted to WGS-84 degrees."""
    if crs == "wgs84":
        return float(lon), float(lat)
    x, y = to_wgs84(np.array([lon], dtype=float), np.array([lat], dtype=float), crs)
    return float(np.asarray(x).ravel()[0]), float(np.asarray(y).ravel()[0])


def parse_bbox(
    text: str, *, parameter: str = "bbox", lat_first: bool = False
) -> tuple[float, float, float, float]:
    """``minlon,minlat,maxlon,maxlat`` (4 or 6 numbers; with ``lat_first`` the axis order is
    lat, lon as in EPSG:4326) as ``(minlon, minlat, maxlon, maxlat)``.

    Raises a 400 problem naming ``parameter`` when the text is not such a box.
    """
    parts = text.split(",")
    if len(parts) not in (4, 6):
        raise invalid_parameter(parameter, "expected 4 numbers: minlon,minlat,maxlon,maxlat")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise invalid_parameter(parameter, "every bbox value must be a number") from None
    if not all(math.isfinite(v) for v in values):
        raise invalid_parameter(parameter, "bbox values must be finite")
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    if lat_first:
        values = [values[1], values[0], values[3], values[2]]
    minlon, minlat, maxlon, maxlat = values
    if (
        invalid_degrees([minlon, maxlon], "lon").any()
        or invalid_degrees([minlat, maxlat], "lat").any()
    ):
        raise invalid_parameter(
            parameter,
            f"longitudes must lie in {range_text('lon')} and latitudes "
            f"in {range_text('lat')} (in this order: lon, lat)",
        )
    if minlat > maxlat:
        raise invalid_parameter(parameter, "the lower latitude is larger than the upper one")
    if minlon > maxlon:
        raise invalid_parameter(parameter, "boxes across the antimeridian are not supported")
    return minlon, minlat, maxlon, maxlat


_LINK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["href", "rel"],
    "properties": {
        "href": {"type": "string"},
        "rel": {"type": "string"},
        "type": {"type": "string"},
        "title": {"type": "string"},
    },
}
_POINT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"type": "string", "enum": ["Point"]},
        "coordinates": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
    },
}


def feature_schema(
    properties: dict[str, Any], required: list[str], geometry: dict[str, Any] | None = None
) -> dict[str, Any]:
    """JSON schema of a GeoJSON feature with the given property schemas (OpenAPI)."""
    return {
        "type": "object",
        "required": ["type", "id", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "string"},
            "geometry": geometry or _POINT_SCHEMA,
            "properties": {"type": "object", "required": required, "properties": properties},
            "links": {"type": "array", "items": _LINK_SCHEMA},
        },
    }


def collection_schema(feature: dict[str, Any], *, paged: bool) -> dict[str, Any]:
    """JSON schema of a GeoJSON FeatureCollection of ``feature`` (OpenAPI)."""
    required = ["type", "features", "numberReturned"]
    props: dict[str, Any] = {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "items": feature},
        "numberReturned": {"type": "integer", "minimum": 0},
        "timeStamp": {"type": "string"},
    }
    if paged:
        required += ["links", "numberMatched"]
        props |= {
            "links": {"type": "array", "items": _LINK_SCHEMA},
            "numberMatched": {"type": "integer", "minimum": 0},
        }
    return {"type": "object", "required": required, "properties": props}


def geojson_response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An OpenAPI 200 response entry with ``application/geo+json`` content."""
    return {"description": description, "content": {GEOJSON_MEDIA_TYPE: {"schema": schema}}}
