"""The Folium page of the web map: map, base layer, boundaries, facility layer, extra layers."""

from __future__ import annotations

import copy
import datetime as dt
import html
import json
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, cast

import folium
import numpy as np
import pandas as pd
import shapely
from branca.element import Figure, MacroElement

from geodata.crs import from_wgs84
from geodata.entry_methods import entry_labels
from geodata.errors import InvalidInput, UnknownDistrict
from geodata.geodesy import invalid_degrees
from geodata.kinds import kind_labels
from geodata.schema import (
    KINDS,
    Viewer,
)
from maps.assets import (
    ASSETS,
    BASEMAP_ASSETS,
    AssetMode,
    asset_tags,
    cjk_characters,
    cjk_font_face_css,
    kind_css,
)
from maps.basemap import VectorBaseLayer, VectorTiles
from maps.elements import OfflineMap, RawHtml
from maps.webmap.basemaps import base_map_spec
from maps.webmap.boundaries import _boundaries_geojson, _bundled_boundaries_geojson
from maps.webmap.labels import (
    ACCESS_LABELS,
    AMENITY_LABELS,
    LANGUAGES,
    REPORT_LABELS,
    STATE_LABELS,
    UI_LABELS,
    BaseMap,
    DisplayCrs,
    Language,
)
from maps.webmap.payload import (
    _check_now,
    _column,
    _texts,
    encode_payload,
    facility_payload,
    filter_facilities,
)

if TYPE_CHECKING:
    import geopandas as gpd

    from finder.hours import HolidayCalendar

#: Default view: People's Square, Shanghai (WGS-84 lon, lat) and zoom.
DEFAULT_CENTER = (121.4737, 31.2304)
DEFAULT_ZOOM = 11
#: How many facilities the "nearby" list shows (asked of ``/nearest`` as ``k``).
NEARBY_K = 3


