"""The ``finder`` command as scripts call it: real subprocesses, real files."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
import shapely
import shapely.geometry

DATA = Path(__file__).resolve().parents[1] / "data"


def finder(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture
def gpkg(tmp_path: Path) -> Path:
    from geodata.sample import write_sample

    path = tmp_path / "store.gpkg"
    write_sample(path, 200)
    return path


def test_import_prints_counts_and_writes_the_report(tmp_path: Path) -> None:
    store = tmp_path / "new.gpkg"
    report = tmp_path / "rejects.csv"
    done = finder(
        "import", str(DATA / "union_list_gbk.csv"), "--store", str(store), "--report", str(report)
    )
    assert done.returncode == 0, done.stderr
    assert "12 rows: 4 accepted (4 new, 0 updated, 0 unchanged), 8 rejected" in done.stdout
    rejects = pd.read_csv(report, encoding="utf-8-sig")
    assert len(rejects) == rejects["row"].nunique() == 8  # one line per rejected row
    assert "read 12 rows" in done.stderr  # progress lines


def test_a_clerk_fixes_the_report_and_imports_it_again(tmp_path: Path) -> None:
    store, report = tmp_path / "s.gpkg", tmp_path / "rejects.csv"
    done = finder(
        "import", str(DATA / "clerk_list_gbk.csv"), "--store", str(store), "--report", str(report)
    )
    assert done.returncode == 0, done.stderr
    assert "5 rows: 3 accepted (3 new, 0 updated, 0 unchanged), 2 rejected" in done.stdout
    assert "column '备注' not recognised" in done.stdout
    assert report.read_bytes().startswith(b"\xef\xbb\xbf")
    rejects = pd.read_csv(report, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(rejects.columns[-3:]) == ["field", "reason", "row"]
    assert list(rejects["编号"]) == ["GH-103", "GH-104"]
    # Fixed in Excel and saved as CSV (GBK); the name column renamed on the way, mapped back.
    rejects.loc[0, "开放对象"] = "公开"
    rejects.loc[1, ["lng_gcj02", "类型"]] = ["121.4520", "工会驿站"]
    fixed = tmp_path / "fixed.csv"
    fixed.write_bytes(
        rejects.rename(columns={"站点名称": "点位X"}).to_csv(index=False).encode("gbk")
    )
    again = finder("import", str(fixed), "--store", str(store), "--columns", "name=点位X")
    assert again.returncode == 0, again.stderr
    assert "2 rows: 2 accepted (2 new, 0 updated, 0 unchanged), 0 rejected" in again.stdout
    conflict = finder("import", str(fixed), "--store", str(store), "--crs", "wgs84")
    assert conflict.returncode == 2
    assert "(wgs84)" in conflict.stderr and "'lng_gcj02', which says gcj02" in conflict.stderr


def test_unreadable_file_exits_non_zero(tmp_path: Path) -> None:
    done = finder("import", str(tmp_path / "missing.csv"), "--store", str(tmp_path / "s.gpkg"))
    assert done.returncode == 2
    assert "no such file" in done.stderr


def test_store_from_environment(gpkg: Path) -> None:
    done = finder("nearest", "121.4737", "31.2304", "--json", env={"FINDER_STORE": str(gpkg)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)


def test_nearest_json_is_public_only_by_default(gpkg: Path) -> None:
    done = finder("nearest", "121.4737", "31.2304", "--k", "10", "--json", "--store", str(gpkg))
    rows = json.loads(done.stdout)
    assert len(rows) == 10
    assert {r["access"] for r in rows} == {"public"}
    assert [r["distance_m"] for r in rows] == sorted(r["distance_m"] for r in rows)
    everyone = json.loads(
        finder(
            "nearest",
            "121.4737",
            "31.2304",
            "--k",
            "10",
            "--json",
            "--all-access",
            "--store",
            str(gpkg),
        ).stdout
    )
    assert everyone[0]["distance_m"] <= rows[0]["distance_m"]


def test_nearest_maps_the_shared_table_file(gpkg: Path) -> None:
    args = ("nearest", "121.4737", "31.2304", "--k", "3", "--json", "--store", str(gpkg))
    first = finder(*args)
    tables = list(gpkg.with_name(gpkg.name + ".tables").glob("*.arrow"))
    assert len(tables) == 1
    written = tables[0].stat().st_mtime_ns
    again = finder(*args)
    assert again.stdout == first.stdout
    assert tables[0].stat().st_mtime_ns == written  # mapped by the second process, not rewritten


@pytest.mark.parametrize("fmt", ["geojson", "csv", "gpkg"])
def test_export_round_trips(gpkg: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"out.{fmt}"
    done = finder("export", "--format", fmt, "--out", str(out), "--store", str(gpkg))
    assert done.returncode == 0, done.stderr
    assert "exported 200 facilities" in done.stdout
    if fmt == "csv":
        ids = set(pd.read_csv(out, encoding="utf-8-sig")["id"])
    else:
        layer = "facilities" if fmt == "gpkg" else None
        ids = set(pyogrio.read_dataframe(out, layer=layer)["id"])
    again = tmp_path / "again.gpkg"
    imported = finder("import", str(out), "--store", str(again))
    assert imported.returncode == 0, imported.stderr
    assert "200 rows: 200 accepted" in imported.stdout
    assert len(ids) == 200


def test_export_public_only(gpkg: Path, tmp_path: Path) -> None:
    out = tmp_path / "public.csv"
    finder("export", "--format", "csv", "--out", str(out), "--public-only", "--store", str(gpkg))
    assert set(pd.read_csv(out, encoding="utf-8-sig")["access"]) == {"public"}


def test_map_writes_an_offline_public_map(gpkg: Path, tmp_path: Path) -> None:
    out = tmp_path / "map.html"
    done = finder("map", "--out", str(out), "--store", str(gpkg))
    assert done.returncode == 0, done.stderr
    html = out.read_text(encoding="utf-8")
    import re

    assert not re.search(r"""<(script|img)[^>]*src\s*=\s*["']?(https?:)?//""", html)
    assert not re.search(r"""<link[^>]*href\s*=\s*["']?(https?:)?//""", html)
    from geodata.store import GeoPackageStore

    store = GeoPackageStore(gpkg)
    frame = store.frame()
    store.close()
    shown = frame[(frame["access"] == "public") & (frame["status"] != "closed")]
    assert all(name in html for name in shown["name"])
    assert not any(name in html for name in frame.loc[frame["access"] != "public", "name"])


