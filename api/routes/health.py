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

    From 1 November, while the next year's official holiday arrangement is not loaded, the
    answer stays 200 and lists the warning in ``warnings``. No facility counts: they would tell
    anonymous callers about facilities they may not see.
    """
    try:
        state.store.change_counter()
    except Exception as exc:
        raise ApiProblem(
            503, "the facility store does not answer", slug="store-unavailable"
        ) from exc
    live = state.live
    warning = live.calendar_warning.check(live.current().index.calendar)
    return JSONBytesResponse({"status": "ok", "warnings": [warning] if warning else []})
