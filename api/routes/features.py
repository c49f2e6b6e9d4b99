"""OGC API - Features, Part 1 (Core, GeoJSON, OpenAPI 3.0) and Part 2 (CRS by reference).

Two collections: ``facilities`` (the facilities the caller may see) and ``districts`` (the
district boundaries). Output coordinates are CRS84 (lon, lat WGS-84) unless ``crs`` asks for
EPSG:4326 (WGS-84, **lat, lon** order) or EPSG:4490 (CGCS2000, lat, lon); ``bbox-crs`` says in
which of them ``bbox`` is given. The answer names its system in the ``Content-Crs`` header.

Access control: every list, count (``numberMatched``) and extent is computed on the facilities
the caller may see, whatever their status (the status rule of ``docs/api.md``: OGC items list
everything the caller may see; ``status=`` narrows it): the index's
:meth:`~finder.index.FacilityIndex.mask` of one :class:`finder.index.FacilityFilter` (viewer,
kinds, access classes, statuses, adcodes, bbox), the same selection as every other surface. An
item the caller may not see answers 404 exactly like a missing one.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import shapely
import shapely.geometry
from fastapi import APIRouter, Query, Request
from pydantic import Field
from starlette.responses import Response

from api.deps import SnapshotDep, StateDep, StoreDep, ViewerDep
from api.errors import ApiProblem, invalid_parameter, problem_responses
from api.routes.common import (
    GeoJSONResponse,
    JSONBytesResponse,
    collection_schema,
    feature_schema,
    geojson_response,
    lonlat_out,
    parse_bbox,
)
from api.state import Snapshot
from finder.index import FacilityFilter
from geodata.boundaries import children_of
from geodata.errors import FacilityNotFound
from geodata.schema import ACCESS_CLASSES, ADCODE_RE, KINDS, STATUSES, Access, Kind, Status

router = APIRouter()

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG_4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
#: OGC CRS URI -> (our system name, latitude first?)
SUPPORTED_CRS: dict[str, tuple[str, bool]] = {
    CRS84: ("wgs84", False),
    EPSG_4326: ("wgs84", True),
    EPSG_4490: ("cgcs2000", True),
}
_CRS_ALIASES = {
    "CRS84": CRS84,
    "OGC:CRS84": CRS84,
    "[OGC:CRS84]": CRS84,
    "EPSG:4326": EPSG_4326,
    "[EPSG:4326]": EPSG_4326,
    "EPSG:4490": EPSG_4490,
    "[EPSG:4490]": EPSG_4490,
}

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
]
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 100
OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.0"
#: Fields of the facility frame that are not GeoJSON properties (id and geometry are apart).
_NOT_PROPERTIES = ("id", "lon", "lat")

FormatParam = Annotated[
    Literal["json", "geojson", "application/json", "application/geo+json"] | None,
    Query(description="Output format: JSON (the only one)"),
]
_CRS_VALUES = [*SUPPORTED_CRS, *_CRS_ALIASES]
CrsParam = Annotated[
    str | None,
    Query(description="CRS of the output coordinates", json_schema_extra={"enum": _CRS_VALUES}),
]
BboxCrsParam = Annotated[
    str | None,
    Query(alias="bbox-crs", description="CRS of bbox", json_schema_extra={"enum": _CRS_VALUES}),
]
AdcodeParam = Annotated[
    list[Annotated[str, Field(pattern=ADCODE_RE.pattern)]] | None,
    Query(description="district codes (6 digits)"),
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (1-10,000)")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip (paging)")]


def _crs(value: str | None, parameter: str) -> tuple[str, str, bool]:
    """(URI, system name, lat first) of a ``crs`` / ``bbox-crs`` value (default CRS84)."""
    uri = CRS84 if value is None else _CRS_ALIASES.get(value.strip(), value.strip())
    if uri not in SUPPORTED_CRS:
        raise invalid_parameter(parameter, f"supported: {', '.join(SUPPORTED_CRS)}")
    name, lat_first = SUPPORTED_CRS[uri]
    return uri, name, lat_first


def _url(request: Request, path: str) -> str:
    return str(request.base_url).rstrip("/") + path


def _link(href: str, rel: str, type_: str, title: str | None = None) -> dict[str, str]:
    link = {"href": href, "rel": rel, "type": type_}
    if title:
        link["title"] = title
    return link


@router.get(
    "/",
    tags=["OGC API - Features"],
    summary="Landing page",
    response_class=JSONBytesResponse,
    responses=problem_responses(),
)
def landing_page(request: Request, f: FormatParam = None) -> Response:
    """The landing page with links to the API description, conformance and the collections."""
    return JSONBytesResponse(
        {
            "title": "职工设施地图 facility finder",
            "description": "Trade-union facilities (mother rooms, worker stations, outdoor rest "
            "stops) as OGC API - Features, with a nearest-facility lookup.",
            "links": [
                _link(_url(request, "/"), "self", "application/json", "This document"),
                _link(
                    _url(request, "/openapi.json"),
                    "service-desc",
                    OPENAPI_MEDIA_TYPE,
                    "The API definition (OpenAPI 3.0)",
                ),
                _link(_url(request, "/docs"), "service-doc", "text/html", "The API documentation"),
                _link(
                    _url(request, "/conformance"),
                    "conformance",
                    "application/json",
                    "Conformance classes",
                ),
                _link(_url(request, "/collections"), "data", "application/json", "Collections"),
            ],
        }
    )


@router.get(
    "/conformance",
    tags=["OGC API - Features"],
    summary="Conformance classes",
    response_class=JSONBytesResponse,
    responses=problem_responses(),
)
def conformance(f: FormatParam = None) -> Response:
    """The conformance classes this service implements."""
    return JSONBytesResponse({"conformsTo": CONFORMANCE})


def _extent(bounds: tuple[float, float, float, float] | None) -> dict[str, Any]:
    spatial: dict[str, Any] = {"crs": CRS84}
    if bounds is not None:
        spatial["bbox"] = [[round(v, 6) for v in bounds]]
    return {"spatial": spatial}


def _collection(
    request: Request,
    cid: str,
    title: str,
    description: str,
    bounds: tuple[float, float, float, float] | None,
) -> dict[str, Any]:
    base = _url(request, f"/collections/{cid}")
    return {
        "id": cid,
        "title": title,
        "description": description,
        "itemType": "feature",
        "crs": list(SUPPORTED_CRS),
        "storageCrs": CRS84,
        "extent": _extent(bounds),
        "links": [
            _link(base, "self", "application/json", title),
            _link(base + "/items", "items", "application/geo+json", f"{title} (GeoJSON)"),
        ],
    }


def _bounds(values: Any) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = (float(v) for v in values)
    return minx, miny, maxx, maxy


def _facility_bounds(
    snapshot: Snapshot, mask: np.ndarray
) -> tuple[float, float, float, float] | None:
    if not mask.any():
        return None
    lon = snapshot.index.columns.lon[mask]
    lat = snapshot.index.columns.lat[mask]
    return float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())


def _collections(
    request: Request, state: Any, snapshot: Snapshot, viewer: Any
) -> dict[str, dict[str, Any]]:
    districts = state.districts
    seen = snapshot.index.mask(FacilityFilter(viewer=viewer, statuses=None))
    return {
        "facilities": _collection(
            request,
            "facilities",
            "Facilities",
            "Mother rooms, worker stations and outdoor rest stops you may use",
            _facility_bounds(snapshot, seen),
        ),
        "districts": _collection(
            request,
            "districts",
            "Districts",
            "District boundaries (adcode, name, 2020 census population)",
            _bounds(districts.total_bounds) if len(districts) else None,
        ),
    }


@router.get(
    "/collections",
    tags=["OGC API - Features"],
    summary="The collections",
    response_class=JSONBytesResponse,
    responses=problem_responses(),
)
def collections(
    request: Request,
    state: StateDep,
    snapshot: SnapshotDep,
    viewer: ViewerDep,
    f: FormatParam = None,
) -> Response:
    """The feature collections: ``facilities`` and ``districts``."""
    return JSONBytesResponse(
        {
            "links": [_link(_url(request, "/collections"), "self", "application/json")],
            "collections": list(_collections(request, state, snapshot, viewer).values()),
        }
    )


@router.get(
    "/collections/{collection_id}",
    tags=["OGC API - Features"],
    summary="One collection",
    response_class=JSONBytesResponse,
    responses=problem_responses(404),
)
def collection(
    request: Request,
    collection_id: str,
    state: StateDep,
    snapshot: SnapshotDep,
    viewer: ViewerDep,
    f: FormatParam = None,
) -> Response:
    """The metadata of one collection."""
    found = _collections(request, state, snapshot, viewer).get(collection_id)
    if found is None:
        raise ApiProblem(404, f"no collection {collection_id!r}", slug="not-found")
    return JSONBytesResponse(found)


def _parse_datetime(text: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """An RFC 3339 instant or interval (``a/b``, ``../b``, ``a/..``) as UTC bounds."""

    def one(part: str) -> pd.Timestamp | None:
        if part in ("", ".."):
            return None
        try:
            stamp = pd.Timestamp(part)
        except (ValueError, TypeError):
            raise invalid_parameter("datetime", f"{part!r} is not an RFC 3339 date-time") from None
        if stamp is pd.NaT:
            raise invalid_parameter("datetime", f"{part!r} is not an RFC 3339 date-time")
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")

    if "/" in text:
        start_text, _, end_text = text.partition("/")
        start, end = one(start_text), one(end_text)
        if start is not None and end is not None and start > end:
            raise invalid_parameter("datetime", "the interval ends before it starts")
        return start, end
    instant = one(text)
    if instant is None:
        raise invalid_parameter("datetime", "give an instant or an interval")
    return instant, instant


def _page_url(request: Request, offset: int, limit: int) -> str:
    """The request's URL at another page: every other parameter kept, repeated ones included
    (``kind=mother_room&kind=rest_stop``)."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("offset", "limit")]
    return str(request.url.replace(query=urlencode([*kept, ("offset", offset), ("limit", limit)])))


