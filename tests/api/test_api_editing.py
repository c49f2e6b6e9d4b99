"""Editing through the API: keys and scopes, ETag / If-Match, audit trail, bulk import."""

from __future__ import annotations

import concurrent.futures
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from api_support import CENTRE, Live

from geodata.boundaries import assign_adcode, load_districts
from geodata.crs import to_wgs84

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "'; DROP TABLE facilities; --",
    '" OR 1=1 --',
    "</script><script>alert('x')</script>",
    "Robert'); DELETE FROM facility_audit; --",
]


def new_facility(fid: str, **changes: Any) -> dict[str, Any]:
    """A valid facility body."""
    return {
        "id": fid,
        "name": "测试驿站",
        "kind": "worker_station",
        "lon": CENTRE[0] + 0.01,
        "lat": CENTRE[1] + 0.01,
        "access": "public",
        "opening_hours": "24/7",
        "amenities": ["toilet", "wifi"],
    } | changes


@pytest.fixture(scope="module")
def editor(edit_live: Live) -> Iterator[httpx.Client]:
    """A client with the editor key (edit + read-all)."""
    with edit_live.client(edit_live.keys.editor) as client:
        yield client


def test_keys_and_scopes(edit_live: Live) -> None:
    body = new_facility("scope-1")
    with edit_live.client() as anon:
        r = anon.post("/facilities", json=body)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.headers["content-type"] == "application/problem+json"
    with edit_live.client("fk_not-a-key") as wrong:
        assert wrong.post("/facilities", json=body).status_code == 401
        assert wrong.get("/nearest", params={"lon": 121.4, "lat": 31.2}).status_code == 401
    with edit_live.client(edit_live.keys.reader) as reader:
        assert reader.post("/facilities", json=body).status_code == 403
    with httpx.Client(
        base_url=edit_live.url, headers={"X-API-Key": edit_live.keys.editor}
    ) as by_header:
        r = by_header.post("/facilities", json=body)
        assert r.status_code == 201, r.text
        assert r.headers["location"] == "/collections/facilities/items/scope-1"


