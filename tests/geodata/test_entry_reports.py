"""How to get in (``entry_*``), users' reports and photos in both stores, and the import aliases."""

from __future__ import annotations

import io
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from geodata.entry_methods import entry_check_sql
from geodata.errors import InvalidPhoto, PhotoNotFound, ReportNotFound
from geodata.photos import MAX_PIXELS, photo_from_bytes
from geodata.sample import sample_frame
from geodata.schema import COLUMNS, ENTRY_METHODS
from geodata.store import FacilityStore, GeoPackageStore
from geodata.validate import map_entry_method, validate_frame

SAMPLE_STORE = Path(__file__).resolve().parents[2] / "geodata" / "data" / "sample_shanghai.gpkg"


@pytest.mark.parametrize(
    ("text", "method"),
    [
        ("直接进入", "walk_in"),
        ("自由出入", "walk_in"),
        ("无需登记", "walk_in"),
        ("扫码登记", "scan_register"),
        ("扫二维码登记后进入", "scan_register"),
        ("人脸识别", "face_registration"),
        ("提前录入人脸", "face_registration"),
        ("刷脸", "face_registration"),
        ("APP开锁", "app_unlock"),
        ("微信小程序开门", "app_unlock"),
        ("扫码开锁", "app_unlock"),
        ("电话联系", "call_keeper"),
        ("致电管理员", "call_keeper"),
        ("工作人员陪同", "staff_escort"),
        ("需保安开门", "staff_escort"),
        *((m, m) for m in ENTRY_METHODS),
        ("Walk-in", "walk_in"),
        ("乱写一通", None),
    ],
)
def test_entry_method_aliases(text: str, method: str | None) -> None:
    assert map_entry_method(text) == method


def test_the_postgis_constraint_lists_every_entry_method() -> None:
    """The migration spells the registry's condition as a literal (as for kinds)."""
    migration = (
        Path(__file__).resolve().parents[2]
        / "geodata"
        / "migrations"
        / "versions"
        / "0004_entry_reports_photos.py"
    ).read_text(encoding="utf-8")
    listed = " ".join(migration.split())
    assert entry_check_sql().split(" IN ", 1)[1] in listed.replace("( ", "(")


