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

import copy
import datetime as dt
import functools
import gzip
import html
import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Literal, cast
from zoneinfo import ZoneInfo

import folium
import numpy as np
import pandas as pd
import shapely
from branca.element import Figure, MacroElement

from finder.index import MAP_STATUSES, FacilityFilter, FacilityIndex
from geodata.crs import from_wgs84, in_mainland_china
from geodata.entry_methods import ENTRY_METHODS, entry_labels
from geodata.errors import InvalidInput, InvalidOpeningHours, UnknownDistrict
from geodata.kinds import KIND_SPECS, kind_labels
from geodata.navigation import NAVIGATION_SOURCE
from geodata.schema import (
    ACCESS_CLASSES,
    AMENITIES,
    AMENITY_BIT,
    KINDS,
    REPORT_TYPES,
    Viewer,
)
from maps.assets import (
    ASSETS,
    BASEMAP_ASSETS,
    CJK_FONT_FAMILY,
    AssetMode,
    OfflineMap,
    RawHtml,
    asset_tags,
    cjk_characters,
    cjk_font_face_css,
    kind_css,
)
from maps.basemap import VectorBaseLayer, VectorTiles

if TYPE_CHECKING:
    import geopandas as gpd

    from finder.hours import HolidayCalendar

BaseMap = Literal["none", "vector", "osm", "tianditu", "amap"]
#: The systems the browser draws in: WGS-84, or GCJ-02 on the Amap base map.
DisplayCrs = Literal["wgs84", "gcj02"]
Language = Literal["zh", "en"]
BASE_MAPS: tuple[str, ...] = ("none", "vector", "osm", "tianditu", "amap")
LANGUAGES: tuple[str, ...] = ("zh", "en")

#: Time zone of the "open now" evaluation.
LOCAL_TIMEZONE = ZoneInfo("Asia/Shanghai")
#: Payloads (UTF-8 JSON) larger than this are gzip-compressed when ``compress_payload`` is None.
COMPRESS_ABOVE_BYTES = 1_000_000
#: zlib level of compressed payloads: level 3 is 3x faster than the default 6 for ~15 % more bytes.
GZIP_LEVEL = 3
#: Default view: People's Square, Shanghai (WGS-84 lon, lat) and zoom.
DEFAULT_CENTER = (121.4737, 31.2304)
DEFAULT_ZOOM = 11
#: Open-state codes of the payload (index into the state labels), bits 0-1 of ``flags``.
STATE_UNKNOWN, STATE_OPEN, STATE_CLOSED = 0, 1, 2
#: Bit of ``flags`` set for a facility in mainland China (where GCJ-02 / BD-09 are shifted).
FLAG_MAINLAND = 4
#: Bit of ``flags`` set where the open state rests on the provisional holiday calendar (the
#: statutory holidays only: the year's official arrangement is not loaded).
FLAG_PROVISIONAL = 8
#: Bit of ``flags`` set for a ``temporarily_closed`` facility (closed whatever its hours say).
FLAG_TEMPORARILY_CLOSED = 16
#: The mainland China polygons of :mod:`geodata.crs` (shipped with geodata).
MAINLAND_REGION_FILE = ("data", "mainland_china_region.geojson")
#: Tolerance of the boundary simplification, degrees (about 20 m).
BOUNDARY_SIMPLIFY_DEG = 0.0002

_TIANDITU_KEY_RE = re.compile(r"^[A-Za-z0-9]{8,64}$")
_REQUIRED_COLUMNS = ("name", "kind", "lon", "lat")
#: FacilityFilter fields as the map's parameters name them in errors.
_MAP_FIELDS = {"kinds": "kind", "amenities": "amenity"}

