"""Offline web assets of the facility map: Leaflet, our JS/CSS and a CJK font.

Nothing here points at a CDN. Leaflet comes from the installed ``xstatic-leaflet`` package; our
script and stylesheet live in ``maps/static``, beside the clustering library supercluster
(npm ``supercluster`` 9.1.0, ISC, ``LICENSE.supercluster``) vendored as its UMD file. A
page gets them in one of two ways (:data:`AssetMode`):

``"served"``
    ``<script src>`` / ``<link href>`` tags under a ``static_url`` prefix; the web server mounts
    each directory of :func:`static_dirs` at ``{static_url}/{key}``.
``"inline"``
    every script and stylesheet is copied into the page (images as ``data:`` URIs), for a standalone
    HTML file that needs no server at all.

Chinese text: :func:`cjk_font_face_css` subsets Noto Sans CJK SC (from the ``noto-cjk-sans-otc``
package) to the characters a page shows and returns an ``@font-face`` rule with the font as a
``data:`` URI, so labels render on a machine without CJK fonts (an intranet kiosk, a bare Linux
browser) without fetching anything.
"""

from __future__ import annotations

import base64
import functools
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from geodata.kinds import KIND_SPECS

AssetMode = Literal["inline", "served"]
AssetKind = Literal["js", "css"]

#: Our own scripts and stylesheets.
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The family name of the embedded CJK font in the page's CSS.
CJK_FONT_FAMILY = "FacilityMap CJK"
#: Face index of Noto Sans CJK **SC** (Simplified Chinese) in the Noto Sans CJK collection.
_NOTO_SC_INDEX = 2
#: Unicode blocks served by the embedded font: CJK punctuation, kana, ideographs, full-width forms.
_CJK_RANGES = (
    "U+2E80-2FDF, U+3000-30FF, U+3200-33FF, U+3400-4DBF, U+4E00-9FFF, U+F900-FAFF, U+FF00-FFEF"
)
_CJK_CHAR_RE = re.compile(
    "[\u2e80-\u2fdf\u3000-\u30ff\u3200-\u33ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"
)
_CSS_URL_RE = re.compile(r"url\((['\"]?)(images/[A-Za-z0-9_.-]+\.png)\1\)")
_SOURCE_MAP_RE = re.compile(r"^\s*//# sourceMappingURL=.*$", re.MULTILINE)


@dataclass(frozen=True)
class Asset:
    """One script or stylesheet of the map page.

    Attributes
    ----------
    directory
        Key of :func:`static_dirs` the file lives in (the URL segment after ``static_url``).
    path
        Path of the file inside that directory, ``/``-separated.
    kind
        ``"js"`` or ``"css"``.
    """

    directory: str
    path: str
    kind: AssetKind

    def url(self, static_url: str) -> str:
        """URL of the file when served under ``static_url`` (e.g. ``/static``)."""
        return f"{static_url.rstrip('/')}/{self.directory}/{self.path}"


#: The page's assets in load order (stylesheets, then Leaflet and our script).
ASSETS: tuple[Asset, ...] = (
    Asset("leaflet", "leaflet.css", "css"),
    Asset("facilitymap", "facilitymap.css", "css"),
    Asset("leaflet", "leaflet.js", "js"),
    Asset("facilitymap", "supercluster.min.js", "js"),
    Asset("facilitymap", "photoshrink.js", "js"),
    Asset("facilitymap", "facilitymap.js", "js"),
)


#: Extra scripts of a page drawing the served vector base map (:mod:`maps.basemap`).
BASEMAP_ASSETS: tuple[Asset, ...] = (
    Asset("facilitymap", "vendor/protomaps-leaflet.js", "js"),
    Asset("facilitymap", "basemap.js", "js"),
)


def static_dirs() -> dict[str, Path]:
    """Directories a web server mounts for ``asset_mode="served"`` pages.

    Returns
    -------
    dict
        ``{key: directory}``; mount each directory at ``{static_url}/{key}``
        (``/static/leaflet``, ``/static/facilitymap``). The Leaflet directory is that of the
        installed ``xstatic-leaflet`` package.
    """
    import xstatic.pkg.leaflet as leaflet

    return {"leaflet": Path(leaflet.BASE_DIR), "facilitymap": STATIC_DIR}


def asset_file(asset: Asset) -> Path:
    """The file on disk behind ``asset``."""
    return static_dirs()[asset.directory] / asset.path


@functools.cache
def _inline_text(directory: str, path: str, kind: AssetKind) -> str:
    """The text of an asset ready to sit inside ``<script>`` or ``<style>``."""
    asset = Asset(directory, path, kind)
    file = asset_file(asset)
    text = file.read_text(encoding="utf-8")
    text = _SOURCE_MAP_RE.sub("", text)
    if kind == "css":

        def to_data_uri(match: re.Match[str]) -> str:
            data = (file.parent / match.group(2)).read_bytes()
            return f"url(data:image/png;base64,{base64.b64encode(data).decode('ascii')})"

        text = _CSS_URL_RE.sub(to_data_uri, text)
        return text.replace("</style", "<\\/style")
    # "</script" and "<!--" inside a script element would end it or change its parsing state.
    return text.replace("</script", "<\\/script").replace("<!--", "<\\!--")


