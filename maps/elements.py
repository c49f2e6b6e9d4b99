"""The Folium elements our pages are built of (:mod:`maps.webmap`, :mod:`maps.coveragemap`,
:mod:`maps.basemap`): raw HTML, and a map without folium's CDN links.

Apart from :mod:`maps.assets` so that the assets (file lists, static directories, fonts) can be
named without importing Folium: a service worker loads Folium only when it first draws a map.
"""

from __future__ import annotations

from typing import Any

import folium
from branca.element import Element


class RawHtml(Element):
    """HTML emitted verbatim (branca would otherwise compile the text as a Jinja template)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._raw = text

    def render(self, **kwargs: Any) -> str:
        return self._raw


class OfflineMap(folium.Map):
    """A folium map without folium's CDN scripts and stylesheets (ours: :mod:`maps.assets`)."""

    default_js: list[tuple[str, str]] = []  # noqa: RUF012 - folium's class-level link lists
    default_css: list[tuple[str, str]] = []  # noqa: RUF012
