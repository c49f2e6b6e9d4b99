"""Staff take a facility's photo down (``DELETE /facilities/{id}/photos/{n}``), on both store
backends: who may, hidden looks like missing, who and when are kept, the other photos keep their
numbers, caches ask again, and the map's popup data shows the first photo still shown.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import re
from typing import Any

import httpx
from api_support import SECRET_ID, Live, facility_rows
from PIL import Image


def _public_id(n: int) -> str:
    rows = facility_rows()
    return str(rows.loc[rows["access"] == "public", "id"].iloc[40 + n])


def _jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="JPEG")
    return buf.getvalue()


def _add(client: httpx.Client, facility_id: str, data: bytes) -> dict[str, Any]:
    r = client.post(
        f"/facilities/{facility_id}/photos", content=data, headers={"Content-Type": "image/jpeg"}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _problem(r: httpx.Response) -> dict[str, Any]:
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    return {k: v for k, v in r.json().items() if k != "instance"}


def _map_photo(client: httpx.Client, facility_id: str) -> int:
    """The photo number the map's popup data gives the facility (-1: none)."""
    html = client.get("/map").text
    block = re.search(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S)
    assert block is not None
    document: dict[str, Any] = json.loads(block.group(1).replace("\\u003c", "<"))
    if document["encoding"] == "gzip+base64":
        document["data"] = json.loads(gzip.decompress(base64.b64decode(document["data"])))
    data = document["data"]
    return int(data["photo"][data["id"].index(facility_id)])


def test_only_keys_that_may_write_the_facility_take_a_photo_down(edit_live: Live) -> None:
    keys = edit_live.keys
    facility_id = _public_id(0)
    with edit_live.client(keys.editor) as staff:
        _add(staff, facility_id, _jpeg((200, 0, 0)))
    path = f"/facilities/{facility_id}/photos/0"
    with edit_live.client() as anonymous:
        assert anonymous.delete(path).status_code == 401
    with edit_live.client(keys.reader) as reader:  # a key without the edit scope
        assert reader.delete(path).status_code == 403
    with edit_live.client(keys.org_a) as viewer:  # sees everything of OrgA, edits nothing
        assert viewer.delete(path).status_code == 403
    with edit_live.client() as anonymous:
        assert anonymous.get(path).status_code == 200  # still there
    with edit_live.client(keys.plain_editor) as staff:
        assert staff.delete(path).status_code == 204
        again = staff.delete(path)
        never = staff.delete(f"/facilities/{facility_id}/photos/7")
    assert again.status_code == never.status_code == 404
    assert _problem(again)["type"] == _problem(never)["type"]


def test_a_hidden_facilitys_photo_answers_like_a_missing_one(edit_live: Live) -> None:
    """A key that may not see the facility learns nothing, on the write path as on reads."""
    keys = edit_live.keys
    with edit_live.client(keys.org_a_editor) as insider:
        _add(insider, SECRET_ID, _jpeg((0, 200, 0)))
    for method, path in (("DELETE", "/facilities/{}/photos/0"), ("GET", "/facilities/{}/photos")):
        answers = []
        for facility_id in (SECRET_ID, "no-such-facility-1"):
            with edit_live.client(keys.plain_editor) as outsider:
                r = outsider.request(method, path.format(facility_id))
            answers.append((r.status_code, _problem(r)))
        (hidden_status, hidden), (missing_status, missing) = answers
        assert hidden_status == missing_status == 404, (method, path)
        assert hidden["type"] == missing["type"]
        assert hidden["detail"].replace(SECRET_ID, "X") == missing["detail"].replace(
            "no-such-facility-1", "X"
        )
    with edit_live.client(keys.org_a_editor) as insider:
        assert insider.get(f"/facilities/{SECRET_ID}/photos/0").status_code == 200
        assert insider.delete(f"/facilities/{SECRET_ID}/photos/0").status_code == 204
        assert insider.get(f"/facilities/{SECRET_ID}/photos/0").status_code == 404


def test_the_other_photos_keep_their_numbers_and_who_took_one_down_is_kept(
    edit_live: Live,
) -> None:
    facility_id = _public_id(1)
    colours = [(250, 0, 0), (0, 250, 0), (0, 0, 250)]
    with edit_live.client(edit_live.keys.editor) as staff:
        added = [_add(staff, facility_id, _jpeg(c)) for c in colours]
    assert [a["n"] for a in added] == [0, 1, 2]
    with edit_live.client() as anonymous:
        second = anonymous.get(added[1]["url"]).content
    with edit_live.client(edit_live.keys.plain_editor) as clerk:
        assert clerk.delete(added[0]["url"]).status_code == 204
        listed = clerk.get(f"/facilities/{facility_id}/photos").json()["photos"]
        newest = _add(clerk, facility_id, _jpeg((250, 250, 0)))
    assert newest["n"] == 3  # a number taken down is never given again
    assert [(p["n"], p["actor"], p["deleted_by"]) for p in listed] == [
        (0, "editor", "plain-editor"),
        (1, "editor", None),
        (2, "editor", None),
    ]
    assert listed[0]["deleted_at"] is not None and listed[0]["url"] is None
    assert listed[1]["url"] == added[1]["url"] and listed[1]["thumb_url"] == added[1]["thumb_url"]
    with edit_live.client() as anonymous:
        assert anonymous.get(added[0]["url"]).status_code == 404
        assert anonymous.get(added[0]["thumb_url"]).status_code == 404
        assert anonymous.get(added[1]["url"]).content == second  # the same URL, the same photo
    # the bytes are gone from the store itself, not only from the routes
    assert edit_live.store.photos(facility_id)[0].deleted_by == "plain-editor"


