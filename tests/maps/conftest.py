"""Fixtures for the web map tests: a loopback HTTP server and pages in Debian's headless Chromium.

The ``chromium`` fixture (one browser per test module, shared with the API's browser tests) is
in ``tests/conftest.py``. Screenshots go to ``artifacts/maps/`` at the repository root
(gitignored), so a CI run can keep them.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from browser_support import PageLog, open_page

from maps.assets import static_dirs

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "artifacts" / "maps"


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves registered pages at their path and ``/static/<key>/<file>`` from static_dirs()."""

    pages: dict[str, bytes]
    static: dict[str, Path]

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        body, content_type = self._lookup(path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _lookup(self, path: str) -> tuple[bytes | None, str]:
        if path in self.pages:
            return self.pages[path], "text/html; charset=utf-8"
        parts = path.split("/", 3)
        if len(parts) == 4 and parts[1] == "static" and parts[2] in self.static:
            base = self.static[parts[2]].resolve()
            file = (base / parts[3]).resolve()
            if file.is_file() and base in file.parents:
                types = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
                return file.read_bytes(), types.get(file.suffix, "application/octet-stream")
        return None, ""

    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class LocalServer:
    """A threaded HTTP server on 127.0.0.1; ``publish`` adds a page and returns its URL."""

    server: http.server.ThreadingHTTPServer
    pages: dict[str, bytes] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def publish(self, path: str, html: str) -> str:
        self.pages[path] = html.encode("utf-8")
        return self.base_url + path


@pytest.fixture(scope="session")
def local_server() -> Iterator[LocalServer]:
    pages: dict[str, bytes] = {}
    handler = type("Handler", (_Handler,), {"pages": pages, "static": static_dirs()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LocalServer(server, pages)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser_page(chromium: Any) -> Iterator[tuple[Any, PageLog]]:
    """A fresh page with its request/console/dialog log."""
    context, page, log = open_page(chromium)
    try:
        yield page, log
    finally:
        context.close()


@pytest.fixture
def page_factory(chromium: Any) -> Iterator[Any]:
    """``page_factory(**context_options) -> (page, log)``; contexts are closed after the test."""
    contexts: list[Any] = []

    def make(**context_options: Any) -> tuple[Any, PageLog]:
        context, page, log = open_page(chromium, **context_options)
        contexts.append(context)
        return page, log

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
