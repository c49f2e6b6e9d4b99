"""Spreadsheet cells that a spreadsheet would run: the one escape every CSV / XLSX writer uses.

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (or their
full-width forms ``＝ ＋ － ＠``, which Chinese input methods type) is a formula to Excel, WPS
and LibreOffice: ``=HYPERLINK("http://x","click")`` or ``+cmd|' /C calc'!A0`` in a facility name
would run when a clerk opens an export. Following the OWASP guidance on CSV injection, such a
cell is written with a leading single quote (``'=HYPERLINK(...)``): spreadsheets show the text
and run nothing.

Only text is escaped. Numbers (a negative longitude, a count, a share) are written as numbers,
so numeric columns stay numeric; the text ``"-2+3"`` in a text column is escaped.

The importers undo exactly this escape (:func:`unescape_cell`), so an export imported again
gives back the original text. The escape is reversible because a text that already starts with
a quote followed by a trigger character or another quote is escaped as well (``'=x`` is written
``''=x``); any other leading quote (``'s-Hertogenbosch``, ``'0123``) is left alone both ways.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TypeVar

import pandas as pd

#: First characters that make a spreadsheet read a cell as a formula (OWASP, plus full-width).
FORMULA_TRIGGERS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
ESCAPE = "'"

_CLASS = "".join("\\" + c if c in "\\]^-" else c for c in sorted(FORMULA_TRIGGERS | {ESCAPE}))
#: An escaped cell (a quote, then a trigger or another quote), for Python's ``re`` and RE2
#: (pyarrow): replacing the match by ``\1`` undoes the escape.
ESCAPED_PATTERN = f"^{ESCAPE}([{_CLASS}])"
_ESCAPED = re.compile(ESCAPED_PATTERN)

T = TypeVar("T")


def _escaped_form(text: str) -> bool:
    """Whether ``text`` reads as an escaped cell."""
    return _ESCAPED.match(text) is not None


def escape_cell(value: T) -> T | str:
    """The value to write in a spreadsheet cell: text a spreadsheet would run gets a leading ``'``.

    Parameters
    ----------
    value
        A cell value. Anything but ``str`` (numbers, ``None``, dates) is returned unchanged.

    Examples
    --------
    >>> escape_cell('=HYPERLINK("http://x","click")')
    '\\'=HYPERLINK("http://x","click")'
    >>> escape_cell(-33.5), escape_cell("静安区"), escape_cell("'=1")
    (-33.5, '静安区', "''=1")
    """
    if isinstance(value, str) and value and (value[0] in FORMULA_TRIGGERS or _escaped_form(value)):
        return ESCAPE + value
    return value


def unescape_cell(text: str) -> str:
    """Undo :func:`escape_cell` on text read from a spreadsheet (other text is unchanged)."""
    return _ESCAPED.sub(r"\1", text, count=1)


def frame_to_csv(frame: pd.DataFrame, path: str | Path | None = None) -> str | None:
    """Write ``frame`` as CSV for spreadsheets: cells through :func:`escape_frame`, no index,
    ``\\r\\n`` line ends (so a carriage return inside a cell is quoted).

    Parameters
    ----------
    frame
        The table.
    path
        Where to write, as UTF-8 with a byte-order mark (so that Excel shows Chinese); ``None``
        returns the text instead.
    """
    return escape_frame(frame).to_csv(
        path, index=False, lineterminator="\r\n", encoding="utf-8-sig" if path else None
    )


def escape_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` ready for a CSV / XLSX writer: every text cell through
    :func:`escape_cell`, numeric columns as they are (headers too are escaped)."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_object_dtype(out[col]) or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(escape_cell, na_action="ignore")
    out.columns = [escape_cell(c) for c in out.columns]
    return out
