"""The coverage web map: a choropleth of the covered share per district, gaps, proposed sites.

One reading: each district is filled, opaquely, with the colour of its share class
(:data:`SHARE_CLASSES`, one sequential palette, breaks stated in the legend), so the colour on
screen is the legend swatch's colour; the parts out of reach (gaps) are hatched on top in one
colour (:data:`GAP_HATCH_COLOUR`), leaving the district's class colour visible between the
hatch lines. District names and shares are labelled (``maps/static/coveragemap.js``: text
nodes, overlapping labels hidden per zoom level), the page has a title, and the legend is a
``<details>`` element that starts folded on a phone.

A :class:`folium.Map` without any CDN link: folium's default scripts and stylesheets (Leaflet,
jQuery, Bootstrap, Font Awesome from jsDelivr / cdnjs, blocked or slow in mainland China) are
dropped and Leaflet and our script come from :mod:`maps.assets` instead, inlined into a
standalone page or served from ``static_url``. Chinese text can carry an embedded subset of Noto
Sans CJK SC. No third-party tiles are loaded (``tiles=None``). With ``vector_tiles`` our own
served street map (:mod:`maps.basemap`) lies under every layer: it shows around the districts and
wherever the choropleth layer is switched off (the fills stay opaque, true to the legend).
"""

from __future__ import annotations

import html
from typing import Any, cast

import folium
import numpy as np
from branca.element import Figure
from folium.map import FitBounds
from numpy.typing import ArrayLike
from shapely.ops import polylabel

from finder.coverage import CoverageResult, SampleGrid, coverage_layers
from finder.siting import SitingResult
from geodata.errors import InvalidInput
from geodata.kinds import KIND_BY_NAME, KIND_SPECS
from maps.assets import (
    BASEMAP_ASSETS,
    Asset,
    AssetMode,
    asset_tags,
    cjk_characters,
    cjk_font_face_css,
)
from maps.basemap import VectorBaseLayer, VectorTiles
from maps.elements import OfflineMap, RawHtml
from maps.printmap import (
    SITE_COLOUR,
    area_basis_zh,
    map_inputs,
)

#: Choropleth classes: (upper bound of the covered share, inclusive; colour), light to dark
#: (ColorBrewer "Blues", 5 classes, sequential).
SHARE_CLASSES: tuple[tuple[float, str], ...] = (
    (0.2, "#eff3ff"),
    (0.4, "#bdd7e7"),
    (0.6, "#6baed6"),
    (0.8, "#3182bd"),
    (1.0, "#08519c"),
)
#: Fill of a district whose share is unknown.
NO_DATA_COLOUR = "#d9d9d9"
#: Colour of the hatch lines drawn over the gaps (not a colour of the palette or of a kind).
GAP_HATCH_COLOUR = "#c92a2a"
#: Outline of the districts.
DISTRICT_EDGE_COLOUR = "#4d4d4d"
_HATCH_ID = "coverage-gap-hatch"
#: The page's assets in load order: Leaflet, then the coverage map's stylesheet and script.
COVERAGE_ASSETS: tuple[Asset, ...] = (
    Asset("leaflet", "leaflet.css", "css"),
    Asset("facilitymap", "coveragemap.css", "css"),
    Asset("leaflet", "leaflet.js", "js"),
    Asset("facilitymap", "coveragemap.js", "js"),
)


def share_class(share: float | None) -> int | None:
    """Index in :data:`SHARE_CLASSES` of a covered share (0-1); ``None`` when unknown."""
    if share is None or not np.isfinite(share):
        return None
    for index, (upper, _) in enumerate(SHARE_CLASSES):
        if share <= upper:
            return index
    return len(SHARE_CLASSES) - 1


def share_colour(share: float | None) -> str:
    """Choropleth colour of a covered share (0-1); :data:`NO_DATA_COLOUR` when unknown."""
    index = share_class(share)
    return NO_DATA_COLOUR if index is None else SHARE_CLASSES[index][1]


def share_class_label(index: int) -> str:
    """The range of a share class in percent, e.g. ``"20–40%"`` (upper bound included)."""
    lower = 0.0 if index == 0 else SHARE_CLASSES[index - 1][0]
    return f"{lower * 100:.0f}–{SHARE_CLASSES[index][0] * 100:.0f}%"


