"""Dependencies of the routes: the app state, the caller, the current snapshot.

Routes declare what they need with the typed aliases (``StoreDep``, ``SnapshotDep``,
``PrincipalDep``, ``ViewerDep``, ``EditorDep``, ``AdminDep``); each fails with a clear problem
when it is missing rather than with an ``AttributeError`` deep in a route. The dependencies are
``async`` (they do no I/O beyond a file stat), so FastAPI runs them on the event loop instead of
handing each to the thread pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.auth import ANONYMOUS_PRINCIPAL, Principal
from api.errors import ApiProblem
from api.state import AppState, Snapshot
from geodata.schema import Viewer
from geodata.store import FacilityStore

_BEARER = "bearer "


async def get_state(request: Request) -> AppState:
    """The :class:`AppState` built by the lifespan."""
    state: AppState | None = getattr(request.app.state, "finder", None)
    if state is None:
        raise ApiProblem(
            503, "the service is starting; the facility index is not built yet", slug="not-ready"
        )
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_store(state: StateDep) -> FacilityStore:
    """The facility store."""
    return state.store


async def get_snapshot(state: StateDep) -> Snapshot:
    """The current facility snapshot (facility frame + index)."""
    return state.live.current()


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        if header[: len(_BEARER)].lower() != _BEARER or not header[len(_BEARER) :].strip():
            raise ApiProblem(
                401,
                "the Authorization header must be 'Bearer <API key>'",
                slug="unauthorized",
                headers={"WWW-Authenticate": "Bearer"},
                errors=[{"parameter": "Authorization", "reason": "not a Bearer key"}],
            )
        return header[len(_BEARER) :].strip()
    return request.headers.get("x-api-key")


async def get_principal(request: Request, state: StateDep) -> Principal:
    """The caller: anonymous without a key; a 401 problem for a key that is not known."""
    key = _presented_key(request)
    if key is None:
        return ANONYMOUS_PRINCIPAL
    principal = state.keyring.authenticate(key)
    if principal is None:
        raise ApiProblem(
            401,
            "unknown API key",
            slug="unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
            errors=[{"parameter": "Authorization", "reason": "unknown API key"}],
        )
    request.state.actor = principal.name
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_viewer(principal: PrincipalDep) -> Viewer:
    """Whose access rights filter the facilities (anonymous: public only)."""
    return principal.viewer


def _require_scope(principal: Principal, scope: str, doing: str) -> Principal:
    """``principal`` if its key holds ``scope``: 401 for no key, 403 for a key without it."""
    if principal is ANONYMOUS_PRINCIPAL:
        raise ApiProblem(
            401,
            f"{doing} needs an API key with the {scope!r} scope",
            slug="unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not principal.has(scope):
        raise ApiProblem(
            403, f"the key {principal.name!r} lacks the {scope!r} scope", slug="forbidden"
        )
    return principal


async def get_editor(request: Request, principal: PrincipalDep) -> Principal:
    """The caller, who must hold a key with the ``edit`` scope."""
    return _require_scope(principal, "edit", "editing")


async def get_admin(principal: PrincipalDep) -> Principal:
    """The caller, who must hold a key with the ``admin`` scope."""
    return _require_scope(principal, "admin", "managing keys")


@dataclass(frozen=True)
class Lookup:
    """What a read-only lookup needs, resolved in one call (``/nearest`` calls
    :func:`get_lookup` itself instead of paying for four dependencies per request)."""

    snapshot: Snapshot
    viewer: Viewer


async def get_lookup(request: Request) -> Lookup:
    """The current snapshot and the caller's viewer."""
    state = await get_state(request)
    principal = await get_principal(request, state)
    return Lookup(state.live.current(), principal.viewer)


StoreDep = Annotated[FacilityStore, Depends(get_store)]
SnapshotDep = Annotated[Snapshot, Depends(get_snapshot)]
ViewerDep = Annotated[Viewer, Depends(get_viewer)]
EditorDep = Annotated[Principal, Depends(get_editor)]
AdminDep = Annotated[Principal, Depends(get_admin)]
