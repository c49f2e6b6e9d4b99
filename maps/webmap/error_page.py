"""The page ``/map`` answers its errors with."""

from __future__ import annotations

import html
from collections.abc import Sequence

from maps.assets import (
    CJK_FONT_FAMILY,
    cjk_characters,
    cjk_font_face_css,
)
from maps.webmap.labels import ERROR_LABELS


def error_page_html(problem: str, *, language: str = "zh", parameters: Sequence[str] = ()) -> str:
    """A small HTML page saying why the map cannot be shown, in the map's language.

    Parameters
    ----------
    problem
        A key of :data:`ERROR_LABELS` (``unknown_district``, ``unknown_facility``,
        ``no_network``, ``off_network``, ``base_map_unavailable``, ``invalid_parameter``,
        ``unauthorized``, ``unavailable``).
    language
        ``"zh"`` or ``"en"``; anything else is Chinese (the page must show even when the
        language parameter itself is wrong).
    parameters
        Names of the offending parameters (``invalid_parameter``), escaped.

    Returns
    -------
    str
        A self-contained page (no script, no request) with the CJK characters it uses
        embedded as a font subset, like the map.
    """
    english = language == "en"
    labels = ERROR_LABELS["en" if english else "zh"]
    message = labels.get(problem, labels["unavailable"])
    if problem == "invalid_parameter":
        message = message.format((", " if english else "、").join(parameters))
    title = labels["title"]
    font_css = cjk_font_face_css(cjk_characters([title, message]))
    lang = "en" if english else "zh-CN"
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{html.escape(title)}</title><style>{font_css}'
        "body{margin:0;padding:24px 20px;font:16px/1.5 'Helvetica Neue',Arial,'PingFang SC',"
        f"'Microsoft YaHei','Noto Sans CJK SC','{CJK_FONT_FAMILY}',sans-serif;color:#212529;"
        "background:#eef1f4}h1{font-size:18px;margin:0 0 8px}p{margin:0}</style></head><body>"
        f'<main class="fm-error" data-problem="{html.escape(problem)}"><h1>{html.escape(title)}'
        f"</h1><p>{html.escape(message)}</p></main></body></html>"
    )
