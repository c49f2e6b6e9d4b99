"""The scope table of docs/api.md, one test per kind of key, on both store backends.

For every kind of key: which of the three marked facilities (an ``employees`` room of ``OrgA``, a
``members`` room, a public rest stop) it sees on ``/nearest``, in the OGC items (search, count and
item by id), and which it may change (``PATCH``): 200 where it may, 404 for a facility it cannot
see, 403 without the ``edit`` scope, 401 anonymously. Then what an ``edit`` key may write, one
facility at a time or by bulk import: never a facility it could not see afterwards (another
organisation's, or ``members`` without membership).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from api_support import CENTRE, SECRET_ID, SECRET_ORG, Live, facility_rows, visible_rows

from api.auth import create_api_key, hash_key

MEMBERS_ID = "members-1"
PUBLIC_ID = "public-1"
MARKED = (SECRET_ID, MEMBERS_ID, PUBLIC_ID)
NEAR = 0.002  # degrees around the marked facilities (they lie within 80 m of CENTRE)


@dataclass(frozen=True)
class Kind:
    """A kind of key and what it must see."""

    scopes: tuple[str, ...]
    organizations: tuple[str, ...] = ()
    member: bool = False
    sees: frozenset[str] = frozenset({PUBLIC_ID})

    def patch_status(self, facility_id: str, anonymous: bool) -> int:
        """The status a ``PATCH`` of ``facility_id`` must answer."""
        if anonymous:
            return 401
        if "edit" not in self.scopes:
            return 403
        return 200 if facility_id in self.sees else 404


ALL = frozenset(MARKED)
KINDS: dict[str, Kind] = {
    "anonymous": Kind(()),
    # A key file written before read-private needed --org or --member: it opens nothing.
    "read-private": Kind(("read-private",)),
    "read-private+member": Kind(
        ("read-private",), member=True, sees=frozenset({PUBLIC_ID, MEMBERS_ID})
    ),
    "read-private+org": Kind(
        ("read-private",), (SECRET_ORG,), sees=frozenset({PUBLIC_ID, SECRET_ID})
    ),
    "edit": Kind(("edit",)),
    "edit+org": Kind(("edit",), (SECRET_ORG,), sees=frozenset({PUBLIC_ID, SECRET_ID})),
    "read-all": Kind(("read-all",), sees=ALL),
    "edit+read-all (admin)": Kind(("edit", "read-all"), sees=ALL),
}


def _add_raw_entry(path: Path, name: str, key: str, scopes: list[str]) -> None:
    """Append a key as an older ``finder`` wrote it (no checks), replacing the file at once."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data["keys"].append({"name": name, "sha256": hash_key(key), "scopes": scopes})
    tmp = path.with_name(path.name + ".test-tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


@pytest.fixture(scope="module")
def plain_keys(edit_live: Live) -> dict[str, str | None]:
    """A plain key of every kind, added to the running server's key file."""
    keys: dict[str, str | None] = {"anonymous": None}
    for label, kind in KINDS.items():
        name = "scopes-" + label.split()[0]
        if label == "anonymous":
            continue
        if label == "read-private":
            keys[label] = "fk_legacy-read-private-key"
            _add_raw_entry(edit_live.keys_file, name, keys[label], ["read-private"])
            continue
        keys[label] = create_api_key(
            edit_live.keys_file, name, kind.scopes, kind.organizations, member=kind.member
        )
    return keys


@pytest.mark.parametrize("label", list(KINDS))
def test_what_each_kind_of_key_sees_and_edits(
    label: str, edit_live: Live, plain_keys: dict[str, str | None]
) -> None:
    kind = KINDS[label]
    with edit_live.client(plain_keys[label]) as client:
        nearest = client.get(
            "/nearest",
            params={"lon": CENTRE[0], "lat": CENTRE[1], "k": 100, "max_distance_m": 150},
        )
        assert nearest.status_code == 200, nearest.text
        assert {f["id"] for f in nearest.json()["features"]} & ALL == kind.sees

        bbox = f"{CENTRE[0] - NEAR},{CENTRE[1] - NEAR},{CENTRE[0] + NEAR},{CENTRE[1] + NEAR}"
        items = client.get("/collections/facilities/items", params={"bbox": bbox, "limit": 1000})
        assert items.status_code == 200, items.text
        assert {f["id"] for f in items.json()["features"]} & ALL == kind.sees

        everything = client.get("/collections/facilities/items", params={"limit": 1})
        rows = facility_rows()
        if kind.sees != ALL:
            rows = visible_rows(
                rows, member=kind.member, organizations=frozenset(kind.organizations)
            )
        assert everything.json()["numberMatched"] == len(rows)

        for facility_id in MARKED:
            one = client.get(f"/collections/facilities/items/{facility_id}")
            assert one.status_code == (200 if facility_id in kind.sees else 404), facility_id
            patched = client.patch(
                f"/facilities/{facility_id}",
                json={"phone": "021-12345678"},
                headers={"If-Match": "*", "Content-Type": "application/merge-patch+json"},
            )
            expected = kind.patch_status(facility_id, plain_keys[label] is None)
            assert patched.status_code == expected, (facility_id, patched.text)


def _body(**values: object) -> dict[str, object]:
    return {
        "name": "测试单位母婴室",
        "kind": "mother_room",
        "lon": CENTRE[0] + 0.001,
        "lat": CENTRE[1] + 0.001,
        "opening_hours": "Mo-Fr 09:00-17:00",
    } | values


def _import(client: httpx.Client, rows: list[dict[str, object]]) -> dict[str, Any]:
    data = pd.DataFrame(rows).to_csv(index=False).encode()
    r = client.post(
        "/facilities/import", files={"file": ("list.csv", io.BytesIO(data), "text/csv")}
    )
    assert r.status_code == 200, r.text
    report: dict[str, Any] = r.json()
    return report


def test_an_editor_writes_only_what_it_may_see_afterwards(
    edit_live: Live, plain_keys: dict[str, str | None]
) -> None:
    own = _body(access="employees", organization=SECRET_ORG)
    other = _body(access="employees", organization="OrgB")
    with edit_live.client(plain_keys["edit+org"]) as org_editor:
        created = org_editor.post("/facilities", json=own)
        assert created.status_code == 201, created.text
        own_id = created.json()["id"]
        refused = org_editor.post("/facilities", json=other)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        moved = org_editor.patch(
            f"/facilities/{SECRET_ID}",
            json={"organization": "OrgB"},
            headers={"If-Match": "*", "Content-Type": "application/merge-patch+json"},
        )
        assert moved.status_code == 403, moved.text
        members = org_editor.put(
            f"/facilities/{own_id}",
            json=own | {"id": own_id, "access": "members", "organization": None},
            headers={"If-Match": "*"},
        )
        assert members.status_code == 403, members.text

        report = _import(
            org_editor,
            [
                other | {"name": "OrgB 小屋"},
                own | {"id": own_id, "organization": "OrgB", "name": "转给 OrgB"},
                own | {"name": "新建小屋"},
            ],
        )
        assert (report["accepted"], report["inserted"], report["rejected"]) == (1, 1, 2), report[
            "issues"
        ]
        assert {i["field"] for i in report["issues"]} == {"access"}
    assert edit_live.store.get(SECRET_ID).organization == SECRET_ORG
    assert edit_live.store.get(own_id).access == "employees"
    assert edit_live.store.get(own_id).organization == SECRET_ORG
    with edit_live.client(plain_keys["edit"]) as plain_editor:
        assert plain_editor.post("/facilities", json=own).status_code == 403
    with edit_live.client(plain_keys["edit+read-all (admin)"]) as admin:
        assert admin.post("/facilities", json=other | {"id": "scopes-other-1"}).status_code == 201