def test_caches_ask_again_so_a_photo_taken_down_is_not_served(edit_live: Live) -> None:
    facility_id = _public_id(2)
    with edit_live.client(edit_live.keys.editor) as staff:
        photo = _add(staff, facility_id, _jpeg((10, 10, 10), (800, 600)))
    with edit_live.client() as cache:
        first = cache.get(photo["thumb_url"])
        etag = first.headers["ETag"]
        assert "no-cache" in first.headers["Cache-Control"]
        assert first.headers["Cache-Control"].startswith("public")
        fresh = cache.get(photo["thumb_url"], headers={"If-None-Match": etag})
        assert fresh.status_code == 304 and fresh.content == b""
        full = cache.get(photo["url"])
        assert full.headers["ETag"] != etag  # the photo and its thumbnail differ
        with edit_live.client(edit_live.keys.editor) as staff:
            assert staff.delete(photo["url"]).status_code == 204
        stale = cache.get(photo["thumb_url"], headers={"If-None-Match": etag})
    assert stale.status_code == 404


def test_the_map_shows_the_first_photo_still_shown(edit_live: Live) -> None:
    facility_id = _public_id(3)
    with edit_live.client(edit_live.keys.editor) as staff:
        first, second = (_add(staff, facility_id, _jpeg(c)) for c in ((1, 2, 3), (4, 5, 6)))
    with edit_live.client() as anonymous:
        assert _map_photo(anonymous, facility_id) == first["n"]
        with edit_live.client(edit_live.keys.editor) as staff:
            assert staff.delete(first["url"]).status_code == 204
        assert _map_photo(anonymous, facility_id) == second["n"]
        with edit_live.client(edit_live.keys.editor) as staff:
            assert staff.delete(second["url"]).status_code == 204
        assert _map_photo(anonymous, facility_id) == -1


def test_a_published_report_photo_is_taken_down_the_same_way(edit_live: Live) -> None:
    facility_id = _public_id(4)
    with edit_live.client() as reporter:
        r = reporter.post(f"/facilities/{facility_id}/reports", json={"type": "other"})
        assert r.status_code == 201, r.text
        receipt = r.json()
        sent = reporter.post(
            receipt["photo_url"],
            content=_jpeg((90, 90, 90)),
            headers={"Content-Type": "image/jpeg"},
        )
        assert sent.status_code == 201, sent.text
    with edit_live.client(edit_live.keys.plain_editor) as staff:
        assert staff.post(f"/reports/{receipt['id']}/confirm").status_code == 200
        published = staff.post(f"/reports/{receipt['id']}/photo/publish").json()
        with edit_live.client() as public:
            assert public.get(published["url"]).status_code == 200
        assert staff.delete(published["url"]).status_code == 204
        with edit_live.client() as public:
            assert public.get(published["url"]).status_code == 404
            assert _map_photo(public, facility_id) == -1
        # the report keeps its own photo, for staff and the reporter only
        assert staff.get(f"/reports/{receipt['id']}/photo").status_code == 200


def _photo_entries(client: httpx.Client, facility_id: str) -> list[tuple[str, str, Any]]:
    trail = client.get(f"/facilities/{facility_id}/audit")
    assert trail.status_code == 200, trail.text
    return [
        (e["action"], e["actor"], e["changes"])
        for e in reversed(trail.json()["entries"])  # oldest first
        if e["action"].startswith("photo_")
    ]


def test_every_photo_change_is_in_the_audit_trail_and_cannot_be_reverted(
    edit_live: Live,
) -> None:
    facility_id = _public_id(5)
    with edit_live.client() as reporter:
        receipt = reporter.post(f"/facilities/{facility_id}/reports", json={"type": "other"}).json()
        sent = reporter.post(
            receipt["photo_url"], content=_jpeg((9, 9, 9)), headers={"Content-Type": "image/jpeg"}
        )
        assert sent.status_code == 201, sent.text
    with edit_live.client(edit_live.keys.editor) as staff:
        _add(staff, facility_id, _jpeg((200, 0, 0)))
    with edit_live.client(edit_live.keys.plain_editor) as staff:
        assert staff.post(f"/reports/{receipt['id']}/confirm").status_code == 200
        assert staff.post(f"/reports/{receipt['id']}/photo/publish").status_code == 201
        assert staff.delete(f"/facilities/{facility_id}/photos/0").status_code == 204
        assert _photo_entries(staff, facility_id) == [
            ("photo_add", "editor", {"photo": [None, 0]}),
            ("photo_add", "plain-editor", {"photo": [None, 1]}),  # the report's, published
            ("photo_delete", "plain-editor", {"photo": [0, None]}),
        ]
        trail = staff.get(f"/facilities/{facility_id}/audit").json()["entries"]
        version = staff.get(f"/facilities/{facility_id}").headers["ETag"]
        refused = staff.post(
            f"/facilities/{facility_id}/audit/{trail[0]['seq']}/revert",
            headers={"If-Match": version},
        )
    assert refused.status_code == 422, refused.text
    assert "photo_delete" in refused.json()["detail"]
