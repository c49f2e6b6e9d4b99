"""Editing facilities: create, read, replace, patch, delete, bulk import, audit trail.

Every route here needs an API key with the ``edit`` scope (:mod:`api.auth`); the key's name is
the actor in the audit trail. Concurrent edits never overwrite each other silently: every
facility answer carries an ``ETag`` (the facility's version), and ``PUT``, ``PATCH`` and
``DELETE`` need ``If-Match`` with it (428 without; 412 when someone else changed the facility
first: fetch it again and reapply the change). After a write the in-memory index is updated
before the answer leaves, so the next ``/nearest`` sees the change.

Coordinates in bodies are WGS-84 unless the ``crs`` query parameter names another system
(``gcj02`` for points picked on Amap, ``bd09`` from Baidu); they are stored as WGS-84 with
``source_crs`` recording what was given.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.responses import Response

from api.auth import Principal
from api.deps import EditorDep, StateDep, StoreDep
from api.errors import ApiProblem, invalid_body, invalid_parameter, problem_responses
from api.routes.common import JSONBytesResponse, lonlat_in
from api.state import AppState
from finder.hours import validate_opening_hours
from geodata.boundaries import place_points
from geodata.crs import CrsName
from geodata.errors import (
    FacilityNotFound,
    InvalidCoordinate,
    InvalidOpeningHours,
    VersionConflict,
)
from geodata.imports import import_file
from geodata.schema import ACCESS_CLASSES, EDITABLE_COLUMNS, ID_RE, KINDS, Facility
from geodata.store import FacilityStore
from geodata.validate import new_facility_id, parse_column_map, require_in_service_region

router = APIRouter(prefix="/facilities", tags=["Editing"])

_ETAG_RE = re.compile(r'^\s*(?:W/)?"([0-9]{1,18})"\s*$')
_SUFFIX_RE = re.compile(r"^\.[a-z0-9]{1,8}$")
_CHUNK = 1 << 20
_MiB = 1 << 20
_FORM_OVERHEAD = 64 * 1024  # bytes a form may carry beside the file (boundaries, fields)


def _editable_fields(optional: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in EDITABLE_COLUMNS:
        info = Facility.model_fields[name]
        if name == "id" and optional:
            continue
        if optional:
            fields[name] = (info.annotation | None, None)  # type: ignore[operator]
        else:
            fields[name] = (info.annotation, info)
    return fields


_FORBID = ConfigDict(extra="forbid")
FacilityInput: type[BaseModel] = create_model(
    "FacilityInput", __config__=_FORBID, **_editable_fields(False)
)
FacilityInput.__doc__ = "A facility as written by an editor (the store sets version and times)."
FacilityNew: type[BaseModel] = create_model(
    "FacilityNew",
    __config__=_FORBID,
    **_editable_fields(False)
    | {
        "id": (
            str | None,
            Field(
                default=None,
                pattern=ID_RE.pattern,
                description="leave empty for a server-assigned id (required for keys that "
                "cannot see every facility)",
            ),
        )
    },
)
FacilityNew.__doc__ = "A new facility; without an id, the server assigns one."
FacilityPatch: type[BaseModel] = create_model(
    "FacilityPatch", __config__=_FORBID, **_editable_fields(True)
)
FacilityPatch.__doc__ = "A JSON merge patch (RFC 7396): the fields to change; null clears a field."

IfMatch = Annotated[
    str | None, Header(alias="If-Match", description='the facility\'s ETag, e.g. "3"')
]
_EDIT_RESPONSES = problem_responses(401, 403, 404, 412, 422, 428)
_FACILITY_OUT = {"model": Facility, "description": "The facility as stored (ETag: version)"}


def _facility_response(
    facility: Facility, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return JSONBytesResponse(
        facility.model_dump(mode="json"),
        status_code=status,
        headers={"ETag": f'"{facility.version}"', **(headers or {})},
    )


def _visible(store: FacilityStore, facility_id: str, editor: Any) -> Facility:
    facility = store.get(facility_id)
    if not editor.viewer.may_see(facility.access, facility.organization):
        raise FacilityNotFound(f"no facility with id {facility_id!r}")
    return facility


def _writable(facility: Facility, editor: Principal) -> Facility:
    """``facility`` as it is to be stored, if the key may write it so (403: it would hand the
    facility to an organisation or access class the key does not see)."""
    if not editor.may_write(facility.access, facility.organization):
        raise ApiProblem(
            403,
            f"the key {editor.name!r} may not write a facility with access "
            f"{facility.access!r} of organization {facility.organization!r}",
            slug="forbidden",
            errors=[{"field": "access", "reason": "not an access class this key sees"}],
        )
    return facility


def _matched_version(if_match: str | None, facility: Facility) -> int:
    """The version the client based its change on (428 / 412 / 400 problems otherwise)."""
    if if_match is None:
        raise ApiProblem(
            428,
            "send If-Match with the facility's ETag (GET it first)",
            slug="precondition-required",
            errors=[{"parameter": "If-Match", "reason": "missing"}],
        )
    if if_match.strip() == "*":
        return facility.version
    versions = set()
    for part in if_match.split(","):
        found = _ETAG_RE.match(part)
        if found is None:
            raise invalid_parameter("If-Match", 'expected an ETag such as "3"')
        versions.add(int(found.group(1)))
    if facility.version not in versions:
        raise _stale(facility)
    return facility.version


def _stale(facility: Facility) -> ApiProblem:
    return ApiProblem(
        412,
        f"facility {facility.id!r} changed since you read it (now version "
        f"{facility.version}); fetch it again and reapply your change",
        slug="precondition-failed",
        errors=[{"parameter": "If-Match", "reason": "outdated"}],
        headers={"ETag": f'"{facility.version}"'},
    )


def _validated(values: dict[str, Any]) -> Facility:
    """A :class:`Facility` from body values (422 problems naming each bad field, and ``lon`` /
    ``lat`` for a point outside the service region, as the import checks each row)."""
    try:
        facility = Facility.model_validate(values)
    except ValidationError as exc:
        raise invalid_body(exc) from None
    try:
        require_in_service_region(facility.lon, facility.lat)
    except InvalidCoordinate as exc:
        raise ApiProblem(
            422,
            str(exc),
            slug="invalid-body",
            errors=[{"field": f, "reason": "outside the service region"} for f in ("lon", "lat")],
        ) from None
    if facility.opening_hours:
        try:
            validate_opening_hours(facility.opening_hours)
        except InvalidOpeningHours as exc:
            raise ApiProblem(
                422,
                str(exc),
                slug="invalid-body",
                errors=[{"field": "opening_hours", "reason": str(exc)}],
            ) from None
    return facility


def _with_district(values: dict[str, Any], districts: Any) -> dict[str, Any]:
    """Fill ``adcode`` (and empty district / city / province names) from the boundaries when
    the body gives a position but no adcode, as the bulk import does."""
    if values.get("adcode") or values.get("lon") is None or values.get("lat") is None:
        return values
    place = place_points([values["lon"]], [values["lat"]], districts).iloc[0]
    if place["adcode"] is None:
        return values
    out = values | {"adcode": place["adcode"]}
    for key in ("district", "city", "province"):
        if not out.get(key) and place[key] is not None:
            out[key] = place[key]
    return out


def _in_wgs84(values: dict[str, Any], crs: str) -> dict[str, Any]:
    if crs == "wgs84" or values.get("lon") is None or values.get("lat") is None:
        return values
    lon, lat = lonlat_in(values["lon"], values["lat"], crs)
    return values | {"lon": lon, "lat": lat, "source_crs": crs}


@router.post(
    "",
    status_code=201,
    summary="Create a facility",
    response_class=JSONBytesResponse,
    responses={201: _FACILITY_OUT, **problem_responses(401, 403, 409, 422)},
)
def create_facility(
    request: Request,
    body: Annotated[FacilityNew, Body()],  # type: ignore[valid-type]
    editor: EditorDep,
    state: StateDep,
    crs: Annotated[CrsName, Query(description="coordinate system of lon/lat")] = "wgs84",
) -> Response:
    """Add a facility. Without an ``id`` the server assigns one (``Location`` names it).

    Only keys that see every facility (``read-all``) may choose the id (409 if it is taken);
    for other keys a given id is refused with the same 422 whether or not it exists, so that
    creating never tells whether a hidden facility exists.
    """
    values = _in_wgs84(body.model_dump(), crs)  # type: ignore[attr-defined]
    if values["id"] is None:
        values["id"] = new_facility_id(values["kind"])
    elif not editor.viewer.see_all:
        raise ApiProblem(
            422,
            "leave id empty: the server assigns the ids of new facilities "
            "for keys that cannot see every facility",
            slug="invalid-body",
            errors=[{"field": "id", "reason": "must be empty for this key"}],
        )
    facility = _writable(_validated(_with_district(values, state.regions.places)), editor)
    created = state.store.create(facility, actor=editor.name)
    state.live.applied([created], [])
    location = f"/collections/facilities/items/{created.id}"
    return _facility_response(created, 201, {"Location": location})


@router.get(
    "/{facility_id}",
    summary="One facility (with ETag)",
    response_class=JSONBytesResponse,
    responses={200: _FACILITY_OUT, **problem_responses(401, 403, 404)},
)
def read_facility(facility_id: str, editor: EditorDep, store: StoreDep) -> Response:
    """The facility as stored, with its ``ETag``."""
    return _facility_response(_visible(store, facility_id, editor))


@router.put(
    "/{facility_id}",
    summary="Replace a facility",
    response_class=JSONBytesResponse,
    responses={200: _FACILITY_OUT, **_EDIT_RESPONSES},
)
def replace_facility(
    facility_id: str,
    body: Annotated[FacilityInput, Body()],  # type: ignore[valid-type]
    editor: EditorDep,
    state: StateDep,
    if_match: IfMatch = None,
    crs: Annotated[CrsName, Query(description="coordinate system of lon/lat")] = "wgs84",
) -> Response:
    """Replace every editable field (the body's ``id`` must be the path's)."""
    values = _with_district(
        _in_wgs84(body.model_dump(), crs),  # type: ignore[attr-defined]
        state.regions.places,
    )
    if values["id"] != facility_id:
        raise ApiProblem(
            422,
            "the body's id differs from the path's",
            slug="invalid-body",
            errors=[{"field": "id", "reason": "must equal the path's id"}],
        )
    current = _visible(state.store, facility_id, editor)
    version = _matched_version(if_match, current)
    facility = _writable(_validated(values), editor)
    try:
        saved = state.store.replace(facility, actor=editor.name, if_version=version)
    except VersionConflict:
        raise _stale(state.store.get(facility_id)) from None
    state.live.applied([saved], [])
    return _facility_response(saved)


@router.patch(
    "/{facility_id}",
    summary="Change some fields (JSON merge patch)",
    response_class=JSONBytesResponse,
    responses={200: _FACILITY_OUT, **_EDIT_RESPONSES},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/merge-patch+json": {
                    "schema": {"$ref": "#/components/schemas/FacilityPatch"}
                }
            }
        }
    },
)
def patch_facility(
    facility_id: str,
    body: Annotated[FacilityPatch, Body()],  # type: ignore[valid-type]
    editor: EditorDep,
    state: StateDep,
    if_match: IfMatch = None,
    crs: Annotated[CrsName, Query(description="coordinate system of lon/lat")] = "wgs84",
) -> Response:
    """Change the fields present in the body; the result is validated as a whole."""
    changes = body.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
    return _patched(state, editor, facility_id, changes, if_match, crs)


def _patched(
    state: AppState,
    editor: Principal,
    facility_id: str,
    changes: dict[str, Any],
    if_match: str | None,
    crs: str = "wgs84",
) -> Response:
    """Apply a merge patch as ``PATCH`` does (a revert is one too) and answer the facility."""
    current = _visible(state.store, facility_id, editor)
    version = _matched_version(if_match, current)
    if ("lon" in changes) != ("lat" in changes) and crs != "wgs84":
        raise invalid_parameter("crs", "a patch in another crs must give both lon and lat")
    changes = _in_wgs84(changes, crs)
    if ("lon" in changes or "lat" in changes) and "adcode" not in changes:
        point = {"lon": current.lon, "lat": current.lat} | changes
        blank = dict.fromkeys(("adcode", "district", "city", "province"))
        filled = _with_district(
            {"lon": point["lon"], "lat": point["lat"]} | blank, state.regions.places
        )
        changes["adcode"] = filled["adcode"]
        for key in ("district", "city", "province"):
            if key not in changes and filled[key] is not None:
                changes[key] = filled[key]
    _writable(
        _validated(
            {k: v for k, v in current.model_dump().items() if k in EDITABLE_COLUMNS} | changes
        ),
        editor,
    )
    try:
        saved = state.store.patch(facility_id, changes, actor=editor.name, if_version=version)
    except VersionConflict:
        raise _stale(state.store.get(facility_id)) from None
    state.live.applied([saved], [])
    return _facility_response(saved)


@router.delete(
    "/{facility_id}",
    status_code=204,
    summary="Delete a facility",
    response_class=Response,
    responses={204: {"description": "Deleted"}, **_EDIT_RESPONSES},
)
def delete_facility(
    facility_id: str, editor: EditorDep, state: StateDep, if_match: IfMatch = None
) -> Response:
    """Remove a facility (its last state stays in the audit trail)."""
    current = _visible(state.store, facility_id, editor)
    version = _matched_version(if_match, current)
    try:
        state.store.delete(facility_id, actor=editor.name, if_version=version)
    except VersionConflict:
        raise _stale(state.store.get(facility_id)) from None
    state.live.applied([], [facility_id])
    return Response(status_code=204)


@router.get(
    "/{facility_id}/audit",
    summary="The audit trail of one facility",
    response_class=JSONBytesResponse,
    responses=problem_responses(401, 403, 404),
)
def facility_audit(
    facility_id: str,
    editor: EditorDep,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Who changed the facility, when, and what (newest first).

    The trail of a deleted facility is shown to ``read-all`` keys only.
    """
    try:
        _visible(store, facility_id, editor)
    except FacilityNotFound:
        if not editor.viewer.see_all:
            raise
    entries = store.audit(facility_id, limit=limit)
    return JSONBytesResponse({"facility_id": facility_id, "entries": entries})


