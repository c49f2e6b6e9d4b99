"""Base map build benchmark: ``finder basemap build`` on a synthetic extract and on Jing'an.

Run ``python bench/basemap.py`` (1,000,000 ways) or ``python bench/basemap.py --ways 100000``.
It writes a synthetic OpenStreetMap extract (``.osm.pbf``) of a 60 x 55 km city: buildings,
streets of every class with Chinese names, parks, water, rivers, railways and place nodes, each
way with its own nodes. Then it runs the real command (``finder basemap build``) in a child
process on it and on the real Jing'an extract in tests/data, and prints for each the wall time,
the child's CPU time (user + system: what a shared machine's load does not inflate), the time it
took to read the extract (the rest is tile encoding), its peak resident memory (``VmHWM``) and
the archive size.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import osmium

ROOT = Path(__file__).resolve().parents[1]
JINGAN = ROOT / "tests" / "data" / "shanghai_jingan.osm"
#: South-west corner and size of the synthetic city (WGS-84 degrees; Guangzhou's latitude).
LON0, LAT0, DLON, DLAT = 113.0, 22.9, 0.6, 0.5
M_PER_DEG_LAT = 110_850.0
M_PER_DEG_LON = M_PER_DEG_LAT * math.cos(math.radians(LAT0 + DLAT / 2))
#: Share of the ways per kind.
MIX = {
    "building": 0.55,
    "road": 0.33,
    "landuse": 0.06,
    "water": 0.03,
    "waterway": 0.02,
    "railway": 0.01,
}
ROAD_MIX = (
    ("residential", 0.55, 400),
    ("service", 0.2, 200),
    ("tertiary", 0.1, 1200),
    ("secondary", 0.07, 2500),
    ("primary", 0.05, 4000),
    ("trunk", 0.02, 8000),
    ("motorway", 0.01, 15000),
)
NAME_CHARS = (
    "东南西北中山人民解放建设和平新华长江黄河天河珠江花城越秀海珠白云番禺黄埔荔湾从化增城南沙"
)
SUFFIXES = ("路", "街", "大道", "一路", "二路")


class _Ids:
    """Node ids handed out in order, with the coordinates to write."""

    def __init__(self) -> None:
        self.next = 1
        self.chunks: list[np.ndarray] = []

    def take(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Ids of new nodes at ``lon``/``lat`` (arrays of equal shape); returns the same shape."""
        ids = np.arange(self.next, self.next + lon.size).reshape(lon.shape)
        self.next += lon.size
        self.chunks.append(np.column_stack([lon.ravel(), lat.ravel()]))
        return ids


