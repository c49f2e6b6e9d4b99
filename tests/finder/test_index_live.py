"""Updates of the facility index: new snapshots, no stale reads, no half-built index.

Each updated snapshot is compared with an index built from scratch on the changed facilities
(and with a brute-force geodesic search); old snapshots must keep answering as before.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pyproj
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finder.index import FacilityIndex
from geodata.errors import FacilityNotFound, InvalidInput
from geodata.schema import Facility

GEOD = pyproj.Geod(ellps="WGS84")
BOX = (121.2, 30.9, 121.8, 31.4)


def _frame(ids: list[str], lon: np.ndarray, lat: np.ndarray, kinds: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "lon": lon, "lat": lat, "kind": kinds, "name": ids})


def _answers(index: FacilityIndex, lon: np.ndarray, lat: np.ndarray) -> tuple[list[str], ...]:
    batch = index.nearest_batch(lon, lat, k=3)
    singles = tuple(
        [r.facility_id for r in index.nearest(x, y, k=3)] for x, y in zip(lon, lat, strict=True)
    )
    from_batch = tuple([str(index.ids[p]) for p in row if p >= 0] for row in batch.positions)
    assert singles == from_batch
    return singles


def _brute(frame: pd.DataFrame, lon: float, lat: float, k: int) -> list[str]:
    n = len(frame)
    _a, _b, dist = GEOD.inv(np.full(n, lon), np.full(n, lat), frame["lon"], frame["lat"])
    order = np.lexsort((frame["id"].to_numpy(dtype=str), dist))[:k]
    return frame["id"].to_numpy()[order].tolist()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_with_changes_equals_a_fresh_build(data: st.DataObject) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    n = data.draw(st.integers(1, 60))
    ids = [f"f{i:03d}" for i in range(n)]
    frame = _frame(
        ids, rng.uniform(BOX[0], BOX[2], n), rng.uniform(BOX[1], BOX[3], n), ["mother_room"] * n
    )
    old = FacilityIndex.from_frame(frame)
    q_lon, q_lat = rng.uniform(BOX[0], BOX[2], 5), rng.uniform(BOX[1], BOX[3], 5)
    old_answers = _answers(old, q_lon, q_lat)
    old_box = old.in_bbox(*BOX)  # builds the R-tree that updates then share
    deletes = data.draw(st.sets(st.sampled_from(ids), max_size=n // 2))
    movable = [i for i in ids if i not in deletes]
    moves = (
        data.draw(st.sets(st.sampled_from(movable), max_size=len(movable))) if movable else set()
    )
    adds = [f"g{i:03d}" for i in range(data.draw(st.integers(0, 10)))]
    upsert_ids = sorted(moves) + adds
    m = len(upsert_ids)
    upserts = _frame(
        upsert_ids,
        rng.uniform(BOX[0], BOX[2], m),
        rng.uniform(BOX[1], BOX[3], m),
        ["rest_stop"] * m,
    )
    new = old.with_changes(upserts, deletes)
    expected = pd.concat(
        [frame[~frame["id"].isin(deletes) & ~frame["id"].isin(moves)], upserts]
    ).sort_values("id")
    fresh = FacilityIndex.from_frame(expected)
    assert new.ids.tolist() == fresh.ids.tolist()
    assert _answers(new, q_lon, q_lat) == _answers(fresh, q_lon, q_lat)
    for x, y, got in zip(q_lon, q_lat, _answers(new, q_lon, q_lat), strict=True):
        assert got == _brute(expected, x, y, 3)
    box = (121.3, 31.0, 121.6, 31.3)
    assert new.ids[new.in_bbox(*box)].tolist() == fresh.ids[fresh.in_bbox(*box)].tolist()
    assert [new.record(new.position_of(i))["kind"] for i in upsert_ids] == ["rest_stop"] * m
    # The old snapshot is untouched, even though it shares its R-tree with the new one.
    assert _answers(old, q_lon, q_lat) == old_answers
    np.testing.assert_array_equal(old.in_bbox(*BOX), old_box)


def test_errors_leave_the_snapshot_unchanged() -> None:
    before = FacilityIndex.from_frame(
        _frame(["a", "b"], np.array([121.4, 121.5]), np.array([31.2, 31.2]), ["rest_stop"] * 2)
    )
    with pytest.raises(FacilityNotFound):
        before.with_changes(deletes=["zzz"])
    upsert = [Facility(id="a", name="A", kind="mother_room", lon=121.45, lat=31.21)]
    with pytest.raises(InvalidInput):
        before.with_changes(upsert, deletes=["a"])
    assert before.ids.tolist() == ["a", "b"]
    assert [r.facility_id for r in before.nearest(121.45, 31.2, k=2)] == ["a", "b"]


def test_next_query_sees_each_update() -> None:
    index = FacilityIndex.from_frame(
        _frame(["a"], np.array([121.4]), np.array([31.2]), ["rest_stop"])
    )
    near = Facility(id="near", name="Near", kind="mother_room", lon=121.5001, lat=31.2001)
    index = index.with_changes([near])
    assert index.nearest(121.5, 31.2)[0].facility_id == "near"
    closed = near.model_copy(update={"status": "closed"})
    index = index.with_changes([closed])
    assert index.nearest(121.5, 31.2)[0].facility_id == "a"
    index = index.with_changes(deletes=["a"])
    assert index.nearest(121.5, 31.2) == []
    assert index.nearest(121.5, 31.2, statuses=None)[0].facility_id == "near"


def test_readers_never_see_a_half_built_index() -> None:
    """Readers query while a writer replaces every facility, generation after generation, and
    publishes each snapshot with one reference assignment (as ``api.state`` does)."""
    m = 50
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(BOX[0], BOX[2], m), rng.uniform(BOX[1], BOX[3], m)

    def generation(g: int) -> pd.DataFrame:
        return _frame([f"g{g:03d}-{i:02d}" for i in range(m)], lon, lat, ["rest_stop"] * m)

    live = [FacilityIndex.from_frame(generation(0))]
    stop = threading.Event()
    failures: list[str] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            snapshot = live[0]
            found = snapshot.nearest(121.5, 31.15, k=m)
            prefixes = {r.facility_id[:4] for r in found}
            boxed = {str(i)[:4] for i in snapshot.ids[snapshot.in_bbox(*BOX)]}
            if len(found) != m or len(prefixes) != 1 or boxed != prefixes:
                failures.append(f"{len(found)} results from generations {prefixes | boxed}")
            reads[0] += 1

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for g in range(1, 40):
        previous = [f"g{g - 1:03d}-{i:02d}" for i in range(m)]
        live[0] = live[0].with_changes(generation(g), deletes=previous)
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
    assert reads[0] > 0
    assert {str(i)[:4] for i in live[0].ids} == {"g039"}
