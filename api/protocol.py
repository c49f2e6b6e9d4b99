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
  disagree. They are worked out per route on its first request by FastAPI's document generator
  for that route alone (milliseconds; the whole document takes a worker hundreds on its first
  request). Routes outside the document (``/docs``, ``/openapi.json``, ``/static``) and routes
  whose errors are not problem+json (``/map``, whose errors are HTML pages) are not checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import RouteContext
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
    """The query parameter names each route publishes in the app's OpenAPI document, worked
    out per route and method when first asked (:func:`published_query_names`) and kept (with
    the route, so that its identity stays its key)."""

    def __init__(self) -> None:
        self._by_route: dict[tuple[int, str], tuple[Any, frozenset[str] | None]] = {}

    def allowed(self, route: Any, method: str) -> frozenset[str] | None:
        """The names for ``route`` (an entry of :func:`leaf_routes`) and ``method``; None when
        undocumented or when the operation does not answer problem+json."""
        known = self._by_route.get((id(route), method))
        if known is None or known[0] is not route:
            known = (route, published_query_names(route, method))
            self._by_route[id(route), method] = known
        return known[1]


def published_query_names(route: Any, method: str) -> frozenset[str] | None:
    """The query parameter names the OpenAPI document publishes for ``route`` and ``method``.

    The operation comes from FastAPI's :func:`~fastapi.openapi.utils.get_openapi` over this one
    route, the generator of the app's whole document (dependencies, ``openapi_extra`` and
    ``responses`` included), without the schemas of the other routes.

    Parameters
    ----------
    route
        An entry of :func:`leaf_routes`.
    method
        The HTTP method, upper case.

    Returns
    -------
    frozenset of str or None
        None when the route is not in the document (``include_in_schema=False``, mounts) or the
        operation does not document its 400 answer as problem+json.
    """
    original = getattr(route, "original_route", None)  # a route of an included router
    context = route if original is None else RouteContext(original, route)
    document = get_openapi(title="", version="", routes=[context])
    operations: dict[str, Any] = next(iter(document["paths"].values()), {})
    operation = operations.get(method.lower())
    if not isinstance(operation, dict) or not _answers_problems(operation):
        return None
    return frozenset(p["name"] for p in operation.get("parameters", ()) if p.get("in") == "query")


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


def query_pairs(query: bytes) -> list[tuple[str, str]]:
    """The (name, value) pairs of a raw query string, in order, decoded as Starlette decodes
    its ``query_params`` (``parse_qsl`` keeping blank values); a string with nothing to decode
    (no ``%``, no ``+``) is split directly, which is what ``parse_qsl`` would do with it."""
    text = query.decode("latin-1")
    if "%" in text or "+" in text:
        return parse_qsl(text, keep_blank_values=True)
    return [(name, value) for name, _, value in (p.partition("=") for p in text.split("&") if p)]


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


#: Paths (with their method) whose matching route the protocol rules remember.
MATCHED_PATHS = 10_000


class ProtocolRules:
    """The protocol rules of this module for the HTTP requests of one app."""

    def __init__(self) -> None:
        self._parameters = QueryParameters()
        self._included: dict[int, list[Any]] = {}
        self._matched: dict[tuple[str, str, str], Any | None] = {}

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
        route = self._route(fastapi_app, scope)
        if route is None:
            return None
        allowed = self._parameters.allowed(route, scope["method"])
        if allowed is None:
            return None
        unknown = [name for name in query_names(query) if name not in allowed]
        return unknown_parameter_problem(unknown, allowed) if unknown else None

    def _route(self, fastapi_app: FastAPI, scope: Scope) -> Any | None:
        """The route that fully matches ``scope`` (None: none), in the order of
        :func:`leaf_routes`, remembered by method, root path and path (at most
        :data:`MATCHED_PATHS`: a route matches on nothing else).

        FastAPI builds an included router's routes when first asked for them (0.1-0.3 s for all
        of the service's), so a router's routes are listed (and kept) only once it matches a
        request: no more are built than FastAPI's own routing builds (the routers up to the
        matching one; for ``/nearest``, included first, its own)."""
        key = (scope["method"], scope.get("root_path", ""), scope["path"])
        if key in self._matched:
            return self._matched[key]
        if len(self._matched) >= MATCHED_PATHS:
            self._matched.clear()
        route = self._matched[key] = self._match(fastapi_app, scope)
        return route

    def _match(self, fastapi_app: FastAPI, scope: Scope) -> Any | None:
        for entry in fastapi_app.router.routes:  # fixed once the app serves
            contexts = getattr(entry, "effective_route_contexts", None)
            routes: list[Any] | None
            if contexts is None:
                routes = [entry]
            elif (routes := self._included.get(id(entry))) is None:
                if entry.matches(scope)[0] is Match.NONE:
                    continue
                routes = self._included[id(entry)] = list(contexts())
            for route in routes:
                if route.matches(scope)[0] is Match.FULL:
                    return route
        return None

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