class _FacilityLayer(MacroElement):
    """Assets, data payload and the ``FacilityMap.init`` call, added last to the map."""

    def __init__(
        self,
        map_name: str,
        groups: Sequence[folium.FeatureGroup],
        payload_json: str,
        head_html: str,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "FacilityLayer"
        self.map_name = map_name
        self.groups = list(groups)
        self.payload_json = payload_json
        self.head_html = head_html

    def render(self, **kwargs: Any) -> None:  # type: ignore[override]
        figure = cast(Figure, self.get_root())
        name = self.get_name()
        payload_id = f"{name}_data"
        figure.header.add_child(RawHtml(self.head_html), name=name)
        figure.html.add_child(
            RawHtml(
                f'<script type="application/json" id="{payload_id}">{self.payload_json}</script>'
            ),
            name=name,
        )
        groups = ", ".join(g.get_name() for g in self.groups)
        script = f"FacilityMap.init({self.map_name}, [{groups}], {json.dumps(payload_id)});"
        figure.script.add_child(RawHtml(script), name=name)


def facility_map(
    facilities: pd.DataFrame,
    *,
    viewer: Viewer | None = None,
    kinds: Collection[str] | None = None,
    districts: Collection[str] | None = None,
    amenities: Collection[str] | None = None,
    base_map: BaseMap = "none",
    language: Language = "zh",
    center: tuple[float, float] | None = None,
    zoom: int | None = None,
    now: dt.datetime | None = None,
    calendar: HolidayCalendar | None = None,
    boundaries: gpd.GeoDataFrame | None = None,
    show_boundaries: bool = True,
    tianditu_key: str | None = None,
    vector_tiles: VectorTiles | None = None,
    approval_no: str | None = None,
    asset_mode: AssetMode = "inline",
    static_url: str = "/static",
    embed_cjk_font: bool = True,
    compress_payload: bool | None = None,
    extra_layers: Sequence[tuple[str, dict[str, Any]]] = (),
    origin: tuple[float, float] | None = None,
    nearby_url: str | None = None,
    facility_url: str | None = None,
    live_url: str | None = None,
) -> folium.Map:
    """Build the facility web map.

    Parameters
    ----------
    facilities
        Facility frame (:data:`geodata.schema.COLUMNS`; at least name, kind, lon, lat), WGS-84
        ``lon``/``lat`` degrees. The caller passes what the viewer may see; ``viewer`` filters
        again, defensively.
    viewer
        Drop the facilities this viewer may not see (:meth:`geodata.schema.Viewer.may_see`).
    kinds, districts, amenities
        Filters, see :func:`filter_facilities` (districts by adcode or name).
    base_map
        ``"none"`` (default: blank background, no third-party request at all), ``"vector"``
        (our own street map from the page's server; needs ``vector_tiles``), ``"osm"``,
        ``"tianditu"`` (needs ``tianditu_key``) or ``"amap"`` (GCJ-02: overlays are shifted).
    language
        ``"zh"`` (default) or ``"en"``.
    center
        Initial centre ``(lon, lat)`` in WGS-84 degrees; default: fit the facilities, or
        People's Square when there are none.
    zoom
        Initial zoom (0-18); default 15 with ``center``, else fitted.
    now
        Moment of the "open now" state in popups (naive: Asia/Shanghai local time); default the
        current time.
    calendar
        Holiday calendar; default :meth:`finder.hours.HolidayCalendar.default`.
    boundaries
        District polygons (WGS-84, ``adcode`` column); default
        :func:`geodata.boundaries.load_districts`. Only the filtered districts are drawn when
        ``districts`` is given.
    show_boundaries
        Draw the district boundary layer.
    tianditu_key
        Tianditu browser key, for ``base_map="tianditu"``.
    vector_tiles
        The served vector tiles, for ``base_map="vector"``; their label characters join the
        embedded font subset.
    approval_no
        Map approval number (审图号, e.g. ``"沪S(2024)001号"``) shown in the attribution; publish
        with it whenever a base map is drawn in mainland China.
    asset_mode
        ``"inline"`` (standalone file) or ``"served"`` (scripts under ``static_url``, see
        :func:`maps.assets.static_dirs`).
    static_url
        URL prefix of the static directories (``"served"`` only).
    embed_cjk_font
        Embed a subset of Noto Sans CJK SC (a ``data:`` URI) covering the Chinese characters of the
        labels and of every facility the viewer may see, so all filters of the same data share
        one cached subset. Browsers use it only for characters no installed font has. The first
        subset of a character set costs ~0.5 s plus ~1 ms per character.
    compress_payload
        See :func:`encode_payload`.
    extra_layers
        More overlays as ``(name, GeoJSON)`` pairs (a FeatureCollection, Feature or geometry in
        WGS-84), e.g. an isochrone. Only the geometries are drawn (no properties reach the
        page), shifted to GCJ-02 on the Amap base map like every overlay; names are listed in
        the layer control, HTML-escaped.
    origin
        The viewer's position, WGS-84 ``(lon, lat)`` degrees (the app's GPS): drawn as a dot,
        and with ``nearby_url`` the nearest facilities are listed from the start.
    nearby_url
        URL of the service's ``/nearest`` on the page's origin. With it the page lists the
        :data:`NEARBY_K` facilities nearest to the viewer (``origin`` or the browser's position
        after 定位), asked of that route with the map's kind and amenity filters, so the list is
        the route's answer; without it (a standalone file) 定位 only centres the map.
    facility_url
        URL prefix of the service's ``/facilities`` routes on the page's origin: popups show
        each facility's first photo (``facilities`` may carry a ``photo`` column: its number) and a
        "report a problem" form (see :func:`facility_payload`).
    live_url
        URL of the service's ``/live`` (server-sent events) on the page's origin: popups and
        the list then show each facility's live door and sensor state as it changes.

    Returns
    -------
    folium.Map
        Render with ``m.get_root().render()`` or save with ``m.save(path)``.

    Raises
    ------
    InvalidInput
        For an unknown base map, language, kind or amenity, a missing Tianditu key, a zoom outside
        0-18, a centre or origin outside WGS-84 ranges or invalid facility coordinates.
    UnknownDistrict
        For a district that is neither an adcode nor a name of the boundaries.
    """
    if language not in LANGUAGES:
        raise InvalidInput(f"unknown language {language!r}; use zh or en", field="lang")
    if asset_mode not in ("inline", "served"):
        raise InvalidInput(f"unknown asset mode {asset_mode!r}", field="asset_mode")
    spec = base_map_spec(base_map, tianditu_key=tianditu_key, vector_tiles=vector_tiles)
    if zoom is not None and not 0 <= zoom <= 18:
        raise InvalidInput("zoom must be between 0 and 18", field="zoom")
    for name, point in (("center", center), ("origin", origin)):
        if point is not None and (
            invalid_degrees(point[0], "lon") or invalid_degrees(point[1], "lat")
        ):
            raise InvalidInput(f"{name} must be WGS-84 (lon, lat) degrees", field=name)
    if districts is not None:
        _check_districts(districts, boundaries)
    when = _check_now(now)
    if calendar is None:
        from finder.hours import HolidayCalendar

        calendar = HolidayCalendar.default()
    visible = filter_facilities(facilities, viewer=viewer)
    shown = filter_facilities(
        visible, kinds=kinds, districts=districts, amenities=amenities, boundaries=boundaries
    )
    labels = UI_LABELS[language]
    attributions = []
    if approval_no:
        attributions.append(labels["approval"].format(approval_no.strip()))
    if show_boundaries:
        attributions.append(labels["boundary_source"])
    nearby = None
    if nearby_url is not None:
        nearby = {
            "url": nearby_url,
            "k": NEARBY_K,
            "kind": list(KINDS if kinds is None else [k for k in KINDS if k in set(kinds)]),
            "amenity": sorted(amenities or ()),
            "live": live_url,
        }
    document = facility_payload(
        shown,
        language=language,
        display_crs=spec.crs,
        now=when,
        calendar=calendar,
        attributions=attributions,
        nearby=nearby,
        origin=origin,
        facility_url=facility_url,
    )

    def to_display(lon: float, lat: float) -> tuple[float, float]:
        if spec.crs == "wgs84":
            return lon, lat
        x, y = from_wgs84(lon, lat, "gcj02")
        return float(np.asarray(x).ravel()[0]), float(np.asarray(y).ravel()[0])

    start_lon, start_lat = to_display(*(center or DEFAULT_CENTER))
    fmap = OfflineMap(
        location=[start_lat, start_lon],
        zoom_start=zoom if zoom is not None else (15 if center else DEFAULT_ZOOM),
        tiles=None,
        control_scale=False,  # facilitymap.js adds a metric-only scale
    )
    fmap.options["max_zoom"] = spec.max_zoom
    cast(Figure, fmap.get_root()).title = labels["title"]
    for i, tile in enumerate(spec.tiles):
        folium.TileLayer(
            tiles=tile.url,
            attr=tile.attribution,
            subdomains=tile.subdomains or "abc",
            max_zoom=tile.max_zoom,
            name=f"{spec.key}-{i}",
            overlay=i > 0,
            control=False,
        ).add_to(fmap)
    if spec.vector is not None:
        VectorBaseLayer(spec.vector).add_to(fmap)

    if show_boundaries:
        if boundaries is None:
            bundled, names = _bundled_boundaries_geojson(spec.crs)
            wanted = None if districts is None else {str(d) for d in districts}
            collection = {
                "type": "FeatureCollection",
                "features": [
                    copy.deepcopy(feature)  # folium may write styles into what it is given
                    for feature, name in zip(bundled["features"], names, strict=True)
                    if wanted is None or {feature["properties"]["adcode"], name} & wanted
                ],
            }
        else:
            if districts is not None:
                wanted = {str(d) for d in districts}
                boundaries = boundaries[
                    boundaries["adcode"].astype(str).isin(wanted)
                    | boundaries["name"].astype(str).isin(wanted)
                ]
            collection = _boundaries_geojson(boundaries, spec.crs)
        folium.GeoJson(
            collection,
            name=labels["districts"],
            style_function=_boundary_style,
            interactive=False,
            smooth_factor=1.0,
        ).add_to(fmap)

    for layer_name, layer in extra_layers:
        folium.GeoJson(
            _extra_layer_geojson(layer, spec.crs),
            name=_layer_name(layer_name),
            style_function=_extra_layer_style,
            interactive=False,
        ).add_to(fmap)

    # one layer of every kind, clustered together; the kind tabs of the panel filter it
    groups = [folium.FeatureGroup(name=labels["facilities"], show=True)]
    for group in groups:
        group.add_to(fmap)
    folium.LayerControl(collapsed=True).add_to(fmap)

    # an empty icon, so the browser does not ask the server for /favicon.ico
    assets = ASSETS if spec.vector is None else ASSETS + BASEMAP_ASSETS
    head = [
        '<link rel="icon" href="data:,">',
        *asset_tags(asset_mode, static_url, assets),
        f"<style>{kind_css()}</style>",
    ]
    if embed_cjk_font:
        visible_text = [
            *UI_LABELS[language].values(),
            *kind_labels(language).values(),
            *ACCESS_LABELS[language].values(),
            *STATE_LABELS[language],
            *AMENITY_LABELS[language].values(),
            *entry_labels(language).values(),
            *REPORT_LABELS[language].values(),
            *attributions,
            *document["data"]["hours_words"],
            *document["data"]["hours_next"],
            spec.vector.label_characters if spec.vector else "",
        ]
        # from every facility the viewer may see, not only the filtered ones: the same font
        # (and cache entry) then serves every filter of the same data
        if shown.index.equals(visible.index):
            visible_text += document["data"]["name"] + document["data"]["addr"]
        else:
            visible_text += _texts(visible["name"]) + _texts(_column(visible, "address"))
        for column in ("opening_hours", "entry_note"):
            visible_text += _texts(pd.Series(_column(visible, column).unique()))
        font_css = cjk_font_face_css(cjk_characters(visible_text))
        if font_css:
            head.insert(1, f"<style>{font_css}</style>")
    if center is None and len(shown):
        # fitted by facilitymap.js without animation: folium's fitBounds animates from the start
        # view, and a view set while that runs (定位) would be undone when it ends
        lon_min, lon_max = float(shown["lon"].min()), float(shown["lon"].max())
        lat_min, lat_max = float(shown["lat"].min()), float(shown["lat"].max())
        south_west = to_display(lon_min, lat_min)
        north_east = to_display(lon_max, lat_max)
        document["fit"] = [[south_west[1], south_west[0]], [north_east[1], north_east[0]]]
    payload_json = encode_payload(document, compress=compress_payload)
    _FacilityLayer(fmap.get_name(), groups, payload_json, "\n".join(head)).add_to(fmap)

    return fmap


def _check_districts(districts: Collection[str], boundaries: gpd.GeoDataFrame | None) -> None:
    """Raise :class:`UnknownDistrict` unless every district is an adcode or name of the
    boundaries (default: the bundled ones)."""
    if boundaries is None:
        bundled, names = _bundled_boundaries_geojson("wgs84")
        known = {f["properties"]["adcode"] for f in bundled["features"]} | set(names)
    else:
        known = set(boundaries["adcode"].astype(str)) | set(boundaries["name"].astype(str))
    unknown = sorted({str(d) for d in districts} - known)
    if unknown:
        raise UnknownDistrict(f"unknown district(s) {', '.join(unknown)}")


def _geometries_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    kind = document.get("type") if isinstance(document, dict) else None
    if kind == "FeatureCollection":
        return [g for f in document.get("features", ()) for g in _geometries_of(f)]
    if kind == "Feature":
        geometry = document.get("geometry")
        return [geometry] if geometry else []
    if kind in {"Polygon", "MultiPolygon", "LineString", "MultiLineString", "Point", "MultiPoint"}:
        return [document]
    raise InvalidInput("an extra layer must be GeoJSON", field="extra_layers")


def _extra_layer_geojson(document: dict[str, Any], display_crs: DisplayCrs) -> dict[str, Any]:
    """The geometries of a GeoJSON document as a FeatureCollection in the display system."""
    geometries = np.array(
        [shapely.from_geojson(json.dumps(g)) for g in _geometries_of(document)], dtype=object
    )
    if display_crs == "gcj02" and geometries.size:

        def shift(coords: np.ndarray) -> np.ndarray:
            lon, lat = from_wgs84(coords[:, 0], coords[:, 1], "gcj02")
            return np.column_stack([np.asarray(lon), np.asarray(lat)])

        geometries = shapely.transform(geometries, shift)
    features = [
        {"type": "Feature", "properties": {}, "geometry": json.loads(shapely.to_geojson(g))}
        for g in geometries
        if not g.is_empty
    ]
    return {"type": "FeatureCollection", "features": features}


def _layer_name(name: str) -> str:
    """A layer name safe in the layer control (HTML) and in branca's template pass (braces)."""
    escaped = html.escape(str(name), quote=True)
    return escaped.replace("{", "&#123;").replace("}", "&#125;").replace("%", "&#37;")


def _extra_layer_style(feature: dict[str, Any]) -> dict[str, Any]:
    return {"color": "#1971c2", "weight": 1.5, "opacity": 0.9, "fillOpacity": 0.2}


def _boundary_style(feature: dict[str, Any]) -> dict[str, Any]:
    return {"color": "#5f3dc4", "weight": 1.5, "opacity": 0.8, "fill": False, "dashArray": "4 3"}


def facility_map_html(facilities: pd.DataFrame, **options: Any) -> str:
    """The rendered HTML page of :func:`facility_map` (same keyword options)."""
    return str(facility_map(facilities, **options).get_root().render())
