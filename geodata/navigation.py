"""Links that open a facility in a navigation app, each in the coordinate system the app expects.

* Amap (高德) URI API: ``https://uri.amap.com/marker`` with ``position=LON,LAT`` in **GCJ-02** and
  ``coordinate=gaode``.
* Baidu URI API: ``https://api.map.baidu.com/marker`` with ``location=LAT,LON`` in **BD-09**
  and ``coord_type=bd09ll`` (Baidu's own system; its default).
* ``geo:`` URI (RFC 5870): ``geo:LAT,LON`` in **WGS-84**, the only system RFC 5870 defines, with the
  ``?q=LAT,LON(NAME)`` label that Android map apps read.

Coordinates are written with 6 decimals (about 0.1 m). Names are percent-encoded like JavaScript's
``encodeURIComponent``, so the web map's popups (``maps/static/facilitymap.js``) build the very
same strings.
"""

from __future__ import annotations

from urllib.parse import quote

import numpy as np

from geodata.crs import from_wgs84
from geodata.errors import InvalidInput
from geodata.geodesy import invalid_degrees

#: Caller identification the Amap and Baidu URI APIs ask for (``src`` parameter).
NAVIGATION_SOURCE = "webapp.zhigong.facilityfinder"
#: Characters ``encodeURIComponent`` leaves as they are (besides ASCII letters and digits).
_URI_COMPONENT_SAFE = "-_.!~*'()"


def uri_component(text: str) -> str:
    """Percent-encode ``text`` exactly as JavaScript's ``encodeURIComponent`` does (UTF-8)."""
    return quote(text, safe=_URI_COMPONENT_SAFE)


#: :data:`NAVIGATION_SOURCE` as it goes into a link.
_SOURCE_COMPONENT = uri_component(NAVIGATION_SOURCE)


def navigation_links(lon_wgs84: float, lat_wgs84: float, name: str) -> dict[str, str]:
    """Navigation links for one place.

    Parameters
    ----------
    lon_wgs84, lat_wgs84
        Position in WGS-84 degrees.
    name
        Label shown by the navigation app (any text; it is percent-encoded).

    Returns
    -------
    dict
        ``{"amap": ..., "baidu": ..., "geo": ...}``: the Amap link carries GCJ-02, the Baidu link
        BD-09 and the ``geo:`` URI WGS-84 coordinates (see the module docstring).

    Raises
    ------
    InvalidInput
        If the position is not finite or outside the lon/lat ranges.

    Examples
    --------
    >>> navigation_links(121.4737, 31.2304, "人民广场")["geo"]
    'geo:31.230400,121.473700?q=31.230400,121.473700(%E4%BA%BA%E6%B0%91%E5%B9%BF%E5%9C%BA)'
    """
    lon, lat = float(lon_wgs84), float(lat_wgs84)
    if invalid_degrees(lon, "lon") or invalid_degrees(lat, "lat"):
        raise InvalidInput(f"invalid WGS-84 position ({lon}, {lat})", field="lon")
    gcj_lon, gcj_lat = (float(np.asarray(v).ravel()[0]) for v in from_wgs84(lon, lat, "gcj02"))
    bd_lon, bd_lat = (float(np.asarray(v).ravel()[0]) for v in from_wgs84(lon, lat, "bd09"))
    return links_from_positions((lon, lat), (gcj_lon, gcj_lat), (bd_lon, bd_lat), name)


def links_from_positions(
    wgs84: tuple[float, float],
    gcj02: tuple[float, float],
    bd09: tuple[float, float],
    name: str,
) -> dict[str, str]:
    """The links of :func:`navigation_links` from one place's (lon, lat) in each system, for
    callers that convert many places at once."""
    (lon, lat), (gcj_lon, gcj_lat), (bd_lon, bd_lat) = wgs84, gcj02, bd09
    label, src = uri_component(name), _SOURCE_COMPONENT
    return {
        "amap": (
            f"https://uri.amap.com/marker?position={gcj_lon:.6f},{gcj_lat:.6f}"
            f"&name={label}&src={src}&coordinate=gaode&callnative=1"
        ),
        "baidu": (
            f"https://api.map.baidu.com/marker?location={bd_lat:.6f},{bd_lon:.6f}"
            f"&title={label}&content={label}&output=html&coord_type=bd09ll&src={src}"
        ),
        "geo": f"geo:{lat:.6f},{lon:.6f}?q={lat:.6f},{lon:.6f}({label})",
    }
