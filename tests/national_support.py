"""Three provinces of real county polygons for the national coverage tests: Shanghai's 16
districts (bundled) with the 25 counties of Zhengzhou and Hangzhou (GCJ-02 files of
tests/data/boundaries_gcj02/counties, named from its index.csv, converted as the project does)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geodata.boundaries import build_districts_geojson, load_districts

GCJ02 = Path(__file__).resolve().parent / "data" / "boundaries_gcj02"


def three_provinces_file(folder: Path) -> Path:
    """Write the 41 districts as one WGS-84 GeoJSON (adcode, name, province, city) in
    ``folder`` and return its path."""
    features = [
        {"type": "Feature", "properties": {"adcode": f.stem}, "geometry": json.loads(f.read_text())}
        for f in sorted((GCJ02 / "counties").glob("*.geojson"))
    ]
    source = folder / "counties_gcj02.geojson"
    source.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    counties = folder / "counties_wgs84.geojson"
    build_districts_geojson(source, GCJ02 / "index.csv", counties)
    both = pd.concat([load_districts(), load_districts(counties)], ignore_index=True)
    out = folder / "three_provinces.geojson"
    gpd.GeoDataFrame(both, crs="EPSG:4326").drop(columns="population").to_file(out)
    return out


def three_provinces(folder: Path) -> gpd.GeoDataFrame:
    """The 41 districts with census population (:func:`geodata.boundaries.load_districts`)."""
    return load_districts(three_provinces_file(folder))
