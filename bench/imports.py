"""Benchmark: import a 1,000,000-row CSV facility list into a fresh GeoPackage store.

Prints our end-to-end import time (read, validate, district assignment, one-transaction write)
beside the time pandas and pyogrio alone take to read the same file, measured in the same run.

    python bench/imports.py            # 1,000,000 rows
    python bench/imports.py --quick    # 100,000 rows
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from geodata.boundaries import load_districts
from geodata.imports import import_file
from geodata.sample import sample_frame
from geodata.store import GeoPackageStore

HEADERS = {
    "id": "编号",
    "name": "名称",
    "kind": "类型",
    "address": "地址",
    "lon": "经度",
    "lat": "纬度",
    "opening_hours": "开放时间",
    "amenities": "设施",
    "star_rating": "星级",
    "access": "开放对象",
    "organization": "所属单位",
    "phone": "联系电话",
    "status": "状态",
    "district": "所属区",
}


def make_csv(path: Path, rows: int) -> None:
    """A GB18030 CSV with Chinese headers, tiled from the sample with jittered positions."""
    base = sample_frame(1500)
    reps = -(-rows // len(base))
    frame = pd.concat([base] * reps, ignore_index=True).iloc[:rows]
    rng = np.random.default_rng(1)
    frame["id"] = [f"B{i:07d}" for i in range(rows)]
    frame["lon"] = np.round(frame["lon"] + rng.normal(0, 0.01, rows), 6)
    frame["lat"] = np.round(frame["lat"] + rng.normal(0, 0.01, rows), 6)
    frame["name"] = frame["name"] + frame.index.astype(str)
    frame["amenities"] = frame["amenities"].str.replace(";", "、")
    out = frame[list(HEADERS)].rename(columns=HEADERS)
    out.to_csv(path, index=False, encoding="gb18030")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--rows", type=int)
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    districts = load_districts()
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "list.csv"
        make_csv(csv, rows)
        size_mb = csv.stat().st_size / 1e6

        t = time.perf_counter()
        pd.read_csv(csv, dtype=str, encoding="gb18030", keep_default_na=False)
        t_pandas = time.perf_counter() - t

        import pyogrio

        t = time.perf_counter()
        pyogrio.read_dataframe(csv, read_geometry=False, encoding="gb18030")
        t_pyogrio = time.perf_counter() - t

        store = GeoPackageStore(Path(tmp) / "store.gpkg")
        t = time.perf_counter()
        report = import_file(
            store, csv, districts=districts, progress=lambda line: print("   ", line)
        )
        t_ours = time.perf_counter() - t
        store.close()

    print(f"\nmachine: {platform.node()} {platform.machine()} {platform.python_version()}")
    print(
        f"rows: {rows:,} ({size_mb:.0f} MB GB18030 CSV); accepted {report.accepted:,}, "
        f"rejected {report.rejected:,}"
    )
    print(f"{'pandas read_csv alone':<34}{t_pandas:8.2f} s")
    print(f"{'pyogrio read alone':<34}{t_pyogrio:8.2f} s")
    print(
        f"{'finder import (end to end)':<34}{t_ours:8.2f} s   "
        f"= {t_ours / t_pandas:.1f} x pandas, {t_ours / t_pyogrio:.1f} x pyogrio "
        f"(target < 30 s for 1,000,000)"
    )


if __name__ == "__main__":
    main()
