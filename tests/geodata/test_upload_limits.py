"""What an upload may expand to: zip bombs, lying archives, too many rows or cells.

Every limit is a parameter of the readers (:class:`geodata.readers.ReadLimits`); a file over one
raises :class:`FileTooLarge` naming the file and the limit, quickly and without the memory the
file would expand to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from zipbombs import MiB, xlsx_with_sheet, zip_of_spaces

from geodata.errors import FileTooLarge, UnreadableFile
from geodata.imports import import_file
from geodata.readers import ReadLimits, read_table
from geodata.store import FacilityStore


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def _peak_growth_mib(action: Callable[[], object]) -> float:
    """Peak resident memory growth of this process during ``action`` (MiB), from /proc."""
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _rss_kib("VmRSS")
    action()
    return (_rss_kib("VmHWM") - before) / 1024


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 MB workbook whose sheet is 2 GiB of spaces."""
    return xlsx_with_sheet(tmp_path_factory.mktemp("bomb") / "bomb.xlsx", spaces_mib=2048)


def test_xlsx_bomb_is_refused_at_once(bomb: Path) -> None:
    assert bomb.stat().st_size < 3 * MiB

    def read() -> None:
        with pytest.raises(FileTooLarge, match=r"bomb\.xlsx.*max_expanded_mb") as caught:
            read_table(bomb)
        assert caught.value.limit == "max_expanded_mb"

    start = time.perf_counter()
    growth = _peak_growth_mib(read)
    assert time.perf_counter() - start < 1.0
    assert growth < 100


def test_import_names_the_uploaded_file(store: FacilityStore, bomb: Path) -> None:
    with pytest.raises(FileTooLarge, match=r"^liste\.xlsx: "):
        import_file(store, bomb, source_name="liste.xlsx")
    assert store.frame().empty


HEADER = '<row r="1"><c r="A1" t="inlineStr"><is><t>name</t></is></c></row>'


def _ratio_bomb(tmp: Path) -> Path:
    return xlsx_with_sheet(tmp / "ratio.xlsx", HEADER, spaces_mib=8)


def _wide_rows(tmp: Path) -> Path:
    # 1,000 rows of one cell in the last column: openpyxl fills each row with 16,384 cells
    rows = "".join(f'<row r="{r}"><c r="XFD{r}"><v>1</v></c></row>' for r in range(2, 1002))
    return xlsx_with_sheet(tmp / "wide.xlsx", HEADER + rows)


def _far_row(tmp: Path) -> Path:
    # one cell in row 1,000,000: openpyxl yields every row before it
    return xlsx_with_sheet(
        tmp / "far.xlsx", HEADER + '<row r="1000000"><c r="A1000000"><v>1</v></c></row>'
    )


def _long_csv(tmp: Path) -> Path:
    path = tmp / "long.csv"
    path.write_text("name,kind\n" + "甲,rest_stop\n" * 200, encoding="utf-8")
    return path


def _many_features(tmp: Path) -> Path:
    import geopandas as gpd

    gdf = gpd.GeoDataFrame(
        {"name": [f"f{i}" for i in range(200)]},
        geometry=gpd.points_from_xy([121.4] * 200, [31.2] * 200),
        crs="EPSG:4326",
    )
    path = tmp / "many.gpkg"
    gdf.to_file(path)
    return path


def _zipped_bomb(tmp: Path) -> Path:
    return zip_of_spaces(tmp / "shapes.zip", "shapes.dbf", 64)


@pytest.mark.parametrize(
    ("build", "limits", "limit"),
    [
        (_ratio_bomb, ReadLimits(), "max_ratio"),
        (_wide_rows, ReadLimits(max_cells=100_000), "max_cells"),
        (_far_row, ReadLimits(max_rows=10_000), "max_rows"),
        (_long_csv, ReadLimits(max_rows=100), "max_rows"),
        (_long_csv, ReadLimits(max_cells=300), "max_cells"),
        (_many_features, ReadLimits(max_rows=100), "max_rows"),
        (_zipped_bomb, ReadLimits(max_expanded_mb=16), "max_expanded_mb"),
    ],
)
def test_each_limit_is_enforced(
    tmp_path: Path, build: Callable[[Path], Path], limits: ReadLimits, limit: str
) -> None:
    path = build(tmp_path)
    start = time.perf_counter()
    with pytest.raises(FileTooLarge, match=rf"{path.name}.*{limit}") as caught:
        read_table(path, limits=limits)
    assert caught.value.limit == limit
    assert time.perf_counter() - start < 5.0


def test_files_within_the_limits_are_read(tmp_path: Path) -> None:
    assert len(read_table(_long_csv(tmp_path), limits=ReadLimits(max_rows=200))) == 200
    assert len(read_table(_many_features(tmp_path), limits=ReadLimits(max_rows=200))) == 200


def test_a_zipped_shapefile_within_the_limits_is_read(tmp_path: Path) -> None:
    import zipfile

    import geopandas as gpd

    gdf = gpd.GeoDataFrame(
        {"name": ["甲", "乙"]}, geometry=gpd.points_from_xy([121.4, 121.5], [31.2, 31.3]), crs=4326
    )
    gdf.to_file(tmp_path / "points.shp")
    path = tmp_path / "points.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in tmp_path.glob("points.*"):
            if part != path:
                archive.write(part, part.name)
    frame = read_table(path)
    assert frame["name"].tolist() == ["甲", "乙"]


def test_an_archive_that_lies_about_its_size_is_refused(tmp_path: Path) -> None:
    """A member declaring 1 KiB but holding 64 MiB: caught while checking, before GDAL reads."""
    path = zip_of_spaces(tmp_path / "liar.zip", "liar.geojson", 64, declared_size=1024)
    start = time.perf_counter()
    with pytest.raises(UnreadableFile, match=r"liar\.zip: liar\.geojson is damaged"):
        read_table(path)
    assert time.perf_counter() - start < 5.0