ACCESS_LABELS: dict[str, dict[str, str]] = {
    "zh": {"public": "对公众开放", "members": "限工会会员", "employees": "限本单位职工"},
    "en": {
        "public": "Open to the public",
        "members": "Union members only",
        "employees": "Host organisation's employees only",
    },
}
REPORT_LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "locked_during_hours": "开放时间内锁门",
        "closed_for_good": "已永久关闭",
        "moved": "已搬迁",
        "wrong_details": "信息有误",
        "missing_amenity": "缺少所列设施",
        "other": "其他问题",
    },
    "en": {
        "locked_during_hours": "Locked during opening hours",
        "closed_for_good": "Closed for good",
        "moved": "Moved",
        "wrong_details": "Wrong details",
        "missing_amenity": "A listed amenity is missing",
        "other": "Something else",
    },
}
STATE_LABELS: dict[str, tuple[str, str, str]] = {
    "zh": ("未知", "营业中", "已关闭"),
    "en": ("Unknown", "Open", "Closed"),
}
AMENITY_LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "fridge": "冰箱",
        "microwave": "微波炉",
        "hot_water": "热水",
        "drinking_water": "饮用水",
        "air_conditioning": "空调",
        "charging": "充电",
        "toilet": "卫生间",
        "wifi": "无线网络",
        "seating": "座椅",
        "sofa": "沙发",
        "bed": "休息床",
        "sink": "洗手池",
        "disinfection_cabinet": "消毒柜",
        "changing_table": "尿布台",
        "smart_lock": "智能门锁",
        "first_aid": "急救箱",
        "breast_pump": "吸奶器",
        "nursing_chair": "哺乳椅",
        "privacy_curtain": "隐私帘",
        "books": "图书",
        "umbrella": "雨伞",
        "repair_kit": "维修工具",
        "heating": "取暖",
        "fan": "风扇",
        "shower": "淋浴",
        "locker": "储物柜",
        "accessible": "无障碍",
        "parking_ebike": "电动车停放",
    },
    "en": {
        "fridge": "Fridge",
        "microwave": "Microwave",
        "hot_water": "Hot water",
        "drinking_water": "Drinking water",
        "air_conditioning": "Air conditioning",
        "charging": "Phone charging",
        "toilet": "Toilet",
        "wifi": "Wi-Fi",
        "seating": "Seating",
        "sofa": "Sofa",
        "bed": "Bed",
        "sink": "Sink",
        "disinfection_cabinet": "Disinfection cabinet",
        "changing_table": "Changing table",
        "smart_lock": "Smart lock",
        "first_aid": "First aid kit",
        "breast_pump": "Breast pump",
        "nursing_chair": "Nursing chair",
        "privacy_curtain": "Privacy curtain",
        "books": "Books",
        "umbrella": "Umbrella",
        "repair_kit": "Repair kit",
        "heating": "Heating",
        "fan": "Fan",
        "shower": "Shower",
        "locker": "Locker",
        "accessible": "Wheelchair accessible",
        "parking_ebike": "E-bike parking",
    },
}
UI_LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "职工设施地图",
        "legend": "图例",
        "districts": "区界",
        "address": "地址",
        "hours": "开放时间",
        "no_hours": "未提供",
        "amenities": "设施",
        "stars": "星级",
        "phone": "电话",
        "nav_amap": "高德导航",
        "nav_baidu": "百度导航",
        "nav_geo": "其他地图",
        "closed_now": "当前关闭",
        "locate": "定位",
        "locate_title": "显示我的位置",
        "locating": "正在定位…",
        "locate_failed": "无法获取位置",
        "locate_unavailable": "此浏览器不支持定位",
        "list_separator": "、",
        "approval": "审图号：{}",
        "boundary_source": "区界：高德地图（cnmaps-adm-data）",
        "provisional": "按法定节假日推算（未含调休安排）",
        "verified": "核实于 {}",
        "nearby": "附近设施",
        "find": "查找设施",
        "all_kinds": "全部",
        "open_now": "只看营业中",
        "search": "搜索名称或地址",
        "search_label": "搜索",
        "locate_hint": "点「定位」查看离您最近的设施",
        "no_results": "没有找到符合条件的设施",
        "nearby_failed": "暂时无法获取附近设施",
        "live": "实时",
        "live_state_open": "开放中",
        "live_state_closed": "已关门",
        "live_state_unknown": "状态不明",
        "live_state_locked": "门已上锁",
        "live_state_occupied": "有人使用",
        "live_state_reported_locked": "多人报告锁门",
        "live_source_timetable": "按开放时间",
        "live_source_door": "门禁",
        "live_source_sensor": "传感器",
        "live_source_reports": "用户报告",
        "reported_by": "{}人报告",
        "report_confirmed_by_staff": "工作人员已确认",
        "verified_by_staff_visit": "工作人员到访",
        "verified_by_door_activity": "门禁记录",
        "verified_by_user_confirmation": "用户确认",
        "last_verified": "最近核实：{}，{}",
        "confidence_high": "信息可信",
        "confidence_medium": "信息可能已变，去前可电话确认",
        "confidence_low": "信息久未核实，去前请电话确认",
        "just_now": "刚刚",
        "minutes_ago": "{}分钟前",
        "hours_ago": "{}小时前",
        "metres": "{} 米",
        "kilometres": "{} 公里",
        "walk_minutes": "步行约 {} 分钟",
        "fold": "收起",
        "unfold": "展开",
        "group": "此处 {} 个设施",
        "facilities": "设施",
        "cluster_legend": "圆圈数字为设施数，颜色为各类占比",
        "entry": "进入方式",
        "photo": "{} 的照片",
        "report": "报告问题",
        "report_type": "问题类型",
        "report_note": "补充说明（可不填）",
        "report_send": "提交",
        "report_sent": "已收到，谢谢！报告编号 {}",
        "report_status": "查看处理结果",
        "report_failed": "提交失败，请稍后再试",
    },
    "en": {
        "title": "Trade-union facility map",
        "legend": "Legend",
        "districts": "District boundaries",
        "address": "Address",
        "hours": "Hours",
        "no_hours": "not given",
        "amenities": "Amenities",
        "stars": "Stars",
        "phone": "Phone",
        "nav_amap": "Amap",
        "nav_baidu": "Baidu Maps",
        "nav_geo": "Other map app",
        "closed_now": "Closed now",
        "locate": "Locate me",
        "locate_title": "Show my position",
        "locating": "Locating…",
        "locate_failed": "Position not available",
        "locate_unavailable": "This browser cannot locate you",
        "list_separator": ", ",
        "approval": "Map approval no. {}",
        "boundary_source": "Districts: Amap (cnmaps-adm-data)",
        "provisional": "estimated from the statutory holidays (make-up working days not known)",
        "verified": "Verified {}",
        "nearby": "Nearby",
        "find": "Find a facility",
        "all_kinds": "All",
        "open_now": "Open now only",
        "search": "Search name or address",
        "search_label": "Search",
        "locate_hint": "Tap “Locate me” to list the facilities nearest to you",
        "no_results": "No facility matches",
        "nearby_failed": "Nearby facilities are not available now",
        "live": "Live",
        "live_state_open": "Open",
        "live_state_closed": "Closed",
        "live_state_unknown": "Unknown",
        "live_state_locked": "Locked",
        "live_state_occupied": "Occupied",
        "live_state_reported_locked": "Reported locked",
        "live_source_timetable": "by the timetable",
        "live_source_door": "door",
        "live_source_sensor": "sensor",
        "live_source_reports": "users' reports",
        "reported_by": "by {} users",
        "report_confirmed_by_staff": "confirmed by staff",
        "verified_by_staff_visit": "staff visit",
        "verified_by_door_activity": "door activity",
        "verified_by_user_confirmation": "user confirmation",
        "last_verified": "Last verified: {}, {}",
        "confidence_high": "Up to date",
        "confidence_medium": "May have changed: call before you go",
        "confidence_low": "Not verified for long: call before you go",
        "just_now": "just now",
        "minutes_ago": "{} minutes ago",
        "hours_ago": "{} hours ago",
        "metres": "{} m",
        "kilometres": "{} km",
        "walk_minutes": "{} min walk",
        "fold": "Hide",
        "unfold": "Show",
        "group": "{} facilities here",
        "facilities": "Facilities",
        "cluster_legend": "Circle: number of facilities, colours: their kinds",
        "entry": "How to get in",
        "photo": "Photo of {}",
        "report": "Report a problem",
        "report_type": "Problem",
        "report_note": "More details (optional)",
        "report_send": "Send",
        "report_sent": "Received, thank you! Report no. {}",
        "report_status": "See what became of it",
        "report_failed": "Could not send the report; try again later",
    },
}
#: Messages of the map's error pages (:func:`error_page_html`), by problem.
ERROR_LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "地图无法显示",
        "unknown_district": "找不到这个区县。",
        "unknown_facility": "找不到这个设施，或您无权查看。",
        "no_network": "步行范围暂不可用：没有加载步行路网。",
        "off_network": "这个设施离步行路网太远，无法计算步行范围。",
        "base_map_unavailable": "所选底图未配置，请改用其他底图。",
        "invalid_parameter": "地图参数有误：{}。",
        "unauthorized": "API 密钥无效。",
        "unavailable": "地图暂时无法显示，请稍后再试。",
    },
    "en": {
        "title": "The map cannot be shown",
        "unknown_district": "There is no such district.",
        "unknown_facility": "There is no such facility, or you may not see it.",
        "no_network": "Walking areas are not available: no street network is loaded.",
        "off_network": "This facility is too far from the street network for a walking area.",
        "base_map_unavailable": "The chosen base map is not configured; choose another one.",
        "invalid_parameter": "Invalid map parameter: {}.",
        "unauthorized": "The API key is not valid.",
        "unavailable": "The map cannot be shown now; please try again later.",
    },
}
#: How many facilities the "nearby" list shows (asked of ``/nearest`` as ``k``).
NEARBY_K = 3


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


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


