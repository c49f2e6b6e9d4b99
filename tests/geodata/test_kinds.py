"""The kinds registry (:mod:`geodata.kinds`) is the one place kinds are spelled.

Every surface reads it: the schema, the stores' CHECK constraints (both backends), import
validation, the sample, the web map (payload and stylesheet) and the printed maps. The last test
appends a fifth kind to a copy of the registry, as a developer would, and checks in a fresh
interpreter that validation, the store, the web map legend and the printed legend take it up.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from geodata import kinds as registry
from geodata.kinds import KIND_SPECS, KINDS, kind_check_sql
from geodata.sample import sample_frame
from geodata.schema import Facility
from geodata.store import FacilityStore, GeoPackageStore
from geodata.validate import map_kind, new_facility_id, stable_id
from maps.assets import kind_css

ROOT = Path(__file__).resolve().parents[2]
SPELLED_KINDS = re.compile(r"mother_room|worker_station|rest_stop")


def test_the_registry_is_consistent() -> None:
    assert (
        KINDS == tuple(k.name for k in KIND_SPECS) == ("mother_room", "worker_station", "rest_stop")
    )
    for field in ("name", "label_zh", "label_en", "colour", "id_prefix", "alias_rank"):
        values = [getattr(k, field) for k in KIND_SPECS]
        assert len(set(values)) == len(values), f"two kinds share a {field}"
    with pytest.raises(ValueError, match="colour"):
        registry.KindSpec("x", "x", "x", "red", "circle", "o", "x", "x", 9)


@pytest.mark.parametrize("spec", KIND_SPECS, ids=KINDS)
def test_each_kind_imports_by_its_labels_and_prefix(spec: registry.KindSpec) -> None:
    # an imported list naming the kind as the maps do is read as that kind
    assert map_kind(spec.label_zh) == spec.name
    assert map_kind(spec.label_en) == spec.name
    assert map_kind(f"某街道{spec.label_zh}") == spec.name
    assert stable_id(spec.name, "n", None, 121.0, 31.0).startswith(f"{spec.id_prefix}-")
    assert new_facility_id(spec.name).startswith(f"{spec.id_prefix}-")
    assert Facility(id="f", name="n", kind=spec.name, lon=121.0, lat=31.0).kind == spec.name


def test_the_sample_and_the_stylesheet_come_from_the_registry() -> None:
    frame = sample_frame(200)
    for spec in KIND_SPECS:
        names = frame.loc[frame["kind"] == spec.name, "name"]
        assert len(names) and names.str.contains(spec.label_zh, regex=False).all()
        assert f"--fm-c-{spec.name}: {spec.colour};" in kind_css()
    # the hand-written assets name no kind: colours and shapes come with the page
    for asset in ("facilitymap.css", "facilitymap.js", "coveragemap.css", "coveragemap.js"):
        text = (ROOT / "maps" / "static" / asset).read_text(encoding="utf-8")
        assert not SPELLED_KINDS.search(text), asset


def _stored_kinds(store: FacilityStore) -> set[str]:
    """The kinds the store's CHECK constraint allows, read back from the database."""
    if isinstance(store, GeoPackageStore):
        con = sqlite3.connect(store.path)
        try:
            (ddl,) = con.execute(
                "SELECT sql FROM sqlite_master WHERE name = 'facilities'"
            ).fetchone()
        finally:
            con.close()
        allowed = re.search(r"CHECK \(kind IN \(([^)]*)\)\)", ddl)
        assert allowed is not None, ddl
        return set(re.findall(r"'([a-z0-9_]+)'", allowed[1]))
    import psycopg

    with psycopg.connect(store.database_url) as con:  # type: ignore[attr-defined]
        row = con.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'facilities_kind'"
        ).fetchone()
    assert row is not None
    return set(re.findall(r"'([a-z0-9_]+)'", row[0]))


def test_the_store_check_allows_exactly_the_registry_kinds(store: FacilityStore) -> None:
    # a kind added without its migration fails here on PostGIS (constraint facilities_kind)
    assert _stored_kinds(store) == set(KINDS)
    frame = sample_frame(60)
    assert set(frame["kind"]) == set(KINDS)
    store.upsert_frame(frame, actor="test")
    assert set(store.frame()["kind"]) == set(KINDS)


def test_the_check_is_generated() -> None:
    assert kind_check_sql() == "kind IN ('mother_room', 'worker_station', 'rest_stop')"


FIFTH = """
KIND_SPECS += (
    KindSpec(
        name="legal_aid",
        label_zh="职工法律援助站",
        label_en="Workers' legal aid desk",
        colour="#2b8a3e",
        web_shape="square",
        print_marker="D",
        id_prefix="la",
        aliases=r"法律援助|法援|legal",
        alias_rank=-1,
    ),
)
"""

