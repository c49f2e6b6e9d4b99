"""``GET /admin``: the staff console, a static page that only calls the API.

Union clerks sign in with their API key (kept in the tab's ``sessionStorage``, sent as
``Authorization: Bearer``; never a cookie, so no request of another site can act for them),
import lists in three steps, edit facilities on the map, read and revert the audit trail,
export what their key may see and, with an ``admin`` key, manage keys. Every answer comes from
the API routes with the key's own rights (:mod:`api.auth`); the page decides nothing about
access itself. Its files are in ``api/console/`` (served at ``/static/console``); the map is
the public map's Leaflet, supercluster and, when the server has one, vector base map
(:mod:`maps.assets`). The Content-Security-Policy allows scripts from this origin only (no
inline script), and the script writes every facility text with ``textContent``.

Two small routes serve the page: ``GET /admin/session`` (who the key is: name, scopes,
organisations) and ``GET /admin/point`` (a point in every supported coordinate system, for the
form's GCJ-02 line and coordinates typed in another system).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, FastAPI, Query
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

from api.auth import ANONYMOUS_PRINCIPAL, SCOPES
from api.deps import PrincipalDep, StateDep
from api.errors import ApiProblem, problem_responses
from api.routes.basemap import vector_tiles
from api.routes.common import JSONBytesResponse, lonlat_in, lonlat_out
from api.routes.webmap import STATIC_URL
from geodata.crs import CRS_NAMES, CrsName
from geodata.geodesy import LAT_RANGE, LON_RANGE
from geodata.kinds import kind_labels
from geodata.photos import MAX_SIDE_PX
from geodata.schema import ACCESS_CLASSES, AMENITIES, FORMATS, KINDS, STATUSES
from maps.assets import ASSETS, BASEMAP_ASSETS, Asset
from maps.webmap import ACCESS_LABELS, AMENITY_LABELS, REPORT_LABELS

#: The console's page, script and stylesheet.
CONSOLE_DIR = Path(__file__).resolve().parents[1] / "console"
#: Scripts from this origin only, never inline; styles may be set by Leaflet at run time;
#: ``blob:`` for downloads made in the page and the base map's workers.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_OWN_ASSETS = (Asset("console", "console.css", "css"), Asset("console", "console.js", "js"))

router = APIRouter(tags=["Console"])


def _vocabulary() -> dict[str, Any]:
    """The schema's vocabularies and the maps' labels, for the console's forms."""
    return {
        "kinds": KINDS,
        "formats": FORMATS,
        "access": ACCESS_CLASSES,
        "statuses": STATUSES,
        "amenities": AMENITIES,
        "crs": CRS_NAMES,
        "scopes": SCOPES,
        "photo_side_px": MAX_SIDE_PX,
        "labels": {
            language: {
                "kind": kind_labels(language),
                "access": ACCESS_LABELS[language],
                "amenity": AMENITY_LABELS[language],
                "report": REPORT_LABELS[language],
            }
            for language in ("zh", "en")
        },
    }


def mount_console_static(app: FastAPI) -> None:
    """Serve ``api/console`` at ``/static/console``."""
    app.mount(f"{STATIC_URL}/console", StaticFiles(directory=CONSOLE_DIR), name="static-console")


def _tags(assets: tuple[Asset, ...]) -> str:
    lines = []
    for asset in assets:
        url = html.escape(asset.url(STATIC_URL))
        if asset.kind == "css":
            lines.append(f'<link rel="stylesheet" href="{url}">')
        else:
            lines.append(f'<script src="{url}" defer></script>')
    return "\n".join(lines)


@router.get("/admin", include_in_schema=False)
def console_page(state: StateDep) -> HTMLResponse:
    """The console (the same page for everyone: what it shows depends on the key)."""
    from maps.basemap import ATTRIBUTION_HTML  # Folium: loaded when the console is first asked for

    tiles = vector_tiles(state)
    # the public map's Leaflet and supercluster, without its own script and stylesheet
    assets = tuple(a for a in ASSETS if a.path not in ("facilitymap.js", "facilitymap.css"))
    if tiles is not None:
        assets += BASEMAP_ASSETS
    basemap = (
        {"url": tiles.url, "maxDataZoom": tiles.max_data_zoom, "attribution": ATTRIBUTION_HTML}
        if tiles is not None
        else None
    )
    page = (CONSOLE_DIR / "console.html").read_text(encoding="utf-8")
    for name, value in (("{basemap}", basemap), ("{vocabulary}", _vocabulary())):
        page = page.replace(name, html.escape(json.dumps(value, ensure_ascii=False)))
    page = page.replace("<!--assets-->", _tags(assets + _OWN_ASSETS))
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


@router.get(
    "/admin/session",
    summary="Who the key is (for the console)",
    response_class=JSONBytesResponse,
    responses=problem_responses(401),
)
def console_session(principal: PrincipalDep) -> Response:
    """The key's name, scopes and whose facilities it opens (401 without a key)."""
    if principal is ANONYMOUS_PRINCIPAL:
        raise ApiProblem(
            401,
            "sign in with an API key",
            slug="unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )
    viewer = principal.viewer
    return JSONBytesResponse(
        {
            "name": principal.name,
            "scopes": sorted(principal.scopes),
            "organizations": sorted(viewer.organizations),
            "member": viewer.member,
            "see_all": viewer.see_all,
        }
    )


@router.get(
    "/admin/point",
    summary="A point in every supported coordinate system",
    response_class=JSONBytesResponse,
    responses=problem_responses(400),
)
def console_point(
    lon: Annotated[float, Query(ge=LON_RANGE[0], le=LON_RANGE[1])],
    lat: Annotated[float, Query(ge=LAT_RANGE[0], le=LAT_RANGE[1])],
    crs: Annotated[CrsName, Query(description="system of lon/lat")] = "wgs84",
) -> Response:
    """``{system: [lon, lat]}`` for wgs84, cgcs2000, gcj02 and bd09 (400 outside China for the
    Chinese systems, as everywhere in the API)."""
    x, y = lonlat_in(lon, lat, crs)
    out = {}
    for name in CRS_NAMES:
        a, b = lonlat_out(np.array([x]), np.array([y]), name)
        out[name] = [round(float(a[0]), 7), round(float(b[0]), 7)]
    return JSONBytesResponse(out)
