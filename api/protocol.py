"""HTTP protocol rules every route follows, applied once per request by :class:`ProtocolRules`
(in the service's one middleware pass, :class:`api.middleware.ServiceMiddleware`).

* **URL length**: a request target (path and query) over :data:`MAX_URL_BYTES` answers a 414
  problem. The server's own parser has a limit too (uvicorn with httptools: 64 KiB; with h11 the
  whole request head, 16 KiB by default); beyond it the server answers before the app sees the
  request, so the limit here lies well below both.
* **HEAD** answers like GET without a body (uptime checkers use it), on every GET route.
* **OPTIONS** answers 204 with ``Allow`` listing the methods of the path (404 for no route).
  A CORS preflight (with ``Origin`` and ``Access-Control-Request-Method``) is answered by the
  CORS middleware outside this one when ``FINDER_CORS_ORIGINS`` is set.
* **Unknown query parameters** answer a 400 problem naming each and listing the allowed ones:
  exactly the query parameters the route publishes in the OpenAPI document (the OGC routes'
  queryables, ``f``, ``bbox-crs`` and ``crs`` included), so the document and the server cannot
  disagree. Routes outside the document (``/docs``, ``/openapi.json``, ``/static``) and routes
  whose errors are not problem+json (``/map``, whose errors are HTML pages) are not checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

from fastapi import FastAPI
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import Message, Receive, Scope, Send

from api.errors import PROBLEM_MEDIA_TYPE, ApiProblem, problem_response

#: Longest request target (path and query string, bytes) answered; longer gets a 414 problem.
MAX_URL_BYTES = 8192


def leaf_routes(app: FastAPI) -> Iterator[Any]:
    """Every route of ``app`` in matching order, those of included routers one by one (FastAPI
    keeps an included router as one entry that matches for all its routes)."""
    for route in app.router.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            yield route
        else:
            yield from contexts()


def allowed_methods(app: FastAPI, scope: Scope) -> set[str]:
    """The methods the routes of ``app`` answer at the path of ``scope`` (empty: no route)."""
    methods: set[str] = set()
    for route in leaf_routes(app):
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ("GET",))
    if "GET" in methods:
        methods.add("HEAD")
    return methods | {"OPTIONS"} if methods else methods


class QueryParameters:
    """The query parameter names each operation publishes in the app's OpenAPI document."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._by_operation: dict[tuple[str, str], frozenset[str]] | None = None

    def allowed(self, path_format: str, method: str) -> frozenset[str] | None:
        """The names for the route ``path_format`` and ``method``; None when undocumented or
        when the operation does not answer problem+json."""
        if self._by_operation is None:
            document: dict[str, Any] = self.app.openapi()
            self._by_operation = {
                (path, verb.upper()): frozenset(
                    p["name"] for p in operation.get("parameters", ()) if p.get("in") == "query"
                )
                for path, operations in document.get("paths", {}).items()
                for verb, operation in operations.items()
                if isinstance(operation, dict) and _answers_problems(operation)
            }
        return self._by_operation.get((path_format, method))


def _answers_problems(operation: dict[str, Any]) -> bool:
    """Whether an operation documents its 400 answer as problem+json (``/map`` answers HTML
    error pages of its own, so its parameters are left to it)."""
    responses = operation.get("responses", {})
    bad_request = responses.get("400") or responses.get("4XX") or {}
    return PROBLEM_MEDIA_TYPE in bad_request.get("content", {})


def query_names(query: bytes) -> list[str]:
    """The distinct parameter names of a raw query string, decoded as Starlette decodes them
    (``urllib.parse.parse_qsl``: ``+`` is a space, ``%XX`` UTF-8), without decoding values."""
    names: dict[str, None] = {}
    for part in query.decode("latin-1").split("&"):
        if part:
            name = part.partition("=")[0]
            names[unquote_plus(name) if "%" in name or "+" in name else name] = None
    return list(names)


def unknown_parameter_problem(unknown: list[str], allowed: frozenset[str]) -> ApiProblem:
    """A 400 problem naming each unknown query parameter and listing the allowed ones."""
    listed = ", ".join(sorted(allowed)) or "none"
    reason = f"unknown parameter; allowed: {listed}"
    names = ", ".join(repr(name) for name in unknown)
    return ApiProblem(
        400,
        f"unknown query parameter {names}; allowed: {listed}",
        slug="unknown-parameter",
        errors=[{"parameter": name, "reason": reason} for name in unknown],
    )


class ProtocolRules:
    """The protocol rules of this module for the HTTP requests of one app."""

    def __init__(self) -> None:
        self._parameters: QueryParameters | None = None
        self._routes: list[Any] | None = None

    async def apply(self, scope: Scope, receive: Receive, send: Send) -> tuple[Scope, Send] | None:
        """Answer a request the rules refuse or answer themselves (414, OPTIONS, unknown
        parameters) and return None; otherwise return the request's scope and ``send`` for the
        app (a HEAD request as GET, its answer without a body).

        Parameters
        ----------
        scope, receive, send
            The HTTP request, below :class:`fastapi.FastAPI` (``scope["app"]`` is set).
        """
        fastapi_app: FastAPI = scope["app"]
        query = scope["query_string"]
        target = len(scope.get("raw_path") or scope["path"].encode()) + len(query) + bool(query)
        problem: ApiProblem | None
        if target > MAX_URL_BYTES:
            problem = ApiProblem(
                414,
                f"the URL is {target:,} bytes long; at most {MAX_URL_BYTES:,} are accepted",
                slug="uri-too-long",
            )
            await self._answer(problem, scope, receive, send)
            return None
        method = scope["method"]
        if method == "OPTIONS":
            methods = allowed_methods(fastapi_app, scope)
            if not methods:
                problem = ApiProblem(404, f"no resource at {scope['path']}", slug="not-found")
                await self._answer(problem, scope, receive, send)
                return None
            allow = ", ".join(sorted(methods))
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [(b"allow", allow.encode())],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return None
        if method == "HEAD":
            scope = {**scope, "method": "GET"}
            send = _without_body(send)
        problem = self._unknown_parameters(fastapi_app, scope)
        if problem is not None:
            await self._answer(problem, scope, receive, send)
            return None
        return scope, send

    def _unknown_parameters(self, fastapi_app: FastAPI, scope: Scope) -> ApiProblem | None:
        query = scope["query_string"]
        if not query:
            return None
        if self._routes is None:
            self._routes = list(leaf_routes(fastapi_app))  # the app's routes are fixed by now
        for route in self._routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                break
        else:
            return None
        if self._parameters is None:
            self._parameters = QueryParameters(fastapi_app)
        allowed = self._parameters.allowed(getattr(route, "path_format", ""), scope["method"])
        if allowed is None:
            return None
        unknown = [name for name in query_names(query) if name not in allowed]
        return unknown_parameter_problem(unknown, allowed) if unknown else None

    @staticmethod
    async def _answer(problem: ApiProblem, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            Request(scope),
            problem.status,
            problem.detail,
            slug=problem.slug,
            errors=problem.errors,
            headers=problem.headers,
        )
        await response(scope, receive, send)


def _without_body(send: Send) -> Send:
    """``send`` passing the status and headers (Content-Length included) but no body bytes."""

    async def head_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return head_send
