"""The coverage web map: districts shaded by coverage share, reach areas, gaps, proposed sites.

A :class:`folium.Map` without any CDN link: folium's default scripts and stylesheets (Leaflet,
jQuery, Bootstrap, Font Awesome from jsDelivr / cdnjs, blocked or slow in mainland China) are
dropped and Leaflet comes from :mod:`maps.assets` instead, inlined into a standalone page or
served from ``static_url``. Only Leaflet features are used (GeoJSON layers, circle markers,
tooltips, the layer control); the legend is plain HTML and Chinese text can carry an embedded
subset of Noto Sans CJK SC. The background is our own served vector street map when
``vector_tiles`` is given (:mod:`maps.basemap`; the choropleth then lets it show through), else
the district polygons alone; no third-party tiles are ever loaded.
"""

from __future__ import annotations

import html
from typing import Any, cast

import folium
import numpy as np
from branca.element import Figure
from numpy.typing import ArrayLike

from finder.coverage import CoverageResult, SampleGrid, coverage_layers
from finder.siting import SitingResult
from geodata.errors import InvalidInput
from maps.assets import (
    ASSETS,
    BASEMAP_ASSETS,
    AssetMode,
    OfflineMap,
    RawHtml,
    asset_tags,
    cjk_characters,
    cjk_font_face_css,
)
from maps.basemap import VectorBaseLayer, VectorTiles
from maps.printmap import (
    GAP_COLOUR,
    KIND_STYLE,
    REACH_COLOUR,
    SITE_COLOUR,
    area_basis_zh,
    map_inputs,
)

#: Choropleth classes: (upper bound of the covered share, colour), light to dark blue.
SHARE_CLASSES: tuple[tuple[float, str], ...] = (
    (0.2, "#eff3ff"),
    (0.4, "#bdd7e7"),
    (0.6, "#6baed6"),
    (0.8, "#3182bd"),
    (1.0, "#08519c"),
)


def share_colour(share: float | None) -> str:
    """Choropleth colour of a covered share (0-1); grey when unknown."""
    if share is None or not np.isfinite(share):
        return "#d9d9d9"
    for upper, colour in SHARE_CLASSES:
        if share <= upper:
            return colour
    return SHARE_CLASSES[-1][1]


def _legend_html(radius_m: float, area_basis: str, with_sites: bool) -> str:
    rows = []
    lower = 0.0
    for upper, colour in SHARE_CLASSES:
        rows.append(f'<div><i style="background:{colour}"></i>覆盖率 {lower:.0%}–{upper:.0%}</div>')
        lower = upper
    rows.append(f'<div><i style="background:{REACH_COLOUR}"></i>{radius_m:,.0f} 米服务范围</div>')
    rows.append(f'<div><i style="background:{GAP_COLOUR}"></i>服务空白</div>')
    for label, _, colour in KIND_STYLE.values():
        rows.append(f'<div><i style="background:{colour};border-radius:50%"></i>{label}</div>')
    if with_sites:
        rows.append(f'<div><i style="background:{SITE_COLOUR}"></i>建议新址</div>')
    rows.append(f'<div class="basis">面积基准：{html.escape(area_basis_zh(area_basis))}</div>')
    style = (
        "position:fixed;bottom:24px;right:12px;z-index:1000;background:white;padding:8px 10px;"
        "font:12px/1.5 'FacilityMap CJK',sans-serif;border-radius:4px;"
        "box-shadow:0 1px 4px rgba(0,0,0,.3);max-width:260px"
    )
    css = (
        "<style>.coverage-legend i{display:inline-block;width:12px;height:12px;"
        "margin-right:6px;vertical-align:middle}.coverage-legend .basis{color:#555;"
        "font-size:11px;margin-top:4px}</style>"
    )
    return f'{css}<div class="coverage-legend" style="{style}"><b>图例</b>{"".join(rows)}</div>'