#: Actions of the audit trail that a revert can undo (a change of fields of a facility).
_REVERTIBLE = ("update", "patch", "replace")
#: How far back in a facility's audit trail a change can be reverted.
_REVERT_DEPTH = 1000


@router.post(
    "/{facility_id}/audit/{seq}/revert",
    summary="Undo one change (as a new change)",
    response_class=JSONBytesResponse,
    responses={200: _FACILITY_OUT, **_EDIT_RESPONSES},
)
def revert_change(
    facility_id: str, seq: int, editor: EditorDep, state: StateDep, if_match: IfMatch = None
) -> Response:
    """Set the fields of audit entry ``seq`` back to their old values, as a ``PATCH`` with
    ``If-Match`` would (same rights, same validation); the audit trail records it as a new
    change. Only changes of fields (update, patch, replace) of the facility's latest 1,000
    entries can be reverted (422 for a create, a delete or a photo change, 404 for an unknown
    entry).
    """
    _visible(state.store, facility_id, editor)
    entry = next(
        (e for e in state.store.audit(facility_id, limit=_REVERT_DEPTH) if e["seq"] == seq), None
    )
    if entry is None:
        raise ApiProblem(404, f"facility {facility_id!r} has no change {seq}", slug="not-found")
    if entry["action"] not in _REVERTIBLE or not entry["changes"]:
        raise ApiProblem(
            422,
            f"change {seq} is a {entry['action']}; only changes of fields can be reverted",
            slug="invalid-body",
            errors=[{"parameter": "seq", "reason": "not a change of fields"}],
        )
    changes = {name: values[0] for name, values in entry["changes"].items()}
    return _patched(state, editor, facility_id, changes, if_match)


