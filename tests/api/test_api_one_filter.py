"""One question, one answer: every surface selects the facilities of the same FacilityFilter.

The server holds the bundled sample (1,500 facilities, some temporarily closed or closed), on
each store backend. The reference is :meth:`finder.index.FacilityIndex.mask` of an index built
from the same store frame: ``/nearest``, OGC items, ``/map``, ``/coverage`` and the ``finder``
commands must select exactly its facilities for the same question, under the one status rule
(nearest and coverage count ``open`` only; maps add ``temporarily_closed``; OGC items list every
status).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyproj
import pytest
from api_support import Live
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finder.index import MAP_STATUSES, FacilityFilter, FacilityIndex
from geodata.sample import sample_frame
from geodata.schema import AMENITIES, KINDS, STATUSES, Viewer
from geodata.store import GeoPackageStore

HUANGPU = "310101"
CENTRE = (121.4737, 31.2304)
EVERYONE = Viewer(see_all=True)
_GEOD = pyproj.Geod(ellps="WGS84")


def server_rows() -> pd.DataFrame:
    """The server's store starts with the bundled sample (``finder`` without ``--store``)."""
    return sample_frame()


@pytest.fixture(scope="module")
def frame(edit_live: Live) -> pd.DataFrame:
    return edit_live.store.frame()


@pytest.fixture(scope="module")
def index(frame: pd.DataFrame) -> FacilityIndex:
    return FacilityIndex.from_frame(frame)


