"""``/keys``: list, create and revoke API keys, for keys with the ``admin`` scope.

The same key ring as ``finder keys`` (:func:`api.auth.create_api_key`,
:func:`~api.auth.list_api_keys`, :func:`~api.auth.revoke_api_key`) on the service's key file
(``FINDER_API_KEYS_FILE``): a key created or revoked here works or is refused from the next
request of every worker. The plain key is in the answer of its creation only; listings never
show a key or its hash. The staff console's keys page calls these routes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from api.auth import SCOPES, create_api_key, expiry_from_date, list_api_keys, revoke_api_key
from api.deps import AdminDep, StateDep
from api.errors import ApiProblem, problem_responses
from api.routes.common import JSONBytesResponse
from api.state import AppState

router = APIRouter(prefix="/keys", tags=["Keys"])


class KeyNew(BaseModel):
    """A key to create (the fields of ``finder keys add``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="unique; the audit trail's actor")
    scopes: list[str] = Field(default_factory=list, description=f"any of {', '.join(SCOPES)}")
    organizations: list[str] = Field(default_factory=list, max_length=100)
    member: bool = False
    expires: dt.date | None = Field(None, description="last day the key works (China time)")


def _key_file(state: AppState) -> Path:
    path = state.settings.api_keys_file
    if path is None:
        raise ApiProblem(
            409, "this service has no key file (FINDER_API_KEYS_FILE)", slug="conflict"
        )
    return path


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@router.get(
    "",
    summary="Every key (never the key itself)",
    response_class=JSONBytesResponse,
    responses=problem_responses(401, 403, 409),
)
def keys(admin: AdminDep, state: StateDep) -> Response:
    """Every key of the key file with its status, revoked and expired ones included."""
    now = _now()
    return JSONBytesResponse({"keys": [k.to_json(now) for k in list_api_keys(_key_file(state))]})


@router.post(
    "",
    status_code=201,
    summary="Create a key (the answer holds the key, once)",
    response_class=JSONBytesResponse,
    responses=problem_responses(401, 403, 409),
)
def create_key(admin: AdminDep, state: StateDep, body: Annotated[KeyNew, Body()]) -> Response:
    """Create a key; ``key`` in the answer is the only copy of it (400 for an unknown scope,
    a taken name, a read-private key without organisations, a past expiry)."""
    path = _key_file(state)
    expires = expiry_from_date(body.expires.isoformat()) if body.expires is not None else None
    key = create_api_key(
        path,
        body.name,
        body.scopes,
        body.organizations,
        member=body.member,
        expires=expires,
    )
    info = next(k for k in list_api_keys(path) if k.name == body.name)
    return JSONBytesResponse(info.to_json(_now()) | {"key": key}, status_code=201)


@router.post(
    "/{name}/revoke",
    summary="Revoke a key for good",
    response_class=JSONBytesResponse,
    responses=problem_responses(401, 403, 404, 409),
)
def revoke_key(name: str, admin: AdminDep, state: StateDep) -> Response:
    """Revoke the key ``name``: every worker refuses it from its next request."""
    return JSONBytesResponse(revoke_api_key(_key_file(state), name).to_json(_now()))
