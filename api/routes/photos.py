"""Photos of facilities: staff upload them, everyone who may see the facility sees them.

``POST /facilities/{id}/photos`` takes the image itself as the body (``Content-Type:
image/jpeg``, ``image/png`` or ``image/webp``, at most ``FINDER_PHOTO_MAX_MB``) from an ``edit``
key that may write the facility; the photo is re-encoded as JPEG without metadata
(:func:`geodata.photos.photo_from_bytes`: no GPS position, no camera) and kept in the store.
``GET /facilities/{id}/photos/{n}`` serves photo ``n`` (0 is the first),
``?size=thumb`` its thumbnail, from our own origin. ``DELETE /facilities/{id}/photos/{n}`` (the
same keys as adding) takes a photo down: its bytes are erased, the other photos keep their
numbers (popups show the first photo still shown), and every cache asks again before it serves
a photo (``no-cache`` with an ``ETag``), so none serves one that was taken down.
``GET /facilities/{id}/photos`` lists the numbers with who added (and took down) each. A facility
the caller may not see answers exactly as a missing one (404), on every route.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import EditorDep, PrincipalDep, StateDep
from api.errors import ApiProblem, problem_responses
from api.routes.common import JSONBytesResponse
from api.routes.facilities import _capped, _MiB, _too_large, _visible, _writable
from geodata.photos import PHOTO_TYPES, photo_from_bytes
from geodata.store import StoredPhoto

router = APIRouter(prefix="/facilities", tags=["Photos"])

#: The OpenAPI request body of a photo upload: the image itself.
PHOTO_BODY = {
    "requestBody": {
        "required": True,
        "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in PHOTO_TYPES},
    }
}


def photo_media_type(request: Request) -> str:
    """The declared type of an uploaded photo (415 problem unless one of :data:`PHOTO_TYPES`)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in PHOTO_TYPES:
        raise ApiProblem(
            415,
            f"send the photo as the body with Content-Type {', '.join(PHOTO_TYPES)}",
            slug="unsupported-media-type",
            errors=[{"parameter": "Content-Type", "reason": "not an accepted image type"}],
        )
    return media_type


async def photo_of_body(request: Request, media_type: str, max_mb: int) -> StoredPhoto:
    """The request body as a stored photo: at most ``max_mb`` (413 problem), decoded as
    ``media_type`` and re-encoded without metadata (:func:`geodata.photos.photo_from_bytes`;
    :class:`~geodata.errors.InvalidPhoto` when it is not such an image)."""
    limit = max_mb * _MiB
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(max_mb)
    data = b"".join([chunk async for chunk in _capped(request.stream(), limit, max_mb)])
    return await run_in_threadpool(photo_from_bytes, data, media_type)


@router.post(
    "/{facility_id}/photos",
    status_code=201,
    summary="Attach a photo to a facility",
    response_class=JSONBytesResponse,
    responses=problem_responses(401, 403, 404, 413, 415, 422),
    openapi_extra=PHOTO_BODY,
)
async def add_photo(
    facility_id: str, request: Request, editor: EditorDep, state: StateDep
) -> Response:
    """Attach the body (a JPEG, PNG or WebP image) as the facility's next photo."""
    media_type = photo_media_type(request)
    facility = await run_in_threadpool(_visible, state.store, facility_id, editor)
    _writable(facility, editor)
    photo = await photo_of_body(request, media_type, state.settings.photo_max_mb)
    n = await run_in_threadpool(state.store.add_photo, facility_id, photo, actor=editor.name)
    state.photos_changed()
    url = str(request.url_for("facility_photo", facility_id=facility_id, n=n).path)
    return JSONBytesResponse(
        {
            "n": n,
            "url": url,
            "thumb_url": f"{url}?size=thumb",
            "width": photo.width,
            "height": photo.height,
        },
        status_code=201,
        headers={"Location": url},
    )


@router.get(
    "/{facility_id}/photos/{n}",
    summary="A photo of a facility (JPEG)",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The photo"},
        304: {"description": "Not modified: the If-None-Match ETag is the photo's"},
        **problem_responses(404),
    },
)
def facility_photo(
    facility_id: str,
    n: int,
    request: Request,
    principal: PrincipalDep,
    state: StateDep,
    size: Annotated[Literal["full", "thumb"], Query(description="the photo or its thumbnail")] = (
        "full"
    ),
) -> Response:
    """Photo ``n`` of the facility (0: the first), or with ``size=thumb`` its thumbnail."""
    facility = _visible(state.store, facility_id, principal)
    body = state.store.photo(facility_id, n, thumb=size == "thumb")
    return jpeg_response(body, public=facility.access == "public", request=request)


@router.delete(
    "/{facility_id}/photos/{n}",
    status_code=204,
    summary="Take a photo of a facility down",
    response_class=Response,
    responses=problem_responses(401, 403, 404),
)
def delete_photo(facility_id: str, n: int, editor: EditorDep, state: StateDep) -> Response:
    """Take photo ``n`` down: its image and thumbnail are erased from the store (who and when
    are kept); the other photos keep their numbers and ``n`` is never given again."""
    _writable(_visible(state.store, facility_id, editor), editor)
    state.store.delete_photo(facility_id, n, actor=editor.name)
    state.photos_changed()
    return Response(status_code=204)


@router.get(
    "/{facility_id}/photos",
    summary="The photos of a facility, with who added (and took down) each",
    response_class=JSONBytesResponse,
    responses=problem_responses(401, 403, 404),
)
def facility_photos(
    facility_id: str, request: Request, editor: EditorDep, state: StateDep
) -> Response:
    """Every photo number of the facility in order, each with its size, who added it and when,
    and who took it down and when (``null`` while it is shown, when ``url`` serves it)."""
    _writable(_visible(state.store, facility_id, editor), editor)
    photos = []
    for entry in state.store.photos(facility_id):
        url = str(request.url_for("facility_photo", facility_id=facility_id, n=entry.n).path)
        shown = entry.deleted_at is None
        photos.append(
            entry._asdict()
            | {"url": url if shown else None, "thumb_url": f"{url}?size=thumb" if shown else None}
        )
    return JSONBytesResponse({"photos": photos})


def jpeg_response(body: bytes, *, public: bool, request: Request) -> Response:
    """A photo's JPEG bytes as served from our origin (shared caches only for ``public``).

    Caches keep it but ask again before each use (``no-cache``; ``304`` while the ``ETag``, a
    digest of the bytes, still matches), so a photo taken down (or a facility hidden since) is
    never served from a cache."""
    etag = f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'
    headers = {
        "Cache-Control": f"{'public' if public else 'private'}, no-cache",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="image/jpeg", headers=headers)
