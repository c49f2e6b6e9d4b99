"""``finder coverage --national`` and ``finder print --national``: real subprocesses, real files."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from national_support import three_provinces_file


def finder(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ),
        check=False,
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A store of 200 Shanghai facilities, WGS-84 boundaries of three provinces, a raster."""
    from geodata.sample import write_sample

    folder = tmp_path_factory.mktemp("national")
    store = folder / "store.gpkg"
    write_sample(store, 200)
    boundaries = three_provinces_file(folder)
    raster = folder / "people.tif"
    values = np.full((40, 40), 50.0, dtype=np.float32)  # 80,000 people over central Shanghai
    profile = {"driver": "GTiff", "width": 40, "height": 40, "count": 1, "dtype": "float32"}
    transform = rasterio.Affine(0.005, 0.0, 121.38, 0.0, -0.005, 31.32)
    with rasterio.open(raster, "w", crs="EPSG:4326", transform=transform, **profile) as out:
        out.write(values, 1)
    return {"store": store, "boundaries": boundaries, "raster": raster, "folder": folder}


def test_national_csv_has_provinces_cities_and_ranked_counties(inputs: dict[str, Path]) -> None:
    common = ("--store", str(inputs["store"]), "--boundaries", str(inputs["boundaries"]))
    done = finder("coverage", "--national", "--format", "csv", *common)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(io.StringIO(done.stdout), dtype={"adcode": str, "gap_adcode": str})
    assert table["level"].value_counts().to_dict() == {"county": 41, "province": 3, "city": 3}
    provinces = table[table["level"] == "province"].set_index("adcode")
    counties = table[table["level"] == "county"]
    assert provinces.loc["310000", "facilities"] == counties["facilities"].sum() > 0
    assert provinces.loc["410000", "facilities"] == 0
    assert counties["rank"].tolist() == list(range(1, 42))
    assert "population basis: 2020 census county totals" in done.stderr

    weighted = finder(
        "coverage", "--national", *common, "--population-raster", str(inputs["raster"])
    )
    assert weighted.returncode == 0, weighted.stderr
    assert "population basis: population raster people.tif" in weighted.stderr
    document = json.loads(weighted.stdout)
    assert document["metadata"]["population_basis"] == "population raster people.tif"
    shanghai = document["provinces"][0]
    assert shanghai["people"] == 80_000
    assert document["metadata"]["counted"]["access"] == ["public"]


def test_national_refuses_district_options(inputs: dict[str, Path]) -> None:
    done = finder("coverage", "--national", "--district", "310106", "--store", str(inputs["store"]))
    assert done.returncode == 2 and "--national" in done.stderr


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils missing")
def test_print_national_sheet(inputs: dict[str, Path]) -> None:
    out = inputs["folder"] / "national.pdf"
    done = finder(
        "print",
        "--national",
        "--paper",
        "A3",
        "--out",
        str(out),
        "--store",
        str(inputs["store"]),
        "--boundaries",
        str(inputs["boundaries"]),
    )
    assert done.returncode == 0, done.stderr
    text = subprocess.run(
        ["pdftotext", str(out), "-"], check=True, capture_output=True, text=True
    ).stdout
    text = "".join(text.split())
    assert "各省级单位排名" in text and "河南省" in text and "仅计对公众开放的设施" in text
    both = finder("print", "--national", "--all-districts", "--out", str(out))
    assert both.returncode == 2 and "--national" in both.stderr