def test_streets_are_kept_beside_the_store(gpkg: Path) -> None:
    done = finder("streets", str(DATA / "shanghai_jingan.osm"), "--store", str(gpkg))
    assert done.returncode == 0, done.stderr
    from geodata.streets import load_network

    network = load_network(gpkg.with_name(gpkg.name + ".streets.npz"))
    assert network.n_nodes > 1000 and f"{network.n_nodes:,} nodes" in done.stdout


def test_coverage_suggest_and_print(gpkg: Path, tmp_path: Path) -> None:
    table = tmp_path / "coverage.csv"
    gaps = tmp_path / "gaps.geojson"
    done = finder(
        "coverage",
        "--district",
        "310106",
        "--format",
        "csv",
        "--out",
        str(table),
        "--gaps",
        str(gaps),
        "--store",
        str(gpkg),
    )
    assert done.returncode == 0, done.stderr
    row = pd.read_csv(table, encoding="utf-8-sig", dtype={"adcode": str}).iloc[0]
    from geodata.store import GeoPackageStore

    store = GeoPackageStore(gpkg)
    frame = store.frame()
    store.close()
    # the API's rule: public and open now (a temporarily closed room is not counted)
    public_open = frame[
        (frame["access"] == "public") & (frame["status"] == "open") & (frame["adcode"] == "310106")
    ]
    assert (frame["status"] == "temporarily_closed").any()
    assert row["adcode"] == "310106" and row["facilities"] == len(public_open)
    assert 0 <= row["covered_share"] <= 1
    assert done.stdout == "" and f"wrote {table}" in done.stderr
    collection = json.loads(gaps.read_text(encoding="utf-8"))
    assert collection["metadata"]["counted"]["status"] == ["open"]
    ranks = [f["properties"]["gap_rank"] for f in collection["features"]]
    assert ranks == list(range(1, len(ranks) + 1))
    for feature in collection["features"]:
        properties = feature["properties"]
        assert properties["district"] == "静安区" and properties["area_m2"] > 0
        assert isinstance(properties["farthest_m"], int)
        point = shapely.Point(properties["lon"], properties["lat"])
        assert shapely.geometry.shape(feature["geometry"]).buffer(1e-6).contains(point)

    sites = tmp_path / "sites.geojson"
    done = finder(
        "suggest", "--district", "310106", "--n", "3", "--out", str(sites), "--store", str(gpkg)
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(sites.read_text(encoding="utf-8"))["features"]) >= 1
    assert "->" in done.stderr

    pdf = tmp_path / "jingan.pdf"
    done = finder(
        "print",
        "--district",
        "310106",
        "--paper",
        "A3",
        "--out",
        str(pdf),
        "--basemap",
        str(DATA / "shanghai_jingan.osm"),
        "--store",
        str(gpkg),
    )
    assert done.returncode == 0, done.stderr
    assert pdf.read_bytes().startswith(b"%PDF") and done.stdout == ""


