"""The CJK font of printed maps: Noto Sans CJK SC from the ``noto-cjk-sans-otc`` package.

The package ships one OpenType collection, ``NotoSansCJK-Regular.ttc``, and exposes its location
as ``noto_cjk_sans_otc.FONT_PATH`` (an ``importlib.resources`` path inside the installed package).
The collection holds ten faces (JP, KR, SC, TC, HK and their Mono variants); Chinese maps use the
Simplified Chinese face, index 2, whose glyph shapes follow the mainland standard (a JP face would
draw some characters, e.g. 黄 or 静, in Japanese forms).

Matplotlib (3.10+) reads every face of a collection with ``fontManager.addfont``. Its PDF backend
can embed CFF outlines only as Type 3 fonts (with ``pdf.fonttype: 42`` it labels them TrueType,
a mismatch readers warn about), and print shops' preflight checks reject Type 3. Printed maps
therefore use :func:`register_print_font`: the SC face cut to the characters of maps (ASCII,
Latin-1, punctuation, circled numbers, CJK symbols, full-width forms and the 6,763 hanzi of
GB 2312) with its cubic outlines converted to TrueType quadratics, made once (about 5 s) and kept
in matplotlib's cache directory. With ``pdf.fonttype: 42`` a PDF then embeds a CID TrueType subset.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
from fontTools import subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont, newTable
from matplotlib import font_manager

from geodata.errors import NotFound

#: Family name of the Simplified Chinese face in the collection.
CJK_FAMILY = "Noto Sans CJK SC"
#: Index of that face in ``NotoSansCJK-Regular.ttc``.
CJK_FACE_INDEX = 2
#: File name of the TrueType-outline subset in matplotlib's cache directory (bump on change).
PRINT_FONT_FILE = "NotoSansCJKsc-Regular-print-v1.ttf"
#: Greatest distance between a cubic outline and its quadratic replacement, font units (of 1000).
_CU2QU_ERROR = 1.0


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


def _print_characters() -> set[int]:
    """Code points of the print font: Latin, punctuation, symbols and the GB 2312 hanzi."""
    ranges = (
        (0x20, 0x7F),  # ASCII
        (0xA0, 0x180),  # Latin-1 and Latin Extended-A
        (0x2000, 0x2070),  # general punctuation
        (0x2100, 0x2200),  # letterlike symbols, arrows
        (0x2460, 0x2500),  # circled numbers
        (0x25A0, 0x2600),  # geometric shapes
        (0x3000, 0x3040),  # CJK symbols and punctuation
        (0xFF00, 0xFF66),  # full-width forms
    )
    characters = {c for start, stop in ranges for c in range(start, stop)}
    for high in range(0xB0, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                characters.add(ord(bytes((high, low)).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return characters


def _write_print_font(source: Path, out: Path) -> None:
    """Cut the SC face to :func:`_print_characters` and convert its outlines to TrueType."""
    font = TTFont(str(source), fontNumber=CJK_FACE_INDEX)
    options = subset.Options()
    options.layout_features = []
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.desubroutinize = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=_print_characters())
    subsetter.subset(font)
    order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, _CU2QU_ERROR, reverse_direction=True))
        glyf[name] = pen.glyph()
    font["glyf"] = glyf
    font["loca"] = newTable("loca")
    maxp = font["maxp"]
    maxp.tableVersion = 0x00010000
    for field in (
        "maxPoints",
        "maxContours",
        "maxCompositePoints",
        "maxCompositeContours",
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
        "maxComponentElements",
        "maxComponentDepth",
    ):
        setattr(maxp, field, 0)
    maxp.maxZones = 1
    for table in ("CFF ", "VORG"):
        if table in font:
            del font[table]
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    post.glyphOrder = order
    font.sfntVersion = "\x00\x01\x00\x00"
    partial = out.with_name(f"{out.name}.{os.getpid()}.partial")  # one per process
    font.save(str(partial))
    partial.replace(out)  # atomic: a concurrent reader never sees half a font


def print_font_path(cache_dir: Path | None = None) -> Path:
    """The TrueType-outline subset of Noto Sans CJK SC for printed maps, made on first use.

    Parameters
    ----------
    cache_dir
        Where to keep it (default matplotlib's cache directory).

    Raises
    ------
    geodata.errors.NotFound
        If the Noto Sans CJK collection is missing (see :func:`cjk_font_path`).
    """
    folder = Path(cache_dir) if cache_dir is not None else Path(matplotlib.get_cachedir())
    out = folder / PRINT_FONT_FILE
    if not out.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        _write_print_font(cjk_font_path(), out)
    return out


def register_print_font(cache_dir: Path | None = None) -> str:
    """Make the print font (:func:`print_font_path`) the one matplotlib finds for
    :data:`CJK_FAMILY` and return the family name; use with ``pdf.fonttype: 42``."""
    path = str(print_font_path(cache_dir))
    manager = font_manager.fontManager
    if not any(entry.fname == path for entry in manager.ttflist):
        manager.ttflist = [e for e in manager.ttflist if e.name != CJK_FAMILY]
        manager.addfont(path)
    return CJK_FAMILY
