"""Serving limits that uvicorn does not have: a header-read timeout, a request limit per
connection, a request-body timeout.

uvicorn limits idle keep-alive connections (``timeout_keep_alive``), the header size with its h11
parser only (``h11_max_incomplete_event_size``) and the connections + requests in progress
(``limit_concurrency``, answered 503), but it waits for a request's headers forever: a
client that sends them one byte at a time holds its connection (and a slot of
``limit_concurrency``) for as long as it likes. :class:`GuardedHttpToolsProtocol` closes such a
connection after ``FINDER_HEADER_TIMEOUT_S``; ``finder serve`` uses it (``uvicorn --http
api.serving:GuardedHttpToolsProtocol`` does the same). It also closes a keep-alive connection
after ``FINDER_MAX_REQUESTS_PER_CONNECTION`` requests (answering the last with
``Connection: close``): busy clients otherwise stay on the worker they first reached, so after a
worker restart the new worker would get no traffic until clients reconnect. A request the HTTP
parser itself refuses (malformed, or a request target too long for it, about 64 KiB) is answered
with problem+json like every other error, not uvicorn's plain-text 400.

:func:`receive_within` answers 408 when the next part of a request body does not arrive within
``FINDER_BODY_TIMEOUT_S`` (applied by :class:`api.middleware.ServiceMiddleware`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import Message, Receive
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from api.errors import PROBLEM_MEDIA_TYPE
from api.protocol import MAX_URL_BYTES
from api.settings import get_settings


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header-read timeout and a request limit per
    connection (``FINDER_HEADER_TIMEOUT_S``, ``FINDER_MAX_REQUESTS_PER_CONNECTION``)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        settings = get_settings()
        self.header_timeout_s = settings.header_timeout_s
        self.max_requests = settings.max_requests_per_connection
        self._requests = 0
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.logger.info("closing a connection that sent no complete headers in time")
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """What the parser refuses, as problem+json: 414 for an over-long request target."""
        url = getattr(self, "url", b"")
        if len(url) > MAX_URL_BYTES:
            status, title = 414, "URI Too Long"
            detail = f"the request target is longer than {MAX_URL_BYTES} bytes"
        else:
            status, title, detail = 400, "Bad Request", "the request is not valid HTTP/1.1"
        body = json.dumps(
            {"type": "about:blank", "title": title, "status": status, "detail": detail}
        ).encode()
        head = [f"HTTP/1.1 {status} {title}\r\n".encode()]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        head += [
            f"content-type: {PROBLEM_MEDIA_TYPE}\r\n".encode(),
            f"content-length: {len(body)}\r\n".encode(),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()  # the next request of a keep-alive connection

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()
        self._requests += 1
        if self._requests >= self.max_requests and self.cycle is not None:
            self.cycle.keep_alive = False


async def receive_within(receive: Receive, timeout_s: float) -> Message:
    """The next message of a request body from ``receive``, or a 408 HTTP exception when it
    does not arrive within ``timeout_s`` seconds.

    An HTTP exception, which FastAPI's body parsing passes on unchanged; the answer closes the
    connection (:func:`api.middleware.closing`).
    """
    # asyncio.timeout's rule (cancel this task when the time is up, turn that cancellation
    # alone into the timeout) with one timer and no context object: no task per message, unlike
    # wait_for, and a third of asyncio.timeout's cost on this path of every request with a body
    task = asyncio.current_task()
    assert task is not None  # called from a request's task
    expired, cancelling = False, task.cancelling()

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = asyncio.get_running_loop().call_later(timeout_s, expire)
    try:
        return await receive()
    except asyncio.CancelledError:
        if expired and task.uncancel() <= cancelling:  # by the timer, not from outside
            detail = f"the request body did not arrive within {timeout_s:g} s"
            raise HTTPException(408, detail) from None
        raise
    finally:
        timer.cancel()
