"""Benchmark: WGS-84 <-> GCJ-02 for 1,000,000 points spread over eastern China.

Prints the time of the vectorised :func:`geodata.crs.from_wgs84` / :func:`geodata.crs.to_wgs84`
(mainland test by polygon, exact iterative inverse) beside a plain Python loop over the scalar
textbook formula (``math``, the rectangular ``out_of_china`` box, the same fixed-point inverse)
measured in the same run, as a ratio. The loop does less work per point (a box instead of the
polygons), so the ratio understates the gain. Results are checked to agree first.

    python bench/crs.py            # 1,000,000 points
    python bench/crs.py --quick    # 50,000 points
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from collections.abc import Callable

import numpy as np

from geodata.crs import from_wgs84, in_mainland_china, to_wgs84

_A = 6378245.0
_EE = 0.00669342162296594323


def _out_of_china(lon: float, lat: float) -> bool:
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _delta(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 105.0, lat - 35.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    dlat += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    dlat += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2 / 3
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    dlon += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlon += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    dlon += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3
    rad = lat / 180.0 * math.pi
    magic = 1.0 - _EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * math.cos(rad) * math.pi)
    return dlon, dlat


def loop_wgs_to_gcj(lon: float, lat: float) -> tuple[float, float]:
    """Textbook scalar WGS-84 -> GCJ-02."""
    if _out_of_china(lon, lat):
        return lon, lat
    dlon, dlat = _delta(lon, lat)
    return lon + dlon, lat + dlat


def loop_gcj_to_wgs(lon: float, lat: float) -> tuple[float, float]:
    """Scalar exact GCJ-02 -> WGS-84 by the same fixed-point iteration (to 1e-9 degree)."""
    if _out_of_china(lon, lat):
        return lon, lat
    dlon, dlat = _delta(lon, lat)
    x, y = lon - dlon, lat - dlat
    for _ in range(30):
        dlon, dlat = _delta(x, y)
        ex, ey = x + dlon - lon, y + dlat - lat
        x, y = x - ex, y - ey
        if abs(ex) <= 1e-9 and abs(ey) <= 1e-9:
            break
    return x, y


def best_of(runs: int, func: Callable[..., object], *args: object) -> float:
    """Smallest wall time in seconds of ``runs`` calls of ``func(*args)``."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        func(*args)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="50,000 points")
    parser.add_argument("--points", type=int)
    args = parser.parse_args()
    n = args.points or (50_000 if args.quick else 1_000_000)
    rng = np.random.default_rng(1)
    # Eastern China, away from the Hong Kong / Macau / Taiwan polygons and land borders, so the
    # box of the loop and the module's polygons agree on every point.
    lon = rng.uniform(104.0, 119.4, n)
    lat = rng.uniform(24.6, 40.0, n)
    if not in_mainland_china(lon, lat).all():
        raise SystemExit("sample points are expected inside mainland China")

    t = time.perf_counter()
    gcj_lon, gcj_lat = from_wgs84(lon, lat, "gcj02")
    cold_s = time.perf_counter() - t
    fwd_s = best_of(3, from_wgs84, lon, lat, "gcj02")
    inv_s = best_of(3, to_wgs84, gcj_lon, gcj_lat, "gcj02")

    lon_list, lat_list = lon.tolist(), lat.tolist()
    t = time.perf_counter()
    loop_gcj = [loop_wgs_to_gcj(x, y) for x, y in zip(lon_list, lat_list, strict=True)]
    loop_fwd_s = time.perf_counter() - t
    t = time.perf_counter()
    loop_wgs = [loop_gcj_to_wgs(x, y) for x, y in loop_gcj]
    loop_inv_s = time.perf_counter() - t

    if not np.allclose(np.array(loop_gcj), np.column_stack([gcj_lon, gcj_lat]), rtol=0, atol=1e-11):
        raise SystemExit("vectorised and loop forward transforms disagree")
    back_lon, back_lat = to_wgs84(gcj_lon, gcj_lat, "gcj02")
    if not np.allclose(np.array(loop_wgs), np.column_stack([back_lon, back_lat]), atol=1e-9):
        raise SystemExit("vectorised and loop inverse transforms disagree")

    print(
        f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print(f"points: {n:,} (WGS-84, eastern China)")
    print(f"from_wgs84 gcj02 (first call, loads polygons):  {cold_s * 1e3:9.1f} ms")
    print(f"from_wgs84 gcj02 (best of 3):                   {fwd_s * 1e3:9.1f} ms")
    print(f"python loop, textbook formula (reference):      {loop_fwd_s * 1e3:9.1f} ms")
    print(f"ratio loop / vectorised, forward:               {loop_fwd_s / fwd_s:9.1f}x")
    print(f"to_wgs84 gcj02, exact inverse (best of 3):      {inv_s * 1e3:9.1f} ms")
    print(f"python loop, same iteration (reference):        {loop_inv_s * 1e3:9.1f} ms")
    print(f"ratio loop / vectorised, inverse:               {loop_inv_s / inv_s:9.1f}x")


if __name__ == "__main__":
    main()