class ImportForm(BaseModel):
    """The fields of a bulk-import form besides ``file``."""

    crs: CrsName | None = Field(
        None,
        description="coordinate system of the file (default: what the coordinate headers name, "
        "as lng_gcj02 or 经度(GCJ02), else wgs84)",
    )
    columns: str | None = Field(
        None, description="headers not understood by name, e.g. lon=经度X,lat=纬度X,name=点位"
    )
    kind: str | None = Field(None, description=f"kind for rows without one: {', '.join(KINDS)}")
    access: str | None = Field(
        None, description=f"access class for rows without one: {', '.join(ACCESS_CLASSES)}"
    )
    dry_run: bool = Field(False, description="validate only, write nothing")
    fixes: str | None = Field(
        None,
        description='cells corrected since the file was saved, as JSON {"<row>": {"<header>": '
        '"<text>"}} (row numbers of the report, the file\'s own headers)',
    )
    report: Literal["json", "csv"] = Field(
        "json",
        description="json: counts and every issue; csv: the rejected rows with their own cells, "
        "field, reason and row (UTF-8 with BOM), to fix and import again as it is",
    )


_IMPORT_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "CSV, XLSX, GeoJSON, GeoPackage or zipped Shapefile",
                    },
                    **ImportForm.model_json_schema()["properties"],
                },
            }
        }
    },
}