def _hatch_pattern_svg() -> str:
    """An invisible SVG defining the gap hatch that map paths and the legend swatch fill with."""
    return (
        '<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
        f'<pattern id="{_HATCH_ID}" patternUnits="userSpaceOnUse" width="8" height="8" '
        'patternTransform="rotate(45)">'
        f'<rect width="2" height="8" fill="{GAP_HATCH_COLOUR}"/></pattern></defs></svg>'
    )


def _title_html(radius_m: float, facilities: int, gaps_of: str | None) -> str:
    subtitle = f"各区 {radius_m:,.0f} 米内覆盖率 · 计 {facilities:,} 处设施"
    if gaps_of is not None:
        subtitle += f" · 服务空白：{gaps_of}"
    return (
        '<div class="coverage-title"><h1>职工服务设施覆盖图</h1>'
        f"<p>{html.escape(subtitle)}</p></div>"
    )


def _legend_html(radius_m: float, area_basis: str, *, with_no_data: bool, with_sites: bool) -> str:
    rows = [f'<div class="heading">{radius_m:,.0f} 米内覆盖率（按区）</div>']
    for index, (_, colour) in enumerate(SHARE_CLASSES):
        rows.append(
            f'<div><i data-share-class="{index}" style="background:{colour}"></i>'
            f"{share_class_label(index)}</div>"
        )
    if with_no_data:
        rows.append(
            f'<div><i data-share-class="none" style="background:{NO_DATA_COLOUR}"></i>无数据</div>'
        )
    rows.append('<div class="note">区间含上限</div>')
    rows.append(
        '<div><svg data-legend="gaps" width="14" height="14" viewBox="0 0 14 14">'
        '<rect width="14" height="14" fill="#ffffff"/>'
        f'<rect width="14" height="14" fill="url(#{_HATCH_ID})"/></svg>'
        f"服务空白（{radius_m:,.0f} 米内无设施）</div>"
    )
    for spec in KIND_SPECS:
        rows.append(
            f'<div><i class="dot" style="background:{spec.colour}"></i>{spec.label_zh}</div>'
        )
    if with_sites:
        rows.append(f'<div><i class="dot" style="background:{SITE_COLOUR}"></i>建议新址</div>')
    rows.append(f'<div class="note">面积基准：{html.escape(area_basis_zh(area_basis))}</div>')
    return (
        '<details class="coverage-legend" open><summary>图例</summary>'
        f'<div class="body">{"".join(rows)}</div></details>'
    )


