"""Validation of raw facility rows: headers, values, coordinates, duplicates.

:func:`validate_frame` turns a raw frame (all text, see :mod:`geodata.readers`) into a facility
frame of accepted rows plus a list of :class:`Issue` records. The rule is simple and the same for
every field: a row with any invalid value is rejected, with its row number, the field, the value
and the reason; nothing is dropped silently. Harmless oddities (an ignored column, swapped lon/lat
that were put right) are reported as warnings on accepted rows.

Work is done per distinct value (facility lists repeat few distinct kinds, hours or amenity lists),
so a million rows validate in seconds.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import opening_hours
import pandas as pd

from geodata.crs import SERVICE_REGION, CrsName, in_service_region, parse_crs, to_wgs84
from geodata.entry_methods import entry_alias_rules
from geodata.errors import InvalidCoordinate, InvalidInput, InvalidOpeningHours, UnknownCRS
from geodata.geodesy import GEOD, invalid_degrees, range_text
from geodata.kinds import KIND_BY_NAME, kind_alias_rules
from geodata.schema import (
    ACCESS_CLASSES,
    ADCODE_RE,
    AMENITIES,
    COLUMNS,
    ENTRY_METHODS,
    FORMATS,
    ID_RE,
    KINDS,
    STATUSES,
)

ROW = "_row"

#: Header aliases (normalised: lower case, no spaces, no bracketed unit) -> canonical column.
#: A coordinate header may also name its system (``lng_gcj02``, ``经度(GCJ02)``): see
#: :func:`split_crs`.
HEADER_ALIASES: dict[str, str] = {
    **{c: c for c in COLUMNS},
    "编号": "id",
    "设施编号": "id",
    "站点编号": "id",
    "code": "id",
    "fid": "id",
    "名称": "name",
    "设施名称": "name",
    "站点名称": "name",
    "小屋名称": "name",
    "驿站名称": "name",
    "点位名称": "name",
    "title": "name",
    "类型": "kind",
    "设施类型": "kind",
    "类别": "kind",
    "type": "kind",
    "category": "kind",
    "facility_type": "kind",
    "facilitytype": "kind",
    "形式": "format",
    "建设形式": "format",
    "形态": "format",
    "地址": "address",
    "详细地址": "address",
    "所在地址": "address",
    "位置": "address",
    "省": "province",
    "省份": "province",
    "所属省": "province",
    "市": "city",
    "城市": "city",
    "所属市": "city",
    "区": "district",
    "所属区": "district",
    "所在区": "district",
    "区县": "district",
    "所属区县": "district",
    "行政区": "district",
    "区划代码": "adcode",
    "行政区划代码": "adcode",
    "经度": "lon",
    "lng": "lon",
    "long": "lon",
    "longitude": "lon",
    "x": "lon",
    "x坐标": "lon",
    "纬度": "lat",
    "latitude": "lat",
    "y": "lat",
    "y坐标": "lat",
    "开放对象": "access",
    "服务对象": "access",
    "开放类型": "access",
    "是否对外开放": "access",
    "所属单位": "organization",
    "单位": "organization",
    "单位名称": "organization",
    "建设单位": "organization",
    "org": "organization",
    "organisation": "organization",
    "开放时间": "opening_hours",
    "服务时间": "opening_hours",
    "营业时间": "opening_hours",
    "hours": "opening_hours",
    "open_hours": "opening_hours",
    "openhours": "opening_hours",
    "设施": "amenities",
    "配套设施": "amenities",
    "服务设施": "amenities",
    "设施设备": "amenities",
    "配置": "amenities",
    "amenity": "amenities",
    "星级": "star_rating",
    "stars": "star_rating",
    "star": "star_rating",
    "面积": "area_m2",
    "area": "area_m2",
    "电话": "phone",
    "联系电话": "phone",
    "tel": "phone",
    "telephone": "phone",
    "进入方式": "entry_method",
    "入室方式": "entry_method",
    "入站方式": "entry_method",
    "进门方式": "entry_method",
    "开门方式": "entry_method",
    "使用方式": "entry_method",
    "如何进入": "entry_method",
    "entry": "entry_method",
    "开门电话": "entry_phone",
    "预约电话": "entry_phone",
    "管理员电话": "entry_phone",
    "值守电话": "entry_phone",
    "联系人电话": "entry_phone",
    "entry_tel": "entry_phone",
    "进入说明": "entry_note",
    "入室说明": "entry_note",
    "开门说明": "entry_note",
    "使用说明": "entry_note",
    "进入备注": "entry_note",
    "运营单位": "operator",
    "管理单位": "operator",
    "负责单位": "operator",
    "主管工会": "operator",
    "状态": "status",
    "运营状态": "status",
    "核验日期": "verified_at",
    "核实日期": "verified_at",
    "验收日期": "verified_at",
    "verified": "verified_at",
    "来源": "source",
    "数据来源": "source",
}

# Value vocabularies: (pattern, canonical) tried in order; the first match wins. The kinds' are
# in geodata.kinds.
_ACCESS_RULES: tuple[tuple[str, str], ...] = (
    (r"^(public|open|yes|true|是)$|公开|对外开放|公众|社会开放|所有人", "public"),
    (r"^(members?|union)$|会员", "members"),
    (r"^(employees?|staff|internal|no|false|否)$|内部|本单位|员工|职工|不对外", "employees"),
)
_STATUS_RULES: tuple[tuple[str, str], ...] = (
    (r"^(temporarily.?closed|paused)$|暂停|暂时|维修|临时关闭", "temporarily_closed"),
    (r"^(closed|removed)$|关闭|停用|撤销|取消", "closed"),
    (r"^(open|active|ok)$|开放|正常|运营|在用|启用", "open"),
)
_FORMAT_RULES: tuple[tuple[str, str], ...] = (
    (r"^mobile$|流动|车|移动", "mobile"),
    (r"^box$|箱|柜", "box"),
    (r"^corner$|角", "corner"),
    (r"^room$|室|屋|间", "room"),
)
AMENITY_ALIASES: dict[str, str] = {
    **{a: a for a in AMENITIES},
    "冰箱": "fridge",
    "储奶冰箱": "fridge",
    "微波炉": "microwave",
    "热水": "hot_water",
    "热水器": "hot_water",
    "饮水机": "drinking_water",
    "饮用水": "drinking_water",
    "直饮水": "drinking_water",
    "空调": "air_conditioning",
    "充电": "charging",
    "充电宝": "charging",
    "充电桩": "charging",
    "手机充电": "charging",
    "卫生间": "toilet",
    "厕所": "toilet",
    "洗手间": "toilet",
    "wi-fi": "wifi",
    "无线网": "wifi",
    "无线网络": "wifi",
    "座椅": "seating",
    "桌椅": "seating",
    "休息椅": "seating",
    "沙发": "sofa",
    "床": "bed",
    "休息床": "bed",
    "洗手池": "sink",
    "洗手台": "sink",
    "水池": "sink",
    "消毒柜": "disinfection_cabinet",
    "尿布台": "changing_table",
    "护理台": "changing_table",
    "婴儿护理台": "changing_table",
    "智能门锁": "smart_lock",
    "人脸识别": "smart_lock",
    "门禁": "smart_lock",
    "急救箱": "first_aid",
    "医药箱": "first_aid",
    "药箱": "first_aid",
    "吸奶器": "breast_pump",
    "哺乳椅": "nursing_chair",
    "隔帘": "privacy_curtain",
    "遮挡帘": "privacy_curtain",
    "书籍": "books",
    "图书": "books",
    "书报": "books",
    "雨伞": "umbrella",
    "爱心雨伞": "umbrella",
    "维修工具": "repair_kit",
    "工具箱": "repair_kit",
    "取暖": "heating",
    "暖气": "heating",
    "电扇": "fan",
    "风扇": "fan",
    "淋浴": "shower",
    "储物柜": "locker",
    "无障碍": "accessible",
    "电动车停放": "parking_ebike",
}
_AMENITY_SPLIT = re.compile(r"[、，,;；/|\s]+")
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_WEEKDAYS = {
    "一": "Mo",
    "二": "Tu",
    "三": "We",
    "四": "Th",
    "五": "Fr",
    "六": "Sa",
    "日": "Su",
    "天": "Su",
}

#: Columns a rejects report adds after each row's own cells (see ``geodata.imports``); they are
#: ignored with a note when the fixed report is imported again.
REPORT_COLUMNS = ("field", "reason", "row")

#: The fields an import reads (``--columns`` may map any of them).
_IMPORTED_FIELDS = tuple(c for c in COLUMNS if c not in ("source_crs", "created_at", "updated_at"))

_BRACKETED = r"[（(\[【].*?[）)\]】]"


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding about one input row: ``level`` is ``"rejected"`` or ``"warning"``."""

    row: int
    field: str
    value: str | None
    reason: str
    level: str = "rejected"


