"""``GET /health``: is the service up and its store reachable (for load balancers)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from api.deps import StateDep
from api.errors import ApiProblem, problem_responses
from api.routes.common import JSONBytesResponse

router = APIRouter(tags=["Service"])


@router.get(
    "/health",
    summary="Health check",
    response_class=JSONBytesResponse,
    responses=problem_responses(503),
)
def health(state: StateDep) -> Response:
    """``{"status": "ok"}`` when the store answers; a 503 problem when it does not.

    No facility counts: they would tell anonymous callers about facilities they may not see.
    """
    try:
        state.store.change_counter()
    except Exception as exc:
        raise ApiProblem(
            503, "the facility store does not answer", slug="store-unavailable"
        ) from exc
    return JSONBytesResponse({"status": "ok"})
