"""The facility table as a file, shared by every process on a machine.

A service worker or CLI process does not parse the whole store: :func:`columns_of_store` looks for
the table file of the store's current change counter in a table directory and memory-maps it; only
when there is none does it read the store, code the columns (:mod:`finder.facility_columns`) and
write the file for everyone else. The operating system keeps one copy of the mapped pages in its
page cache, shared by all processes that map the file.

The file is Arrow IPC (uncompressed, so every column maps without a copy):

* ``lon``, ``lat``, ``cls``, ``amenity_bits``, ``stars``, ``org``, ``hours``, ``adcode`` as
  primitive Arrow arrays, read as read-only numpy views of the mapping;
* ``id`` as fixed-size binary holding the ids' UCS-4 text, read as a numpy unicode array;
* the uncoded columns (name, address, version, timestamps, ...) as ordinary Arrow arrays;
* the vocabularies of the coded text columns as JSON in the schema metadata;
* the KD-tree over the points (:mod:`finder.ecef_tree`): ``tree.order`` (Z-order),
  ``tree.points`` (ECEF, fixed-size lists of 3 float64), ``tree.indices`` (the tree's
  permutation) and ``tree.nodes`` (scipy's node array, fixed-size binary padded to the row count),
  with a CRC-32 of these four in the metadata: a process maps the tree instead of building it
  (about 1-2 s and 30 MB of private memory per worker at 1,000,000 facilities). Scipy follows
  the nodes without checking them, so a tree whose checksum or scipy version does not match
  makes the file unreadable, and it is written again.

The name of a file holds a digest of the store's identity (:meth:`FacilityStore.identity`) and
the change counter, ``facilities-v2-<digest>-<counter>.arrow``: a write by any process bumps the
counter and so leads to a new file. A file is written under a temporary name and renamed into
place, so a reader sees a whole file or none; a lock file beside it lets one process build it
while the others started at the same time wait for it. Files of older counters of the same
store, and its files of other layouts (an earlier ``FORMAT``), are removed once a newer one is
written (processes that still map one keep their pages).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
from numpy.typing import NDArray

from finder.ecef_tree import TREE_LAYOUT, EcefTree, build_ecef_tree, ecef_tree_from_arrays
from finder.facility_columns import FacilityColumns, columns_from_frame

logger = logging.getLogger(__name__)

#: Part of every file name: a change of the layout gives new names instead of misread files.
FORMAT = "v2"
_NUMERIC = ("lon", "lat", "cls", "amenity_bits", "stars", "org", "hours", "adcode")
_VOCABULARIES = ("orgs", "hours_exprs", "adcodes")
_META = b"facility-table"


class TableSource(Protocol):
    """What :func:`columns_of_store` needs of a store (:class:`geodata.store.FacilityStore`)."""

    def identity(self) -> str: ...

    def change_counter(self) -> int: ...

    def frame(self) -> pd.DataFrame: ...


def table_path(table_dir: Path, identity: str, counter: int) -> Path:
    """The table file of a store (by its identity) at a change counter, in ``table_dir``."""
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return table_dir / f"facilities-{FORMAT}-{digest}-{counter}.arrow"


def _checksum(arrays: list[NDArray[Any]]) -> int:
    crc = 0
    for array in arrays:
        crc = zlib.crc32(np.ascontiguousarray(array).view(np.uint8).data, crc)
    return crc


def _tree_columns(tree: EcefTree, n: int) -> tuple[dict[str, pa.Array], dict[str, Any]]:
    """The tree's columns (``n`` rows each) and its metadata."""
    saved = tree.arrays()
    nodes = saved["nodes"]
    width = max(-(-nodes.size // n), 1)
    padded = np.zeros(n * width, dtype=np.uint8)
    padded[: nodes.size] = nodes
    columns = {
        "tree.order": pa.array(saved["order"]),
        "tree.points": pa.FixedSizeListArray.from_arrays(pa.array(saved["points"].ravel()), 3),
        "tree.indices": pa.array(saved["indices"]),
        "tree.nodes": pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(width), n, [None, pa.py_buffer(padded)]
        ),
    }
    meta = {
        "layout": TREE_LAYOUT,
        "node_bytes": int(nodes.size),
        "crc32": _checksum([saved[name] for name in ("order", "points", "indices", "nodes")]),
        **{name: saved[name] for name in ("leafsize", "mins", "maxes")},
    }
    return columns, meta


def _mapped_tree(table: pa.Table, meta: dict[str, Any]) -> EcefTree:
    """The tree saved by :func:`_tree_columns`, its arrays views of the mapping.

    Raises
    ------
    ValueError
        When it was saved by another scipy version or its checksum does not match.
    """
    if meta["layout"] != TREE_LAYOUT:
        raise ValueError(f"the KD-tree was saved by {meta['layout']}, not {TREE_LAYOUT}")
    points = _array(table.column("tree.points"))
    nodes = _array(table.column("tree.nodes"))
    arrays = {
        "order": _numpy(table.column("tree.order")),
        "points": points.values.to_numpy(zero_copy_only=True).reshape(-1, 3),
        "indices": _numpy(table.column("tree.indices")),
        "nodes": np.frombuffer(nodes.buffers()[1], dtype=np.uint8, count=int(meta["node_bytes"])),
    }
    if _checksum(list(arrays.values())) != meta["crc32"]:
        raise ValueError("the KD-tree's checksum does not match")
    return ecef_tree_from_arrays(
        **arrays, **{name: meta[name] for name in ("leafsize", "mins", "maxes")}
    )


def write_table(columns: FacilityColumns, path: Path) -> None:
    """Write the columns and their KD-tree (built unless the columns have it) to ``path`` (in
    an existing directory) atomically: a temporary file renamed into place."""
    width = max(int(columns.ids.dtype.itemsize) // 4, 1)
    ids = np.ascontiguousarray(columns.ids, dtype=f"<U{width}")
    arrays: dict[str, pa.Array] = {
        "id": pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(4 * width), len(ids), [None, pa.py_buffer(ids.tobytes())]
        ),
    }
    arrays.update({name: pa.array(getattr(columns, name)) for name in _NUMERIC})
    arrays.update({f"extra.{name}": values for name, values in columns.extra.items()})
    meta: dict[str, Any] = {name: list(getattr(columns, name)) for name in _VOCABULARIES}
    meta["tree"] = None
    if len(columns):
        tree = (
            columns.tree if columns.tree is not None else build_ecef_tree(columns.lon, columns.lat)
        )
        tree_arrays, meta["tree"] = _tree_columns(tree, len(columns))
        arrays.update(tree_arrays)
    table = pa.Table.from_pydict(arrays).replace_schema_metadata(
        {_META: json.dumps({"width": width, **meta}, ensure_ascii=False).encode()}
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            with ipc.new_file(out, table.schema) as writer:
                writer.write_table(table)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _array(column: pa.ChunkedArray) -> pa.Array:
    """The one chunk of a column as written (``combine_chunks`` would copy it)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _numpy(column: pa.ChunkedArray) -> NDArray[Any]:
    return _array(column).to_numpy(zero_copy_only=True)


def read_table(path: Path) -> FacilityColumns:
    """Memory-map a table file written by :func:`write_table` (no copy of the columns).

    Raises
    ------
    OSError, pyarrow.ArrowInvalid, KeyError, ValueError
        When the file is missing, truncated or not a table file, or its KD-tree is damaged or
        of another scipy version.
    """
    table = ipc.open_file(pa.memory_map(str(path), "r")).read_all()
    meta = json.loads((table.schema.metadata or {})[_META])
    width = int(meta["width"])
    id_chunk = _array(table.column("id"))
    ids = np.frombuffer(id_chunk.buffers()[1], dtype=f"<U{width}", count=len(id_chunk))
    ids.flags.writeable = False  # the mapping is read-only: a write would crash the process
    return FacilityColumns(
        ids=ids,
        **{name: _numpy(table.column(name)) for name in _NUMERIC},
        **{name: tuple(meta[name]) for name in _VOCABULARIES},
        extra={
            name.removeprefix("extra."): _array(table.column(name))
            for name in table.column_names
            if name.startswith("extra.")
        },
        tree=None if meta["tree"] is None else _mapped_tree(table, meta["tree"]),
    )


def _remove_older(table_dir: Path, identity: str, counter: int) -> None:
    """Remove the store's files (and lock files) of older counters and of other layouts."""
    digest = table_path(table_dir, identity, 0).name.split("-")[2]
    name = re.compile(rf"facilities-(v\d+)-{digest}-(\d+)\.arrow")
    for old in table_dir.glob(f"facilities-*-{digest}-*.arrow*"):
        match = name.match(old.name)
        if match and (match[1] != FORMAT or int(match[2]) < counter):
            with contextlib.suppress(OSError):
                old.unlink()


def _mapped(path: Path) -> FacilityColumns | None:
    """The columns of a table file, or ``None`` when there is none (or it is unreadable)."""
    try:
        return read_table(path)
    except FileNotFoundError:
        return None
    except (OSError, pa.ArrowException, KeyError, ValueError):
        logger.warning("facility table %s is unreadable; writing it again", path, exc_info=True)
        return None


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed): one process builds a file while
    the others started with it wait and then map what it wrote."""
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def columns_of_store(store: TableSource, table_dir: Path | None) -> tuple[FacilityColumns, int]:
    """The facility columns of a store and the change counter they belong to.

    Maps the table file of the current counter from ``table_dir`` when one exists; otherwise
    reads the store, codes its facility frame and writes the file (one process at a time: the
    others wait and map it), unless the counter moved while the store was read: then the
    columns are returned without a file, as they may be newer than the counter, and the
    caller's next look at the counter rebuilds. With ``table_dir`` ``None``, or a directory
    that cannot be written, the store is read and no file is written.

    Raises
    ------
    InvalidInput, InvalidCoordinate
        When the store holds a malformed facility (see :func:`columns_from_frame`).
    """
    if table_dir is None:
        counter = store.change_counter()
        return columns_from_frame(store.frame(), "wgs84"), counter
    identity = store.identity()
    counter = store.change_counter()
    path = table_path(table_dir, identity, counter)
    columns = _mapped(path)
    if columns is not None:
        logger.info("mapped %d facilities of change %d from %s", len(columns), counter, path)
        return columns, counter
    try:
        table_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive(path.with_name(path.name + ".lock")):
            columns = _mapped(path)
            if columns is not None:
                return columns, counter
            columns = columns_from_frame(store.frame(), "wgs84")
            if store.change_counter() != counter:
                return columns, counter
            write_table(columns, path)
    except OSError:
        logger.warning("cannot write the facility table %s", path, exc_info=True)
        if columns is None:
            return columns_from_frame(store.frame(), "wgs84"), counter
        return columns, counter
    _remove_older(table_dir, identity, counter)
    logger.info("wrote %d facilities of change %d to %s", len(columns), counter, path)
    # Serve from the mapping, so this process shares its pages with the others.
    return read_table(path), counter
