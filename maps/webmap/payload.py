"""The facility payload of the web map: the facilities shown, as compact column-wise JSON."""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import json
from collections.abc import Collection, Sequence
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from finder.index import MAP_STATUSES, FacilityFilter, FacilityIndex
from geodata.crs import in_mainland_china
from geodata.entry_methods import ENTRY_METHODS, entry_labels
from geodata.errors import InvalidInput, InvalidOpeningHours
from geodata.geodesy import LAT_RANGE, LON_RANGE, invalid_degrees
from geodata.kinds import KIND_SPECS
from geodata.navigation import NAVIGATION_SOURCE
from geodata.photos import MAX_SIDE_PX
from geodata.schema import (
    ACCESS_CLASSES,
    AMENITIES,
    AMENITY_BIT,
    KINDS,
    REPORT_TYPES,
    Viewer,
)
from maps.webmap.boundaries import _bundled_boundaries_geojson
from maps.webmap.labels import (
    ACCESS_LABELS,
    AMENITY_LABELS,
    REPORT_LABELS,
    STATE_LABELS,
    UI_LABELS,
    DisplayCrs,
    Language,
)

if TYPE_CHECKING:
    import geopandas as gpd

    from finder.hours import HolidayCalendar

#: Time zone of the "open now" evaluation.
LOCAL_TIMEZONE = ZoneInfo("Asia/Shanghai")
#: Payloads (UTF-8 JSON) larger than this are gzip-compressed when ``compress_payload`` is None.
COMPRESS_ABOVE_BYTES = 1_000_000
#: zlib level of compressed payloads: level 3 is 3x faster than the default 6 for ~15 % more bytes.
GZIP_LEVEL = 3
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
_REQUIRED_COLUMNS = ("name", "kind", "lon", "lat")
#: FacilityFilter fields as the map's parameters name them in errors.
_MAP_FIELDS = {"kinds": "kind", "amenities": "amenity"}


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


def _micro_degrees(values: pd.Series, field: Literal["lon", "lat"]) -> list[int]:
    array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    if invalid_degrees(array, field).any():
        low, high = LON_RANGE if field == "lon" else LAT_RANGE
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
        first photo (``{url}/{id}/photos/{photo}?size=thumb``) and a "report a problem" form that
        posts to ``{url}/{id}/reports`` (and an optional photo to the answer's ``photo_url``,
        shrunk in the browser to ``photo_side_px``, :data:`geodata.photos.MAX_SIDE_PX`).
        None where there is no service (a standalone file).

    Returns
    -------
    dict
        JSON-ready document. ``data`` holds one array per column: ``id``, ``lon``/``lat``
        (WGS-84 micro-degrees, integers), ``kind``, ``access``, ``state`` (codes), ``name``,
        ``addr``, ``phone``, ``entry_phone``, ``entry_note`` (strings), ``entry`` (index into
        ``entry_methods``, the labels of :data:`geodata.entry_methods.ENTRY_METHODS`; -1 for not
        given), ``photo`` (the number of the facility's first photo, -1 for none, from an
        optional ``photo`` column), ``verified`` (ISO date of the last check, ``""``),
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
    lon_e6 = _micro_degrees(facilities["lon"], "lon")
    lat_e6 = _micro_degrees(facilities["lat"], "lat")
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
        "photo_side_px": MAX_SIDE_PX,
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
            "photo": pd.to_numeric(_column(facilities, "photo"), errors="coerce")
            .fillna(-1)
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


def _check_now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(LOCAL_TIMEZONE)
    if not isinstance(now, dt.datetime):
        raise InvalidInput("now must be a datetime", field="now")
    return now