def _raw(**columns: list[str | None]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {
        "名称": [f"驿站{i}" for i in range(n)],
        "类型": ["工会驿站"] * n,
        "经度": [str(121.40 + i / 100) for i in range(n)],
        "纬度": ["31.20"] * n,
        "开放对象": ["公开"] * n,
    }
    return pd.DataFrame(base | columns)


def test_import_reads_entry_columns_in_chinese() -> None:
    raw = _raw(
        进入方式=["电话联系", "电话联系", "电话联系", "APP开锁", "乱写"],
        开门电话=["13800000000", None, None, None, None],
        电话=[None, "021-1234", None, None, None],
        进入说明=["按门铃", None, None, "下载“职工之家”APP", None],
    )
    frame, issues = validate_frame(raw)
    assert frame[["entry_method", "entry_phone", "entry_note"]].to_dict("records") == [
        {"entry_method": "call_keeper", "entry_phone": "13800000000", "entry_note": "按门铃"},
        {"entry_method": "call_keeper", "entry_phone": "021-1234", "entry_note": None},
        {"entry_method": "app_unlock", "entry_phone": None, "entry_note": "下载“职工之家”APP"},
    ]
    found = {(i.row, i.field, i.level) for i in issues}
    assert found == {
        (3, "entry_phone", "warning"),  # the facility's phone taken as the number to call
        (4, "entry_phone", "rejected"),  # nobody to call
        (6, "entry_method", "rejected"),
    }


def test_entry_fields_round_trip(store: FacilityStore) -> None:
    frame = sample_frame(3).assign(
        entry_method=["walk_in", "call_keeper", None],
        entry_phone=[None, "13800000000", None],
        entry_note=["一楼东侧", None, None],
    )
    store.upsert_frame(frame, actor="test")
    back = store.frame()
    assert list(back.columns) == list(COLUMNS)
    assert back["entry_method"].tolist() == ["walk_in", "call_keeper", None]
    got = store.get(frame["id"][1])
    assert (got.entry_method, got.entry_phone) == ("call_keeper", "13800000000")
    patched = store.patch(
        frame["id"][2], {"entry_method": "staff_escort"}, actor="test", if_version=None
    )
    assert patched.entry_method == "staff_escort"


def test_an_older_geopackage_gets_the_new_columns_and_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.gpkg"
    shutil.copy(SAMPLE_STORE, path)
    with sqlite3.connect(path) as con:
        columns = {row[1] for row in con.execute("PRAGMA table_info(facilities)")}
    assert "entry_method" not in columns  # the bundled sample predates them
    store = GeoPackageStore(path)
    try:
        assert store.frame()["entry_method"].isna().all()
        facility_id = store.frame()["id"].iloc[0]
        store.patch(facility_id, {"entry_method": "walk_in"}, actor="t", if_version=None)
        assert store.get(facility_id).entry_method == "walk_in"
        assert (
            store.add_report(facility_id, "moved", note=None, source="s", token_hash="h").report_id
            == 1
        )
    finally:
        store.close()


def test_reports_are_kept_without_touching_the_change_counter(store: FacilityStore) -> None:
    counter = store.change_counter()
    first = store.add_report("f1", "locked_during_hours", note="锁门", source="a", token_hash="h")
    second = store.add_report("f2", "moved", note=None, source="b", token_hash="h2")
    assert store.change_counter() == counter
    assert store.report(first.report_id).note == "锁门"
    assert [r.report_id for r in store.reports()] == [second.report_id, first.report_id]
    assert store.reports(limit=None) == store.reports()
    assert [r.report_id for r in store.reports(limit=1)] == [second.report_id]
    assert [r.report_id for r in store.reports(facility_id="f1")] == [first.report_id]
    resolved = store.resolve_report(first.report_id, "confirmed", actor="staff")
    assert (resolved.status, resolved.resolved_by) == ("confirmed", "staff")
    assert resolved.resolved_at is not None and resolved.resolved_at.tzinfo is not None
    assert [r.report_id for r in store.reports(status="pending")] == [second.report_id]
    assert store.reports(since=resolved.created_at + pd.Timedelta(days=1)) == []
    with pytest.raises(ReportNotFound):
        store.report(999)
    with pytest.raises(ReportNotFound):
        store.resolve_report(999, "dismissed", actor="staff")
    assert len(store.report_salt()) >= 32


def _png_with_alpha(size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", size, (0, 0, 255, 0)).save(buf, format="PNG")
    return buf.getvalue()


def test_photos_are_kept_in_order(store: FacilityStore) -> None:
    first = photo_from_bytes(_png_with_alpha(), "image/png")
    second = photo_from_bytes(_png_with_alpha((10, 10)), "image/png")
    assert store.add_photo("f1", first, actor="staff") == 0
    assert store.add_photo("f1", second, actor="staff") == 1
    assert store.photo("f1", 0, thumb=False) == first.image
    assert store.photo("f1", 1, thumb=True) == second.thumb
    assert store.first_photos() == {"f1": 0}
    for n in (2, -1):
        with pytest.raises(PhotoNotFound):
            store.photo("f1", n, thumb=True)


def test_a_photo_taken_down_is_erased_and_the_others_keep_their_numbers(
    store: FacilityStore,
) -> None:
    photos = [photo_from_bytes(_png_with_alpha((10 + i, 10)), "image/png") for i in range(3)]
    for photo in photos:
        store.add_photo("f1", photo, actor="clerk")
    store.add_photo("f2", photos[0], actor="clerk")
    store.delete_photo("f1", 0, actor="chief")
    for thumb in (False, True):
        with pytest.raises(PhotoNotFound):
            store.photo("f1", 0, thumb=thumb)
    assert store.photo("f1", 1, thumb=False) == photos[1].image  # no number moved
    assert store.first_photos() == {"f1": 1, "f2": 0}
    for n in (0, 3, -1, 2**64):  # taken down already, never given, no number
        with pytest.raises(PhotoNotFound):
            store.delete_photo("f1", n, actor="chief")
    entries = store.photos("f1")
    assert [(e.n, e.width, e.actor, e.deleted_by) for e in entries] == [
        (0, 10, "clerk", "chief"),
        (1, 11, "clerk", None),
        (2, 12, "clerk", None),
    ]
    assert entries[0].deleted_at is not None and entries[1].deleted_at is None
    assert store.add_photo("f1", photos[0], actor="clerk") == 3  # a new photo, a new number
    store.delete_photo("f1", 1, actor="chief")
    store.delete_photo("f1", 2, actor="chief")
    assert store.first_photos() == {"f1": 3, "f2": 0}
    store.delete_photo("f1", 3, actor="chief")
    assert store.first_photos() == {"f2": 0}


def test_photo_is_re_encoded_without_metadata() -> None:
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (31.0, 13.0, 49.0), 3: "E", 4: (121.0, 28.0, 25.0)}
    exif[0x010F] = "PhoneMaker"
    buf = io.BytesIO()
    Image.new("RGB", (2000, 1000), (10, 200, 10)).save(
        buf, format="WEBP", exif=exif, icc_profile=b"icc-profile-bytes"
    )
    photo = photo_from_bytes(buf.getvalue(), "image/webp")
    for data in (photo.image, photo.thumb):
        assert b"PhoneMaker" not in data and b"Exif" not in data and b"icc-profile" not in data
        image = Image.open(io.BytesIO(data))
        assert image.format == "JPEG"
        assert dict(image.getexif()) == {}
    assert (photo.width, photo.height) == (1600, 800)
    assert Image.open(io.BytesIO(photo.thumb)).size == (320, 160)
    # transparency is drawn on white
    assert Image.open(io.BytesIO(photo_from_bytes(_png_with_alpha(), "image/png").image)).getpixel(
        (5, 5)
    ) == pytest.approx((255, 255, 255), abs=3)


@pytest.mark.parametrize(
    ("data", "media_type"),
    [
        (_png_with_alpha(), "image/jpeg"),  # not what it claims to be
        (b"GIF89a" + b"\0" * 20, "image/gif"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "image/png"),
    ],
)
def test_photo_that_is_not_an_accepted_image(data: bytes, media_type: str) -> None:
    with pytest.raises(InvalidPhoto):
        photo_from_bytes(data, media_type)


def test_photo_claiming_a_huge_canvas_is_refused() -> None:
    side = int(MAX_PIXELS**0.5) + 10
    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, format="PNG")  # a few kB that decode to 50 MP
    with pytest.raises(InvalidPhoto, match="pixels"):
        photo_from_bytes(buf.getvalue(), "image/png")