def _page_links(request: Request, offset: int, limit: int, matched: int) -> list[dict[str, str]]:
    links = [_link(str(request.url), "self", "application/geo+json", "This page")]
    if offset + limit < matched:
        links.append(
            _link(
                _page_url(request, offset + limit, limit),
                "next",
                "application/geo+json",
                "Next page",
            )
        )
    if offset > 0:
        links.append(
            _link(
                _page_url(request, max(0, offset - limit), limit),
                "prev",
                "application/geo+json",
                "Previous page",
            )
        )
    return links


def facility_feature(record: dict[str, Any], x: float, y: float) -> dict[str, Any]:
    """A facility record (see :meth:`Snapshot.record`) as a GeoJSON feature at ``(x, y)``."""
    return {
        "type": "Feature",
        "id": record["id"],
        "geometry": {"type": "Point", "coordinates": [round(x, 7), round(y, 7)]},
        "properties": {k: v for k, v in record.items() if k not in _NOT_PROPERTIES},
    }


def _feature_collection(
    request: Request,
    features: list[dict[str, Any]],
    matched: int,
    offset: int,
    limit: int,
    crs_uri: str,
) -> Response:
    body = {
        "type": "FeatureCollection",
        "features": features,
        "links": _page_links(request, offset, limit, matched),
        "numberMatched": matched,
        "numberReturned": len(features),
        "timeStamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    return GeoJSONResponse(body, headers={"Content-Crs": f"<{crs_uri}>"})


_FACILITY_FEATURE = feature_schema(
    {
        "name": {"type": "string"},
        "kind": {"type": "string", "enum": list(KINDS)},
        "access": {"type": "string", "enum": list(ACCESS_CLASSES)},
        "status": {"type": "string", "enum": list(STATUSES)},
        "amenities": {"type": "array", "items": {"type": "string"}},
        "version": {"type": "integer", "minimum": 1},
    },
    ["name", "kind", "access", "status", "amenities", "version"],
)
_DISTRICT_FEATURE = feature_schema(
    {"adcode": {"type": "string"}, "name": {"type": "string"}},
    ["adcode", "name"],
    geometry={"type": "object", "required": ["type", "coordinates"]},
)
_FACILITY_ITEMS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: geojson_response(collection_schema(_FACILITY_FEATURE, paged=True), "GeoJSON features"),
    **problem_responses(404),
}
_FACILITY_ITEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: geojson_response(_FACILITY_FEATURE, "GeoJSON feature"),
    **problem_responses(404),
}
_DISTRICT_ITEMS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: geojson_response(collection_schema(_DISTRICT_FEATURE, paged=True), "GeoJSON features"),
    **problem_responses(404),
}
_DISTRICT_ITEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: geojson_response(_DISTRICT_FEATURE, "GeoJSON feature"),
    **problem_responses(404),
}