def test_edit_cycle_with_etags_and_audit(editor: httpx.Client) -> None:
    r = editor.post("/facilities", json=new_facility("cycle-1"))
    assert r.status_code == 201
    etag = r.headers["etag"]
    assert r.json()["version"] == 1

    near = editor.get(
        "/nearest", params={"lon": CENTRE[0] + 0.01, "lat": CENTRE[1] + 0.01, "k": 1}
    ).json()
    assert near["features"][0]["id"] == "cycle-1"

    assert editor.patch("/facilities/cycle-1", json={"name": "x"}).status_code == 428
    r = editor.patch(
        "/facilities/cycle-1",
        json={"name": "改名驿站", "phone": "021-1"},
        headers={"If-Match": etag},
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "改名驿站" and r.json()["version"] == 2
    new_etag = r.headers["etag"]
    stale = editor.patch("/facilities/cycle-1", json={"name": "late"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert stale.headers["etag"] == new_etag

    replaced = new_facility("cycle-1", name="整体替换", kind="rest_stop")
    r = editor.put("/facilities/cycle-1", json=replaced, headers={"If-Match": new_etag})
    assert r.status_code == 200 and r.json()["kind"] == "rest_stop"
    assert r.json()["phone"] is None
    item = editor.get("/collections/facilities/items/cycle-1")
    assert item.json()["properties"]["name"] == "整体替换"
    assert item.headers["etag"] == r.headers["etag"]

    audit = editor.get("/facilities/cycle-1/audit").json()["entries"]
    assert [e["action"] for e in audit] == ["replace", "patch", "create"]
    assert {e["actor"] for e in audit} == {"editor"}
    assert audit[1]["changes"]["name"] == ["测试驿站", "改名驿站"]

    r = editor.delete("/facilities/cycle-1", headers={"If-Match": r.headers["etag"]})
    assert r.status_code == 204
    assert editor.get("/collections/facilities/items/cycle-1").status_code == 404
    near = editor.get(
        "/nearest", params={"lon": CENTRE[0] + 0.01, "lat": CENTRE[1] + 0.01, "k": 1}
    ).json()
    assert near["features"][0]["id"] != "cycle-1"
    assert editor.get("/facilities/cycle-1/audit").json()["entries"][0]["action"] == "delete"


def test_concurrent_edits_do_not_overwrite_each_other(
    editor: httpx.Client, edit_live: Live
) -> None:
    etag = editor.post("/facilities", json=new_facility("race-1")).headers["etag"]

    def patch(name: str) -> int:
        with edit_live.client(edit_live.keys.editor) as client:
            return client.patch(
                "/facilities/race-1", json={"name": name}, headers={"If-Match": etag}
            ).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(patch, [f"并发{i}" for i in range(8)]))
    assert sorted(codes) == [200] + [412] * 7
    final = editor.get("/facilities/race-1").json()
    assert final["version"] == 2


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_stored_and_returned_verbatim(editor: httpx.Client, text: str) -> None:
    fid = f"hostile-{HOSTILE.index(text)}"
    fields = (
        "name",
        "address",
        "operator",
        "organization",
        "source",
        "province",
        "city",
        "district",
    )
    body = new_facility(fid, phone=text[:50], **dict.fromkeys(fields, text))
    r = editor.post("/facilities", json=body)
    assert r.status_code == 201, r.text
    for key in fields:
        assert r.json()[key] == text
    assert r.json()["phone"] == text[:50]
    item = editor.get(f"/collections/facilities/items/{fid}")
    assert item.headers["content-type"].startswith("application/geo+json")
    assert item.json()["properties"]["name"] == text
    near = editor.get("/nearest", params={"lon": body["lon"], "lat": body["lat"], "k": 10})
    names = [f["properties"]["name"] for f in near.json()["features"]]
    assert text in names
    assert editor.get("/collections/facilities/items", params={"limit": 1}).status_code == 200
    assert editor.get(f"/facilities/{fid}").json()["address"] == text
    page = editor.get("/map")
    assert page.status_code == 200
    if "<" in text:
        assert text not in page.text  # no markup from the data reaches the page as markup


def test_invalid_bodies_are_422_problems(editor: httpx.Client) -> None:
    cases = [
        (new_facility("bad-1", lon=500), "lon"),
        (new_facility("bad-2", kind="spa"), "kind"),
        (new_facility("bad-3", amenities=["pool"]), "amenities"),
        (new_facility("bad 4"), "id"),
        (new_facility("bad-5", access="employees"), None),
        (new_facility("bad-6", opening_hours="whenever"), "opening_hours"),
    ]
    for body, field in cases:
        r = editor.post("/facilities", json=body)
        assert r.status_code in (400, 422), (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        if field:
            assert field in json.dumps(r.json()["errors"]), r.text
    assert (
        editor.post(
            "/facilities", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )


def test_create_in_gcj02_stores_wgs84(editor: httpx.Client) -> None:
    r = editor.post(
        "/facilities", params={"crs": "gcj02"}, json=new_facility("gcj-1", lon=121.48, lat=31.235)
    )
    assert r.status_code == 201
    x, y = to_wgs84([121.48], [31.235], "gcj02")
    assert r.json()["lon"] == pytest.approx(float(x[0]), abs=1e-9)
    assert r.json()["lat"] == pytest.approx(float(y[0]), abs=1e-9)
    assert r.json()["source_crs"] == "gcj02"


def test_bulk_import_answers_the_report(editor: httpx.Client) -> None:
    frame = pd.DataFrame(
        {
            "id": ["imp-1", "imp-2", "imp-3"],
            "name": ["导入驿站一", "导入驿站二", ""],
            "kind": ["rest_stop", "rest_stop", "rest_stop"],
            "lon": [121.45, 121.46, 121.47],
            "lat": [31.22, 31.22, 31.22],
            "access": ["public", "public", "public"],
        }
    )
    data = frame.to_csv(index=False).encode("utf-8")
    dry = editor.post(
        "/facilities/import",
        data={"dry_run": "true"},
        files={"file": ("list.csv", io.BytesIO(data), "text/csv")},
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True and dry.json()["inserted"] == 0
    assert editor.get("/collections/facilities/items/imp-1").status_code == 404
    r = editor.post(
        "/facilities/import", files={"file": ("list.csv", io.BytesIO(data), "text/csv")}
    )
    report = r.json()
    assert report["total_rows"] == 3 and report["accepted"] == 2 and report["rejected"] == 1
    assert report["inserted"] == 2
    assert any(i["field"] == "name" for i in report["issues"])
    assert editor.get("/collections/facilities/items/imp-2").status_code == 200
    near = editor.get("/nearest", params={"lon": 121.45, "lat": 31.22, "k": 1}).json()
    assert near["features"][0]["id"] == "imp-1"
    audit = editor.get("/facilities/imp-1/audit").json()["entries"]
    assert audit[0]["actor"] == "editor" and audit[0]["action"] == "create"
    bad = editor.post(
        "/facilities/import", files={"file": ("list.exe", io.BytesIO(b"MZ..."), "application/x")}
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


CLERK_LIST = Path(__file__).resolve().parents[1] / "data" / "clerk_list_gbk.csv"


def test_bulk_import_of_a_clerks_list_answers_the_rejects_csv(editor: httpx.Client) -> None:
    data = CLERK_LIST.read_bytes().replace(b"GH-", b"api-GH-")
    r = editor.post(
        "/facilities/import",
        data={"report": "csv"},
        files={"file": ("名单.csv", io.BytesIO(data), "text/csv")},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.content.startswith(b"\xef\xbb\xbf")
    rejects = pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig", dtype=str)
    assert list(rejects.columns[-3:]) == ["field", "reason", "row"]
    assert list(rejects["编号"]) == ["api-GH-103", "api-GH-104"]
    assert list(rejects["field"]) == ["access", "lon；kind"]
    # The system came from the lng_gcj02 header: the stored point is the WGS-84 one.
    stored = editor.get("/facilities/api-GH-101").json()
    assert stored["source_crs"] == "gcj02"
    assert (stored["lon"], stored["lat"]) == pytest.approx(to_wgs84(121.4498, 31.2215, "gcj02"))
    # The fixed report, imported as it is, with a header mapped by the columns field.
    rejects.loc[0, "开放对象"] = "公开"
    rejects.loc[1, ["lng_gcj02", "类型"]] = ["121.4520", "工会驿站"]
    fixed = rejects.rename(columns={"站点名称": "点位X"}).to_csv(index=False).encode("gbk")
    again = editor.post(
        "/facilities/import",
        data={"columns": "name=点位X"},
        files={"file": ("fixed.csv", io.BytesIO(fixed), "text/csv")},
    ).json()
    assert (again["accepted"], again["rejected"], again["inserted"]) == (2, 0, 2)
    conflict = editor.post(
        "/facilities/import",
        data={"crs": "wgs84"},
        files={"file": ("fixed.csv", io.BytesIO(fixed), "text/csv")},
    )
    assert conflict.status_code == 400
    assert conflict.headers["content-type"] == "application/problem+json"
    assert "(wgs84)" in conflict.json()["detail"] and "lng_gcj02" in conflict.json()["detail"]
    bad = editor.post(
        "/facilities/import",
        data={"columns": "where=点位X"},
        files={"file": ("fixed.csv", io.BytesIO(fixed), "text/csv")},
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["parameter"] == "columns"


def test_plain_editor_cannot_touch_what_it_cannot_see(edit_live: Live) -> None:
    with edit_live.client(edit_live.keys.plain_editor) as client:
        r = client.patch(
            "/facilities/secret-employees-1", json={"name": "x"}, headers={"If-Match": "*"}
        )
        assert r.status_code == 404
        missing = client.patch(
            "/facilities/no-such-id", json={"name": "x"}, headers={"If-Match": "*"}
        )
        assert missing.status_code == 404
        assert r.json()["detail"].replace("secret-employees-1", "X") == missing.json()[
            "detail"
        ].replace("no-such-id", "X")
        assert client.get("/audit").status_code == 403


def test_district_is_filled_from_the_boundaries(editor: httpx.Client) -> None:
    districts = load_districts()
    body = new_facility("district-1", lon=CENTRE[0], lat=CENTRE[1])
    created = editor.post("/facilities", json=body).json()
    expected = assign_adcode([CENTRE[0]], [CENTRE[1]], districts)[0]
    assert expected is not None and created["adcode"] == expected
    name = districts.loc[districts["adcode"] == expected, "name"].iloc[0]
    assert created["district"] == name
    moved = editor.patch(
        "/facilities/district-1",
        json={"lon": 121.25, "lat": 31.0},
        headers={"If-Match": f'"{created["version"]}"'},
    ).json()
    assert moved["adcode"] == assign_adcode([121.25], [31.0], districts)[0]