def _too_large(max_upload_mb: int) -> ApiProblem:
    return ApiProblem(
        413,
        f"the upload exceeds {max_upload_mb} MB",
        slug="too-large",
        errors=[{"field": "file", "reason": "too large"}],
    )


async def _capped(
    stream: AsyncIterator[bytes], limit: int, max_upload_mb: int
) -> AsyncGenerator[bytes, None]:
    """The request body, cut off with a 413 problem as soon as it passes ``limit`` bytes."""
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise _too_large(max_upload_mb)
        yield chunk


async def _upload_form(request: Request, max_upload_mb: int) -> FormData:
    """The multipart form of an import, streamed from the body under the upload limit.

    A declared ``Content-Length`` over the limit is refused before a byte is read; a chunked
    body is cut off when it passes the limit (the parser removes its spooled file). The route
    declares no body parameters, so FastAPI reads nothing before the key has been checked.
    """
    limit = max_upload_mb * _MiB + _FORM_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(max_upload_mb)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiProblem(
            422,
            "send the file as multipart/form-data",
            slug="invalid-body",
            errors=[{"field": "file", "reason": "missing"}],
        )
    parser = MultiPartParser(
        request.headers,
        _capped(request.stream(), limit, max_upload_mb),
        max_files=1,
        max_fields=len(ImportForm.model_fields),
    )
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise ApiProblem(
            422, f"not a readable multipart form: {exc.message}", slug="invalid-body"
        ) from None