@router.get(
    "/collections/facilities/items",
    tags=["OGC API - Features"],
    summary="Facilities (paged GeoJSON)",
    response_class=GeoJSONResponse,
    responses=_FACILITY_ITEMS_RESPONSES,
)
def facility_items(
    request: Request,
    snapshot: SnapshotDep,
    viewer: ViewerDep,
    bbox: Annotated[
        str | None, Query(description="minlon,minlat,maxlon,maxlat (see bbox-crs)")
    ] = None,
    bbox_crs: BboxCrsParam = None,
    crs: CrsParam = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
    kind: Annotated[list[Kind] | None, Query(description="facility kinds")] = None,
    adcode: AdcodeParam = None,
    access: Annotated[list[Access] | None, Query(description="access classes")] = None,
    status: Annotated[list[Status] | None, Query(description="statuses")] = None,
    datetime: Annotated[
        str | None, Query(description="RFC 3339 instant or interval; compared with updated_at")
    ] = None,
    f: FormatParam = None,
) -> Response:
    """The facilities the caller may see, filtered, one page at a time."""
    crs_uri, crs_name, lat_first = _crs(crs, "crs")
    frame = snapshot.index.frame
    box = None
    if bbox is not None:
        _, _, bbox_lat_first = _crs(bbox_crs, "bbox-crs")
        box = parse_bbox(bbox, lat_first=bbox_lat_first)
    elif bbox_crs is not None:
        _crs(bbox_crs, "bbox-crs")
    where = FacilityFilter(
        kinds=kind or None,
        access=access or None,
        statuses=status or None,
        viewer=viewer,
        adcodes=adcode or None,
        bbox=box,
    )
    mask = snapshot.index.mask(where)
    if datetime is not None:
        start, end = _parse_datetime(datetime)
        updated = pd.to_datetime(frame["updated_at"], utc=True, errors="coerce")
        if start is not None:
            mask = mask & (updated >= start).to_numpy(dtype=bool, na_value=False)
        if end is not None:
            mask = mask & (updated <= end).to_numpy(dtype=bool, na_value=False)
    positions = np.flatnonzero(mask)
    page = positions[offset : offset + limit]
    x, y = lonlat_out(
        frame["lon"].to_numpy(float)[page], frame["lat"].to_numpy(float)[page], crs_name
    )
    if lat_first:
        x, y = y, x
    features = [
        facility_feature(snapshot.record(int(p)), float(a), float(b))
        for p, a, b in zip(page, x, y, strict=True)
    ]
    return _feature_collection(request, features, len(positions), offset, limit, crs_uri)