def _m_to_deg(dx_m: np.ndarray, dy_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return dx_m / M_PER_DEG_LON, dy_m / M_PER_DEG_LAT


def write_synthetic(path: Path, n_ways: int, *, seed: int = 7) -> tuple[int, int]:
    """Write the synthetic extract; return (nodes, ways)."""
    rng = np.random.default_rng(seed)
    ids = _Ids()
    ways: list[tuple[np.ndarray, dict[str, str]]] = []

    def points(n: int) -> tuple[np.ndarray, np.ndarray]:
        return LON0 + rng.random(n) * DLON, LAT0 + rng.random(n) * DLAT

    def polygons(n: int, low_m: float, high_m: float, sides: int) -> np.ndarray:
        lon, lat = points(n)
        radius = rng.uniform(low_m, high_m, n)[:, None]
        angle = np.linspace(0, 2 * math.pi, sides, endpoint=False)[None, :] + rng.random((n, 1))
        dlon, dlat = _m_to_deg(radius * np.cos(angle), radius * np.sin(angle))
        refs = ids.take(lon[:, None] + dlon, lat[:, None] + dlat)
        return np.column_stack([refs, refs[:, :1]])  # closed rings

    def lines(n: int, length_m: np.ndarray, k: int) -> np.ndarray:
        lon, lat = points(n)
        horizontal = rng.random(n) < 0.5
        t = np.linspace(0, 1, k)[None, :]
        along = length_m[:, None] * t
        wobble = rng.normal(0, 8, (n, k))
        dx = np.where(horizontal[:, None], along, wobble)
        dy = np.where(horizontal[:, None], wobble, along)
        dlon, dlat = _m_to_deg(dx, dy)
        return ids.take(lon[:, None] + dlon, lat[:, None] + dlat)

    counts = {kind: round(share * n_ways) for kind, share in MIX.items()}
    counts["building"] += n_ways - sum(counts.values())
    for refs in polygons(counts["building"], 8, 25, 4):
        ways.append((refs, {"building": "yes"}))
    n_roads = counts["road"]
    per_class = [round(share * n_roads) for _, share, _ in ROAD_MIX]
    per_class[0] += n_roads - sum(per_class)  # residential takes the rounding
    for (highway, _, length_m), n in zip(ROAD_MIX, per_class, strict=True):
        names = rng.integers(0, len(NAME_CHARS), (n, 2))
        suffix = rng.integers(0, len(SUFFIXES), n)
        for i, refs in enumerate(lines(n, rng.uniform(0.5, 1.5, n) * length_m, 6)):
            name = NAME_CHARS[names[i, 0]] + NAME_CHARS[names[i, 1]] + SUFFIXES[suffix[i]]
            ways.append((refs, {"highway": highway, "name": name}))
    landuse = ("park", "forest", "industrial", "grass")
    for i, refs in enumerate(polygons(counts["landuse"], 60, 400, 5)):
        value = landuse[i % len(landuse)]
        key = "leisure" if value == "park" else "landuse"
        ways.append((refs, {key: value}))
    for refs in polygons(counts["water"], 50, 600, 8):
        ways.append((refs, {"natural": "water"}))
    n = counts["waterway"]
    for i, refs in enumerate(lines(n, rng.uniform(1000, 10000, n), 8)):
        ways.append((refs, {"waterway": "river" if i % 5 == 0 else "stream", "name": "珠江"}))
    n = counts["railway"]
    for i, refs in enumerate(lines(n, rng.uniform(2000, 20000, n), 8)):
        ways.append((refs, {"railway": "subway" if i % 2 else "rail", "name": "地铁三号线"}))

    coords = np.concatenate(ids.chunks)
    n_places = 2000
    place_lon, place_lat = points(n_places)
    path.unlink(missing_ok=True)
    writer = osmium.SimpleWriter(str(path))
    try:
        for i, (lon, lat) in enumerate(coords.tolist(), start=1):
            writer.add_node(osmium.osm.mutable.Node(id=i, location=(lon, lat)))
        place_kinds = ("suburb", "village", "quarter", "neighbourhood")
        for j in range(n_places):
            writer.add_node(
                osmium.osm.mutable.Node(
                    id=ids.next + j,
                    location=(float(place_lon[j]), float(place_lat[j])),
                    tags={"place": place_kinds[j % 4], "name": f"{NAME_CHARS[j % 40]}{j}村"},
                )
            )
        for way_id, (refs, tags) in enumerate(ways, start=1):
            writer.add_way(osmium.osm.mutable.Way(id=way_id, nodes=refs.tolist(), tags=tags))
    finally:
        writer.close()
    return len(coords) + n_places, len(ways)


#: Runs ``finder`` (api.cli.main) and reports the process's own peak resident memory (VmHWM:
#: ``ru_maxrss`` of a child would include the memory of this parent copied at fork).
_CHILD = (
    "import sys\n"
    "from api.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
    "print('peak_rss_kb', hwm, file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def build(extract: Path, out: Path) -> tuple[float, float, float, float, int]:
    """Run ``finder basemap build`` in a child.

    Returns wall s, CPU s of the child (user + system), seconds it took to read the extract
    (from its progress line), its peak RSS MB and the archive's bytes.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, "basemap", "build", str(extract), "--out", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = done.stderr.splitlines()
    peak_kb = next(int(line.split()[1]) for line in lines if line.startswith("peak_rss_kb"))
    read_s = next(
        float(line.split(" in ", 1)[1].split(" s:", 1)[0].replace(",", ""))
        for line in lines
        if line.startswith("read ") and " s: " in line
    )
    return seconds, cpu_s, read_s, peak_kb / 1024, out.stat().st_size


def _machine() -> str:
    """CPU model, cores and memory of this Linux machine."""
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.machine(),
    )
    meminfo = Path("/proc/meminfo").read_text(encoding="utf-8").split()
    mem_gb = int(meminfo[meminfo.index("MemTotal:") + 1]) / 1024**2
    return f"{model}, {os.cpu_count()} cores, {mem_gb:.0f} GB RAM"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ways", type=int, default=1_000_000, help="ways of the synthetic city")
    parser.add_argument("--work-dir", help="directory of the extract and archives (default tmp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-basemap-", dir=args.work_dir) as tmp:
        work = Path(tmp)
        load_before = f"{os.getloadavg()[0]:.1f}"
        extract = work / "synthetic.osm.pbf"
        started = time.perf_counter()
        n_nodes, n_ways = write_synthetic(extract, args.ways)
        print(
            f"synthetic extract: {n_ways:,} ways, {n_nodes:,} nodes, "
            f"{extract.stat().st_size / 1e6:,.1f} MB, written in "
            f"{time.perf_counter() - started:,.0f} s"
        )
        rows = [("Jing'an test extract (796 ways)", *build(JINGAN, work / "jingan.pmtiles"))]
        rows.append((f"synthetic ({n_ways:,} ways)", *build(extract, work / "synthetic.pmtiles")))
    print(f"machine: {_machine()}, python {platform.python_version()}")
    print(f"load average before / after: {load_before} / {os.getloadavg()[0]:.1f}")
    print(
        f"{'extract':36} {'wall s':>8} {'CPU s':>8} {'read s':>7} {'peak RSS MB':>12} "
        f"{'archive MB':>11}"
    )
    for name, seconds, cpu_s, read_s, rss_mb, size in rows:
        print(
            f"{name:36} {seconds:8.1f} {cpu_s:8.1f} {read_s:7.1f} {rss_mb:12.0f} {size / 1e6:11.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
