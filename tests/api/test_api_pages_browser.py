"""The service's HTML pages in Debian's headless Chromium: ``/docs``, ``/redoc``, ``/coverage/map``.

Each page is loaded from the live uvicorn server (both store backends). Every request that
reaches the browser's network layer is intercepted: one for another origin is recorded and
aborted (none may leave: no CDN, no web font, no validator). A request the page's
Content-Security-Policy blocks never gets there. ``chromium`` is the module's browser
(``tests/conftest.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from api_support import Live

pytestmark = pytest.mark.browser

TIMEOUT_MS = 30_000
METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


@dataclass
class Visit:
    """A page, the requests for other origins that reached the network (aborted), page errors."""

    page: Any
    elsewhere: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def visit(chromium: Any) -> Iterator[Any]:
    """``visit(url, **context_options) -> Visit``: opens ``url`` in a fresh context."""
    contexts: list[Any] = []

    def open_url(url: str, **options: Any) -> Visit:
        context = chromium.new_context(locale="zh-CN", **options)
        contexts.append(context)
        page = context.new_page()
        seen = Visit(page)
        origin = url.split("/", 3)[:3]

        def only_origin(route: Any) -> None:
            if route.request.url.split("/", 3)[:3] == origin:
                route.continue_()
            else:
                seen.elsewhere.append(route.request.url)
                route.abort()

        page.route("**/*", only_origin)
        page.on("pageerror", lambda error: seen.errors.append(str(error)))
        page.goto(url)
        return seen

    try:
        yield open_url
    finally:
        for context in contexts:
            context.close()


def _operations(anon: httpx.Client) -> int:
    document = anon.get("/openapi.json").json()
    return sum(len(METHODS & set(item)) for item in document["paths"].values())


def test_docs_lists_every_operation_without_leaving_the_origin(
    live: Live, anon: httpx.Client, visit: Any
) -> None:
    seen = visit(f"{live.url}/docs")
    seen.page.wait_for_selector(".opblock", timeout=TIMEOUT_MS)
    assert seen.page.locator(".opblock").count() == _operations(anon)
    assert (
        seen.page.locator(".information-container .title").inner_text().startswith("职工设施地图")
    )
    assert seen.elsewhere == []
    assert seen.errors == []


def test_redoc_renders_without_leaving_the_origin(
    live: Live, anon: httpx.Client, visit: Any
) -> None:
    seen = visit(f"{live.url}/redoc")
    operations = seen.page.locator("[data-section-id*='/operation/']")
    operations.first.wait_for(state="attached", timeout=TIMEOUT_MS)
    assert operations.count() == _operations(anon)
    assert seen.elsewhere == []
    assert seen.errors == []


def test_coverage_map_without_leaving_the_origin(live: Live, visit: Any) -> None:
    seen = visit(f"{live.url}/coverage/map?radius_m=800", viewport={"width": 390, "height": 844})
    seen.page.wait_for_selector("html[data-coverage-ready]", state="attached", timeout=TIMEOUT_MS)
    assert seen.page.locator(".coverage-label").count() == 16  # Shanghai's districts
    assert seen.elsewhere == []
    assert seen.errors == []


def test_docs_pages_point_at_our_files(anon: httpx.Client) -> None:
    for path in ("/docs", "/redoc"):
        page = anon.get(path)
        assert page.status_code == 200
        assert "https://" not in page.text and "http://" not in page.text
    assets = {
        "/static/swagger-ui/swagger-ui-bundle.js": "text/javascript",
        "/static/swagger-ui/swagger-ui.css": "text/css",
        "/static/redoc/redoc.standalone.js": "text/javascript",
    }
    for path, media_type in assets.items():
        r = anon.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith(media_type)
    document = anon.get("/openapi.json").json()
    assert document["openapi"].startswith("3.0.")
    assert not {"/docs", "/redoc"} & set(document["paths"])