@router.get(
    "/collections/facilities/items/{feature_id}",
    tags=["OGC API - Features"],
    summary="One facility (GeoJSON)",
    response_class=GeoJSONResponse,
    responses=_FACILITY_ITEM_RESPONSES,
)
def facility_item(
    request: Request,
    feature_id: str,
    store: StoreDep,
    viewer: ViewerDep,
    crs: CrsParam = None,
    f: FormatParam = None,
) -> Response:
    """One facility with an ``ETag`` (its version); 404 if it is missing or not visible."""
    crs_uri, crs_name, lat_first = _crs(crs, "crs")
    facility = store.get(feature_id)
    if not viewer.may_see(facility.access, facility.organization):
        raise FacilityNotFound(f"no facility with id {feature_id!r}")
    record = facility.model_dump(mode="json")
    x, y = lonlat_out(facility.lon, facility.lat, crs_name)
    if lat_first:
        x, y = y, x
    feature = facility_feature(record, float(x[0]), float(y[0]))
    feature["links"] = [
        _link(str(request.url), "self", "application/geo+json", "This facility"),
        _link(_url(request, "/collections/facilities"), "collection", "application/json"),
    ]
    return GeoJSONResponse(
        feature, headers={"Content-Crs": f"<{crs_uri}>", "ETag": f'"{facility.version}"'}
    )


