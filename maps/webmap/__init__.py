"""The embeddable facility web map: a Folium map that works with no third-party network access.

:func:`facility_map` builds a :class:`folium.Map` with the facilities (one clustering of every
kind, a distinct colour and shape per kind, cluster badges showing their mix, a folding legend),
district boundaries, a "locate me" control, a panel listing the facilities nearest to the viewer
(asked of the service's ``/nearest``; kind tabs, an "open now" toggle, a search) and a popup per
facility (name, kind, access class, address, hours in words with the open state and its next
change, last verification, amenities, stars, phone, navigation links). Chinese labels by default,
English on request. :func:`error_page_html` is the page ``/map`` answers its errors with.

How it stays fast and offline
-----------------------------
* Folium draws the skeleton (map, tile layer, one feature group per kind, the boundary GeoJSON,
  the layer control), but none of folium's CDN links: every script and stylesheet comes from
  :mod:`maps.assets`, served from ``/static/...`` or inlined in a standalone file.
* The facilities are not folium elements. They travel as one compact column-wise JSON payload
  (WGS-84 micro-degrees, codes for kind / access / open state, an amenity bit mask); our
  ``facilitymap.js`` clusters them with the vendored supercluster, draws only what is in view
  (no two badges or markers overlapping) and builds a popup only when a marker is clicked. Payloads
  over 1 MB are gzip-compressed and inflated in the browser with ``DecompressionStream``.
* Text from the data never becomes HTML: the payload sits in a ``<script type="application/json">``
  element (with ``<`` escaped) and the popups are built with ``textContent``. Nothing from the data
  passes through folium's templates either (branca re-parses rendered HTML as a Jinja template).

Base maps and coordinate systems
--------------------------------
Facility positions are WGS-84. ``"vector"`` is our own street map, served by the same server
(:mod:`maps.basemap`; tiles built from OpenStreetMap, WGS-84 Web Mercator, no third-party
request). ``"none"`` (the default; no tiles, no third-party request), ``"vector"``, ``"osm"`` and
``"tianditu"`` (CGCS2000, equal to WGS-84 at map scale) draw overlays in WGS-84.
Amap tiles are drawn in GCJ-02, so on ``"amap"`` every overlay is shifted to GCJ-02: the
boundaries here with :func:`geodata.crs.from_wgs84`, the markers and the user's position in the
browser with a port of the same formula (tested to agree within 1e-9 degree).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from maps.webmap.basemaps import BaseMapSpec, TileSource, base_map_spec
from maps.webmap.boundaries import BOUNDARY_SIMPLIFY_DEG
from maps.webmap.error_page import error_page_html
from maps.webmap.labels import (
    ACCESS_LABELS,
    AMENITY_LABELS,
    BASE_MAPS,
    ERROR_LABELS,
    LANGUAGES,
    REPORT_LABELS,
    STATE_LABELS,
    UI_LABELS,
    BaseMap,
    DisplayCrs,
    Language,
)
from maps.webmap.payload import (
    COMPRESS_ABOVE_BYTES,
    FLAG_MAINLAND,
    FLAG_PROVISIONAL,
    FLAG_TEMPORARILY_CLOSED,
    GZIP_LEVEL,
    LOCAL_TIMEZONE,
    MAINLAND_REGION_FILE,
    STATE_CLOSED,
    STATE_OPEN,
    STATE_UNKNOWN,
    encode_payload,
    facility_payload,
    filter_facilities,
)

if TYPE_CHECKING:
    from maps.webmap.page import (
        DEFAULT_CENTER,
        DEFAULT_ZOOM,
        NEARBY_K,
        facility_map,
        facility_map_html,
    )

#: Names of :mod:`maps.webmap.page`, which loads Folium: imported on first use, so that a service
#: worker that draws no map (``/nearest``, OGC items) never loads it, while the labels, base
#: maps, payload and error page above are at hand.
_PAGE_NAMES = frozenset(
    {"DEFAULT_CENTER", "DEFAULT_ZOOM", "NEARBY_K", "facility_map", "facility_map_html"}
)


def __getattr__(name: str) -> Any:
    if name in _PAGE_NAMES:
        value = getattr(importlib.import_module("maps.webmap.page"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACCESS_LABELS",
    "AMENITY_LABELS",
    "BASE_MAPS",
    "BOUNDARY_SIMPLIFY_DEG",
    "COMPRESS_ABOVE_BYTES",
    "DEFAULT_CENTER",
    "DEFAULT_ZOOM",
    "ERROR_LABELS",
    "FLAG_MAINLAND",
    "FLAG_PROVISIONAL",
    "FLAG_TEMPORARILY_CLOSED",
    "GZIP_LEVEL",
    "LANGUAGES",
    "LOCAL_TIMEZONE",
    "MAINLAND_REGION_FILE",
    "NEARBY_K",
    "REPORT_LABELS",
    "STATE_CLOSED",
    "STATE_LABELS",
    "STATE_OPEN",
    "STATE_UNKNOWN",
    "UI_LABELS",
    "BaseMap",
    "BaseMapSpec",
    "DisplayCrs",
    "Language",
    "TileSource",
    "base_map_spec",
    "encode_payload",
    "error_page_html",
    "facility_map",
    "facility_map_html",
    "facility_payload",
    "filter_facilities",
]
