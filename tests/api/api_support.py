"""Support of the API tests: the test facilities, API keys, a live uvicorn server, references.

The ``live`` fixture (``conftest.py``) is a real uvicorn server on 127.0.0.1 (a free port)
serving ``create_app`` over a store holding 300 sample facilities plus three marked ones:

* ``secret-employees-1``: an ``employees`` room of organisation ``OrgA`` at People's Square,
  named :data:`SECRET_NAME`, which anonymous callers must never learn of;
* ``members-1``: a ``members`` room next to it;
* ``public-1``: a public rest stop next to them.

It is parametrized over the store backends like the suite's ``store`` fixture (GeoPackage; PostGIS
where the test set-up can start a server) and lives for one test module, so tests that edit must
restore what they change or use their own ids.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from live_server import ServerProcess as ServerProcess
from live_server import free_port as free_port
from pyproj import Geod

from api.auth import create_api_key
from geodata.sample import sample_frame
from geodata.schema import COLUMNS
from geodata.store import FacilityStore

SECRET_ID = "secret-employees-1"
SECRET_NAME = "机密单位OrgA专属爱心妈咪小屋"
SECRET_ORG = "OrgA"
CENTRE = (121.4737, 31.2304)  # People's Square, WGS-84
N_SAMPLE = 300
GEOD = Geod(ellps="WGS84")
ROOT = Path(__file__).resolve().parents[2]


def _marked_rows() -> pd.DataFrame:
    base = {
        "format": "room",
        "province": "上海市",
        "city": "上海市",
        "district": "黄浦区",
        "adcode": "310101",
        "source_crs": "wgs84",
        "opening_hours": "24/7",
        "amenities": "fridge;sofa",
        "star_rating": None,
        "area_m2": 12.0,
        "phone": None,
        "operator": "测试",
        "status": "open",
        "verified_at": None,
        "source": "test",
    }
    rows = [
        base
        | {
            "id": SECRET_ID,
            "name": SECRET_NAME,
            "kind": "mother_room",
            "address": "SECRET-ADDRESS 人民大道1号",
            "lon": CENTRE[0],
            "lat": CENTRE[1],
            "access": "employees",
            "organization": SECRET_ORG,
        },
        base
        | {
            "id": "members-1",
            "name": "会员专属驿站",
            "kind": "worker_station",
            "address": "人民大道2号",
            "lon": CENTRE[0] + 0.0004,
            "lat": CENTRE[1],
            "access": "members",
            "organization": None,
        },
        base
        | {
            "id": "public-1",
            "name": "公开爱心驿站",
            "kind": "rest_stop",
            "address": "人民大道3号",
            "lon": CENTRE[0] + 0.0008,
            "lat": CENTRE[1],
            "access": "public",
            "organization": None,
        },
    ]
    frame = pd.DataFrame(rows)
    frame["star_rating"] = frame["star_rating"].astype("Int64")
    return frame[[c for c in COLUMNS if c in frame.columns]]


@functools.cache
def _facility_rows() -> pd.DataFrame:
    return pd.concat([sample_frame(N_SAMPLE), _marked_rows()], ignore_index=True)


def facility_rows() -> pd.DataFrame:
    """The facilities every live server starts with (a fresh copy)."""
    return _facility_rows().copy()


@dataclass(frozen=True)
class Keys:
    """Plain API keys of the test key file."""

    editor: str  # edit + read-all
    org_a: str  # read-private for OrgA
    member: str  # read-private, union member
    plain_editor: str  # edit only (sees public facilities)
    reader: str  # no scope at all
    org_a_editor: str  # edit + read-private for OrgA
    org_x_editor: str  # edit only, for another organisation (OrgX)


@dataclass
class Live:
    """A running server."""

    url: str
    keys: Keys
    store: FacilityStore
    keys_file: Path

    def client(self, key: str | None = None, **kwargs: object) -> httpx.Client:
        """An httpx client for the server, with ``key`` as Bearer token."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0, **kwargs)


def make_keys(path: Path) -> Keys:
    """Write the test key file; return the plain keys."""
    return Keys(
        editor=create_api_key(path, "editor", ["edit", "read-all"]),
        org_a=create_api_key(path, "org-a", ["read-private"], [SECRET_ORG]),
        member=create_api_key(path, "member", ["read-private"], member=True),
        plain_editor=create_api_key(path, "plain-editor", ["edit"]),
        reader=create_api_key(path, "reader", []),
        org_a_editor=create_api_key(path, "org-a-editor", ["edit", "read-private"], [SECRET_ORG]),
        org_x_editor=create_api_key(path, "org-x-editor", ["edit"], ["OrgX"]),
    )


def visible_rows(
    frame: pd.DataFrame, *, member: bool = False, organizations: frozenset[str] = frozenset()
) -> pd.DataFrame:
    """Rows a viewer may see, by the written rule (independent of :mod:`api.auth`)."""
    keep = []
    for access, org in zip(frame["access"], frame["organization"], strict=True):
        if access == "public":
            keep.append(True)
        elif access == "members":
            keep.append(member or (org is not None and org in organizations))
        else:
            keep.append(org is not None and org in organizations)
    return frame[keep]


def brute_nearest(
    frame: pd.DataFrame,
    lon: float,
    lat: float,
    *,
    k: int,
    kind: str | None = None,
    amenity: str | None = None,
    member: bool = False,
    organizations: frozenset[str] = frozenset(),
) -> list[tuple[str, float, float]]:
    """(id, geodesic distance m, bearing deg) of the ``k`` nearest open facilities a viewer may
    see, by pyproj over every row (ties by id)."""
    rows = visible_rows(frame, member=member, organizations=organizations)
    rows = rows[rows["status"] == "open"]
    if kind:
        rows = rows[rows["kind"] == kind]
    if amenity:
        rows = rows[rows["amenities"].map(lambda a: amenity in str(a).split(";"))]
    n = len(rows)
    bearing, _, dist = GEOD.inv(
        np.full(n, lon), np.full(n, lat), rows["lon"].to_numpy(float), rows["lat"].to_numpy(float)
    )
    order = sorted(zip(dist, rows["id"], bearing % 360, strict=True), key=lambda t: (t[0], t[1]))
    return [(fid, float(d), float(b)) for d, fid, b in order[:k]]
