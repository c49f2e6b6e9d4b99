"""``GET /docs`` (Swagger UI) and ``GET /redoc`` (ReDoc) from files bundled with the package.

FastAPI's own docs pages load Swagger UI and ReDoc from a CDN (jsDelivr), so ``/docs`` is blank
offline, on an intranet or where the CDN is blocked. Here the same pages
(:func:`fastapi.openapi.docs.get_swagger_ui_html`, :func:`~fastapi.openapi.docs.get_redoc_html`)
point at copies of the npm packages ``swagger-ui-dist`` and ``redoc`` in ``api/static/``, served
under ``/static/swagger-ui`` and ``/static/redoc`` (:func:`mount_docs_static`). Swagger UI's
online validator badge (a request to a third-party validator) and ReDoc's Google Fonts are off,
and a Content-Security-Policy keeps both pages on the service's origin. ``create_app`` turns
FastAPI's ``docs_url`` / ``redoc_url`` off and includes :data:`router` instead. Package versions
and licences: ``docs/data-sources.md``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

from api.routes.webmap import STATIC_URL

#: Where the docs pages may load from: this origin only (inline scripts and styles are the pages'
#: own; ``data:`` images and ``blob:`` workers are made in the page). It also keeps ReDoc's
#: "API docs by Redocly" logo, an image on Redocly's CDN that no option turns off, from loading.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)
#: Vendored ``swagger-ui-dist`` and ``redoc`` files, one directory each.
DOCS_STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
_DIRECTORIES = ("swagger-ui", "redoc")

router = APIRouter(include_in_schema=False)


def mount_docs_static(app: FastAPI) -> None:
    """Serve the vendored files at ``/static/swagger-ui`` and ``/static/redoc``."""
    for key in _DIRECTORIES:
        app.mount(
            f"{STATIC_URL}/{key}",
            StaticFiles(directory=DOCS_STATIC_DIR / key),
            name=f"static-{key}",
        )


def _prefix(request: Request) -> str:
    """The path the service is mounted under (``root_path``), as FastAPI's own docs use it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI for ``/openapi.json``, from the bundled ``swagger-ui-dist``."""
    prefix = _prefix(request)
    assets = f"{prefix}{STATIC_URL}/swagger-ui"
    page = get_swagger_ui_html(
        openapi_url=f"{prefix}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{assets}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None},
    )
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    """ReDoc for ``/openapi.json``, from the bundled ``redoc`` standalone bundle."""
    prefix = _prefix(request)
    page = get_redoc_html(
        openapi_url=f"{prefix}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{prefix}{STATIC_URL}/redoc/redoc.standalone.js",
        redoc_favicon_url=f"{prefix}{STATIC_URL}/swagger-ui/favicon-32x32.png",
        with_google_fonts=False,
    )
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page