def _texts(values: pd.Series) -> list[str]:
    """The column as a list of strings, ``""`` for missing values."""
    objects = values.to_numpy(dtype=object)
    missing = pd.isna(objects)
    if missing.any():
        objects = objects.copy()
        objects[missing] = ""
    return [v if type(v) is str else str(v) for v in objects]


def filter_facilities(
    facilities: pd.DataFrame,
    *,
    viewer: Viewer | None = None,
    kinds: Collection[str] | None = None,
    districts: Collection[str] | None = None,
    amenities: Collection[str] | None = None,
    boundaries: gpd.GeoDataFrame | None = None,
) -> pd.DataFrame:
    """The facilities a map shows: the rows :meth:`finder.index.FacilityIndex.mask` selects.

    The question is one :class:`finder.index.FacilityFilter` with the map's statuses
    (:data:`finder.index.MAP_STATUSES`: open and temporarily closed, never closed for good),
    the same filter every other surface compiles.

    Parameters
    ----------
    facilities
        A facility frame (:data:`geodata.schema.COLUMNS`; at least id, name, kind, lon, lat).
    viewer
        If given, facilities the viewer may not see (:meth:`Viewer.may_see`) are dropped.
    kinds
        Keep only these kinds (:data:`geodata.schema.KINDS`).
    districts
        Keep only facilities in these districts, by adcode or by name of ``boundaries``
        (default the bundled ones).
    amenities
        Keep only facilities offering *all* of these amenities.
    boundaries
        District polygons with ``adcode`` and ``name``, to read district names.

    Returns
    -------
    pandas.DataFrame
        The kept rows (index and order preserved).

    Raises
    ------
    InvalidInput
        For an unknown kind or amenity, or a frame lacking a required column.
    """
    missing = [c for c in ("id", *_REQUIRED_COLUMNS) if c not in facilities.columns]
    if missing:
        raise InvalidInput(f"facility frame lacks column(s) {', '.join(missing)}", field="columns")
    try:
        where = FacilityFilter(
            kinds=kinds,
            amenities=amenities,
            viewer=Viewer(see_all=True) if viewer is None else viewer,
            statuses=MAP_STATUSES,
            adcodes=None if districts is None else _district_adcodes(districts, boundaries),
        )
    except InvalidInput as exc:  # named as the map's (and /map's) parameters
        field = exc.field or ""
        raise InvalidInput(str(exc), field=_MAP_FIELDS.get(field, field)) from exc
    index = FacilityIndex.from_frame(facilities)
    rows = np.searchsorted(index.ids, facilities["id"].to_numpy(dtype=object))
    return facilities.loc[index.mask(where)[rows]]