PROBE = r"""
import importlib.util, json, re, sys
import datetime as dt
from pathlib import Path

spec = importlib.util.spec_from_file_location("geodata.kinds", sys.argv[1])
kinds = importlib.util.module_from_spec(spec)
sys.modules["geodata.kinds"] = kinds
spec.loader.exec_module(kinds)

import numpy as np
import pandas as pd
import shapely
from finder.coverage import build_sample_grid
from geodata.boundaries import district_by_adcode, load_districts
from geodata.sample import sample_frame
from geodata.schema import KINDS, Facility
from geodata.store import GeoPackageStore
from geodata.validate import validate_frame
from maps.coveragemap import coverage_map_html
from maps.printmap import print_coverage_map
from maps.webmap import facility_map_html

out = Path(sys.argv[2])
facts = {"kinds": list(KINDS)}
raw = pd.DataFrame({
    "_row": [2, 3],
    "名称": ["静安区职工法律援助站", "南京西路爱心妈咪小屋"],
    "类型": ["法律援助站", "母婴室"],
    "经度": ["121.4581", "121.4600"],
    "纬度": ["31.2242", "31.2250"],
    "开放对象": ["公众", "公众"],
})
accepted, issues = validate_frame(raw)
facts["validated"] = accepted[["kind", "id"]].values.tolist()
facts["issues"] = [str(i) for i in issues]
facts["model"] = Facility(id="x", name="n", kind="legal_aid", lon=121.0, lat=31.0).kind

frame = sample_frame(80)
aid = frame.index[:8]
frame.loc[aid, "kind"] = "legal_aid"
frame.loc[aid, "status"] = "open"
frame.loc[aid, "access"] = "public"
store = GeoPackageStore(out / "store.gpkg")
store.upsert_frame(frame, actor="probe")
facts["stored"] = int((store.frame()["kind"] == "legal_aid").sum())
store.close()

from finder.index import FacilityIndex
index = FacilityIndex.from_frame(frame)
found = index.nearest(121.47, 31.23, k=50, kinds=["legal_aid"])
facts["index"] = sorted(r.facility_id for r in found)
facts["index_expected"] = sorted(frame.loc[aid, "id"])

page = facility_map_html(frame, compress_payload=False, now=dt.datetime(2026, 12, 1, 10))
block = re.search(r'<script type="application/json"[^>]*>(.*?)</script>', page, re.S)
payload = json.loads(block[1])
facts["web_legend"] = payload["kinds"]
facts["web_css"] = "--fm-c-legal_aid: #2b8a3e;" in page and ".fm-k-legal_aid {" in page

districts = load_districts()
jingan = districts[districts["adcode"] == "310106"]
grid = build_sample_grid(jingan)
polygon = district_by_adcode(districts, "310106").geometry
west, south, east, north = polygon.bounds
rng = np.random.default_rng(3)
lon, lat = rng.uniform(west, east, 400), rng.uniform(south, north, 400)
inside = shapely.contains_xy(polygon, lon, lat)
lon, lat = lon[inside][:40], lat[inside][:40]
kind = np.array((["legal_aid"] * 10) + (["mother_room"] * 30), dtype=object)
printed = print_coverage_map(out / "sheet.pdf", grid, lon, lat, kind, adcode="310106")
facts["print_counts"] = printed.legend_counts
facts["coverage_page"] = "职工法律援助站" in coverage_map_html(grid, lon, lat, kind=kind)
print(json.dumps(facts, ensure_ascii=False))
"""


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils not installed")
def test_a_fifth_kind_needs_only_the_registry(tmp_path: Path) -> None:
    source = (ROOT / "geodata" / "kinds.py").read_text(encoding="utf-8")
    anchor = "\n#: The stored kind names, in code order."
    assert anchor in source
    (tmp_path / "kinds.py").write_text(source.replace(anchor, FIFTH + anchor), encoding="utf-8")
    (tmp_path / "probe.py").write_text(PROBE, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(tmp_path / "probe.py"), str(tmp_path / "kinds.py"), str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["kinds"] == [*KINDS, "legal_aid"]
    # validation: the alias, the id prefix, the model
    assert facts["issues"] == [] or all("legal" not in i for i in facts["issues"])
    (aid_kind, aid_id), (room_kind, _) = facts["validated"]
    assert (aid_kind, room_kind) == ("legal_aid", "mother_room") and aid_id.startswith("la-")
    assert facts["model"] == "legal_aid"
    # the GeoPackage CHECK is generated from the registry
    assert facts["stored"] == 8
    # the index codes it and its filter finds exactly those facilities
    assert facts["index"] == facts["index_expected"]
    # the web map's legend (built by facilitymap.js from the payload) and its colours
    legend = {k["key"]: k for k in facts["web_legend"]}
    assert legend["legal_aid"] == {
        "key": "legal_aid",
        "label": "职工法律援助站",
        "shape": "square",
        "count": 8,
    }
    assert facts["web_css"]
    # the printed legend counts it; the coverage page's legend names it
    assert facts["print_counts"]["legal_aid"] == 10
    assert sum(facts["print_counts"].values()) == 40
    text = subprocess.run(
        ["pdftotext", "-layout", str(tmp_path / "sheet.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "职工法律援助站（区内 10）" in text
    assert facts["coverage_page"]
