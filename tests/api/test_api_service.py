"""The service's plumbing: error table, problem+json, API keys, access mask, OpenAPI 3.0, CORS,
request log."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import httpx
import pytest
from api_support import Live
from fastapi import FastAPI
from openapi_spec_validator import validate

from api.auth import KeyRing, create_api_key, hash_key
from api.errors import status_of
from api.middleware import ServiceMiddleware
from finder.hours import HolidayCalendar, local_today
from geodata import errors
from geodata.schema import Viewer


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.FacilityNotFound("x"), 404),
        (errors.UnknownDistrict("x"), 404),
        (errors.InvalidInput("x"), 400),
        (errors.InvalidOpeningHours("x"), 400),
        (errors.VersionConflict("x"), 409),
        (errors.UnreadableFile("x"), 422),
        (errors.StoreError("x"), 503),
        (RuntimeError("x"), 500),
    ],
)
def test_error_table(error: Exception, status: int) -> None:
    assert status_of(error)[0] == status


def test_routing_errors_are_problems(anon: httpx.Client) -> None:
    missing = anon.get("/no/such/route")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["instance"] == "/no/such/route"
    wrong = anon.delete("/nearest")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/problem+json"
    assert set(wrong.json()) >= {"type", "title", "status", "detail", "instance"}


def test_openapi_is_valid_3_0(anon: httpx.Client) -> None:
    document = anon.get("/openapi.json").json()
    assert document["openapi"].startswith("3.0.")
    validate(document)
    text = json.dumps(document)
    assert '"type": "null"' not in text and '"const"' not in text


def test_cors_for_configured_origins_only(anon: httpx.Client) -> None:
    ok = anon.options(
        "/nearest", headers={"Origin": "http://app.example", "Access-Control-Request-Method": "GET"}
    )
    assert ok.headers["access-control-allow-origin"] == "http://app.example"
    other = anon.get("/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_api_keys_are_stored_hashed(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key = create_api_key(path, "staff", ["edit", "read-private"], ["单位A"], member=True)
    text = path.read_text(encoding="utf-8")
    assert key not in text and hash_key(key) in text
    ring = KeyRing(path)
    principal = ring.authenticate(key)
    assert principal is not None and principal.name == "staff" and principal.has("edit")
    assert principal.viewer == Viewer(member=True, organizations=frozenset({"单位A"}))
    assert ring.authenticate(key + "x") is None
    second = create_api_key(path, "later", [])
    assert ring.authenticate(second) is not None  # the ring reloads the changed file
    with pytest.raises(errors.InvalidInput):
        create_api_key(path, "staff", [])
    with pytest.raises(errors.InvalidInput):
        create_api_key(path, "bad", ["root"])
    path.write_text('{"keys": [{"name": "x", "sha256": "not hex"}]}', encoding="utf-8")
    assert ring.authenticate(key) is not None  # a broken edit keeps the previous keys
    with pytest.raises(errors.InvalidInput):
        KeyRing(path)


def test_access_log(caplog: pytest.LogCaptureFixture) -> None:
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    app.add_middleware(ServiceMiddleware, body_timeout_s=30)
    logged = app

    async def call() -> int:
        transport = httpx.ASGITransport(app=logged)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return (await client.get("/ping")).status_code

    with caplog.at_level(logging.INFO, logger="api.access"):
        assert asyncio.run(call()) == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "api.access"]
    assert len(lines) == 1 and lines[0].startswith("GET /ping 200 ")


def test_health(live: Live, anon: httpx.Client) -> None:
    warning = HolidayCalendar.default().with_provisional().missing_next_year(local_today())
    body = anon.get("/health").json()
    assert set(body) == {"status", "store", "snapshot", "snapshot_age_s", "warnings"}  # no counts
    assert (body["status"], body["store"], body["snapshot"]) == ("ok", "ok", "current")
    assert 0 <= body["snapshot_age_s"] < 5
    assert body["warnings"] == ([warning] if warning else [])