def _district_adcodes(
    districts: Collection[str], boundaries: gpd.GeoDataFrame | None
) -> frozenset[str]:
    """The adcodes of districts given by adcode or by name of the boundaries."""
    if boundaries is None:
        bundled, names = _bundled_boundaries_geojson("wgs84")
        codes = [str(f["properties"]["adcode"]) for f in bundled["features"]]
        pairs = list(zip(codes, names, strict=True))
    else:
        pairs = list(
            zip(boundaries["adcode"].astype(str), boundaries["name"].astype(str), strict=True)
        )
    wanted = {str(d) for d in districts}
    return frozenset(code for code, name in pairs if code in wanted or name in wanted) | {
        d for d in wanted if len(d) == 6 and d.isdigit()
    }


def _amenity_masks(values: pd.Series) -> np.ndarray:
    """Bit masks (bit ``i`` for ``AMENITIES[i]``) of ``;``-joined amenity strings or sequences."""
    objects = values.astype(object)
    if values.dtype == object:  # Facility.to_row joins them; model dumps keep tuples
        objects = objects.map(lambda v: ";".join(v) if isinstance(v, list | tuple) else v)
    codes, uniques = pd.factorize(pd.Series(_texts(objects), dtype=object))
    lookup = np.zeros(len(uniques), dtype=np.int64)
    for i, joined in enumerate(uniques):
        names = [a for a in str(joined).split(";") if a]
        unknown = [a for a in names if a not in AMENITY_BIT]
        if unknown:
            raise InvalidInput(f"unknown amenity(ies) {', '.join(unknown)}", field="amenities")
        lookup[i] = sum(1 << AMENITY_BIT[a] for a in set(names))
    return lookup[codes] if len(codes) else np.zeros(0, dtype=np.int64)