def test_coverage_csv_to_standard_output_is_only_the_rounded_table(
    gpkg: Path, tmp_path: Path
) -> None:
    gaps = tmp_path / "gaps.geojson"
    done = finder(
        "coverage",
        "--format",
        "csv",
        "--gaps",
        str(gaps),
        "--basemap",
        str(DATA / "shanghai_jingan.osm"),
        "--store",
        str(gpkg),
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote {gaps}" in done.stderr and "wrote" not in done.stdout
    lines = done.stdout.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("adcode,name,")
    table = pd.read_csv(io.StringIO(done.stdout), dtype={"adcode": str})
    assert len(table) == len(lines) - 1 == 16
    for column in ("covered_share", "covered_twice_share"):
        assert (table[column] == table[column].round(3)).all(), column  # 0.1 percentage point
    assert (table["largest_gap_m"].dropna() % 1 == 0).all()
    assert max(len(line) for line in lines) < 400  # no 17-digit floats
    features = json.loads(gaps.read_text(encoding="utf-8"))["features"]
    assert len({f["properties"]["adcode"] for f in features}) == 16
    assert all(isinstance(f["properties"]["near_roads"], list) for f in features)
    assert any(f["properties"]["near_roads"] for f in features)  # gaps within the extract
    # simplified to print precision: 6 decimals (~0.1 m), a small file
    assert gaps.stat().st_size < 1_500_000
    assert all(
        len(str(c).split(".")[-1]) <= 6 for f in features[:5] for c in _coordinates(f["geometry"])
    )


def _coordinates(geometry: dict[str, object]) -> list[float]:
    values: list[float] = []

    def walk(item: object) -> None:
        if isinstance(item, list):
            for x in item:
                walk(x)
        else:
            values.append(float(item))  # type: ignore[arg-type]

    walk(geometry["coordinates"])
    return values


def test_print_needs_a_district_or_all(gpkg: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "x.pdf")
    neither = finder("print", "--out", out, "--store", str(gpkg))
    both = finder("print", "--district", "310106", "--all-districts", "--out", out)
    for done in (neither, both):
        assert done.returncode == 2 and "--all-districts" in done.stderr
    assert not Path(out).exists()


def test_coverage_by_walking_time_needs_the_network(gpkg: Path, tmp_path: Path) -> None:
    args = (
        "coverage",
        "--district",
        "310106",
        "--walk-minutes",
        "15",
        "--format",
        "csv",
        "--store",
        str(gpkg),
    )
    missing = finder(*args)
    assert missing.returncode == 2 and "finder streets" in missing.stderr
    streets = finder("streets", str(DATA / "shanghai_jingan.osm"), "--store", str(gpkg))
    assert streets.returncode == 0
    done = finder(*args)
    assert done.returncode == 0, done.stderr
    row = pd.read_csv(io.StringIO(done.stdout)).iloc[0]
    assert 0 <= row["walk_share_15min"] <= row["line_share_on_network"] <= 1
    assert row["walk_points_on_network"] > 0


def test_keys_are_stored_hashed(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    done = finder(
        "keys",
        "add",
        "staff-1",
        "--scope",
        "edit",
        "--org",
        "某科技有限公司",
        "--keys-file",
        str(keys),
    )
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    assert len(key) >= 20 and key not in keys.read_text(encoding="utf-8")
    from api.auth import KeyRing

    principal = KeyRing(keys).authenticate(key)
    assert principal is not None
    again = finder("keys", "add", "staff-1", "--scope", "edit", "--keys-file", str(keys))
    assert again.returncode == 2 and "staff-1" in again.stderr


@pytest.mark.postgis
def test_db_upgrade_then_import_into_postgis(postgres_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = postgres_server.create_database("cli_db_upgrade")
    try:
        env = {"FINDER_DATABASE_URL": url}
        done = finder("db", "upgrade", env=env)
        assert done.returncode == 0, done.stderr
        assert "up to date" in done.stdout
        from geodata.postgis import PostGISStore

        imported = finder("import", str(DATA / "union_list_gbk.csv"), env=env)
        assert imported.returncode == 0, imported.stderr
        store = PostGISStore(url)
        try:
            assert set(store.frame()["id"]) == {"JA-001", "JA-002", "JA-003", "JA-008"}
        finally:
            store.close()
    finally:
        postgres_server.drop_database("cli_db_upgrade")
