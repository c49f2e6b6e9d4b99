"""Reading the served base map: tiles of a PMTiles v3 archive of vector tiles.

:class:`BasemapArchive` serves the archive :func:`geodata.basemap.basemap_from_osm` writes;
:func:`basemap_path_for` names the archive kept beside a GeoPackage store. Apart from
:mod:`geodata.basemap` so that a service worker serving tiles never loads the OSM reader
(pyosmium) or the tile encoder.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import mmap
import os
from pathlib import Path
from typing import Any

from pmtiles.tile import (
    Compression,
    Entry,
    TileType,
    deserialize_directory,
    deserialize_header,
    find_tile,
    zxy_to_tileid,
)

from geodata.errors import InvalidInput, NotFound

#: Suffix of the archive kept beside a GeoPackage store (``<store>.basemap.pmtiles``).
BASEMAP_SUFFIX = ".basemap.pmtiles"


def basemap_path_for(store_path: Path) -> Path:
    """Where the base map of a GeoPackage store is kept: beside it, ``<store>.basemap.pmtiles``."""
    return store_path.with_name(store_path.name + BASEMAP_SUFFIX)


class BasemapArchive:
    """Tiles of a base map archive (PMTiles v3, vector tiles), read from a memory-mapped file.

    Parameters
    ----------
    path
        The ``.pmtiles`` file written by :func:`basemap_from_osm`.

    Raises
    ------
    NotFound
        If there is no such file.
    InvalidInput
        If the file is not a PMTiles v3 archive of vector tiles.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise NotFound(f"no base map archive at {self.path}")
        with self.path.open("rb") as handle:
            self._mmap = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        # directories are parsed once each (a province has thousands of leaf entries)
        self._directory = functools.lru_cache(maxsize=256)(self._read_directory)
        try:
            self.header = deserialize_header(self._mmap[0:127])
            if self.header["tile_type"] != TileType.MVT:
                raise InvalidInput(f"{self.path.name} does not hold vector tiles", field="basemap")
            start = self.header["metadata_offset"]
            metadata = self._mmap[start : start + self.header["metadata_length"]]
            if self.header["internal_compression"] == Compression.GZIP:
                metadata = gzip.decompress(metadata)
            self.metadata: dict[str, Any] = json.loads(metadata)
        except InvalidInput:
            raise
        except Exception as exc:
            raise InvalidInput(
                f"{self.path.name} is not a PMTiles v3 archive", field="basemap"
            ) from exc
        stat = self.path.stat()
        #: Changes whenever the file is rebuilt: part of every tile's ETag.
        self.version = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[
            :16
        ]

    @property
    def max_zoom(self) -> int:
        """Highest zoom of the tiles."""
        return int(self.header["max_zoom"])

    @property
    def gzipped(self) -> bool:
        """Whether tiles are stored gzip-compressed (then served with ``Content-Encoding``)."""
        return bool(self.header["tile_compression"] == Compression.GZIP)

    @property
    def label_characters(self) -> str:
        """Every character of the archive's labels (for a font subset)."""
        return str(self.metadata.get("label_characters", ""))

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The stored bytes of tile ``z/x/y`` (XYZ scheme), or None for an empty tile.

        Zooms below the archive's first tile are valid and empty.

        Raises
        ------
        NotFound
            If ``z/x/y`` is not a tile of the archive's zoom range.
        """
        if not (0 <= z <= self.max_zoom and 0 <= x < (1 << z) and 0 <= y < (1 << z)):
            raise NotFound(f"no tile {z}/{x}/{y} in this base map")
        tile_id = zxy_to_tileid(z, x, y)
        offset, length = self.header["root_offset"], self.header["root_length"]
        for _ in range(4):  # root and at most three levels of leaf directories
            entry = find_tile(self._directory(offset, length), tile_id)
            if entry is None:
                return None
            if entry.run_length > 0:
                start = self.header["tile_data_offset"] + entry.offset
                return self._mmap[start : start + entry.length]
            offset = self.header["leaf_directory_offset"] + entry.offset
            length = entry.length
        return None

    def _read_directory(self, offset: int, length: int) -> list[Entry]:
        return deserialize_directory(self._mmap[offset : offset + length])
