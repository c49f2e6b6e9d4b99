"""Debian's headless Chromium for the browser tests (tests/maps and tests/api), via Playwright.

Browser tests need ``/usr/bin/chromium`` (Debian package ``chromium``; CI installs it) and are
skipped with that reason when it is missing. They drive it with Playwright's ``executable_path``;
no Playwright-downloaded browser is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--no-pings",
]
#: Viewports the map is looked at in: a phone (CSS pixels of a common Android phone) and a desktop.
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@contextmanager
def launch_chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, launched through Playwright (skips the test without it)."""
    if not CHROMIUM.exists():
        pytest.skip(
            "browser tests need Debian chromium at /usr/bin/chromium (apt install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageLog:
    """What a page did: every request URL, console errors, page errors and dialogs."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


def open_page(browser: Any, **context_options: Any) -> tuple[Any, Any, PageLog]:
    """A new context and page (800x640, zh-CN, Asia/Shanghai) logging requests and errors."""
    options: dict[str, Any] = {
        "viewport": {"width": 800, "height": 640},
        "device_scale_factor": 2,
        "locale": "zh-CN",
        "timezone_id": "Asia/Shanghai",
        **context_options,
    }
    context = browser.new_context(**options)
    page = context.new_page()
    log = PageLog()
    page.on("request", lambda request: log.requests.append(request.url))

    def on_console(message: Any) -> None:
        if message.type == "error":
            log.console_errors.append(message.text)

    def on_dialog(dialog: Any) -> None:
        log.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda error: log.page_errors.append(str(error)))
    page.on("dialog", on_dialog)
    return context, page, log
