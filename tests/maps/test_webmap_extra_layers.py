"""Extra GeoJSON overlays of the facility web map (``facility_map(extra_layers=...)``)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import folium
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import mapping

from geodata.crs import from_wgs84
from geodata.errors import InvalidInput
from maps.webmap import facility_map, facility_map_html

NOW = dt.datetime(2026, 11, 26, 10, 0)
AREA = shapely.Point(121.4737, 31.2304).buffer(0.01, quad_segs=4)  # WGS-84 degrees


def _facilities() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["a"],
            "name": ["公开爱心驿站"],
            "kind": ["rest_stop"],
            "lon": [121.4745],
            "lat": [31.2304],
            "access": ["public"],
        }
    )


def _feature() -> dict[str, Any]:
    return {"type": "Feature", "properties": {"note": "SECRET-PROPERTY"}, "geometry": mapping(AREA)}


def _extra_layer(fmap: folium.Map) -> folium.GeoJson:
    layers = [c for c in fmap._children.values() if isinstance(c, folium.GeoJson)]
    assert len(layers) == 1  # boundaries are off: only the extra layer
    return layers[0]


def _vertices(layer: folium.GeoJson) -> np.ndarray:
    (feature,) = layer.data["features"]
    return np.asarray(feature["geometry"]["coordinates"][0], dtype=float)


def _control_names(html: str) -> list[str]:
    """Names of the GeoJSON overlays in the layer control (decoded JS strings)."""
    found = re.findall(r'"((?:[^"\\]|\\.)*)"\s*:\s*geo_json_', html)
    return [json.loads(f'"{name}"') for name in found]


def test_extra_layer_is_drawn_with_its_geometry_only() -> None:
    fmap = facility_map(
        _facilities(), now=NOW, show_boundaries=False, extra_layers=[("步行15分钟", _feature())]
    )
    layer = _extra_layer(fmap)
    np.testing.assert_allclose(_vertices(layer), np.asarray(AREA.exterior.coords), atol=1e-12)
    assert layer.data["features"][0]["properties"] == {}
    html = fmap.get_root().render()
    assert _control_names(html) == ["步行15分钟"]
    assert "SECRET-PROPERTY" not in html
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?(https?:)?//""", html)


def test_extra_layer_name_is_escaped() -> None:
    name = "<img src=q9 onerror=alert(9)>{{ 7 * 7 }}"
    html = facility_map_html(
        _facilities(), now=NOW, show_boundaries=False, extra_layers=[(name, _feature())]
    )
    assert "<img src=q9" not in html
    # Leaflet's layer control sets names as HTML: the text must arrive escaped, and no
    # template pass may evaluate the braces.
    assert _control_names(html) == [
        "&lt;img src=q9 onerror=alert(9)&gt;&#123;&#123; 7 * 7 &#125;&#125;"
    ]


def test_amap_shifts_the_extra_layer_to_gcj02() -> None:
    fmap = facility_map(
        _facilities(),
        now=NOW,
        show_boundaries=False,
        base_map="amap",
        extra_layers=[("iso", {"type": "FeatureCollection", "features": [_feature()]})],
    )
    got = _vertices(_extra_layer(fmap))
    wgs = np.asarray(AREA.exterior.coords)
    lon, lat = from_wgs84(wgs[:, 0], wgs[:, 1], "gcj02")
    np.testing.assert_allclose(got, np.column_stack([lon, lat]), atol=1e-9)
    assert np.abs(got - wgs).max() > 1e-3  # the shift is hundreds of metres


def test_extra_layer_must_be_geojson() -> None:
    with pytest.raises(InvalidInput):
        facility_map(_facilities(), now=NOW, extra_layers=[("bad", {"type": "Nonsense"})])