def _codes(values: pd.Series, vocabulary: Sequence[str], field: str) -> list[int]:
    index = {v: i for i, v in enumerate(vocabulary)}
    unknown = sorted({str(v) for v in values.unique()} - set(index))
    if unknown:
        raise InvalidInput(f"unknown {field} value(s) {', '.join(unknown)}", field=field)
    return [index[v] for v in values.tolist()]


def _optional_codes(values: pd.Series, vocabulary: Sequence[str]) -> list[int]:
    """Index of each value in ``vocabulary``; -1 for a missing (or unknown) value."""
    index = {v: i for i, v in enumerate(vocabulary)}
    return [index.get(v, -1) if isinstance(v, str) else -1 for v in values.tolist()]


def _open_states(
    hours: pd.Series, status: pd.Series, now: dt.datetime, calendar: HolidayCalendar
) -> tuple[list[int], list[str], np.ndarray]:
    """Hours codes (-1: none), distinct expressions and open-state flags per facility.

    The flags are the open-state code (bits 0-1), :data:`FLAG_PROVISIONAL` and
    :data:`FLAG_TEMPORARILY_CLOSED`. Each distinct expression is evaluated once with
    :func:`finder.hours.state_and_source`; one that does not parse is "unknown" rather than an
    error, and ``temporarily_closed`` facilities are closed.
    """
    from finder.hours import CalendarSource, OpenState, state_and_source

    text = [t.strip() or None for t in _texts(hours)]
    codes, uniques = pd.factorize(pd.Series(text, dtype=object))
    expressions = [str(u) for u in uniques]
    state_of = {OpenState.OPEN: STATE_OPEN, OpenState.CLOSED: STATE_CLOSED}
    # one slot per expression plus a last one for "no hours", which code -1 indexes
    per_expression = np.full(len(expressions) + 1, STATE_UNKNOWN, dtype=np.int64)
    for i, expr in enumerate(expressions):
        try:
            state, source = state_and_source(expr, now, calendar)
        except InvalidOpeningHours:
            state, source = OpenState.UNKNOWN, None
        per_expression[i] = state_of.get(state, STATE_UNKNOWN)
        if source is CalendarSource.PROVISIONAL:
            per_expression[i] |= FLAG_PROVISIONAL
    flags = per_expression[np.asarray(codes, dtype=np.int64)]
    closed = (status == "temporarily_closed").to_numpy()
    flags[closed] = STATE_CLOSED | FLAG_TEMPORARILY_CLOSED
    return np.asarray(codes).astype(int).tolist(), expressions, flags


def _hours_texts(
    expressions: Sequence[str], language: Language, now: dt.datetime, calendar: HolidayCalendar
) -> tuple[list[str], list[str]]:
    """Per distinct expression: the hours in words and the next change in words ("" for none).

    An expression that does not parse is shown as it was given, with no next change.
    """
    from finder.hours import change_in_words, hours_in_words, next_change

    words, changes = [], []
    for expr in expressions:
        try:
            words.append(hours_in_words(expr, language))
            change = next_change(expr, now, calendar)
        except InvalidOpeningHours:
            words.append(expr)
            change = None
        changes.append("" if change is None else change_in_words(*change, now, language))
    return words, changes


