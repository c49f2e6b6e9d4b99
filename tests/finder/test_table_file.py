"""The facility table file: written once per store and change counter, memory-mapped by every
process, and replaced when any process writes to the store (both store backends)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from postgres import synthetic_frame

from finder.index import FacilityIndex
from finder.table_file import FORMAT, columns_of_store, read_table, table_path
from geodata.store import FacilityStore, GeoPackageStore

ROOT = Path(__file__).resolve().parents[2]


class CountingReads:
    """A real store, counting the whole-store reads (``frame()``) made through it."""

    def __init__(self, store: FacilityStore, before_read: object = None) -> None:
        self.store = store
        self.reads = 0
        self.before_read = before_read

    def identity(self) -> str:
        return self.store.identity()

    def change_counter(self) -> int:
        return self.store.change_counter()

    def frame(self) -> pd.DataFrame:
        self.reads += 1
        if callable(self.before_read):
            self.before_read()
        return self.store.frame()


def _filled(store: FacilityStore, n: int = 80) -> FacilityStore:
    frame = synthetic_frame(n, seed=3)
    frame.loc[::7, "operator"] = None  # missing text stays missing
    store.upsert_frame(frame, actor="test")
    return store


def _write_from_another_process(store: FacilityStore, facility_id: str) -> None:
    """Create one facility through a store opened by a separate Python process."""
    if isinstance(store, GeoPackageStore):
        opening = f"GeoPackageStore({str(store.path)!r})"
        module = "geodata.store"
        name = "GeoPackageStore"
    else:
        opening = f"PostGISStore({store.database_url!r})"  # type: ignore[attr-defined]
        module = "geodata.postgis"
        name = "PostGISStore"
    script = (
        f"from {module} import {name}\n"
        "from geodata.schema import Facility\n"
        f"store = {opening}\n"
        "store.create(Facility(id=%r, name='新建', kind='rest_stop', lon=121.3, lat=31.1),"
        " actor='other')\n"
        "store.close()\n"
    ) % facility_id
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=120)


def test_mapped_table_equals_the_store(store: FacilityStore, tmp_path: Path) -> None:
    _filled(store)
    written, counter = columns_of_store(store, tmp_path)
    assert table_path(tmp_path, store.identity(), counter).exists()
    mapped, again = columns_of_store(store, tmp_path)
    assert again == counter
    expected = FacilityIndex.from_frame(store.frame())
    for columns in (written, mapped):
        index = FacilityIndex(columns)
        pd.testing.assert_frame_equal(index.frame, expected.frame)
        assert [index.record(i) for i in range(len(index))] == [
            expected.record(i) for i in range(len(expected))
        ]
    # The numeric columns and ids are views of the mapped file, not private copies.
    for array in (mapped.ids, mapped.lon, mapped.lat, mapped.cls, mapped.hours):
        assert not array.flags.owndata
        assert not array.flags.writeable


def test_mapping_copies_nothing(store: FacilityStore, tmp_path: Path) -> None:
    _filled(store)
    _, counter = columns_of_store(store, tmp_path)
    before = pa.total_allocated_bytes()
    columns = read_table(table_path(tmp_path, store.identity(), counter))
    assert pa.total_allocated_bytes() == before  # every column is a view of the mapping
    assert len(columns) == 80


def test_second_process_maps_instead_of_reading(store: FacilityStore, tmp_path: Path) -> None:
    _filled(store)
    first = CountingReads(store)
    columns_of_store(first, tmp_path)
    second = CountingReads(store)
    columns, _ = columns_of_store(second, tmp_path)
    assert (first.reads, second.reads) == (1, 0)
    assert len(columns) == 80


def test_write_by_another_process_gives_a_new_file(store: FacilityStore, tmp_path: Path) -> None:
    _filled(store)
    before, counter = columns_of_store(store, tmp_path)
    _write_from_another_process(store, "zz-new")
    after, new_counter = columns_of_store(store, tmp_path)
    assert new_counter > counter
    assert "zz-new" not in before.ids
    assert "zz-new" in after.ids
    files = sorted(p.name for p in tmp_path.glob("*.arrow"))
    assert files == [table_path(tmp_path, store.identity(), new_counter).name]
    # A process that already mapped the old file keeps reading it.
    assert len(before) == 80
    assert np.isfinite(before.lon).all()


def test_no_file_when_the_store_changes_during_the_read(
    store: FacilityStore, tmp_path: Path
) -> None:
    _filled(store)
    counter = store.change_counter()
    racing = CountingReads(store, lambda: _write_from_another_process(store, "zz-race"))
    columns, got = columns_of_store(racing, tmp_path)
    assert got == counter
    assert "zz-race" in columns.ids  # newer than the counter: the next look rebuilds
    assert not list(tmp_path.glob("*.arrow"))


def test_unreadable_file_is_written_again(store: FacilityStore, tmp_path: Path) -> None:
    _filled(store)
    _, counter = columns_of_store(store, tmp_path)
    path = table_path(tmp_path, store.identity(), counter)
    path.write_bytes(path.read_bytes()[:100])
    columns, _ = columns_of_store(store, tmp_path)
    assert len(columns) == 80
    assert len(columns_of_store(CountingReads(store), tmp_path)[0]) == 80


def test_updated_index_keeps_the_mapped_text(store: FacilityStore, tmp_path: Path) -> None:
    """An index updated in place (a write through the service) over mapped columns."""
    _filled(store)
    index = FacilityIndex(columns_of_store(store, tmp_path)[0])
    row = index.record(5) | {"id": "syn-zz-longer-than-the-others", "name": "改"}
    updated = index.with_changes(pd.DataFrame([row]), deletes=[str(index.ids[0])])
    assert len(updated) == len(index)
    assert updated.record(updated.position_of(row["id"]))["name"] == "改"
    assert updated.record(0) == index.record(1)


def test_the_kd_tree_is_mapped_not_built(store: FacilityStore, tmp_path: Path) -> None:
    """A second process takes the KD-tree (ECEF points, permutations) from the file: views of
    the mapping, and the same answers as an index built from the store."""
    _filled(store)
    columns_of_store(store, tmp_path)
    mapped, _ = columns_of_store(CountingReads(store), tmp_path)
    assert mapped.tree is not None
    tree = mapped.tree.tree
    for array in (tree.data, tree.indices, mapped.tree.order):
        assert not array.flags.owndata
        assert not array.flags.writeable
    index = FacilityIndex(mapped)
    assert index._searcher.tree is tree  # the index uses the mapped tree
    built = FacilityIndex.from_frame(store.frame())
    rng = np.random.default_rng(5)
    for lon, lat in zip(rng.uniform(121.0, 122.0, 30), rng.uniform(30.8, 31.6, 30), strict=True):
        got = [(r.facility_id, r.distance_m) for r in index.nearest(lon, lat, k=4)]
        assert got == [(r.facility_id, r.distance_m) for r in built.nearest(lon, lat, k=4)]
        within = [r.facility_id for r in index.within(lon, lat, 5_000)]
        assert within == [r.facility_id for r in built.within(lon, lat, 5_000)]


def test_damaged_kd_tree_is_written_again(store: FacilityStore, tmp_path: Path) -> None:
    """A flipped byte in the saved tree nodes (scipy follows them unchecked) is noticed: the
    file is read from the store and written again instead of crashing or misleading."""
    _filled(store)
    _, counter = columns_of_store(store, tmp_path)
    path = table_path(tmp_path, store.identity(), counter)
    whole = pa.py_buffer(path.read_bytes())
    nodes = pa.ipc.open_file(pa.BufferReader(whole)).read_all().column("tree.nodes").chunk(0)
    at = nodes.buffers()[1].address - whole.address  # where the node bytes lie in the file
    data = bytearray(whole.to_pybytes())
    data[at + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    reads = CountingReads(store)
    columns, _ = columns_of_store(reads, tmp_path)
    assert reads.reads == 1
    assert path.read_bytes() != bytes(data)  # written again
    assert len(columns_of_store(CountingReads(store), tmp_path)[0]) == 80
    index = FacilityIndex(columns)
    assert index.nearest(121.47, 31.23, k=1)[0].facility_id == (
        FacilityIndex.from_frame(store.frame()).nearest(121.47, 31.23, k=1)[0].facility_id
    )


def test_files_of_an_older_format_are_removed(store: FacilityStore, tmp_path: Path) -> None:
    _filled(store)
    counter = store.change_counter()
    current = table_path(tmp_path, store.identity(), counter)
    old = current.with_name(current.name.replace(f"-{FORMAT}-", "-v1-"))
    assert old != current
    old.write_bytes(b"an earlier layout")
    columns_of_store(store, tmp_path)
    assert sorted(tmp_path.glob("*.arrow")) == [current]
