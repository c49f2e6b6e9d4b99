"""The service's own request rules, applied in one pass: :class:`ServiceMiddleware`.

Outermost first, each rule a named function or class that the pass calls:

1. the access log, one line per request (:func:`log_access`);
2. ``Connection: close`` on an answer that starts before the request body was read to its end
   (an upload refused with 401 or 413: :func:`has_body`, :func:`closing`), so that the server
   drops the connection instead of reading and discarding the rest of the body;
3. the body timeout, 408 when the next part of a body does not arrive within
   ``FINDER_BODY_TIMEOUT_S`` (:func:`api.serving.receive_within`);
4. CORS, when ``FINDER_CORS_ORIGINS`` is set (Starlette's :class:`CORSMiddleware`: preflights are
   answered before the protocol rules);
5. the protocol rules: URL length, HEAD, OPTIONS, unknown query parameters
   (:class:`api.protocol.ProtocolRules`);
6. the fast routes (:func:`fast_endpoint`): ``GET /nearest`` and devices'
   ``POST /facilities/{id}/events`` are answered by their route functions directly, their errors
   rendered by the app's own exception handlers, skipping the match against every route and
   FastAPI's dependency solving (which cost about as much as the lookup itself). Both routes stay
   in the router and in the OpenAPI document.

One pass instead of one middleware per rule: one coroutine and one pair of ``receive`` / ``send``
wrappers per request instead of five (``docs/benchmarks.md``, "API"). The pass runs outermost,
ahead of FastAPI's own stack (:class:`api.app.FinderApp`): a fast route skips FastAPI's
telemetry check and its error, telemetry and body-limit middleware as well as the router; every
other request goes on through all of them.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from fastapi.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import loggable
from api.logs import log_info
from api.protocol import ProtocolRules
from api.routes.doors import EVENTS_PATH, post_event
from api.routes.nearest import nearest
from api.serving import receive_within

access_logger = logging.getLogger("api.access")

Endpoint = Callable[[Request], Awaitable[Response]]


def log_access(scope: Scope, status: int, duration_s: float) -> None:
    """Log one line for a request: method, path, status, duration in ms, actor (key name).

    Control characters in what the client sent are escaped (:func:`api.errors.loggable`).
    """
    if access_logger.isEnabledFor(logging.INFO):
        state = scope.get("state") or {}
        method, path = loggable(scope["method"]), loggable(scope["path"])
        actor = loggable(state.get("actor", "-"))
        log_info(access_logger, f"{method} {path} {status} {duration_s * 1000:.1f}ms {actor}")


def has_body(scope: Scope) -> bool:
    """Whether an HTTP request announces a body (a non-zero ``Content-Length`` or chunks)."""
    length = b"0"
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            length = value  # the last one, as a dict of the headers would keep
        elif name == b"transfer-encoding":
            return True
    return length != b"0"


def closing(message: Message) -> Message:
    """A response start ``message`` with ``Connection: close`` added."""
    return {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}


def fast_endpoint(scope: Scope) -> Endpoint | None:
    """The route function answering an HTTP request ahead of the router, or None.

    The path is read as the router reads it (below ``root_path``).
    """
    path: str = scope["path"]
    root = scope.get("root_path", "")
    path = path[len(root) :] if path.startswith(root) else path
    method = scope["method"]
    if method == "GET" and path == "/nearest":
        return nearest
    if method == "POST":
        found = EVENTS_PATH.fullmatch(path)
        if found is not None:
            return functools.partial(post_event, found[1])
    return None


class ServiceMiddleware:
    """Apply the rules of this module, in their order, to every HTTP request of ``app``.

    Parameters
    ----------
    app
        The next ASGI app: FastAPI's own handling (:meth:`api.app.FinderApp.starlette_call`).
    body_timeout_s
        Longest wait for the next part of a request body, seconds.
    cors_origins
        Origins allowed to call from a browser; none: no CORS headers.
    """

    def __init__(
        self, app: ASGIApp, *, body_timeout_s: float, cors_origins: Sequence[str] = ()
    ) -> None:
        self.app = app
        self.body_timeout_s = body_timeout_s
        self.protocol = ProtocolRules()
        self.inner: ASGIApp = self._route
        if cors_origins:
            self.inner = CORSMiddleware(
                self._route,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=["Authorization", "X-API-Key", "If-Match", "Content-Type"],
                expose_headers=["ETag", "Location", "Content-Crs"],
                max_age=600,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        body_read = not has_body(scope)
        body_done = False

        async def send_logged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                if not body_read:
                    message = closing(message)
                status = message["status"]
            await send(message)

        async def receive_in_time() -> Message:
            nonlocal body_read, body_done
            if body_done:  # later calls wait for a disconnect: no limit
                return await receive()
            message = await receive_within(receive, self.body_timeout_s)
            final = message["type"] == "http.request" and not message.get("more_body", False)
            body_read = body_read or final
            body_done = message["type"] != "http.request" or not message.get("more_body")
            return message

        try:
            await self.inner(scope, receive_in_time, send_logged)
        finally:
            log_access(scope, status, time.perf_counter() - start)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The protocol rules, then a fast route or the app."""
        passed = await self.protocol.apply(scope, receive, send)
        if passed is None:
            return
        scope, send = passed
        endpoint = fast_endpoint(scope)
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handlers = scope["app"].exception_handlers
            handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)
