"""Zip bombs for the upload tests, built without holding (or even compressing) their content.

A deflate stream of N MiB of spaces is one compressed block repeated: after a full flush the
compressor starts afresh, so every 1 MiB block of spaces compresses to the same bytes. The
archive is written by hand (local headers, central directory) so that the repeated block can be
streamed into it; the CRC-32 is computed over the real content, so the archive is valid and
``unzip -t`` would pass it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20
_BLOCK = b" " * MiB

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.worksheet+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
)
SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
SHEET_TAIL = "</sheetData></worksheet>"


@dataclass
class _Member:
    name: str
    pieces: list[bytes]  # raw deflate pieces
    repeat: tuple[int, int]  # (index of the piece to repeat, times)
    crc: int
    size: int
    declared_size: int

    def compressed(self) -> Iterator[bytes]:
        index, times = self.repeat
        for i, piece in enumerate(self.pieces):
            for _ in range(times if i == index else 1):
                yield piece

    @property
    def compressed_size(self) -> int:
        index, times = self.repeat
        return sum(len(p) for p in self.pieces) + len(self.pieces[index]) * (times - 1)


def _member(
    name: str, head: bytes, spaces_mib: int = 0, tail: bytes = b"", declared_size: int | None = None
) -> _Member:
    """``head``, then ``spaces_mib`` MiB of spaces, then ``tail``, deflated."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    pieces = [comp.compress(head) + comp.flush(zlib.Z_FULL_FLUSH)]
    crc = zlib.crc32(head)
    if spaces_mib:
        block = comp.compress(_BLOCK) + comp.flush(zlib.Z_FULL_FLUSH)
        again = comp.compress(_BLOCK) + comp.flush(zlib.Z_FULL_FLUSH)
        assert block == again, "a full flush must make every block compress alike"
        pieces.append(block)
        for _ in range(spaces_mib):
            crc = zlib.crc32(_BLOCK, crc)
    pieces.append(comp.compress(tail) + comp.flush())
    crc = zlib.crc32(tail, crc)
    size = len(head) + spaces_mib * MiB + len(tail)
    return _Member(
        name, pieces, (1, spaces_mib) if spaces_mib else (0, 1), crc, size, declared_size or size
    )


def write_zip(path: Path, members: Iterable[_Member]) -> Path:
    """Write ``members`` as a zip archive (deflate, no zip64: every size under 4 GiB)."""
    central = b""
    count = 0
    with path.open("wb") as out:
        for m in members:
            name = m.name.encode()
            offset = out.tell()
            fields = (20, 0, 8, 0, 0x21, m.crc, m.compressed_size, m.declared_size, len(name), 0)
            out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + name)
            for piece in m.compressed():
                out.write(piece)
            central += struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                *fields,
                0,
                0,
                0,
                0,
                offset,
            )
            central += name
            count += 1
        start = out.tell()
        out.write(central)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), start, 0))
    return path


def xlsx_with_sheet(path: Path, sheet_rows: str = "", *, spaces_mib: int = 0) -> Path:
    """A minimal XLSX whose first sheet holds ``sheet_rows`` (``<row>`` XML) and, inside one
    inline-string cell, ``spaces_mib`` MiB of spaces."""
    if spaces_mib:
        head = SHEET_HEAD + sheet_rows + '<row r="99"><c r="A99" t="inlineStr"><is><t>'
        tail = "</t></is></c></row>" + SHEET_TAIL
    else:
        head, tail = SHEET_HEAD + sheet_rows + SHEET_TAIL, ""
    return write_zip(
        path,
        [
            _member("[Content_Types].xml", _CONTENT_TYPES.encode()),
            _member("_rels/.rels", _RELS.encode()),
            _member("xl/workbook.xml", _WORKBOOK.encode()),
            _member("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS.encode()),
            _member("xl/worksheets/sheet1.xml", head.encode(), spaces_mib, tail.encode()),
        ],
    )


def zip_of_spaces(
    path: Path, name: str, spaces_mib: int, *, declared_size: int | None = None
) -> Path:
    """A zip archive of one member of ``spaces_mib`` MiB of spaces; ``declared_size`` lies about
    its size in the headers when given."""
    return write_zip(path, [_member(name, b"", spaces_mib, b"", declared_size)])