@router.post(
    "/import",
    summary="Bulk import a CSV / XLSX / GeoJSON file",
    response_class=JSONBytesResponse,
    responses={
        200: {
            "description": "the import report (JSON), or the rejects report with `report=csv`",
            "content": {"application/json": {}, "text/csv": {}},
        },
        **problem_responses(401, 403, 409, 413, 422),
    },
    openapi_extra={"requestBody": _IMPORT_BODY},
)
async def bulk_import(request: Request, editor: EditorDep, state: StateDep) -> Response:
    """Validate every row, write the accepted ones in one transaction, answer the report.

    The body (a multipart form: ``file`` and the fields of :class:`ImportForm`) is read only
    after the key has been checked, and no further than ``FINDER_MAX_UPLOAD_MB`` (413).

    The rows have the rights of single edits: a row may update, by ``id``, only a facility the
    key may see; any other id is rejected ("not a facility you may edit") whether or not it
    exists, unless the key sees every facility. Rows without an id are new facilities with
    server-assigned ids. A ``version`` column (the ETag, as ``finder export`` writes it) rejects
    rows whose facility changed since ("changed since version N was read"); 409 if a facility
    changed while the import ran (nothing is written then).
    """
    form = await _upload_form(request, state.settings.max_upload_mb)
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise ApiProblem(
                422,
                "the form needs a file field",
                slug="invalid-body",
                errors=[{"field": "file", "reason": "missing"}],
            )
        options = ImportForm.model_validate(
            {k: v for k, v in form.multi_items() if k != "file" and isinstance(v, str)}
        )
        return await run_in_threadpool(_import_upload, state, editor, file, options)
    finally:
        await form.close()


