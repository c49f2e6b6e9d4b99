"""The one middleware pass (:class:`api.middleware.ServiceMiddleware`): ``GET /nearest`` served
ahead of the router answers exactly as the routed endpoint does."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest
from api_support import CENTRE, Live

import api.middleware
from api.app import create_app
from api.settings import Settings
from geodata.store import GeoPackageStore

Answer = tuple[int, list[tuple[str, str]], bytes]


def _requests() -> list[tuple[str, list[tuple[str, str]]]]:
    """Random ``/nearest`` requests near the fixture's facilities: answers and refusals."""
    rng = random.Random(12)
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for _ in range(40):
        lon = CENTRE[0] + rng.uniform(-0.2, 0.2)
        lat = CENTRE[1] + rng.uniform(-0.2, 0.2)
        params = [("lon", f"{lon:.6f}"), ("lat", f"{lat:.6f}")]
        params += rng.choice(([], [("k", "3")], [("k", "0")], [("crs", "gcj02")], [("x", "1")]))
        params += rng.choice(([], [("kind", "rest_stop")], [("open_now", "true")]))
        out.append((rng.choice(("GET", "GET", "HEAD")), params))
    out.append(("GET", [("lon", "0"), ("lat", "0")]))  # outside the service region
    return out


def _answer_pairs(live: Live, key: str | None, monkeypatch: pytest.MonkeyPatch) -> list[Answer]:
    """(fast, routed) answers to each request of :func:`_requests`, one right after the other
    (the answers carry the minute)."""
    if isinstance(live.store, GeoPackageStore):
        settings = Settings(store=live.store.path, api_keys_file=live.keys_file)
    else:
        settings = Settings(database_url=live.store.database_url, api_keys_file=live.keys_file)
    app = create_app(settings)
    fast_endpoint = api.middleware.fast_endpoint
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def run() -> list[Answer]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                out = []
                for method, params in _requests():
                    for route in (fast_endpoint, lambda scope: None):
                        monkeypatch.setattr(api.middleware, "fast_endpoint", route)
                        r = await client.request(method, "/nearest", params=params, headers=headers)
                        out.append((r.status_code, sorted(r.headers.items()), r.content))
                return out

    return asyncio.run(run())


@pytest.mark.parametrize("viewer", ["anonymous", "member"])
def test_nearest_ahead_of_the_router_answers_as_the_route(
    live: Live, viewer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = live.keys.member if viewer == "member" else None
    answers = _answer_pairs(live, key, monkeypatch)
    fast, routed = answers[::2], answers[1::2]
    assert {status for status, _, _ in fast} >= {200, 400}
    assert fast == routed
