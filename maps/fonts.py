"""The CJK font of printed maps: Noto Sans CJK SC from the ``noto-cjk-sans-otc`` package.

The package ships one OpenType collection, ``NotoSansCJK-Regular.ttc``, and exposes its location
as ``noto_cjk_sans_otc.FONT_PATH`` (an ``importlib.resources`` path inside the installed package).
The collection holds ten faces (JP, KR, SC, TC, HK and their Mono variants); Chinese maps use the
Simplified Chinese face, index 2, whose glyph shapes follow the mainland standard (a JP face would
draw some characters, e.g. 黄 or 静, in Japanese forms).

Matplotlib (3.10+) reads every face of a collection with ``fontManager.addfont``; the PDF backend
embeds the used glyphs of the CFF outlines as a subset (Type 3), so a PDF needs no installed font
to display the names.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib import font_manager

from geodata.errors import NotFound

#: Family name of the Simplified Chinese face in the collection.
CJK_FAMILY = "Noto Sans CJK SC"
#: Index of that face in ``NotoSansCJK-Regular.ttc``.
CJK_FACE_INDEX = 2


def cjk_font_path() -> Path:
    """Path of the Noto Sans CJK collection installed by ``noto-cjk-sans-otc``.

    Raises
    ------
    geodata.errors.NotFound
        If the package is missing or its font file is not on disk (e.g. a zipped install).
    """
    try:
        from noto_cjk_sans_otc import FONT_PATH
    except ImportError:
        raise NotFound("the CJK font package noto-cjk-sans-otc is not installed") from None
    path = Path(str(FONT_PATH))
    if not path.is_file():
        raise NotFound(f"CJK font file not found at {path}")
    return path


def register_cjk_font() -> str:
    """Make Noto Sans CJK SC known to matplotlib (once) and return its family name.

    Returns
    -------
    str
        :data:`CJK_FAMILY`, for ``rcParams["font.family"]`` or ``fontfamily=``.
    """
    registered = {entry.name for entry in font_manager.fontManager.ttflist}
    if CJK_FAMILY not in registered:
        font_manager.fontManager.addfont(str(cjk_font_path()))
    return CJK_FAMILY
