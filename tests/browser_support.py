"""Pages in the browser tests of tests/maps and tests/api: a logged page, the viewports.

The browser itself is the ``chromium`` fixture of ``tests/conftest.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Viewports the map is looked at in: a phone (CSS pixels of a common Android phone) and a desktop.
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


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


def located_phone(lon: float, lat: float) -> dict[str, Any]:
    """Context options of a touch phone at ``lon``/``lat`` (20 m) that lets pages locate it."""
    return {
        "viewport": PHONE,
        "has_touch": True,
        "is_mobile": True,
        "permissions": ["geolocation"],
        "geolocation": {"longitude": lon, "latitude": lat, "accuracy": 20},
    }


def sign_in(page: Any, url: str, key: str, *, timeout_ms: float) -> None:
    """Open the staff console of the service at ``url`` and sign in with API ``key``."""
    from playwright.sync_api import expect

    page.goto(url + "/admin")
    page.fill("#key", key)
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#tabs")).to_be_visible(timeout=timeout_ms)
