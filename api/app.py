"""The FastAPI application: ``create_app(settings)``.

Run it with ``finder serve`` or ``uvicorn api.app:create_app --factory``. Nothing happens at
import time: :func:`create_app` builds the app, and its lifespan opens the store, maps or reads
the facilities, builds the index and loads the API keys into ``app.state.finder``
(:class:`api.state.AppState`). The district boundaries and the coverage grid are loaded when a
route first needs them, and the map, print, tile and OSM modules (matplotlib, Folium, pyosmium,
rasterio) when a route first draws: a worker answering ``/nearest`` and OGC items holds none of
them (``tests/api/test_lean_worker.py``).

Routes (see ``docs/api.md``):

* ``/nearest`` - nearest facilities for apps (GeoJSON, navigation links);
* OGC API - Features: ``/``, ``/conformance``, ``/collections``, ``/collections/{id}``,
  ``/collections/{id}/items``, ``/collections/{id}/items/{fid}``;
* ``/facilities...`` - editing, bulk import, audit (API key with the ``edit`` scope);
* ``/coverage...`` - coverage of districts, gaps, proposed sites, the coverage map;
* ``/facilities/{id}/isochrone`` - the area within a walk (needs a walking network);
* ``/facilities/{id}/events`` (signed device events), ``/live`` (server-sent live state) and
  ``/usage`` (visits per facility, day and hour, CSV; ``/usage.pdf`` printed per facility);
* ``/map`` and ``/static/...`` - the web map; ``/basemap/{z}/{x}/{y}.mvt`` - its base map tiles;
  ``/health``; ``/openapi.json`` (OpenAPI 3.0);
* ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), from files bundled in ``api/static``.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from api.auth import KeyRing
from api.errors import PROBLEM_SCHEMA, add_exception_handlers
from api.live import EventWriter, LiveDoors
from api.logs import LINE_FORMAT, BatchedStreamHandler
from api.middleware import ServiceMiddleware
from api.ratelimit import throttle_file
from api.routes import (
    basemap,
    console,
    coverage,
    docs,
    doors,
    export,
    facilities,
    features,
    health,
    keys,
    national,
    nearest,
    photos,
    reports,
    walk,
    webmap,
)
from api.settings import Settings, get_settings
from api.state import AppState, LiveFacilities, WalkService, load_calendar, open_store
from finder.walk import WalkNetwork
from geodata.basemap_archive import BasemapArchive
from geodata.events import event_log

logger = logging.getLogger(__name__)

OPENAPI_VERSION = "3.0.3"


def openapi_30(document: dict[str, Any]) -> dict[str, Any]:
    """Rewrite FastAPI's OpenAPI 3.1 document as OpenAPI 3.0 (what OGC's oas30 class names).

    ``anyOf [X, null]`` becomes ``X`` with ``nullable: true`` (a parameter's just ``X``: it is
    absent, never null); numeric ``exclusiveMinimum`` /
    ``exclusiveMaximum`` become the 3.0 booleans; ``const`` becomes a one-value ``enum``;
    ``examples`` lists become one ``example``; binary uploads become ``format: binary``.
    """

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        node = {k: walk(v) for k, v in node.items()}
        for key in ("anyOf", "oneOf"):
            options = node.get(key)
            if isinstance(options, list) and any(o in _NULL_SCHEMAS for o in options):
                rest = [o for o in options if o not in _NULL_SCHEMAS]
                node.pop(key)
                if len(rest) == 1:
                    merged = dict(rest[0])
                    if "$ref" in merged:
                        merged = {"allOf": [merged]}
                    node = {**merged, **node}
                else:
                    node[key] = rest
                node["nullable"] = True
                if isinstance(node.get("enum"), list) and None not in node["enum"]:
                    node["enum"] = [*node["enum"], None]  # 3.0.3: null must be listed too
        if node.get("type") == "null":
            node.pop("type")
            node["nullable"] = True
        for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            value = node.get(bound)
            if isinstance(value, int | float) and not isinstance(value, bool):
                node[plain] = value
                node[bound] = True
        if "const" in node:
            node["enum"] = [node.pop("const")]
        if isinstance(node.get("examples"), list) and "paths" not in node:
            examples = node.pop("examples")
            if examples and "value" not in examples[0]:
                node["example"] = examples[0]
        if node.get("contentMediaType") == "application/octet-stream":
            node.pop("contentMediaType")
            node["format"] = "binary"
        return node

    out: dict[str, Any] = walk(document)
    out["openapi"] = OPENAPI_VERSION
    for operations in out.get("paths", {}).values():
        for operation in operations.values():
            _parameters_as_sent(operation)
    return out


#: A null alternative before (3.1) and after (3.0) :func:`openapi_30` rewrote it.
_NULL_SCHEMAS = ({"type": "null"}, {"nullable": True})


def _parameters_as_sent(operation: dict[str, Any]) -> None:
    """Publish parameters as clients send them: a query or header parameter is absent, never
    null (no ``nullable``, no ``default: null``), and ``If-Match`` is required where its absence
    answers 428."""
    for parameter in operation.get("parameters", ()):
        schema = parameter.get("schema", {})
        if schema.pop("nullable", None) and isinstance(schema.get("enum"), list):
            schema["enum"] = [v for v in schema["enum"] if v is not None]
        if "default" in schema and schema["default"] is None:
            schema.pop("default")
        if parameter["name"] == "If-Match" and "428" in operation.get("responses", {}):
            parameter["required"] = True


def _install_openapi(app: FastAPI) -> None:
    from fastapi.openapi.utils import get_openapi

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            document.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                PROBLEM_SCHEMA
            )
            app.openapi_schema = openapi_30(document)
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def _configure_logging(settings: Settings) -> None:
    level = settings.log_level.upper()
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(  # to stderr, a batch of lines per write (api.logs)
            format=LINE_FORMAT,
            handlers=[BatchedStreamHandler()],
        )
    for name in ("api", "geodata", "finder", "maps"):
        logging.getLogger(name).setLevel(level)


def _walk_service(streets_path: Path) -> WalkService:
    """Walking over the configured network (its reader loads pyosmium only when there is one)."""
    from geodata.streets import load_network

    return WalkService(WalkNetwork(load_network(streets_path)))


class FinderApp(FastAPI):
    """FastAPI with the service's one middleware pass (:class:`api.middleware.ServiceMiddleware`)
    outermost: HTTP requests enter it first, and only those it does not answer itself (every
    route but the fast ones) go through FastAPI's own stack."""

    service: ServiceMiddleware | None = None

    async def starlette_call(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's own handling of a request (its middleware stack, router, handlers)."""
        await super().__call__(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.service is not None and scope["type"] == "http":
            scope["app"] = self
            await self.service(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service.

    Parameters
    ----------
    settings
        The configuration; default :func:`api.settings.get_settings` (``FINDER_*`` variables).

    Returns
    -------
    FastAPI
        The application; the store and index are opened when it starts (lifespan).
    """
    settings = settings if settings is not None else get_settings()
    _configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(settings)
        try:
            calendar = load_calendar(settings)
            live = LiveFacilities(
                store, calendar, poll_s=settings.index_poll_s, table_dir=settings.table_path()
            )
            log = event_log(store)
            streets_path = settings.streets_path()
            basemap_path = settings.basemap_path()
            doors = LiveDoors(log, reports=store)
            app.state.finder = AppState(
                settings=settings,
                store=store,
                live=live,
                doors=doors,
                events=EventWriter(
                    log,
                    replay_window_s=settings.event_window_s,
                    per_device_per_s=settings.device_events_per_s,
                    per_device_burst=settings.device_event_burst,
                    throttle=throttle_file(settings.table_path(), store.identity(), "devices"),
                    on_stored=doors.stored_here,
                ),
                keyring=KeyRing(settings.api_keys_file),
                walk=None if streets_path is None else _walk_service(streets_path),
                basemap=None if basemap_path is None else BasemapArchive(basemap_path),
            )
            if streets_path is not None:
                logger.info("walking network from %s", streets_path)
            if basemap_path is not None:
                logger.info("base map from %s", basemap_path)
            logger.info(
                "serving %d facilities from %s",
                len(live.current().index),
                (settings.database_url and "PostGIS") or settings.store_path(),
            )
            # Move everything built so far out of the garbage collector's sight: no collection
            # walks it. (Facilities are rendered for /nearest when first answered: rendering all
            # of them here would cost 5 s and about 70 MB per 100,000 in every worker.) Only the
            # young generations are collected first (1 ms): a full collection of the imported
            # service takes 50-150 ms of every start and finds about 20 unreachable objects.
            gc.collect(1)
            gc.freeze()
            state = app.state.finder
            with live.polling(), state.doors.polling(), state.events.writing():
                yield
        finally:
            gc.unfreeze()
            app.state.finder = None
            store.close()

    app = FinderApp(
        title="职工设施地图 facility finder",
        version="0.1.0",
        description="Nearest trade-union facilities, OGC API - Features, editing and maps.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from api.routes.docs (bundled assets, no CDN)
        redoc_url=None,
    )
    add_exception_handlers(app)
    app.include_router(nearest.router)
    app.include_router(features.router)
    app.include_router(facilities.router)
    app.include_router(facilities.audit_router)
    app.include_router(reports.router)
    app.include_router(photos.router)
    app.include_router(coverage.router)
    app.include_router(national.router)
    app.include_router(walk.router)
    app.include_router(doors.router)
    app.include_router(webmap.router)
    app.include_router(basemap.router)
    app.include_router(health.router)
    app.include_router(docs.router)
    app.include_router(console.router)
    app.include_router(keys.router)
    app.include_router(export.router)
    webmap.mount_static(app)
    docs.mount_docs_static(app)
    console.mount_console_static(app)
    _install_openapi(app)
    # access log, close unread body, body timeout, CORS, protocol rules, fast routes: one pass
    app.service = ServiceMiddleware(
        app.starlette_call,
        body_timeout_s=settings.body_timeout_s,
        cors_origins=settings.cors_origins,
    )
    return app