def normalize_header(header: str) -> str:
    """Lower case, no spaces, and no bracketed unit: ``面积（㎡）`` -> ``面积``."""
    text = re.sub(_BRACKETED, "", str(header))
    return re.sub(r"\s+", "", text).lower()


def _crs_or_none(text: str) -> CrsName | None:
    """The system ``text`` names (``GCJ02``, ``百度坐标``, ``WGS84坐标系``), else ``None``."""
    try:
        return parse_crs(re.sub(r"坐标系?$", "", text.strip("_-. ")))
    except UnknownCRS:
        return None


def split_crs(header: str) -> tuple[str, CrsName | None]:
    """The normalised header and the coordinate system a lon / lat header names, if any.

    The system is read from a bracket (``经度(GCJ02)``, ``纬度（百度坐标）``), a suffix
    (``lng_gcj02``, ``lat-wgs84``) or a prefix (``GCJ-02 longitude``), spelt as
    :func:`geodata.crs.parse_crs` accepts it. Other headers name no system.

    >>> split_crs("lng_gcj02"), split_crs("经度(BD-09)"), split_crs("面积（㎡）")
    (('lng', 'gcj02'), ('经度', 'bd09'), ('面积', None))
    """
    base = normalize_header(header)
    if HEADER_ALIASES.get(base) in ("lon", "lat"):
        for inner in re.findall(_BRACKETED, str(header)):
            if (crs := _crs_or_none(inner[1:-1])) is not None:
                return base, crs
        return base, None
    for i in range(1, len(base)):
        for word, rest in ((base[:i], base[i:]), (base[i:], base[:i])):
            word = word.strip("_-.")
            if HEADER_ALIASES.get(word) in ("lon", "lat"):
                crs = _crs_or_none(rest)
                if crs is not None:
                    return word, crs
    return base, None