@pytest.fixture(scope="module")
def store_copy(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GeoPackage holding what the server's store holds, for the ``finder`` commands."""
    path = tmp_path_factory.mktemp("one-filter") / "store.gpkg"
    store = GeoPackageStore(path)
    store.upsert_frame(frame, actor="test")
    store.close()
    return path


def finder(*args: str | Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def _selected_ids(index: FacilityIndex, where: FacilityFilter) -> set[str]:
    return {str(i) for i in index.ids[index.mask(where)]}


def test_cli_api_and_print_count_the_same_facilities_per_district(
    edit_live: Live, index: FacilityIndex, frame: pd.DataFrame, store_copy: Path, tmp_path: Path
) -> None:
    with edit_live.client() as client:
        api = client.get("/coverage", params={"radius_m": 1000}).json()
    cli = json.loads(finder("coverage", "--store", store_copy, "--format", "json").stdout)
    per_api = {d["adcode"]: d["facilities"] for d in api["districts"]}
    per_cli = {d["adcode"]: d["facilities"] for d in cli["districts"]}
    assert per_cli == per_api
    assert cli["metadata"]["counted"] == api["metadata"]["counted"]
    counted = api["metadata"]["counted"]
    assert counted["status"] == ["open"]
    assert counted["facilities"] == int(index.mask(FacilityFilter()).sum())
    # the rule decides: the sample's temporarily closed public rooms are not counted
    public = frame["access"] == "public"
    assert counted["facilities"] < int((public & (frame["status"] != "closed")).sum())

    pdf = tmp_path / "huangpu.pdf"
    finder("print", "--store", store_copy, "--district", HUANGPU, "--out", pdf)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    row = next(line for line in text.splitlines() if re.search(r"黄浦区\s+[\d.]+\s+\d+\s", line))
    printed = int(re.search(r"黄浦区\s+[\d.]+\s+(\d+)\s", row).group(1))  # type: ignore[union-attr]
    assert printed == per_api[HUANGPU]


def test_cli_nearest_is_the_nearest_of_the_mask(index: FacilityIndex, store_copy: Path) -> None:
    for extra, viewer in (([], Viewer()), (["--all-access", "--kind", "rest_stop"], EVERYONE)):
        asked = finder(
            "nearest", *map(str, CENTRE), "--k", "20", "--json", "--store", store_copy, *extra
        )
        rows = json.loads(asked.stdout)
        where = FacilityFilter(kinds=["rest_stop"] if extra else None, viewer=viewer)
        assert [r["id"] for r in rows] == _brute_nearest(index, where, 20)


def _brute_nearest(index: FacilityIndex, where: FacilityFilter, k: int) -> list[str]:
    """Ids of the ``k`` nearest facilities of the mask to :data:`CENTRE`, by pyproj (ties by id)."""
    positions = index.select(where)
    lon, lat = index.lonlat(positions)
    n = positions.size
    _az, _baz, dist = _GEOD.inv(np.full(n, CENTRE[0]), np.full(n, CENTRE[1]), lon, lat)
    order = np.lexsort((positions, np.round(np.asarray(dist), 6)))[:k]
    return [str(index.ids[p]) for p in positions[order]]


def _payload(html: str) -> dict[str, Any]:
    block = re.search(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S)
    assert block is not None
    document: dict[str, Any] = json.loads(block.group(1).replace("\\u003c", "<"))
    if document["encoding"] == "gzip+base64":
        document["data"] = json.loads(gzip.decompress(base64.b64decode(document["data"])))
    return document


subsets = st.none() | st.sets(st.sampled_from(KINDS), min_size=1)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    kinds=subsets,
    amenities=st.sets(st.sampled_from(AMENITIES), max_size=2),
    min_stars=st.none() | st.integers(1, 5),
    statuses=st.none() | st.sets(st.sampled_from(STATUSES), min_size=1),
    adcode=st.none() | st.sampled_from([HUANGPU, "310106", "310115"]),
    see_all=st.booleans(),
)
def test_every_surface_selects_the_mask(
    edit_live: Live,
    index: FacilityIndex,
    kinds: set[str] | None,
    amenities: set[str],
    min_stars: int | None,
    statuses: set[str] | None,
    adcode: str | None,
    see_all: bool,
) -> None:
    viewer = EVERYONE if see_all else Viewer()
    kind_params = sorted(kinds or ())
    with edit_live.client(edit_live.keys.editor if see_all else None) as client:
        # OGC items: every status the caller may see, narrowed by status=, kind=, adcode=
        params: dict[str, Any] = {"kind": kind_params, "limit": 10_000}
        if statuses:
            params["status"] = sorted(statuses)
        if adcode:
            params["adcode"] = adcode
        items = _get(client, "/collections/facilities/items", params)
        where = FacilityFilter(
            kinds=kinds,
            viewer=viewer,
            statuses=statuses,
            adcodes=None if adcode is None else [adcode],
        )
        assert items["numberMatched"] == int(index.mask(where).sum())
        assert {f["id"] for f in items["features"]} == _selected_ids(index, where)

        # /nearest: open only by the status rule, with amenities and stars
        where = FacilityFilter(kinds=kinds, amenities=amenities, min_stars=min_stars, viewer=viewer)
        params = {"lon": CENTRE[0], "lat": CENTRE[1], "k": 100, "kind": kind_params}
        params |= {"amenity": sorted(amenities)} if amenities else {}
        params |= {"min_stars": min_stars} if min_stars else {}
        nearest = _get(client, "/nearest", params)
        assert [f["id"] for f in nearest["features"]] == _brute_nearest(index, where, 100)

        # /coverage: open facilities of the kinds the caller may see
        where = FacilityFilter(kinds=kinds, viewer=viewer)
        coverage = _get(client, "/coverage", {"kind": kind_params})
        assert coverage["metadata"]["counted"]["facilities"] == int(index.mask(where).sum())

        # /map: open and temporarily closed, with amenities and districts
        where = FacilityFilter(
            kinds=kinds,
            amenities=amenities,
            viewer=viewer,
            statuses=MAP_STATUSES,
            adcodes=None if adcode is None else [adcode],
        )
        params = {"kind": kind_params, "amenity": sorted(amenities)}
        params |= {"district": adcode} if adcode else {}
        page = client.get("/map", params=params)
        assert page.status_code == 200, page.text
        shown = _payload(page.text)["data"]["id"]
        assert sorted(shown) == sorted(_selected_ids(index, where))


def _get(client: httpx.Client, path: str, params: dict[str, Any]) -> dict[str, Any]:
    answer = client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body
