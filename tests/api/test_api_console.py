"""The API the staff console calls: its page and CSP, revert, the organisation's trail, keys,
export, and the import's cell fixes. Both store backends, a live uvicorn server."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from api_support import SECRET_ID, SECRET_NAME, SECRET_ORG, Live

from api.auth import create_api_key

NEW = {
    "name": "控制台测试驿站",
    "kind": "worker_station",
    "lon": 121.41,
    "lat": 31.19,
    "access": "employees",
    "organization": SECRET_ORG,
    "opening_hours": "24/7",
}


def test_page_has_no_inline_script_and_a_strict_policy(edit_live: Live) -> None:
    with edit_live.client() as anon:
        page = anon.get("/admin")
    assert page.status_code == 200
    policy = dict(
        part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";")
    )
    assert policy["script-src"] == "'self'" and policy["connect-src"] == "'self'"
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, flags=re.S)
    assert scripts and all('src="/static/' in attrs and not body for attrs, body in scripts)
    assert "http://" not in page.text and "https://" not in page.text
    with edit_live.client() as anon:
        assert anon.get("/admin/session").status_code == 401
        for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
            assert anon.get(src).status_code == 200, src


def test_revert_is_a_new_change_with_the_rights_of_an_edit(edit_live: Live) -> None:
    with edit_live.client(edit_live.keys.org_a_editor) as clerk:
        created = clerk.post("/facilities", json=NEW)
        fid = created.json()["id"]
        renamed = clerk.patch(
            f"/facilities/{fid}",
            json={"name": "改过的名字", "phone": "021-1234"},
            headers={"If-Match": created.headers["etag"]},
        )
        entries = clerk.get(f"/facilities/{fid}/audit").json()["entries"]
        change, creation = entries[0]["seq"], entries[1]["seq"]
        url = f"/facilities/{fid}/audit/{change}/revert"
        assert clerk.post(url).status_code == 428
        assert clerk.post(url, headers={"If-Match": '"1"'}).status_code == 412
        with edit_live.client(edit_live.keys.org_x_editor) as other:
            hidden = other.post(url, headers={"If-Match": "*"})
            assert hidden.status_code == 404 and "改过" not in hidden.text
        reverted = clerk.post(url, headers={"If-Match": renamed.headers["etag"]})
        assert reverted.status_code == 200
        body = reverted.json()
        assert (body["name"], body["phone"], body["version"]) == (NEW["name"], None, 3)
        trail = clerk.get(f"/facilities/{fid}/audit").json()["entries"]
        assert [e["action"] for e in trail] == ["patch", "patch", "create"]
        assert trail[0]["changes"]["name"] == ["改过的名字", NEW["name"]]
        etag = reverted.headers["etag"]
        creating = f"/facilities/{fid}/audit/{creation}/revert"
        assert clerk.post(creating, headers={"If-Match": etag}).status_code == 422
        unknown = f"/facilities/{fid}/audit/999999/revert"
        assert clerk.post(unknown, headers={"If-Match": etag}).status_code == 404


def test_organisation_trail_holds_its_own_facilities_only(edit_live: Live) -> None:
    with edit_live.client(edit_live.keys.org_a_editor) as clerk:
        secret = clerk.get(f"/facilities/{SECRET_ID}")
        clerk.patch(
            f"/facilities/{SECRET_ID}",
            json={"phone": "021-5555"},
            headers={"If-Match": secret.headers["etag"]},
        )
        ours = clerk.get("/audit").json()["entries"]
    assert ours and {e["facility_id"] for e in ours} >= {SECRET_ID}
    frame = edit_live.store.frame().set_index("id")
    assert all(frame.loc[e["facility_id"], "organization"] == SECRET_ORG for e in ours)
    with edit_live.client(edit_live.keys.org_x_editor) as other:
        theirs = other.get("/audit")
    assert theirs.status_code == 200 and SECRET_ID not in theirs.text
    with edit_live.client(edit_live.keys.plain_editor) as plain:
        assert plain.get("/audit").status_code == 403


def test_keys_are_managed_by_admin_keys_only(edit_live: Live) -> None:
    admin_key = create_api_key(edit_live.keys_file, "console-admin", ["admin"])
    with edit_live.client(edit_live.keys.editor) as editor:
        assert editor.get("/keys").status_code == 403
        assert editor.post("/keys", json={"name": "x", "scopes": ["edit"]}).status_code == 403
    with edit_live.client(admin_key) as admin:
        listed = admin.get("/keys").json()["keys"]
        assert {"editor", "console-admin"} <= {k["name"] for k in listed}
        assert "sha256" not in json.dumps(listed)
        made = admin.post(
            "/keys", json={"name": "clerk-b", "scopes": ["edit"], "organizations": ["OrgB"]}
        )
        assert made.status_code == 201 and made.json()["key"].startswith("fk_")
        assert admin.post("/keys", json={"name": "clerk-b"}).status_code == 400
        assert admin.post("/keys", json={"name": "y", "scopes": ["root"]}).status_code == 400
        with edit_live.client(made.json()["key"]) as clerk:
            assert clerk.get("/admin/session").json()["organizations"] == ["OrgB"]
            assert admin.post("/keys/clerk-b/revoke").json()["status"] == "revoked"
            assert clerk.get("/admin/session").status_code == 401
        assert admin.post("/keys/nobody/revoke").status_code == 404
        # an admin key opens no facility by itself
        assert admin.get(f"/facilities/{SECRET_ID}").status_code == 403


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "geojson"])
def test_export_holds_what_the_key_may_see(edit_live: Live, fmt: str) -> None:
    with edit_live.client() as anon:
        public = anon.get("/export", params={"format": fmt})
    with edit_live.client(edit_live.keys.org_a) as org_a:
        private = org_a.get("/export", params={"format": fmt})
    assert public.status_code == private.status_code == 200
    if fmt == "xlsx":
        ids = [set(pd.read_excel(io.BytesIO(r.content))["id"]) for r in (public, private)]
    elif fmt == "csv":
        ids = [set(pd.read_csv(io.BytesIO(r.content))["id"]) for r in (public, private)]
    else:
        ids = [{f["properties"]["id"] for f in r.json()["features"]} for r in (public, private)]
    assert SECRET_ID not in ids[0] and SECRET_ID in ids[1]
    assert SECRET_NAME.encode() not in public.content
    assert ids[0] < ids[1]


def test_point_in_every_system(edit_live: Live) -> None:
    with edit_live.client() as anon:
        r = anon.get("/admin/point", params={"lon": 121.4745349, "lat": 31.2280675, "crs": "gcj02"})
    assert r.json()["wgs84"] == pytest.approx([121.47, 31.23], abs=2e-5)
    assert r.json()["gcj02"] == pytest.approx([121.4745349, 31.2280675], abs=1e-6)


def test_import_fixes_travel_with_the_file(edit_live: Live) -> None:
    text = "名称,类型,经度,纬度,开放对象\n修正行驿站,工会驿站,东经121度,31.2,public\n"
    upload = {"file": ("list.csv", text.encode("gbk"), "text/csv")}
    with edit_live.client(edit_live.keys.org_a_editor) as clerk:
        dry = clerk.post("/facilities/import", data={"dry_run": "true"}, files=upload).json()
        assert dry["rejected"] == 1 and dry["rejected_rows"][0]["cells"]["经度"] == "东经121度"
        fixes = json.dumps({"2": {"经度": "121.3"}})
        bad = clerk.post("/facilities/import", data={"fixes": "[1]"}, files=upload)
        assert bad.status_code == 400 and bad.json()["errors"][0]["parameter"] == "fixes"
        done = clerk.post("/facilities/import", data={"fixes": fixes}, files=upload).json()
    assert (done["inserted"], done["rejected"]) == (1, 0)
    assert any(n == "修正行驿站" for n in edit_live.store.frame()["name"])


def test_session_names_the_key(edit_live: Live) -> None:
    with edit_live.client(edit_live.keys.org_a_editor) as clerk:
        me = clerk.get("/admin/session").json()
    assert me == {
        "name": "org-a-editor",
        "scopes": ["edit", "read-private"],
        "organizations": [SECRET_ORG],
        "member": False,
        "see_all": False,
    }
    with edit_live.client("fk_nope") as wrong:
        assert wrong.get("/admin/session").status_code == 401


def _pdf_text(content: bytes, tmp_path: Path) -> tuple[str, str]:
    out = tmp_path / "sheet.pdf"
    out.write_bytes(content)
    info = subprocess.run(["pdfinfo", str(out)], check=True, capture_output=True, text=True)
    text = subprocess.run(["pdftotext", str(out), "-"], check=True, capture_output=True, text=True)
    return info.stdout, "".join(text.stdout.split())


def test_district_sheet_counts_what_the_key_may_see(edit_live: Live, tmp_path: Path) -> None:
    with edit_live.client() as anon:
        public = anon.get("/coverage/sheet.pdf", params={"adcode": "310101"}, timeout=300)
        assert anon.get("/coverage/sheet.pdf", params={"adcode": "310199"}).status_code == 404
    with edit_live.client(edit_live.keys.org_a) as org_a:
        private = org_a.get("/coverage/sheet.pdf", params={"adcode": "310101"}, timeout=300)
    assert public.headers["content-type"] == private.headers["content-type"] == "application/pdf"
    (info, public_text), (_, private_text) = (
        _pdf_text(public.content, tmp_path),
        _pdf_text(private.content, tmp_path),
    )
    assert "Pages:           1" in info and "黄浦区" in public_text
    assert "仅计对公众开放的设施" in public_text and "仅计对公众开放的设施" not in private_text