def parse_column_map(text: str) -> dict[str, str]:
    """``{field: header}`` from ``lon=经度X,lat=纬度X`` (the ``--columns`` option).

    Full-width ``，`` and ``＝`` are accepted. Raises :class:`InvalidInput` (field ``columns``)
    for an item that is not ``FIELD=HEADER`` or a field that is not a facility field.
    """
    columns: dict[str, str] = {}
    for item in re.split(r"[,，]", text.replace("＝", "=")):
        if not item.strip():
            continue
        field, sep, header = (part.strip() for part in item.partition("="))
        if not sep or not field or not header:
            raise InvalidInput(
                f"columns: {item.strip()!r} is not FIELD=HEADER (e.g. lon=经度X,lat=纬度X)",
                field="columns",
            )
        if field not in _IMPORTED_FIELDS:
            raise InvalidInput(
                f"columns: {field!r} is not a facility field; use {', '.join(_IMPORTED_FIELDS)}",
                field="columns",
            )
        columns[field] = header
    return columns


def map_headers(
    columns: Iterable[str], overrides: Mapping[str, str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """``({source header: canonical column}, [ignored headers])``; first of duplicates wins.

    ``overrides`` (``{field: header}``, see :func:`parse_column_map`) come first; a header it
    names that is not among ``columns`` raises :class:`InvalidInput`. Headers starting with
    ``_`` (the readers' own columns) are skipped.
    """
    columns = list(columns)
    mapping: dict[str, str] = {}
    for field, header in (overrides or {}).items():
        if header not in columns:
            shown = ", ".join(c for c in columns if not c.startswith("_"))
            raise InvalidInput(
                f"columns: {header!r} is not a column of the file (its columns: {shown})",
                field="columns",
            )
        mapping[header] = field
    taken = set(mapping.values())
    ignored: list[str] = []
    for col in columns:
        if col.startswith("_") or col in mapping:
            continue
        canonical = HEADER_ALIASES.get(split_crs(col)[0])
        if canonical is None or canonical in taken or col in REPORT_COLUMNS:
            ignored.append(col)
            continue
        mapping[col] = canonical
        taken.add(canonical)
    return mapping, ignored


def coordinate_crs(mapping: Mapping[str, str], crs: str | None) -> CrsName:
    """The system of the coordinate columns: ``crs`` if given, else what their headers name,
    else ``wgs84``.

    Raises :class:`InvalidInput` (field ``crs``) naming both when ``crs`` and a header, or the
    lon and lat headers, name different systems.
    """
    named = [
        (header, found)
        for header, canonical in mapping.items()
        if canonical in ("lon", "lat") and (found := split_crs(header)[1]) is not None
    ]
    if crs is not None:
        given = parse_crs(crs)
        for header, found in named:
            if found != given:
                raise InvalidInput(
                    f"the coordinate system given ({given}) contradicts column {header!r}, "
                    f"which says {found}: leave the system out or rename the column",
                    field="crs",
                )
        return given
    if len({found for _, found in named}) > 1:
        (h1, c1), (h2, c2) = named[:2]
        raise InvalidInput(
            f"column {h1!r} says {c1} but column {h2!r} says {c2}: rename one", field="crs"
        )
    return named[0][1] if named else "wgs84"


def _rule_mapper(rules: tuple[tuple[str, str], ...]) -> Callable[[str], str | None]:
    compiled = [(re.compile(p, re.IGNORECASE), v) for p, v in rules]

    @lru_cache(maxsize=4096)
    def mapper(value: str) -> str | None:
        text = value.strip()
        for pattern, canonical in compiled:
            if pattern.search(text):
                return canonical
        return None

    return mapper


map_kind = _rule_mapper(kind_alias_rules())
map_access = _rule_mapper(_ACCESS_RULES)
map_status = _rule_mapper(_STATUS_RULES)
map_format = _rule_mapper(_FORMAT_RULES)
map_entry_method = _rule_mapper(entry_alias_rules())


@lru_cache(maxsize=4096)
def parse_amenities(value: str) -> tuple[str, list[str]]:
    """``("a;b", [unknown terms])`` from a list such as ``冰箱、微波炉, wifi``."""
    known: set[str] = set()
    unknown: list[str] = []
    for term in _AMENITY_SPLIT.split(value.strip()):
        if not term:
            continue
        canonical = AMENITY_ALIASES.get(term.lower())
        if canonical is None:
            unknown.append(term)
        else:
            known.add(canonical)
    order = {a: i for i, a in enumerate(AMENITIES)}
    return ";".join(sorted(known, key=order.__getitem__)), unknown


@lru_cache(maxsize=1024)
def parse_star_rating(value: str) -> int | None:
    """1-5 from ``4``, ``4星``, ``四星级``, ``★★★★``; ``None`` when it is none of these."""
    text = value.strip()
    if text and set(text) <= {"★", "☆"}:
        stars = text.count("★")
        return stars if 1 <= stars <= 5 else None
    match = re.fullmatch(r"([1-5一二两三四五])(?:\.0)?\s*(?:星级?|stars?)?", text, re.IGNORECASE)
    if not match:
        return None
    digit = match.group(1)
    return _CN_DIGITS[digit] if digit in _CN_DIGITS else int(digit)


_VERSION_RE = re.compile(r'\s*(?:W/)?"?([1-9][0-9]{0,17})(?:\.0+)?"?\s*')


def parse_version(value: str) -> int | None:
    """A facility version (ETag) from ``3``, ``3.0`` (spreadsheets) or ``"3"``; else ``None``."""
    match = _VERSION_RE.fullmatch(value)
    return int(match.group(1)) if match else None


def _cn_days(match: re.Match[str]) -> str:
    first = _WEEKDAYS[match.group(1)]
    last = match.group(2)
    return f"{first}-{_WEEKDAYS[last]}" if last else first


@lru_cache(maxsize=8192)
def normalize_opening_hours(value: str) -> str:
    """An OSM ``opening_hours`` expression from what lists write, validated.

    Full-width punctuation becomes ASCII; ``全天``/``24小时`` becomes ``24/7``; Chinese weekday
    ranges (``周一至周五``, ``星期一到星期五``), ``工作日`` (Mo-Fr), ``每天`` (Mo-Su) and
    ``节假日`` (PH) become OSM day selectors. Raises :class:`InvalidOpeningHours` with the
    parser's reason when the result is not valid OSM syntax.
    """
    text = value.strip()
    table = str.maketrans(
        {
            "：": ":",
            "－": "-",
            "—": "-",
            "–": "-",
            "～": "-",
            "~": "-",
            "，": ",",
            "；": ";",
            "　": " ",
        }
    )
    text = text.translate(table)
    if re.fullmatch(r"(全天|24小时|24h|24/7|7x24小时|7×24小时|全天候)(开放)?", text, re.I):
        return "24/7"
    day = r"(?:周|星期)([一二三四五六日天])"
    text = re.sub(day + r"(?:\s*(?:至|到|-)\s*" + day + ")?", _cn_days, text)
    text = text.replace("工作日", "Mo-Fr").replace("每天", "Mo-Su").replace("每日", "Mo-Su")
    text = text.replace("节假日", "PH").replace("法定节假日", "PH").replace("关闭", "off")
    text = re.sub(r"(\d{1,2}:\d{2})\s*(?:至|到)\s*(\d{1,2}:\d{2})", r"\1-\2", text)
    text = re.sub(r"\s*-\s*", "-", text)
    text = re.sub(r"\s*;\s*", "; ", text).strip("; ")
    if not opening_hours.validate(text):
        try:
            opening_hours.OpeningHours(text)
        except opening_hours.ParserError as exc:  # type: ignore[attr-defined]
            reason = str(exc).strip().splitlines()
            detail = reason[-1].strip(" =") if reason else "syntax error"
            raise InvalidOpeningHours(
                f"not valid OpenStreetMap opening_hours syntax: {value!r} ({detail})",
                field="opening_hours",
            ) from exc
        raise InvalidOpeningHours(
            f"not valid OpenStreetMap opening_hours syntax: {value!r}", field="opening_hours"
        )
    return text


_UNIT = re.compile(r"(㎡|平方米|平米|m2|m²|°)$")


def _to_float(series: pd.Series) -> pd.Series:
    """Numbers from text; a trailing unit (㎡, 平方米, m2, °) is allowed; else NaN."""
    numbers = pd.to_numeric(series, errors="coerce")
    retry = numbers.isna() & series.notna()
    if retry.any():
        cleaned = series[retry].map(lambda v: _UNIT.sub("", str(v)).strip())
        numbers[retry] = pd.to_numeric(cleaned, errors="coerce")
    return numbers.astype(float)


def _parse_date(value: str) -> str | None:
    text = re.sub(r"[年月/.]", "-", value.strip()).rstrip("日").split(" ")[0].split("T")[0]
    try:
        day: str = pd.Timestamp(text).date().isoformat()
    except ValueError:
        return None
    return day


def _not_a_number(name: str) -> Callable[[Any], str]:
    return lambda value: f"{name} {value!r} is not a number"


def outside_service_region(lon: npt.ArrayLike, lat: npt.ArrayLike) -> np.ndarray:
    """Whether points lie outside the region the registry serves: the one coordinate check of
    every write (import rows, single edits) and every query point.

    The region is mainland China, Hong Kong, Macau and Taiwan with their coastal waters
    (:func:`geodata.crs.in_service_region`); vectorised, about 0.4 s per million points.

    Parameters
    ----------
    lon, lat : array_like
        Longitude and latitude in degrees (WGS-84; GCJ-02 / BD-09 points may be given as they
        are, their shift is far below the region's margins). NaN counts as outside.

    Returns
    -------
    numpy.ndarray of bool
        True where a point is outside.
    """
    return ~np.asarray(in_service_region(lon, lat), dtype=bool)


def require_in_service_region(lon: float, lat: float) -> None:
    """Refuse one point outside the service region (see :func:`outside_service_region`).

    Raises
    ------
    InvalidCoordinate
        Naming the point and the region; ``field`` is ``"lon"``.
    """
    if not in_service_region(float(lon), float(lat)):
        raise InvalidCoordinate(outside_region_reason(lon, lat), field="lon")


def outside_region_reason(lon: object, lat: object) -> str:
    """The message for a point outside the service region."""
    return f"the point lon={lon}, lat={lat} is outside the service region ({SERVICE_REGION})"


#: Makes the id of a row that comes without one: ``(kind, name, address, lon, lat) -> id``.
IdMaker = Callable[[str, str, str | None, float, float], str]


def stable_id(kind: str, name: str, address: str | None, lon: float, lat: float) -> str:
    """A deterministic id for rows that come without one: the same row gives the same id."""
    key = f"{kind}|{name}|{address or ''}|{lon:.5f}|{lat:.5f}"
    return f"{KIND_BY_NAME[kind].id_prefix}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def new_facility_id(kind: str, *_row: object) -> str:
    """A fresh random id (64 bits) for a new facility, e.g. ``mr-3f2a9c0d1e4b5a69``.

    The server assigns these to the facilities of callers who cannot see every facility, so that
    an id never tells them whether a hidden facility exists. Takes the arguments of
    :data:`IdMaker` and uses only ``kind``.
    """
    return f"{KIND_BY_NAME[kind].id_prefix}-{secrets.token_hex(8)}"


class _Collector:
    """Collects issues and the mask of rejected rows while the columns are checked."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows
        self.rejected = np.zeros(len(rows), dtype=bool)
        self.issues: list[Issue] = []

    def reject(
        self,
        mask: np.ndarray,
        field: str,
        values: pd.Series | None,
        reason: str | Callable[[Any], str],
    ) -> None:
        self._add(mask, field, values, reason, "rejected")
        self.rejected |= mask

    def warn(
        self,
        mask: np.ndarray,
        field: str,
        values: pd.Series | None,
        reason: str | Callable[[Any], str],
    ) -> None:
        self._add(mask, field, values, reason, "warning")

    def _add(
        self,
        mask: np.ndarray,
        field: str,
        values: pd.Series | None,
        reason: str | Callable[[Any], str],
        level: str,
    ) -> None:
        for i in np.flatnonzero(mask):
            value = None if values is None else values.iloc[i]
            text = reason(value) if callable(reason) else reason
            self.issues.append(
                Issue(int(self.rows[i]), field, None if value is None else str(value), text, level)
            )


def _header_warnings(mapping: Mapping[str, str], ignored: list[str]) -> list[Issue]:
    """One warning per ignored column naming what was understood; one note for the columns a
    rejects report adds."""
    understood = ", ".join(f"{header} → {field}" for header, field in mapping.items())
    first = {field: header for header, field in mapping.items()}
    issues: list[Issue] = []
    for header in ignored:
        field = HEADER_ALIASES.get(split_crs(header)[0])
        if header in REPORT_COLUMNS:
            continue
        if field is not None:
            reason = f"a second {field} column; ignored (column {first[field]!r} is used)"
        else:
            reason = (
                f"column {header!r} not recognised; ignored. Understood: {understood}. "
                f"If it holds a facility field, map it with --columns FIELD={header}"
            )
        issues.append(Issue(0, header, None, reason, "warning"))
    if report := [h for h in ignored if h in REPORT_COLUMNS]:
        issues.append(
            Issue(
                0,
                "columns",
                None,
                f"columns {', '.join(report)} of a rejects report are ignored",
                "warning",
            )
        )
    return issues


def _map_column(
    out: pd.DataFrame,
    col: str,
    mapper: Callable[[str], str | None],
    allowed: tuple[str, ...],
    issues: _Collector,
    default: str | None,
) -> None:
    values = out[col] if col in out else pd.Series([None] * len(out), index=out.index)
    present = values.notna().to_numpy()
    uniques = {v: mapper(str(v)) for v in values[present].unique()}
    mapped = values.map(uniques).astype(object)
    mapped[~present] = default
    bad = present & mapped.isna().to_numpy()
    issues.reject(
        bad, col, values, lambda v: f"unknown {col} {v!r}; expected one of {', '.join(allowed)}"
    )
    out[col] = mapped


def _entry_phones(out: pd.DataFrame, issues: _Collector) -> None:
    """``call_keeper`` rows need the number to call: without an ``entry_phone``, the facility's
    ``phone`` is taken (with a warning); with neither, the row is rejected."""
    if "entry_phone" not in out:
        out["entry_phone"] = None
    calls = (out["entry_method"] == "call_keeper").to_numpy() & out["entry_phone"].isna().to_numpy()
    phone = out["phone"] if "phone" in out else pd.Series([None] * len(out), index=out.index)
    borrowed = calls & phone.notna().to_numpy()
    issues.warn(
        borrowed,
        "entry_phone",
        phone,
        lambda v: f"entry by calling the keeper without a number to call: took the phone {v}",
    )
    out.loc[borrowed, "entry_phone"] = phone[borrowed]
    issues.reject(
        calls & ~borrowed,
        "entry_phone",
        None,
        "entry by calling the keeper (电话联系) needs the number to call: give an 开门电话 column",
    )


def _check_coordinates(
    out: pd.DataFrame, raw: pd.DataFrame, crs_name: CrsName, issues: _Collector
) -> None:
    """Coordinates: columns first, else the file's point geometry; swapped pairs put right,
    ranges and the service region checked, converted to WGS-84 (``source_crs`` records the
    input system)."""
    if "lon" not in out and "_geom_lon" in raw:
        out["lon"] = raw["_geom_lon"].to_numpy()
        out["lat"] = raw["_geom_lat"].to_numpy()
    for col in ("lon", "lat"):
        if col not in out:
            out[col] = None
    geometry_kind = out["lon"].astype(str).str.startswith("not-a-point:")
    issues.reject(
        geometry_kind.to_numpy(),
        "geometry",
        out["lon"],
        lambda v: f"geometry is a {str(v).split(':', 1)[1]}, not a point",
    )
    lon_text, lat_text = out["lon"].where(~geometry_kind), out["lat"].where(~geometry_kind)
    lon = _to_float(lon_text).to_numpy(float)
    lat = _to_float(lat_text).to_numpy(float)
    for name, values, text in (("lon", lon, lon_text), ("lat", lat, lat_text)):
        empty = text.isna().to_numpy() & ~geometry_kind.to_numpy()
        issues.reject(empty, name, None, f"{name} is empty")
        unparsable = np.isnan(values) & ~text.isna().to_numpy()
        issues.reject(unparsable, name, text, _not_a_number(name))
    swapped = (lon >= 3.5) & (lon <= 54) & (lat >= 73) & (lat <= 136)
    issues.warn(swapped, "lon", out["lon"], "longitude and latitude were swapped; put right")
    lon, lat = np.where(swapped, lat, lon), np.where(swapped, lon, lat)
    finite = np.isfinite(lon) & np.isfinite(lat)
    # NaN was refused above (empty or not a number); an infinity is out of range
    bad_lon = ~np.isnan(lon) & invalid_degrees(lon, "lon")
    bad_lat = ~np.isnan(lat) & invalid_degrees(lat, "lat")
    issues.reject(
        bad_lon, "lon", out["lon"], lambda v: f"longitude {v} is outside {range_text('lon')}"
    )
    issues.reject(
        bad_lat, "lat", out["lat"], lambda v: f"latitude {v} is outside {range_text('lat')}"
    )
    plausible = finite & ~bad_lon & ~bad_lat
    wlon, wlat = to_wgs84(
        np.where(plausible, lon, np.nan), np.where(plausible, lat, np.nan), crs_name
    )
    outside = plausible & outside_service_region(wlon, wlat)
    where = pd.Series(lon.astype(str), dtype=object) + "," + pd.Series(lat.astype(str))
    issues.reject(outside, "lon", where, lambda v: outside_region_reason(*v.split(",")))
    out["lon"], out["lat"] = wlon, wlat
    out["source_crs"] = crs_name


def _check_names(out: pd.DataFrame, issues: _Collector) -> None:
    """Names: present and at most 200 characters."""
    if "name" not in out:
        out["name"] = None
    issues.reject(out["name"].isna().to_numpy(), "name", None, "name is empty")
    long_name = out["name"].notna() & (out["name"].astype(str).str.len() > 200)
    issues.reject(long_name.to_numpy(), "name", None, "name is longer than 200 characters")


def _check_classes(
    out: pd.DataFrame,
    issues: _Collector,
    default_kind: str | None,
    default_access: str | None,
) -> None:
    """The coded columns (kind, access, status, format, entry method) mapped to their codes; an
    employees-only facility needs its organisation."""
    _map_column(out, "kind", map_kind, KINDS, issues, default_kind)
    issues.reject(
        out["kind"].isna().to_numpy() & ~issues.rejected,
        "kind",
        None,
        "kind is empty; give a 类型 column or --kind",
    )
    _map_column(out, "access", map_access, ACCESS_CLASSES, issues, default_access)
    issues.reject(
        out["access"].isna().to_numpy() & ~issues.rejected,
        "access",
        None,
        "access is empty: say who may use it (public / members / employees) in an 开放对象 "
        "column, or give it for all such rows with --access",
    )
    _map_column(out, "status", map_status, STATUSES, issues, "open")
    if "format" in out:
        _map_column(out, "format", map_format, FORMATS, issues, None)

    if "entry_method" in out:
        _map_column(out, "entry_method", map_entry_method, ENTRY_METHODS, issues, None)
        _entry_phones(out, issues)

    if "organization" not in out:
        out["organization"] = None
    no_org = (out["access"] == "employees").to_numpy() & out["organization"].isna().to_numpy()
    issues.reject(
        no_org, "organization", None, "access 'employees' needs the host organisation (所属单位)"
    )


def _check_opening_hours(out: pd.DataFrame, issues: _Collector) -> None:
    """Opening hours normalised (:func:`normalize_opening_hours`)."""
    if "opening_hours" in out:
        hours = out["opening_hours"]
        normalised: dict[Any, str | None] = {}
        reasons: dict[Any, str] = {}
        for value in hours.dropna().unique():
            try:
                normalised[value] = normalize_opening_hours(str(value))
            except InvalidOpeningHours as exc:
                reasons[value] = str(exc)
        bad = hours.isin(list(reasons)).to_numpy()
        issues.reject(bad, "opening_hours", hours, lambda v: reasons[v])
        out["opening_hours"] = hours.map(normalised).astype(object)


def _check_amenities(out: pd.DataFrame, issues: _Collector) -> None:
    """Amenities parsed; unknown ones left out with a warning."""
    if "amenities" in out:
        parsed = {v: parse_amenities(str(v)) for v in out["amenities"].dropna().unique()}
        unknown_terms = {v: bool(p[1]) for v, p in parsed.items()}
        unknown = out["amenities"].map(unknown_terms).fillna(False).to_numpy(bool)
        issues.warn(
            unknown,
            "amenities",
            out["amenities"],
            lambda v: f"unknown amenities {parsed[v][1]} left out; known: {', '.join(AMENITIES)}",
        )
        out["amenities"] = out["amenities"].map({v: p[0] for v, p in parsed.items()}).fillna("")
    else:
        out["amenities"] = ""


def _check_numbers_and_dates(out: pd.DataFrame, issues: _Collector) -> None:
    """Star rating, area, verification date, version and adcode parsed and range-checked."""
    if "star_rating" in out:
        stars = {v: parse_star_rating(str(v)) for v in out["star_rating"].dropna().unique()}
        unrated = out["star_rating"].map({v: r is None for v, r in stars.items()}).fillna(False)
        bad = unrated.to_numpy(bool)
        issues.reject(
            bad, "star_rating", out["star_rating"], lambda v: f"star rating {v!r} is not 1-5"
        )
        out["star_rating"] = out["star_rating"].map(stars).astype("Float64").astype("Int64")

    if "area_m2" in out:
        area = _to_float(out["area_m2"])
        bad = (out["area_m2"].notna() & (area.isna() | (area <= 0) | (area > 100_000))).to_numpy()
        issues.reject(bad, "area_m2", out["area_m2"], lambda v: f"area {v!r} is not 0-100000 m2")
        out["area_m2"] = area

    if "verified_at" in out:
        dates = {v: _parse_date(str(v)) for v in out["verified_at"].dropna().unique()}
        undated = out["verified_at"].map({v: d is None for v, d in dates.items()}).fillna(False)
        bad = undated.to_numpy(bool)
        issues.reject(
            bad,
            "verified_at",
            out["verified_at"],
            lambda v: f"date {v!r} is not a date (YYYY-MM-DD)",
        )
        out["verified_at"] = out["verified_at"].map(dates).astype(object)

    if "version" in out:
        versions = {v: parse_version(str(v)) for v in out["version"].dropna().unique()}
        no_version = out["version"].map({v: n is None for v, n in versions.items()})
        issues.reject(
            no_version.fillna(False).to_numpy(bool),
            "version",
            out["version"],
            lambda v: f"version {v!r} is not a version number (the facility's ETag, e.g. 3)",
        )
        out["version"] = out["version"].map(versions).astype("Float64").astype("Int64")

    if "adcode" in out:
        bad = (out["adcode"].notna() & ~out["adcode"].astype(str).str.match(ADCODE_RE)).to_numpy()
        issues.reject(bad, "adcode", out["adcode"], lambda v: f"adcode {v!r} is not 6 digits")


def _check_lengths(out: pd.DataFrame, issues: _Collector) -> None:
    """Text columns within their lengths."""
    for col, limit in (
        ("address", 200),
        ("phone", 50),
        ("entry_phone", 50),
        ("entry_note", 200),
        ("operator", 200),
        ("organization", 200),
        ("province", 200),
        ("city", 200),
        ("district", 200),
        ("source", 500),
    ):
        if col in out:
            long = (out[col].notna() & (out[col].astype(str).str.len() > limit)).to_numpy()
            issues.reject(long, col, None, f"{col} is longer than {limit} characters")


def _check_ids(out: pd.DataFrame, issues: _Collector, new_id: IdMaker) -> None:
    """Ids: given ones must be well formed; missing ones are derived from the row."""
    if "id" not in out:
        out["id"] = None
    given = out["id"].notna().to_numpy()
    bad_id = given & ~out["id"].astype(str).str.match(ID_RE).to_numpy()
    issues.reject(
        bad_id, "id", out["id"], lambda v: f"id {v!r} must be 1-64 letters, digits or _.:- "
    )
    ok = ~issues.rejected
    derive = ok & ~given
    out.loc[derive, "id"] = [
        new_id(k, n, a, x, y)
        for k, n, a, x, y in zip(
            out.loc[derive, "kind"],
            out.loc[derive, "name"],
            out["address"][derive] if "address" in out else [None] * int(derive.sum()),
            out.loc[derive, "lon"],
            out.loc[derive, "lat"],
            strict=True,
        )
    ]


def _reject_duplicates(out: pd.DataFrame, issues: _Collector) -> None:
    """Duplicates among accepted rows: same id, then same name within a few metres."""
    rows = issues.rows
    ok = ~issues.rejected
    ids = out["id"].where(ok)
    dup = ids.duplicated(keep="first").to_numpy() & ok
    first_row = dict(
        zip(ids[ok][~ids[ok].duplicated()], rows[ok][~ids[ok].duplicated()], strict=True)
    )
    issues.reject(
        dup, "id", out["id"], lambda v: f"duplicate id {v!r}: first given in row {first_row[v]}"
    )
    ok = ~issues.rejected
    near = _near_duplicates(
        out["name"].to_numpy(object), out["lon"].to_numpy(float), out["lat"].to_numpy(float), ok
    )
    for i, j in near:
        issues.issues.append(
            Issue(
                int(rows[j]),
                "name",
                str(out["name"].iloc[j]),
                f"same name as row {int(rows[i])} within {DUPLICATE_M:g} m: a duplicate entry",
            )
        )
        issues.rejected[j] = True


def _accepted_rows(out: pd.DataFrame, issues: _Collector, source: str) -> pd.DataFrame:
    """The accepted rows with the columns of the schema (less the store-managed timestamps) and
    ``_row``."""
    for col in COLUMNS:
        if col not in out:
            out[col] = None
    if source:
        out["source"] = out["source"].where(out["source"].notna(), source)
    out["star_rating"] = out["star_rating"].astype("Int64")
    out["version"] = out["version"].astype("Int64")
    out["area_m2"] = pd.to_numeric(out["area_m2"], errors="coerce")
    out[ROW] = issues.rows
    accepted = out.loc[~issues.rejected, [*COLUMNS, ROW]].reset_index(drop=True)
    accepted = accepted.drop(columns=["created_at", "updated_at"])
    for col in accepted.columns:
        if col not in ("lon", "lat", "star_rating", "area_m2", "version", ROW):
            accepted[col] = accepted[col].astype(object).where(accepted[col].notna(), None)
    return accepted


def validate_frame(
    raw: pd.DataFrame,
    *,
    crs: str | None = None,
    columns: Mapping[str, str] | None = None,
    default_kind: str | None = None,
    default_access: str | None = None,
    source: str = "",
    new_id: IdMaker = stable_id,
) -> tuple[pd.DataFrame, list[Issue]]:
    """Validate a raw frame into accepted facility rows and issues.

    Parameters
    ----------
    raw
        Text columns with the source headers (Chinese or English) and a ``_row`` column.
    crs
        The system of the input coordinates: ``wgs84``, ``cgcs2000``, ``gcj02`` or ``bd09``.
        ``None``: the system the coordinate headers name (``lng_gcj02``, ``经度(GCJ02)``), else
        ``wgs84``; see :func:`coordinate_crs`, which raises :class:`InvalidInput` on a
        contradiction. Coordinates are converted to WGS-84; ``source_crs`` records the input
        system.
    columns
        ``{field: header}`` for headers the alias table does not know (:func:`parse_column_map`).
    default_kind, default_access
        Used for rows whose kind / access column is absent or empty (``--kind`` of the CLI).
        With no default, a row without an access class is rejected: guessing ``public`` could
        reveal an employees-only room.
    source
        Written to ``source`` where the row has none.
    new_id
        Makes the ids of rows without one (default :func:`stable_id`: the same row gives the
        same id on re-import; :func:`new_facility_id` for server-assigned random ids).

    Returns
    -------
    (frame, issues)
        ``frame`` has the columns of :data:`geodata.schema.COLUMNS` (less the store-managed
        timestamps) plus ``_row``; ``version`` is the version of the facility the row was based
        on (``<NA>`` where not given); every raw row is either in ``frame`` or has at
        least one ``rejected`` issue.
    """
    rows = raw[ROW].to_numpy() if ROW in raw else np.arange(2, len(raw) + 2)
    issues = _Collector(rows)
    mapping, ignored = map_headers(raw.columns, columns)
    crs_name = coordinate_crs(mapping, crs)
    out = raw.rename(columns=mapping)[list(mapping.values())].copy()
    out.index = pd.RangeIndex(len(out))
    issues.issues += _header_warnings(mapping, ignored)

    _check_coordinates(out, raw, crs_name, issues)
    _check_names(out, issues)
    _check_classes(out, issues, default_kind, default_access)
    _check_opening_hours(out, issues)
    _check_amenities(out, issues)
    _check_numbers_and_dates(out, issues)
    _check_lengths(out, issues)
    _check_ids(out, issues, new_id)
    _reject_duplicates(out, issues)
    accepted = _accepted_rows(out, issues, source)
    issues.issues.sort(key=lambda it: (it.row, it.level != "rejected"))
    return accepted, issues.issues


#: Two rows with the same name closer than this are taken as the same facility listed twice.
DUPLICATE_M = 10.0


def _near_duplicates(
    names: np.ndarray, lon: np.ndarray, lat: np.ndarray, ok: np.ndarray
) -> list[tuple[int, int]]:
    """Pairs ``(first, later)`` of accepted rows with equal names within ``DUPLICATE_M``.

    Candidate pairs come from a KD-tree over local metres (a generous radius), then the
    geodesic distance on the WGS-84 ellipsoid decides.
    """
    from scipy.spatial import cKDTree

    idx = np.flatnonzero(ok)
    if len(idx) < 2:
        return []
    y = lat[idx] * 110_574.0
    x = lon[idx] * 111_320.0 * np.cos(np.radians(lat[idx]))
    pairs = cKDTree(np.column_stack([x, y])).query_pairs(DUPLICATE_M * 1.05, output_type="ndarray")
    if not len(pairs):
        return []
    a, b = idx[pairs[:, 0]], idx[pairs[:, 1]]
    same = names[a] == names[b]
    a, b = np.minimum(a[same], b[same]), np.maximum(a[same], b[same])
    _, _, dist = GEOD.inv(lon[a], lat[a], lon[b], lat[b])
    close = np.asarray(dist) <= DUPLICATE_M
    out: list[tuple[int, int]] = []
    dropped: set[int] = set()
    for first, later in sorted(
        zip(a[close].tolist(), b[close].tolist(), strict=True), key=lambda p: (p[1], p[0])
    ):
        if later not in dropped and first not in dropped:
            out.append((first, later))
            dropped.add(later)
    return out
