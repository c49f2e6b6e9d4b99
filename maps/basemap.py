"""The served vector base map as a layer of our Leaflet pages (facility map, coverage map).

The tiles come from our own server (``/basemap/{z}/{x}/{y}.mvt``, see
:mod:`geodata.basemap` for how they are built); protomaps-leaflet, vendored in
``maps/static/vendor``, draws them on canvas with the style of ``maps/static/basemap.js``. The
layer carries the attribution the data licence requires (:data:`geodata.basemap.ATTRIBUTION`).
Labels are drawn with the page's embedded CJK font: pass :attr:`VectorTiles.label_characters` into
the page's font subset (:func:`maps.assets.cjk_font_face_css`).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any, cast

import folium
from branca.element import Figure, MacroElement

from geodata.basemap import ATTRIBUTION
from geodata.errors import InvalidInput
from maps.elements import RawHtml

#: Leaflet attribution HTML of the base map.
ATTRIBUTION_HTML = (
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
)


@dataclass(frozen=True)
class VectorTiles:
    """Where a page finds the vector base map.

    Attributes
    ----------
    url
        Tile URL template with ``{z}``, ``{x}``, ``{y}`` (same origin, e.g.
        ``/basemap/{z}/{x}/{y}.mvt``).
    max_data_zoom
        Highest zoom of the tiles; the browser magnifies them beyond it.
    label_characters
        Every character of the tiles' labels, for the page's CJK font subset.
    """

    url: str
    max_data_zoom: int
    label_characters: str = ""

    def __post_init__(self) -> None:
        if not all(part in self.url for part in ("{z}", "{x}", "{y}")):
            raise InvalidInput("the base map URL needs {z}, {x} and {y}", field="basemap")
        if not 0 <= self.max_data_zoom <= 16:
            raise InvalidInput("max_data_zoom must be between 0 and 16", field="basemap")


class VectorBaseLayer(MacroElement):
    """The vector base map (``FacilityBasemap.add`` of ``basemap.js``), under every overlay.

    Parameters
    ----------
    tiles
        Where the tiles are.
    approval_no
        Map approval number (审图号) to show beside the data attribution, for a page that does
        not show it otherwise.
    """

    def __init__(self, tiles: VectorTiles, *, approval_no: str | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "VectorBaseLayer"
        self.tiles = tiles
        self.approval_no = approval_no

    def render(self, **kwargs: Any) -> None:  # type: ignore[override]
        figure = cast(Figure, self.get_root())
        parent = cast(folium.Map, self._parent)
        attribution = ATTRIBUTION_HTML
        if self.approval_no and self.approval_no.strip():
            attribution += f" | 审图号：{html.escape(self.approval_no.strip())}"
        options = {
            "url": self.tiles.url,
            "maxDataZoom": self.tiles.max_data_zoom,
            "attribution": attribution,
        }
        # Leaflet sets attributions as HTML (the approval number is escaped above); "</" is
        # escaped so that nothing can end the script element
        script = (
            f"FacilityBasemap.add({parent.get_name()}, {json.dumps(options, ensure_ascii=False)});"
        )
        figure.script.add_child(RawHtml(script.replace("</", "<\\/")), name=self.get_name())


__all__ = ["ATTRIBUTION", "ATTRIBUTION_HTML", "VectorBaseLayer", "VectorTiles"]
