"""``GET /health``: is the service up and its store reachable (for load balancers).

Answered from memory (:meth:`api.state.LiveFacilities.health`), on the event loop: it never waits
for the store, so a hung database gives a quick 503 instead of a hung health check.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from api.deps import StateDep
from api.errors import ApiProblem, problem_responses
from api.routes.common import JSONBytesResponse

router = APIRouter(tags=["Service"])

#: ``Retry-After`` of the 503 answer, seconds.
RETRY_AFTER_S = 5


@router.get(
    "/health",
    summary="Health check",
    response_class=JSONBytesResponse,
    responses=problem_responses(503),
)
async def health(state: StateDep) -> Response:
    """``{"status": "ok", "store": "ok", "snapshot": "current", "snapshot_age_s": ...,
    "warnings": []}`` when the store answers; a 503 problem naming what is degraded when not.

    ``snapshot_age_s`` is the time since the served facilities were last known to match the
    store; ``snapshot`` is ``"behind"`` while newer changes are being indexed. From 1 November,
    while the next year's official holiday arrangement is not loaded, the answer stays 200 and
    lists the warning in ``warnings``. No facility counts: they would tell anonymous callers
    about facilities they may not see.
    """
    live = state.live
    seen = live.health()
    age = round(seen.snapshot_age_s, 1)
    if not seen.reachable:
        raise ApiProblem(
            503,
            f"the facility store does not answer (for {seen.down_s:.1f} s); "
            f"answering from the facilities as known {age:g} s ago",
            slug="store-unavailable",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    warning = live.calendar_warning.check(live.current().index.calendar)
    return JSONBytesResponse(
        {
            "status": "ok",
            "store": "ok",
            "snapshot": "behind" if seen.snapshot_behind else "current",
            "snapshot_age_s": age,
            "warnings": [warning] if warning else [],
        }
    )