def _dates(values: pd.Series) -> list[str]:
    """ISO dates (``YYYY-MM-DD``) of a date column, ``""`` where missing."""
    return [text[:10] for text in _texts(values)]


def _micro_degrees(values: pd.Series, field: str, low: float, high: float) -> list[int]:
    array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(array)) or np.any((array < low) | (array > high)):
        raise InvalidInput(f"{field} must be finite WGS-84 degrees in [{low}, {high}]", field=field)
    micro_degrees: list[int] = np.rint(array * 1e6).astype(np.int64).tolist()
    return micro_degrees


def facility_payload(
    facilities: pd.DataFrame,
    *,
    language: Language,
    display_crs: DisplayCrs,
    now: dt.datetime,
    calendar: HolidayCalendar,
    attributions: Sequence[str] = (),
    nearby: dict[str, Any] | None = None,
    origin: tuple[float, float] | None = None,
    facility_url: str | None = None,
) -> dict[str, Any]:
    """The data document ``facilitymap.js`` reads (labels, vocabularies and facility columns).

    Parameters
    ----------
    facilities
        Facilities to draw (already filtered), WGS-84 ``lon``/``lat``.
    language
        ``"zh"`` or ``"en"`` for every label.
    display_crs
        Coordinate system the browser draws markers in (``"gcj02"`` on the Amap base map).
    now
        The moment of the "open now" state (naive: Asia/Shanghai local time).
    calendar
        Holiday calendar for the opening hours.
    attributions
        Plain-text attributions the browser adds (escaped there).
    nearby
        How the page asks for the facilities nearest to the viewer: ``{"url": "/nearest",
        "k": 3, "kind": [...], "amenity": [...]}`` (the ``/nearest`` query of the map's
        filters), or None where there is no service to ask (a standalone file).
    origin
        The viewer's position, WGS-84 ``(lon, lat)``, when the embedding app gave it.
        (:func:`facility_map` adds ``fit``, the display bounds ``[[south, west], [north,
        east]]`` the map starts fitted to, or None.)
    facility_url
        URL prefix of the service's facility routes (``/facilities``): popups then show the
        first photo (``{url}/{id}/photos/0?size=thumb``) and a "report a problem" form that
        posts to ``{url}/{id}/reports``. None where there is no service (a standalone file).

    Returns
    -------
    dict
        JSON-ready document. ``data`` holds one array per column: ``id``, ``lon``/``lat``
        (WGS-84 micro-degrees, integers), ``kind``, ``access``, ``state`` (codes), ``name``,
        ``addr``, ``phone``, ``entry_phone``, ``entry_note`` (strings), ``entry`` (index into
        ``entry_methods``, the labels of :data:`geodata.entry_methods.ENTRY_METHODS`; -1 for not
        given), ``photos`` (how many photos the facility has, from an optional ``photos``
        column), ``verified`` (ISO date of the last check, ``""``),
        ``hours`` (index into ``hours_values`` and the parallel ``hours_words``, the hours in
        words of :func:`finder.hours.hours_in_words`, and ``hours_next``, the next change of
        state at ``now`` in words, ``""`` for none; -1 for no hours), ``amen``
        (bit mask over :data:`geodata.schema.AMENITIES`), ``stars`` (0 for none) and ``flags``
        (bits 0-1 the open state, :data:`FLAG_PROVISIONAL` where it rests on the provisional
        holiday calendar, :data:`FLAG_TEMPORARILY_CLOSED`, :data:`FLAG_MAINLAND` for a facility
        in mainland China, as
        decided by :func:`geodata.crs.in_mainland_china`). ``mainland`` carries the polygons of
        that decision for positions the browser learns itself (the user's).
    """
    stars = pd.to_numeric(_column(facilities, "star_rating"), errors="coerce").fillna(0)
    hours_codes, expressions, state_flags = _open_states(
        _column(facilities, "opening_hours"), _column(facilities, "status"), now, calendar
    )
    kind_codes = _codes(facilities["kind"], KINDS, "kind")
    lon_e6 = _micro_degrees(facilities["lon"], "lon", -180.0, 180.0)
    lat_e6 = _micro_degrees(facilities["lat"], "lat", -90.0, 90.0)
    mainland = np.asarray(
        in_mainland_china(np.array(lon_e6, dtype=np.float64) / 1e6, np.array(lat_e6) / 1e6),
        dtype=bool,
    )
    flags = state_flags | np.where(mainland, FLAG_MAINLAND, 0)
    hours_words, hours_next = _hours_texts(expressions, language, now, calendar)
    counts = np.bincount(np.array(kind_codes, dtype=np.int64), minlength=len(KINDS))
    return {
        "version": 1,
        "crs": display_crs,
        "lang": language,
        "labels": UI_LABELS[language],
        "kinds": [
            {"key": k.name, "label": k.label(language), "shape": k.web_shape, "count": int(c)}
            for k, c in zip(KIND_SPECS, counts, strict=True)
        ],
        "access": [ACCESS_LABELS[language][a] for a in ACCESS_CLASSES],
        "states": list(STATE_LABELS[language]),
        "amenities": [AMENITY_LABELS[language][a] for a in AMENITIES],
        "nav_source": NAVIGATION_SOURCE,
        "attributions": list(attributions),
        "mainland": _mainland_region(),
        "nearby": nearby,
        "facility_url": facility_url,
        "entry_keys": list(ENTRY_METHODS),
        "entry_methods": list(entry_labels(language).values()),
        "report_types": [{"key": t, "label": REPORT_LABELS[language][t]} for t in REPORT_TYPES],
        "origin": None if origin is None else [float(origin[0]), float(origin[1])],
        "fit": None,
        "data": {
            "id": _texts(_column(facilities, "id")),
            "lon": lon_e6,
            "lat": lat_e6,
            "kind": kind_codes,
            "access": _codes(
                _column(facilities, "access").fillna("public"), ACCESS_CLASSES, "access"
            ),
            "flags": flags.tolist(),
            "name": _texts(facilities["name"]),
            "addr": _texts(_column(facilities, "address")),
            "phone": _texts(_column(facilities, "phone")),
            "entry": _optional_codes(_column(facilities, "entry_method"), ENTRY_METHODS),
            "entry_phone": _texts(_column(facilities, "entry_phone")),
            "entry_note": _texts(_column(facilities, "entry_note")),
            "photos": pd.to_numeric(_column(facilities, "photos"), errors="coerce")
            .fillna(0)
            .astype(int)
            .tolist(),
            "hours": hours_codes,
            "hours_values": expressions,
            "hours_words": hours_words,
            "hours_next": hours_next,
            "verified": _dates(_column(facilities, "verified_at")),
            "amen": _amenity_masks(_column(facilities, "amenities")).tolist(),
            "stars": np.clip(stars.to_numpy(dtype=np.float64), 0, 5).astype(int).tolist(),
        },
    }