def _label_point(geometry: Any) -> tuple[float, float]:
    """Where a district's label goes: the pole of inaccessibility of its largest part."""
    parts = getattr(geometry, "geoms", [geometry])
    point = polylabel(max(parts, key=lambda part: part.area), tolerance=1e-4)
    return round(point.x, 6), round(point.y, 6)


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
    """Build the coverage web map: choropleth, hatched gaps, labels, title, legend, facilities.

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
        Hatch the gaps of this district only and fit the view to it (default all; the
        choropleth always shows every district of ``coverage``).
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
        zoom_start=10,
        zoom_snap=0.25,
    )
    cast(Figure, fmap.get_root()).title = "职工服务设施覆盖图"
    if vector_tiles is not None:
        fmap.options["max_zoom"] = 19
        VectorBaseLayer(vector_tiles, approval_no=approval_no).add_to(fmap)

    choropleth = coverage.to_geojson(districts)
    labelled = dict(zip(districts["adcode"].astype(str), districts.geometry, strict=True))
    no_data = False
    for feature in choropleth["features"]:
        props = feature["properties"]
        share = props["covered_share"]
        no_data = no_data or share_class(share) is None
        props["share_class"] = share_class(share)
        props["covered_pct"] = "—" if share is None else f"{share:.0%}"
        props["twice_pct"] = (
            "—" if props["covered_twice_share"] is None else f"{props['covered_twice_share']:.1%}"
        )
        props["gap_km"] = (
            "—" if props["largest_gap_m"] is None else f"{props['largest_gap_m'] / 1000:.2f} km"
        )
        props["label_lon"], props["label_lat"] = _label_point(labelled[str(props["adcode"])])
    folium.GeoJson(
        choropleth,
        name="覆盖率（分区）",
        style_function=lambda f: {
            "fillColor": share_colour(f["properties"]["covered_share"]),
            "color": DISTRICT_EDGE_COLOUR,
            "weight": 1,
            "fillOpacity": 1.0,
        },
        tooltip=folium.GeoJsonTooltip(
            fields=["name", "covered_pct", "twice_pct", "gap_km", "facilities"],
            aliases=["区", "覆盖率", "双重覆盖", "最大空白", "设施数"],
        ),
    ).add_to(fmap)

    gaps = coverage_layers(grid, lon_arr, lat_arr, radius_m=radius_m, adcodes=adcodes)["gaps"]
    folium.GeoJson(
        gaps,
        name="服务空白",
        style_function=lambda f: {
            "fillColor": f"url(#{_HATCH_ID})",
            "fillOpacity": 1.0,
            "stroke": False,
        },
        interactive=False,
    ).add_to(fmap)

    points: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"kind": str(k), "label": KIND_BY_NAME[str(k)].label_zh},
                "geometry": {"type": "Point", "coordinates": [round(x, 6), round(y, 6)]},
            }
            for x, y, k in zip(lon_arr.tolist(), lat_arr.tolist(), kinds.tolist(), strict=True)
            if west - 0.05 <= x <= east + 0.05 and south - 0.05 <= y <= north + 0.05
        ],
    }
    folium.GeoJson(
        points,
        name="设施",
        marker=folium.CircleMarker(radius=3, weight=1, fill=True),
        style_function=lambda f: {
            "fillColor": KIND_BY_NAME[f["properties"]["kind"]].colour,
            "color": "white",
            "fillOpacity": 1.0,
        },
        # folium refuses a tooltip field on an empty layer (a city without facilities yet)
        tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False)
        if points["features"]
        else None,
    ).add_to(fmap)
    if sites is not None and sites.lon.size:
        folium.GeoJson(
            sites.to_geojson(),
            name="建议新址",
            marker=folium.CircleMarker(radius=7, weight=1.5, fill=True),
            style_function=lambda f: {
                "fillColor": SITE_COLOUR,
                "color": "black",
                "fillOpacity": 1.0,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["rank", "gain"], aliases=["建议新址", "新增覆盖"]
            ),
        ).add_to(fmap)
    folium.LayerControl(collapsed=True).add_to(fmap)
    # room for the title above and the scale below; no animation, so that the view is final
    # when the page is ready
    fit = FitBounds(
        [[south, west], [north, east]], padding_top_left=(10, 70), padding_bottom_right=(10, 30)
    )
    fit.options["animate"] = False
    fmap.add_child(fit)

    figure = cast(Figure, fmap.get_root())
    assets = COVERAGE_ASSETS if vector_tiles is None else COVERAGE_ASSETS + BASEMAP_ASSETS
    head = ['<link rel="icon" href="data:,">', *asset_tags(asset_mode, static_url, assets)]
    gaps_of = None if adcodes is None else str(grid.district(adcodes[0]).name)
    title = _title_html(radius_m, int(lon_arr.size), gaps_of)
    legend = _legend_html(
        radius_m, coverage.area_basis, with_no_data=no_data, with_sites=sites is not None
    )
    if embed_cjk_font:
        texts = [
            title,
            legend,
            *map(str, districts["name"]),
            "覆盖率（分区）区双重覆盖最大空白设施数",
            "服务空白设施建议新址新增覆盖",
            vector_tiles.label_characters if vector_tiles else "",
            approval_no or "",
        ]
        font_css = cjk_font_face_css(cjk_characters(texts))
        if font_css:
            head.append(f"<style>{font_css}</style>")
    for i, tag in enumerate(head):
        figure.header.add_child(RawHtml(tag), name=f"coverage_asset_{i}")
    for name, part in (("hatch", _hatch_pattern_svg()), ("title", title), ("legend", legend)):
        figure.html.add_child(RawHtml(part), name=f"coverage_{name}")
    return fmap


def coverage_map_html(grid: SampleGrid, lon: ArrayLike, lat: ArrayLike, **options: Any) -> str:
    """The coverage map as one HTML page (see :func:`coverage_map` for the options)."""
    return str(coverage_map(grid, lon, lat, **options).get_root().render())