def _parsed_fixes(text: str | None) -> dict[int, dict[str, str]] | None:
    """The ``fixes`` form field as ``{row: {header: text}}`` (400 problem if malformed)."""
    if not text:
        return None
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        fixes = {int(row): dict(cells) for row, cells in data.items()}
        if not all(
            isinstance(h, str) and isinstance(v, str) for c in fixes.values() for h, v in c.items()
        ):
            raise ValueError("cells must be text")
    except (ValueError, TypeError) as exc:
        raise invalid_parameter(
            "fixes", f'expected {{"<row>": {{"<header>": "<text>"}}}}: {exc}'
        ) from None
    return fixes


def _import_upload(
    state: AppState, editor: Principal, file: UploadFile, options: ImportForm
) -> Response:
    """Run the import of an uploaded file (in a worker thread: it reads and writes)."""
    for name, value, vocabulary in (
        ("kind", options.kind, KINDS),
        ("access", options.access, ACCESS_CLASSES),
    ):
        if value is not None and value not in vocabulary:
            raise invalid_parameter(name, f"use one of {', '.join(vocabulary)}")
    filename = file.filename or "upload"
    suffix = Path(filename).suffix.lower()
    if not _SUFFIX_RE.match(suffix):
        raise ApiProblem(
            422,
            "the file name needs an extension (.csv, .xlsx, .geojson, ...)",
            slug="unreadable-file",
            errors=[{"field": "file", "reason": "no file extension"}],
        )
    with tempfile.TemporaryDirectory(prefix="finder-import-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out, _CHUNK)
        result = import_file(
            state.store,
            path,
            crs=options.crs,
            columns=parse_column_map(options.columns) if options.columns else None,
            kind=options.kind,
            access=options.access,
            actor=editor.name,
            districts=state.regions.places,
            source_name=Path(filename).name,
            dry_run=options.dry_run,
            viewer=editor.viewer,
            limits=state.settings.read_limits(),
            fixes=_parsed_fixes(options.fixes),
        )
    if not options.dry_run:
        state.live.refresh()
    if options.report == "csv":
        buffer = io.BytesIO()
        result.write_csv(buffer)
        return Response(
            buffer.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="rejects.csv"'},
        )
    return JSONBytesResponse(result.to_dict())


audit_router = APIRouter(tags=["Editing"])
#: How many of the service's latest audit entries an organisation's trail is picked from.
_ORG_AUDIT_SCAN = 10_000


@audit_router.get(
    "/audit",
    summary="The latest changes",
    response_class=JSONBytesResponse,
    responses=problem_responses(401, 403),
)
def audit_trail(
    editor: EditorDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """The latest audit entries, newest first: of all facilities for ``read-all`` keys; of the
    facilities of the key's organisations (as they are now) among the service's latest
    10,000 entries for a key with organisations.
    """
    if editor.viewer.see_all:
        return JSONBytesResponse({"entries": state.store.audit(None, limit=limit)})
    organizations = editor.viewer.organizations
    if not organizations:
        raise ApiProblem(
            403,
            "the audit trail needs a key with the 'read-all' scope or with organisations",
            slug="forbidden",
        )
    frame = state.live.current().visible_frame(editor.viewer)
    ours = set(frame.loc[frame["organization"].isin(organizations), "id"])
    latest = state.store.audit(None, limit=_ORG_AUDIT_SCAN)
    entries = [e for e in latest if e["facility_id"] in ours]
    return JSONBytesResponse({"entries": entries[:limit]})