def _district_feature(row: Any, lat_first: bool, crs_name: str) -> dict[str, Any]:
    geometry = row.geometry
    if crs_name != "wgs84" or lat_first:

        def move(coords: np.ndarray) -> np.ndarray:
            x, y = lonlat_out(coords[:, 0], coords[:, 1], crs_name)
            return np.column_stack([y, x] if lat_first else [x, y])

        geometry = shapely.transform(geometry, move)
    population = row["population"]
    return {
        "type": "Feature",
        "id": row["adcode"],
        "geometry": shapely.geometry.mapping(geometry),
        "properties": {
            "adcode": row["adcode"],
            "name": row["name"],
            "province": row["province"],
            "city": row["city"],
            "population": None if pd.isna(population) else int(population),
        },
    }


@router.get(
    "/collections/districts/items",
    tags=["OGC API - Features"],
    summary="District boundaries (GeoJSON)",
    response_class=GeoJSONResponse,
    responses=_DISTRICT_ITEMS_RESPONSES,
)
def district_items(
    request: Request,
    state: StateDep,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat")] = None,
    bbox_crs: BboxCrsParam = None,
    crs: CrsParam = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
    adcode: AdcodeParam = None,
    parent: Annotated[
        str | None,
        Query(
            pattern=r"^\d{2}(\d{2}){0,2}$",
            description="a province (41) or city (4101): list its cities or counties instead",
        ),
    ] = None,
    f: FormatParam = None,
) -> Response:
    """The district boundaries, filtered by bbox (intersection) or adcode; with ``parent``, the
    cities of a province or the counties of a city, anywhere in China (the ``china`` extra)."""
    crs_uri, crs_name, lat_first = _crs(crs, "crs")
    districts = state.districts if parent is None else children_of(state.regions.places, parent)
    mask = np.ones(len(districts), dtype=bool)
    if adcode:
        mask &= districts["adcode"].isin(adcode).to_numpy()
    if bbox is not None:
        _, _, bbox_lat_first = _crs(bbox_crs, "bbox-crs")
        box = shapely.box(*parse_bbox(bbox, lat_first=bbox_lat_first))
        mask &= districts.intersects(box).to_numpy()
    elif bbox_crs is not None:
        _crs(bbox_crs, "bbox-crs")
    positions = np.flatnonzero(mask)
    page = positions[offset : offset + limit]
    features = [_district_feature(districts.iloc[int(p)], lat_first, crs_name) for p in page]
    return _feature_collection(request, features, len(positions), offset, limit, crs_uri)


@router.get(
    "/collections/districts/items/{feature_id}",
    tags=["OGC API - Features"],
    summary="One district (GeoJSON)",
    response_class=GeoJSONResponse,
    responses=_DISTRICT_ITEM_RESPONSES,
)
def district_item(
    feature_id: str,
    state: StateDep,
    crs: CrsParam = None,
    f: FormatParam = None,
) -> Response:
    """One district by adcode."""
    crs_uri, crs_name, lat_first = _crs(crs, "crs")
    districts = state.districts
    rows = np.flatnonzero(districts["adcode"].to_numpy(dtype=object) == feature_id)
    if len(rows) == 0:
        raise ApiProblem(404, f"no district with adcode {feature_id!r}", slug="not-found")
    feature = _district_feature(districts.iloc[int(rows[0])], lat_first, crs_name)
    return GeoJSONResponse(feature, headers={"Content-Crs": f"<{crs_uri}>"})