def asset_tags(
    mode: AssetMode, static_url: str = "/static", assets: Iterable[Asset] = ASSETS
) -> list[str]:
    """HTML tags that load every asset of ``assets`` (default the facility map's), in order.

    Parameters
    ----------
    mode
        ``"served"``: ``<link>``/``<script src>`` tags pointing at ``{static_url}/...``;
        ``"inline"``: ``<style>``/``<script>`` elements holding the files' text.
    static_url
        URL prefix the directories of :func:`static_dirs` are mounted under (``"served"`` only).
    assets
        The page's assets, each in a directory of :func:`static_dirs` (e.g.
        ``ASSETS + BASEMAP_ASSETS`` for a page with the vector base map).

    Returns
    -------
    list of str
        One tag per asset.
    """
    tags = []
    for asset in assets:
        if mode == "served":
            url = asset.url(static_url)
            if asset.kind == "css":
                tags.append(f'<link rel="stylesheet" href="{_attr(url)}">')
            else:
                tags.append(f'<script src="{_attr(url)}"></script>')
        else:
            text = _inline_text(asset.directory, asset.path, asset.kind)
            tag = "style" if asset.kind == "css" else "script"
            tags.append(f"<{tag}>\n{text}\n</{tag}>")
    return tags


def kind_css() -> str:
    """The per-kind rules of the map page, from :data:`geodata.kinds.KIND_SPECS`.

    A colour variable ``--fm-c-{kind}`` for every kind (cluster rings mix them) and a class
    ``fm-k-{kind}`` setting ``--fm-colour``, which ``facilitymap.css`` paints markers and swatches
    with; the shapes are its ``fm-shape-*`` classes.
    """
    root = " ".join(f"--fm-c-{k.name}: {k.colour};" for k in KIND_SPECS)
    rules = "".join(
        f"\n.fm-k-{k.name} {{ --fm-colour: var(--fm-c-{k.name}); }}" for k in KIND_SPECS
    )
    return f":root {{ {root} }}{rules}"


def _attr(value: str) -> str:
    """Escape a value for a double-quoted HTML attribute."""
    return (
        value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )


def cjk_characters(texts: Iterable[str]) -> str:
    """The distinct CJK characters of ``texts``, sorted by code point."""
    code_points = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    present = np.flatnonzero(np.bincount(code_points, minlength=1))
    distinct = "".join(map(chr, present.tolist()))
    return "".join(_CJK_CHAR_RE.findall(distinct))


def cjk_font_face_css(characters: str) -> str:
    """An ``@font-face`` rule embedding Noto Sans CJK SC reduced to ``characters``.

    Parameters
    ----------
    characters
        The characters the page needs (typically from :func:`cjk_characters`); the subset also
        keeps ``.notdef``. Results are cached per distinct character set.

    Returns
    -------
    str
        CSS defining the family :data:`CJK_FONT_FAMILY` as a WOFF ``data:`` URI, restricted by
        ``unicode-range`` to the CJK blocks, so Latin text keeps the system font. Empty when
        ``characters`` holds no CJK character.
    """
    wanted = cjk_characters([characters])
    if not wanted:
        return ""
    return _font_face(wanted)


@functools.lru_cache(maxsize=16)
def _font_face(characters: str) -> str:
    font = _subset_font(characters)
    encoded = base64.b64encode(font).decode("ascii")
    return (
        "@font-face {"
        f' font-family: "{CJK_FONT_FAMILY}";'
        f' src: url(data:font/woff;base64,{encoded}) format("woff");'
        f" unicode-range: {_CJK_RANGES};"
        " font-display: block; }"
    )


def _subset_font(characters: str) -> bytes:
    """WOFF bytes of Noto Sans CJK SC with only ``characters`` (plus ``.notdef``).

    Costs about 0.5 s plus 1 ms per character (the collection is parsed each time), hence the
    cache in :func:`_font_face`. Vertical metrics and OpenType layout tables are dropped: the map
    sets horizontal text only.
    """
    from fontTools import subset
    from fontTools.ttLib import TTFont
    from noto_cjk_sans_otc import FONT_PATH

    options = subset.Options()
    options.flavor = "woff"
    options.layout_features = []
    options.drop_tables += ["vhea", "vmtx", "VORG", "BASE", "GSUB", "GPOS", "GDEF"]
    options.desubroutinize = True  # faster to subset, and the result compresses as well
    options.hinting = False
    options.notdef_outline = True
    options.name_IDs = ["*"]  # keep the copyright and licence records of the OFL font
    options.name_languages = ["*"]
    with FONT_PATH.open("rb") as handle:
        font = TTFont(
            handle, fontNumber=_NOTO_SC_INDEX, lazy=True, recalcBBoxes=False, recalcTimestamp=False
        )
        subsetter = subset.Subsetter(options)
        subsetter.populate(text=characters)
        subsetter.subset(font)
        out = io.BytesIO()
        font.flavor = "woff"
        font.save(out)
    return out.getvalue()
