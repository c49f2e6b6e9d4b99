"""Errors of the service: one table from error class to HTTP status, rendered as RFC 9457.

Library code raises the domain errors of :mod:`geodata.errors`; routes raise :class:`ApiProblem`
for what only HTTP knows (a missing ``If-Match``, a missing or wrong API key). Every error leaves
the service as ``application/problem+json``::

    {"type": "tag:zhigong-finder,2026:problem/invalid-parameter", "title": "Invalid parameter",
     "status": 400, "detail": "k must be between 1 and 100", "instance": "/nearest",
     "errors": [{"parameter": "k", "reason": "must be between 1 and 100"}]}

``type`` is a tag URI (RFC 4151) naming the kind of problem; ``errors`` lists each offending
``parameter`` (query, path or header) or body ``field`` with the reason. The ``detail`` of a domain
error is its message, which the library keeps safe to show; a server error (500) says nothing
about its cause to the client and is logged with the traceback instead.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from geodata.errors import (
    CalendarYearNotCovered,
    FacilityNotFound,
    FileTooLarge,
    FinderError,
    InvalidInput,
    InvalidPhoto,
    NationalBoundariesMissing,
    NotFound,
    OffNetwork,
    StoreBusy,
    StoreError,
    StoreFull,
    StoreReadOnly,
    StoreUnavailable,
    UnknownDistrict,
    UnreadableFile,
    VersionConflict,
)

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_PREFIX = "tag:zhigong-finder,2026:problem/"

#: Domain error class -> (HTTP status, problem slug). The most specific class wins (MRO order).
DEFAULT_STATUS_CODES: dict[type[Exception], tuple[int, str]] = {
    FacilityNotFound: (404, "not-found"),
    NationalBoundariesMissing: (404, "boundaries-not-installed"),
    UnknownDistrict: (404, "not-found"),
    CalendarYearNotCovered: (404, "not-found"),
    NotFound: (404, "not-found"),
    OffNetwork: (404, "off-network"),
    VersionConflict: (409, "conflict"),
    FileTooLarge: (413, "too-large"),
    UnreadableFile: (422, "unreadable-file"),
    InvalidPhoto: (422, "invalid-photo"),
    InvalidInput: (400, "invalid-parameter"),
    StoreBusy: (503, "store-busy"),
    StoreFull: (503, "store-full"),
    StoreReadOnly: (503, "store-read-only"),
    StoreUnavailable: (503, "store-unavailable"),
    StoreError: (503, "store-unavailable"),
}


class ApiProblem(Exception):
    """An HTTP-level problem raised by a route or dependency (never by library code).

    Parameters
    ----------
    status
        HTTP status code.
    detail
        Explanation safe to show to the client.
    slug
        Short name of the problem kind (the end of the ``type`` URI).
    errors
        Items ``{"parameter"|"field": name, "reason": text}``.
    headers
        Extra response headers (``WWW-Authenticate``, ``ETag``).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        errors: Sequence[dict[str, Any]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug
        self.errors = list(errors)
        self.headers = headers or {}


def invalid_parameter(parameter: str, reason: str) -> ApiProblem:
    """A 400 problem about one query, path or header parameter."""
    return ApiProblem(
        400,
        f"{parameter}: {reason}",
        slug="invalid-parameter",
        errors=[{"parameter": parameter, "reason": reason}],
    )


def invalid_body(exc: ValidationError) -> ApiProblem:
    """A 422 problem naming each field of a JSON body that the model refused."""
    errors = [
        {"field": ".".join(str(p) for p in e["loc"]) or "body", "reason": e["msg"]}
        for e in exc.errors()
    ]
    return ApiProblem(
        422,
        "; ".join(f"{e['field']}: {e['reason']}" for e in errors),
        slug="invalid-body",
        errors=errors,
    )


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    errors: Sequence[dict[str, Any]] = (),
    headers: dict[str, str] | None = None,
) -> Response:
    """An ``application/problem+json`` response (RFC 9457)."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": _TYPE_PREFIX + slug if slug else "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = list(errors)
    return Response(
        json.dumps(body, ensure_ascii=False, default=str).encode(),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: An absolute server path's directories (``/tmp/finder-import-x/``), not those of a URL.
_SERVER_DIRS = re.compile(r"(?<![\w.:/~-])(?:/[^/\s'\"]+)+/(?=[^/\s'\"]+)")


def loggable(value: object) -> str:
    """``value`` as text for one log line: control characters (CR, LF, ESC, ...) escaped.

    Every log call that writes something a client sent (a path, a key name, an error message)
    passes it through here, so ``%0A`` in a URL cannot forge a log line: a line feed is
    written as the four characters ``\\x0a``.
    """
    text = str(value)
    if text.isprintable():  # no control character (they are all unprintable): the usual case
        return text
    return _CONTROL.sub(
        lambda m: (
            f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}"
        ),
        text,
    )


def without_server_paths(text: str) -> str:
    """``text`` with the directories of absolute server paths removed (the file name stays):
    a problem never shows where the server keeps its files."""
    return _SERVER_DIRS.sub("", text)


def status_of(exc: Exception) -> tuple[int, str]:
    """HTTP status and problem slug of a domain error (500 for anything not in the table)."""
    for cls in type(exc).__mro__:
        if cls in DEFAULT_STATUS_CODES:
            return DEFAULT_STATUS_CODES[cls]
    return 500, "internal-error"


def _location_name(loc: Sequence[Any]) -> tuple[str, str]:
    """('parameter' | 'field', name) of a pydantic error location."""
    if loc and loc[0] == "body":
        return "field", ".".join(str(p) for p in loc[1:]) or "body"
    name = str(loc[1]) if len(loc) > 1 else str(loc[0]) if loc else "request"
    return "parameter", name


def _validation_errors(exc: RequestValidationError) -> tuple[int, list[dict[str, Any]]]:
    items: list[dict[str, Any]] = []
    body = False
    for err in exc.errors():
        key, name = _location_name(err.get("loc", ()))
        body = body or key == "field"
        items.append({key: name, "reason": str(err.get("msg", "invalid"))})
    return (422 if body else 400), items


async def _domain_error(request: Request, exc: Exception) -> Response:
    status, slug = status_of(exc)
    if isinstance(exc, StoreUnavailable):  # expected during an outage: one line, no traceback
        logger.warning(
            "%s %s: %s", loggable(request.method), loggable(request.scope["path"]), loggable(exc)
        )
        headers = {"Retry-After": str(exc.retry_after_s)}
        return problem_response(request, status, exc.user_msg, slug=slug, headers=headers)
    if status >= 500:
        logger.error(
            "%s %s failed: %s",
            loggable(request.method),
            loggable(request.scope["path"]),
            loggable(exc),
            exc_info=exc,
        )
        detail = (
            "the facility store is unavailable; try again later"
            if status == 503
            else "internal error"
        )
        return problem_response(request, status, detail, slug=slug)
    detail = without_server_paths(str(exc))
    errors: list[dict[str, Any]] = []
    field = getattr(exc, "field", None)
    if field:
        errors.append({"parameter": field, "reason": detail})
    return problem_response(request, status, detail, slug=slug, errors=errors)


async def _api_problem(request: Request, exc: ApiProblem) -> Response:
    return problem_response(
        request, exc.status, exc.detail, slug=exc.slug, errors=exc.errors, headers=exc.headers
    )


async def _request_validation(request: Request, exc: RequestValidationError) -> Response:
    status, items = _validation_errors(exc)
    detail = "; ".join(f"{e.get('parameter') or e.get('field')}: {e['reason']}" for e in items)
    slug = "invalid-body" if status == 422 else "invalid-parameter"
    return problem_response(request, status, detail or "invalid request", slug=slug, errors=items)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no resource at {request.url.path}"
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(request, exc.status_code, detail, headers=headers)


async def _model_validation(request: Request, exc: ValidationError) -> Response:
    items = [
        {"field": ".".join(str(p) for p in e["loc"]) or "body", "reason": e["msg"]}
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['reason']}" for e in items)
    return problem_response(request, 422, detail, slug="invalid-body", errors=items)


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.error(
        "%s %s failed", loggable(request.method), loggable(request.scope["path"]), exc_info=exc
    )
    return problem_response(request, 500, "internal error", slug="internal-error")


def add_exception_handlers(app: FastAPI) -> None:
    """Render every error of ``app`` as problem+json (domain, HTTP, validation, unexpected)."""
    app.add_exception_handler(FinderError, _domain_error)
    app.add_exception_handler(ApiProblem, _api_problem)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _request_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(ValidationError, _model_validation)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)


#: The problem+json body in the OpenAPI document.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "parameter": {"type": "string"},
                    "field": {"type": "string"},
                    "reason": {"type": "string"},
                },
            },
        },
    },
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problem statuses a route may answer."""
    content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    out: dict[int | str, dict[str, Any]] = {
        status: {"description": HTTPStatus(status).phrase, "content": content}
        for status in sorted({*statuses, 400})
    }
    out["4XX"] = {"description": "Client error", "content": content}
    out["5XX"] = {"description": "Server error", "content": content}
    return out
