"""A report's one photo through a live server, on both store backends.

The reporter sends it with the report's token (``POST /reports/{id}/photo?token=``); it is
re-encoded without metadata, seen as a thumbnail only by the reporter and by staff who may edit
the facility, never by the public until staff publish a copy of a confirmed report's photo.
"""

from __future__ import annotations

import io
import itertools
from typing import Any

import httpx
from api_support import SECRET_ID, Live, facility_rows
from PIL import Image
from PIL.ExifTags import IFD

RATE = 4  # reports (and report photos) per hour and source of the module's server
_addresses = (f"127.0.1.{i}" for i in itertools.count(2))


def server_env(tmp: object) -> dict[str, str]:
    """A low report rate and photo limit, so the limits are quick to reach."""
    return {"FINDER_REPORTS_PER_HOUR": str(RATE), "FINDER_PHOTO_MAX_MB": "1"}


def _from(live: Live, key: str | None = None) -> httpx.Client:
    """A client from a loopback address no other test uses."""
    return live.client(key, transport=httpx.HTTPTransport(local_address=next(_addresses)))


def _public_id(n: int) -> str:
    rows = facility_rows()
    return str(rows.loc[rows["access"] == "public", "id"].iloc[20 + n])


def _jpeg_with_gps() -> bytes:
    """A phone photo: EXIF with a GPS position, the camera make and an orientation."""
    image = Image.new("RGB", (640, 480), (30, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = 6  # Orientation: shown turned by 90 degrees
    exif[0x8825] = {1: "N", 2: (31.0, 13.0, 49.0), 3: "E", 4: (121.0, 28.0, 25.0)}
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


def _report(client: httpx.Client, facility_id: str) -> dict[str, Any]:
    r = client.post(f"/facilities/{facility_id}/reports", json={"type": "missing_amenity"})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _send_photo(client: httpx.Client, url: str, data: bytes, media_type: str) -> httpx.Response:
    return client.post(url, content=data, headers={"Content-Type": media_type})


def _problem(r: httpx.Response) -> dict[str, Any]:
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    return {k: v for k, v in r.json().items() if k != "instance"}


def test_report_photo_loses_its_gps_and_is_seen_by_reporter_and_staff_only(
    edit_live: Live,
) -> None:
    facility_id = _public_id(0)
    upload = _jpeg_with_gps()
    assert Image.open(io.BytesIO(upload)).getexif().get_ifd(IFD.GPSInfo)  # it had a position
    with _from(edit_live) as reporter:
        receipt = _report(reporter, facility_id)
        sent = _send_photo(reporter, receipt["photo_url"], upload, "image/jpeg")
        assert sent.status_code == 201, sent.text
        again = _send_photo(reporter, receipt["photo_url"], upload, "image/jpeg")
        mine = reporter.get(receipt["photo_url"])
        status = reporter.get(receipt["status_url"]).json()
    assert again.status_code == 409  # one photo per report
    assert status["photo_url"] == receipt["photo_url"]
    assert mine.status_code == 200 and mine.headers["content-type"] == "image/jpeg"
    assert mine.headers["cache-control"].startswith("private")
    for needle in (b"Exif", b"PhoneMaker", b"GPS"):
        assert needle not in mine.content
    thumb = Image.open(io.BytesIO(mine.content))
    assert dict(thumb.getexif()) == {} and "exif" not in thumb.info
    assert max(thumb.size) <= 320 and thumb.size[0] < thumb.size[1]  # turned upright
    photo_path = receipt["photo_url"].split("?")[0]
    with edit_live.client(edit_live.keys.plain_editor) as staff:
        seen = staff.get(photo_path)
        listed = staff.get("/reports", params={"facility_id": facility_id}).json()["reports"]
    assert seen.content == mine.content
    assert [r["photo_url"] for r in listed] == [photo_path]
    with edit_live.client() as public:
        no_token = public.get(photo_path)
        wrong_token = public.get(photo_path, params={"token": "x" * 32})
        facility_photo = public.get(f"/facilities/{facility_id}/photos/0")
    assert no_token.status_code == 401
    assert wrong_token.status_code == 404
    assert facility_photo.status_code == 404  # not the facility's photo
    with edit_live.client(edit_live.keys.reader) as reader:  # a key that may not edit
        assert reader.get(photo_path).status_code == 403


def test_only_staff_publish_a_confirmed_reports_photo(edit_live: Live) -> None:
    facility_id = _public_id(1)
    with _from(edit_live) as reporter:
        receipt = _report(reporter, facility_id)
        sent = _send_photo(reporter, receipt["photo_url"], _jpeg_with_gps(), "image/jpeg")
        assert sent.status_code == 201, sent.text
        publish = f"/reports/{receipt['id']}/photo/publish"
        assert reporter.post(publish).status_code == 401
    with edit_live.client(edit_live.keys.plain_editor) as staff:
        early = staff.post(publish)
        assert early.status_code == 409, early.text
        assert staff.post(f"/reports/{receipt['id']}/confirm").status_code == 200
        with edit_live.client() as public:  # confirming alone publishes nothing
            assert public.get(f"/facilities/{facility_id}/photos/0").status_code == 404
        published = staff.post(publish)
        assert published.status_code == 201, published.text
        full_of_report = edit_live.store.report_photo(receipt["id"], thumb=False)
    with edit_live.client() as public:
        shown = public.get(published.json()["thumb_url"])
        full = public.get(published.json()["url"])
    assert shown.status_code == 200
    assert full.content == full_of_report


def test_report_photo_is_checked_by_decoding_it(edit_live: Live) -> None:
    png = io.BytesIO()
    Image.new("RGB", (20, 20)).save(png, format="PNG")
    with _from(edit_live) as reporter:
        receipt = _report(reporter, _public_id(2))
        url = receipt["photo_url"]
        answers = [
            _send_photo(reporter, url, png.getvalue(), "image/jpeg").status_code,  # not a JPEG
            _send_photo(reporter, url, b"GIF89a" + b"\0" * 50, "image/gif").status_code,
        ]
        with _from(edit_live) as other:  # another address: this one's allowance is spent
            too_large = _send_photo(other, url, b"\xff" * (1024 * 1024 + 1), "image/jpeg")
    assert answers == [422, 415]
    assert too_large.status_code == 413
    assert edit_live.store.report(receipt["id"]).has_photo is False


def test_photos_are_throttled_like_reports(edit_live: Live) -> None:
    with _from(edit_live) as reporter:
        receipt = _report(reporter, _public_id(3))
        png = io.BytesIO()
        Image.new("RGB", (8, 8)).save(png, format="PNG")
        codes = [
            _send_photo(reporter, receipt["photo_url"], b"not an image", "image/png").status_code
            for _ in range(RATE)
        ]
    assert codes == [422] * (RATE - 1) + [429]


def test_a_hidden_facilitys_report_photo_answers_like_a_missing_one(edit_live: Live) -> None:
    keys = edit_live.keys
    with _from(edit_live, keys.org_a) as insider:  # may see the room: reports it with a photo
        receipt = _report(insider, SECRET_ID)
        sent = _send_photo(insider, receipt["photo_url"], _jpeg_with_gps(), "image/jpeg")
        assert sent.status_code == 201, sent.text
        assert insider.get(receipt["photo_url"]).status_code == 200
    token = receipt["photo_url"].split("token=")[1]
    hidden, missing = f"/reports/{receipt['id']}", "/reports/999999"
    pairs: list[tuple[str | None, str, str, dict[str, Any]]] = [
        (None, "POST", "/facilities/{}/reports", {"json": {"type": "other"}}),
        (None, "GET", "{}/photo?token=" + token, {}),
        (
            None,
            "POST",
            "{}/photo?token=" + token,
            {"content": _jpeg_with_gps(), "headers": {"Content-Type": "image/jpeg"}},
        ),
        (keys.plain_editor, "GET", "{}/photo", {}),
        (keys.plain_editor, "POST", "{}/photo/publish", {}),
    ]
    for key, method, path, options in pairs:
        targets = (SECRET_ID, "no-such-facility-2") if "facilities" in path else (hidden, missing)
        answers = []
        for target in targets:
            with _from(edit_live, key) as client:
                r = client.request(method, path.format(target), **options)
            answers.append((r.status_code, _problem(r)))
        (hidden_status, hidden_problem), (missing_status, missing_problem) = answers
        assert hidden_status == missing_status == 404, (method, path)
        assert hidden_problem["type"] == missing_problem["type"], (method, path)
        assert hidden_problem["detail"].replace(str(receipt["id"]), "N").replace(
            SECRET_ID, "N"
        ) == missing_problem["detail"].replace("999999", "N").replace("no-such-facility-2", "N"), (
            method,
            path,
        )