@functools.cache
def _mainland_region() -> dict[str, list[Any]]:
    """``{"include": [...], "exclude": [...]}``: polygons (lists of [lon, lat] rings), WGS-84."""
    text = files("geodata").joinpath(*MAINLAND_REGION_FILE).read_text(encoding="utf-8")
    region: dict[str, list[Any]] = {"include": [], "exclude": []}
    for feature in json.loads(text)["features"]:
        geometry = feature["geometry"]
        polygons = (
            geometry["coordinates"]
            if geometry["type"] == "MultiPolygon"
            else [geometry["coordinates"]]
        )
        region[feature["properties"]["part"]].extend(polygons)
    return region


def _json_for_script(document: Any) -> str:
    """JSON safe inside ``<script type="application/json">`` (no ``<``, ``>`` or ``&``)."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def encode_payload(document: dict[str, Any], *, compress: bool | None = None) -> str:
    """Serialise a payload for the page, gzip-compressing ``data`` when large.

    Parameters
    ----------
    document
        From :func:`facility_payload`.
    compress
        True: always gzip + base64 the ``data`` member; False: never; None: when the JSON is over
        :data:`COMPRESS_ABOVE_BYTES`.

    Returns
    -------
    str
        JSON text for a ``<script type="application/json">`` element.
    """
    import base64

    data_json = json.dumps(document["data"], ensure_ascii=False, separators=(",", ":"))
    raw = data_json.encode("utf-8")
    if compress is None:
        compress = len(raw) > COMPRESS_ABOVE_BYTES
    if not compress:
        return _json_for_script({**document, "encoding": "json"})
    packed = base64.b64encode(gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)).decode("ascii")
    return _json_for_script({**document, "encoding": "gzip+base64", "data": packed})


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


def _boundaries_geojson(boundaries: gpd.GeoDataFrame, display_crs: DisplayCrs) -> dict[str, Any]:
    """District polygons, simplified (~20 m), in the display system; property ``adcode`` only."""
    geometries = shapely.simplify(
        np.asarray(boundaries.geometry.to_numpy()), BOUNDARY_SIMPLIFY_DEG, preserve_topology=True
    )
    if display_crs == "gcj02":

        def shift(coords: np.ndarray) -> np.ndarray:
            lon, lat = from_wgs84(coords[:, 0], coords[:, 1], "gcj02")
            return np.column_stack([np.asarray(lon), np.asarray(lat)])

        geometries = shapely.transform(geometries, shift)
    geometries = shapely.set_precision(geometries, 1e-6)
    features = [
        {
            "type": "Feature",
            "properties": {"adcode": re.sub(r"\D", "", str(adcode))},
            "geometry": json.loads(shapely.to_geojson(geometry)),
        }
        for adcode, geometry in zip(boundaries["adcode"], geometries, strict=True)
    ]
    return {"type": "FeatureCollection", "features": features}


@functools.cache
def _bundled_boundaries_geojson(
    display_crs: DisplayCrs,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """:func:`_boundaries_geojson` of the bundled districts and their names (read once)."""
    from geodata.boundaries import load_districts

    districts = load_districts()
    names = tuple(str(name) for name in districts["name"])
    return _boundaries_geojson(districts, display_crs), names


def _check_now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(LOCAL_TIMEZONE)
    if not isinstance(now, dt.datetime):
        raise InvalidInput("now must be a datetime", field="now")
    return now


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
        each facility's first photo (``facilities`` may carry a ``photos`` count column) and a
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
        if point is not None and not (-180 <= point[0] <= 180 and -90 <= point[1] <= 90):
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


def error_page_html(problem: str, *, language: str = "zh", parameters: Sequence[str] = ()) -> str:
    """A small HTML page saying why the map cannot be shown, in the map's language.

    Parameters
    ----------
    problem
        A key of :data:`ERROR_LABELS` (``unknown_district``, ``unknown_facility``,
        ``no_network``, ``off_network``, ``base_map_unavailable``, ``invalid_parameter``,
        ``unauthorized``, ``unavailable``).
    language
        ``"zh"`` or ``"en"``; anything else is Chinese (the page must show even when the
        language parameter itself is wrong).
    parameters
        Names of the offending parameters (``invalid_parameter``), escaped.

    Returns
    -------
    str
        A self-contained page (no script, no request) with the CJK characters it uses
        embedded as a font subset, like the map.
    """
    english = language == "en"
    labels = ERROR_LABELS["en" if english else "zh"]
    message = labels.get(problem, labels["unavailable"])
    if problem == "invalid_parameter":
        message = message.format((", " if english else "、").join(parameters))
    title = labels["title"]
    font_css = cjk_font_face_css(cjk_characters([title, message]))
    lang = "en" if english else "zh-CN"
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{html.escape(title)}</title><style>{font_css}'
        "body{margin:0;padding:24px 20px;font:16px/1.5 'Helvetica Neue',Arial,'PingFang SC',"
        f"'Microsoft YaHei','Noto Sans CJK SC','{CJK_FONT_FAMILY}',sans-serif;color:#212529;"
        "background:#eef1f4}h1{font-size:18px;margin:0 0 8px}p{margin:0}</style></head><body>"
        f'<main class="fm-error" data-problem="{html.escape(problem)}"><h1>{html.escape(title)}'
        f"</h1><p>{html.escape(message)}</p></main></body></html>"
    )


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


__all__ = [
    "BASE_MAPS",
    "LANGUAGES",
    "BaseMapSpec",
    "TileSource",
    "base_map_spec",
    "encode_payload",
    "error_page_html",
    "facility_map",
    "facility_map_html",
    "facility_payload",
    "filter_facilities",
]