def coverage_map(
    grid: SampleGrid,
    lon: ArrayLike,
    lat: ArrayLike,
    kind: ArrayLike | None = None,
    *,
    radius_m: float = 1000.0,
    adcode: str | None = None,
    coverage: CoverageResult | None = None,
    sites: SitingResult | None = None,
    asset_mode: AssetMode = "inline",
    static_url: str = "/static",
    embed_cjk_font: bool = True,
    vector_tiles: VectorTiles | None = None,
    approval_no: str | None = None,
) -> folium.Map:
    """Build the coverage web map.

    Parameters
    ----------
    grid
        Sample grid (districts and their bases).
    lon, lat
        Facilities, WGS-84 degrees.
    kind
        Facility kind per facility, for colours (default all ``worker_station``).
    radius_m
        Reach, metres.
    adcode
        Show reach and gaps for this district only (default all; the choropleth always shows
        every district of the grid).
    coverage
        Per-district figures for the choropleth; computed when not given.
    sites
        Proposed sites to mark.
    asset_mode
        ``"inline"`` (standalone file) or ``"served"`` (``<script src>`` under ``static_url``).
    static_url
        URL prefix of the static directories (``"served"`` only).
    embed_cjk_font
        Embed Noto Sans CJK SC reduced to the page's characters.
    vector_tiles
        Draw the served vector base map under the layers.
    approval_no
        Map approval number (审图号) shown in the attribution with the base map.

    Returns
    -------
    folium.Map
        Render with ``m.get_root().render()`` or save with ``m.save(path)``.

    Raises
    ------
    InvalidInput
        On an unknown kind or asset mode.
    UnknownDistrict
        If ``adcode`` is not in the grid.
    """
    if asset_mode not in ("inline", "served"):
        raise InvalidInput("asset_mode must be 'inline' or 'served'", field="asset_mode")
    lon_arr, lat_arr, kinds, adcodes, coverage = map_inputs(
        grid, lon, lat, kind, adcode=adcode, radius_m=radius_m, coverage=coverage
    )

    districts = grid.districts
    shown = districts if adcodes is None else districts[districts["adcode"].isin(adcodes)]
    west, south, east, north = (float(v) for v in shown.total_bounds)
    fmap = OfflineMap(
        location=[(south + north) / 2, (west + east) / 2],
        tiles=None,
        control_scale=True,
        zoom_start=10,
    )
    cast(Figure, fmap.get_root()).title = "职工服务设施覆盖图"
    if vector_tiles is not None:
        fmap.options["max_zoom"] = 19
        VectorBaseLayer(vector_tiles, approval_no=approval_no).add_to(fmap)

    choropleth = coverage.to_geojson(districts)
    for feature in choropleth["features"]:
        props = feature["properties"]
        props["covered_pct"] = (
            "—" if props["covered_share"] is None else f"{props['covered_share']:.1%}"
        )
        props["twice_pct"] = (
            "—" if props["covered_twice_share"] is None else f"{props['covered_twice_share']:.1%}"
        )
        props["gap_km"] = (
            "—" if props["largest_gap_m"] is None else f"{props['largest_gap_m'] / 1000:.2f} km"
        )
    folium.GeoJson(
        choropleth,
        name="覆盖率（分区）",
        style_function=lambda f: {
            "fillColor": share_colour(f["properties"]["covered_share"]),
            "color": "#555555",
            "weight": 1,
            "fillOpacity": 0.75 if vector_tiles is None else 0.45,
        },
        tooltip=folium.GeoJsonTooltip(
            fields=["name", "covered_pct", "twice_pct", "gap_km", "facilities"],
            aliases=["区", "覆盖率", "双重覆盖", "最大空白", "设施数"],
        ),
    ).add_to(fmap)

    layers = coverage_layers(grid, lon_arr, lat_arr, radius_m=radius_m, adcodes=adcodes)
    folium.GeoJson(
        layers["reach"],
        name=f"{radius_m:,.0f} 米服务范围",
        style_function=lambda f: {
            "fillColor": REACH_COLOUR,
            "color": REACH_COLOUR,
            "weight": 0,
            "fillOpacity": 0.6,
        },
        interactive=False,
    ).add_to(fmap)
    folium.GeoJson(
        layers["gaps"],
        name="服务空白",
        style_function=lambda f: {
            "fillColor": GAP_COLOUR,
            "color": "#c92a2a",
            "weight": 0.5,
            "fillOpacity": 0.6,
        },
        interactive=False,
    ).add_to(fmap)

    points: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"kind": str(k), "label": KIND_STYLE[str(k)][0]},
                "geometry": {"type": "Point", "coordinates": [round(x, 6), round(y, 6)]},
            }
            for x, y, k in zip(lon_arr.tolist(), lat_arr.tolist(), kinds.tolist(), strict=True)
            if west - 0.05 <= x <= east + 0.05 and south - 0.05 <= y <= north + 0.05
        ],
    }
    folium.GeoJson(
        points,
        name="设施",
        marker=folium.CircleMarker(radius=3, weight=0.5, fill=True),
        style_function=lambda f: {
            "fillColor": KIND_STYLE[f["properties"]["kind"]][2],
            "color": "white",
            "fillOpacity": 0.9,
        },
        tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False),
    ).add_to(fmap)
    if sites is not None and sites.lon.size:
        folium.GeoJson(
            sites.to_geojson(),
            name="建议新址",
            marker=folium.CircleMarker(radius=7, weight=1.5, fill=True),
            style_function=lambda f: {
                "fillColor": SITE_COLOUR,
                "color": "black",
                "fillOpacity": 0.9,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["rank", "gain"], aliases=["建议新址", "新增覆盖"]
            ),
        ).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.fit_bounds([[south, west], [north, east]])

    figure = cast(Figure, fmap.get_root())
    assets = ASSETS if vector_tiles is None else ASSETS + BASEMAP_ASSETS
    head = ['<link rel="icon" href="data:,">', *asset_tags(asset_mode, static_url, assets)]
    legend = _legend_html(radius_m, coverage.area_basis, sites is not None)
    if embed_cjk_font:
        texts = [
            legend,
            *map(str, districts["name"]),
            "覆盖率（分区）区双重覆盖最大空白设施数",
            "米服务范围服务空白设施建议新址新增覆盖职工服务设施覆盖图",
            vector_tiles.label_characters if vector_tiles else "",
            approval_no or "",
        ]
        font_css = cjk_font_face_css(cjk_characters(texts))
        if font_css:
            head.append(
                f"<style>{font_css} .leaflet-container{{font-family:'FacilityMap CJK',"
                "sans-serif}</style>"
            )
    for i, tag in enumerate(head):
        figure.header.add_child(RawHtml(tag), name=f"coverage_asset_{i}")
    figure.html.add_child(RawHtml(legend), name="coverage_legend")
    return fmap


def coverage_map_html(grid: SampleGrid, lon: ArrayLike, lat: ArrayLike, **options: Any) -> str:
    """The coverage map as one HTML page (see :func:`coverage_map` for the options)."""
    return str(coverage_map(grid, lon, lat, **options).get_root().render())
