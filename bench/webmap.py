"""Benchmark: the facility web map with 100,000 facilities against folium's default MarkerCluster.

Ours: :func:`maps.webmap.facility_map` rendered to HTML (one compact data payload, markers made
in the browser, clustered with chunked loading). Reference, measured in the same run: folium's
default path, one ``folium.Marker`` with a ``folium.Popup`` per facility in a
``folium.plugins.MarkerCluster``, for 10,000 facilities (the size the issue quotes: 7.5 s and
4.3 MB) - per-facility ratios are printed as well, since the reference does not get to 100,000
in reasonable time.

Measured: build time (Python, until the HTML string exists; ours cold, i.e. first call in the
process including the CJK font subset, and warm), HTML size, and the time until the page is
interactive in headless Chromium (``/usr/bin/chromium``) from a loopback server: for ours the
moment every marker is clustered (``data-fm-ready``), for the reference the ``load`` event (its
markers are added synchronously). The reference HTML has its CDN links pointed at the same local
Leaflet files, so neither page touches the network.

Ours at two sizes in the same run, 1,000 and 100,000 facilities (the same page, ``served``
assets): ``DOMContentLoaded`` (navigation timing) and "markers drawn", the first frame after
``data-fm-ready`` (a ``requestAnimationFrame`` then a task: the clusters and markers in view are
in the DOM and painted), with the number of marker icons on screen then.

With the base map, in the same run: the 100,000-facility page with our vector base map
(``base_map="vector"``, tiles of the Jing'an archive built from ``tests/data/shanghai_jingan.osm``
by :func:`geodata.basemap.basemap_from_osm`, served by the same loopback server as the route
``/basemap/{z}/{x}/{y}.mvt`` answers them: stored gzip bytes, ``Content-Encoding: gzip``) beside
the same page without base map, both opened on Jing'an at zoom 15: interactive, markers drawn and
"first tiles painted", the base map layer's Leaflet ``load`` event (every tile of the first view
drawn on its canvas).

The facilities are the project's synthetic Shanghai sample (``geodata.sample``), tiled with
jittered positions and numbered names.

    python bench/webmap.py            # 100,000 facilities, reference 10,000
    python bench/webmap.py --quick    # 10,000 facilities, reference 2,000
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import os
import platform
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import folium
import folium.plugins
import numpy as np
import pandas as pd
import xstatic.pkg.leaflet_markercluster

from geodata.basemap import BasemapArchive, basemap_from_osm
from geodata.sample import sample_frame
from maps.assets import static_dirs
from maps.basemap import VectorTiles
from maps.webmap import facility_map

CHROMIUM = Path("/usr/bin/chromium")
JINGAN = Path(__file__).resolve().parents[1] / "tests" / "data" / "shanghai_jingan.osm"
#: Where the loopback server answers base map tiles (as ``finder serve`` does).
TILE_URL = "/basemap/{z}/{x}/{y}.mvt"
#: The street view of the base map comparison, ``(lon, lat)``: Jing'an, inside the archive.
JINGAN_CENTER = (121.4737, 31.2304)
_TILE_PATH = re.compile(r"/basemap/(\d+)/(\d+)/(\d+)\.mvt")
NOW = dt.datetime(2026, 11, 26, 10, 0)


def facilities(total: int, seed: int = 3) -> pd.DataFrame:
    """``total`` synthetic facilities: the sample, tiled, jittered by up to ~1 km, renamed."""
    base = sample_frame(min(total, 3000), seed=seed)
    base = base[base["status"] != "closed"].reset_index(drop=True)
    reps = -(-total // len(base))
    frame = pd.concat([base] * reps, ignore_index=True).iloc[:total].copy()
    rng = np.random.default_rng(seed)
    frame["lon"] = np.round(frame["lon"] + rng.uniform(-0.01, 0.01, total), 6)
    frame["lat"] = np.round(frame["lat"] + rng.uniform(-0.01, 0.01, total), 6)
    number = np.arange(total)
    frame["id"] = [f"bench-{i}" for i in number]
    frame["name"] = [f"{n}{i % 997}号" for n, i in zip(frame["name"], number, strict=True)]
    frame["address"] = [f"{a}{i % 89}室" for a, i in zip(frame["address"], number, strict=True)]
    return frame


def machine() -> str:
    """CPU model, cores and the load average now (the machine may be shared)."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return f"{model}, {os.cpu_count()} cores, load average {load}"


def folium_reference(frame: pd.DataFrame) -> folium.Map:
    """folium's default way: a Marker with a Popup per facility in a MarkerCluster."""
    fmap = folium.Map(location=[31.23, 121.47], zoom_start=10, tiles=None)
    cluster = folium.plugins.MarkerCluster().add_to(fmap)  # type: ignore[no-untyped-call]
    for row in frame.itertuples():
        popup = folium.Popup(f"{row.name}<br>{row.address}<br>{row.opening_hours}", max_width=300)
        folium.Marker([row.lat, row.lon], popup=popup).add_to(cluster)
    return fmap


def localise_reference(html: str) -> str:
    """Point the reference page's CDN links at our local Leaflet files; drop the unused ones."""
    cdn = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist"
    local = {f"{cdn}/leaflet.js": "/static/leaflet/leaflet.js"}
    local[f"{cdn}/leaflet.css"] = "/static/leaflet/leaflet.css"
    for _, url in (
        folium.plugins.MarkerCluster.default_js + folium.plugins.MarkerCluster.default_css
    ):
        name = url.rsplit("/", 1)[1]
        local[url] = f"/static/leaflet-markercluster/{name.replace('.min', '')}"
    lines = []
    for line in html.splitlines():
        for url, path in local.items():
            line = line.replace(url, path)
        if '<script src="http' in line or '<link rel="stylesheet" href="http' in line:
            continue  # jquery, bootstrap, font-awesome, awesome-markers: not needed here
        lines.append(line)
    return "\n".join(lines)


class _Handler(http.server.BaseHTTPRequestHandler):
    pages: dict[str, bytes] = {}  # noqa: RUF012 - filled before serving
    static: dict[str, Path] = {}  # noqa: RUF012
    basemap: BasemapArchive | None = None

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        tile = _TILE_PATH.fullmatch(path)
        if tile and self.basemap is not None:
            self._send_tile(self.basemap.tile(*(int(v) for v in tile.groups())))
            return
        body = self.pages.get(path)
        kind = "text/html; charset=utf-8"
        parts = path.split("/", 3)
        if body is None and len(parts) == 4 and parts[1] == "static" and parts[2] in self.static:
            file = self.static[parts[2]] / parts[3]
            if file.is_file():
                body = file.read_bytes()
                kind = {".js": "text/javascript", ".css": "text/css"}.get(file.suffix, "image/png")
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_tile(self, data: bytes | None) -> None:
        """A stored tile as the route sends it (gzip bytes as they are; 204 when empty)."""
        if data is None:
            self.send_response(204)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.mapbox-vector-tile")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


#: Installed before a page's scripts: when ``data-fm-ready`` appears, note the time of the next
#: frame (markers drawn) and how many marker icons are then on the map.
_DRAWN_JS = """(() => {
  const drawn = () => requestAnimationFrame(() => setTimeout(() => {
    window.__benchMarkers = document.querySelectorAll('.leaflet-marker-icon').length;
    window.__benchDrawnMs = performance.now();
  }, 0));
  new MutationObserver((_, observer) => {
    if (document.querySelector('[data-fm-ready]')) { observer.disconnect(); drawn(); }
  }).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-fm-ready']});
  let basemap;
  Object.defineProperty(window, 'FacilityBasemap', {configurable: true, get: () => basemap,
    set: (value) => { basemap = {add: (map, options) => {
      const layer = value.add(map, options);
      layer.once('load', () => { window.__benchTilesMs = performance.now(); });
      return layer;
    }}; }});
})();"""


def browser_times(
    pages: dict[str, str], repeats: int = 3, basemap: BasemapArchive | None = None
) -> dict[str, dict[str, float]]:
    """Seconds from navigation start until each page is interactive, in headless Chromium.

    Each page is loaded ``repeats`` times, each time in a new browser context (empty cache), the
    pages taking turns; the median of each figure is returned: ``interactive`` (ours:
    ``data-fm-ready``; the reference: the ``load`` event) and, for ours (paths starting with
    ``/ours``), ``dom_content_loaded``, ``drawn`` (seconds) and ``markers`` (icons on screen);
    for pages with a base map (``basemap`` answers their tiles), ``tiles`` (the first view's
    tiles painted).
    """
    from playwright.sync_api import sync_playwright

    _Handler.pages = {path: html.encode("utf-8") for path, html in pages.items()}
    _Handler.basemap = basemap
    _Handler.static = {
        **static_dirs(),
        "leaflet-markercluster": Path(xstatic.pkg.leaflet_markercluster.BASE_DIR),
    }
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    times: dict[str, dict[str, list[float]]] = {path: {} for path in pages}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        print(f"browser: Debian Chromium {browser.version}, headless")
        for path in [p for _ in range(repeats) for p in pages]:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            outside: list[str] = []

            def record(request: Any, out: list[str] = outside) -> None:
                if not request.url.startswith(base):
                    out.append(request.url)

            page.on("request", record)
            page.add_init_script(_DRAWN_JS)
            page.goto(base + path, timeout=120_000)
            figures: dict[str, float] = {}
            if path.startswith("/ours"):
                page.wait_for_function("window.__benchDrawnMs !== undefined", timeout=120_000)
                figures["interactive"] = page.evaluate("FacilityMap.instance.readyMs") / 1000
                figures["drawn"] = page.evaluate("window.__benchDrawnMs") / 1000
                figures["markers"] = page.evaluate("window.__benchMarkers")
                if page.evaluate("window.FacilityBasemap !== undefined"):
                    page.wait_for_function("window.__benchTilesMs !== undefined", timeout=60_000)
                    figures["tiles"] = page.evaluate("window.__benchTilesMs") / 1000
                figures["dom_content_loaded"] = (
                    page.evaluate(
                        "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
                    )
                    / 1000
                )
            else:
                page.wait_for_load_state("load")
                ms = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
                figures["interactive"] = ms / 1000
            if [u for u in outside if not u.startswith("data:")]:
                raise RuntimeError(f"{path} made non-local requests: {outside[:3]}")
            for name, value in figures.items():
                times[path].setdefault(name, []).append(value)
            page.close()
        browser.close()
    server.shutdown()
    return {
        path: {name: float(np.median(values)) for name, values in figures.items()}
        for path, figures in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 facilities, reference 2,000")
    args = parser.parse_args()
    total, reference_total = (10_000, 2_000) if args.quick else (100_000, 10_000)
    small_total = 1_000

    frame = facilities(total)
    print(f"machine: {machine()}, Python {platform.python_version()}")
    print(f"facilities: {total:,} (reference: {reference_total:,})")

    started = time.perf_counter()
    ours_html = facility_map(frame, now=NOW, asset_mode="served").get_root().render()
    ours_cold = time.perf_counter() - started
    started = time.perf_counter()
    ours_html = facility_map(frame, now=NOW, asset_mode="served").get_root().render()
    ours_warm = time.perf_counter() - started
    inline_html = facility_map(frame, now=NOW, asset_mode="inline").get_root().render()
    small_html = (
        facility_map(frame.iloc[:small_total], now=NOW, asset_mode="served").get_root().render()
    )

    reference_frame = frame.iloc[:reference_total]
    started = time.perf_counter()
    reference_html = folium_reference(reference_frame).get_root().render()
    reference_build = time.perf_counter() - started

    mb = 1e6
    per_ours = ours_warm / total * 1e6
    per_reference = reference_build / reference_total * 1e6
    print(
        f"build:  ours {ours_cold:.2f} s cold (incl. font subset), {ours_warm:.2f} s warm "
        f"for {total:,} | folium MarkerCluster {reference_build:.2f} s for {reference_total:,}"
    )
    print(
        f"        per facility: ours {per_ours:.1f} us, folium {per_reference:.1f} us "
        f"-> {per_reference / per_ours:.0f}x faster"
    )
    ours_bytes = len(ours_html.encode("utf-8"))
    inline_bytes = len(inline_html.encode("utf-8"))
    reference_bytes = len(reference_html.encode("utf-8"))
    print(
        f"size:   ours {ours_bytes / mb:.2f} MB served page "
        f"({inline_bytes / mb:.2f} MB standalone) for {total:,} | "
        f"folium {reference_bytes / mb:.2f} MB for {reference_total:,}"
    )
    print(
        f"        per facility: ours {ours_bytes / total:.0f} B, folium "
        f"{reference_bytes / reference_total:.0f} B -> "
        f"{(reference_bytes / reference_total) / (ours_bytes / total):.0f}x smaller"
    )
    if not CHROMIUM.exists():
        print("interactive: skipped (no /usr/bin/chromium)")
        return
    with tempfile.TemporaryDirectory(prefix="bench-webmap-") as tmp:
        archive = BasemapArchive(basemap_from_osm(JINGAN, Path(tmp) / "jingan.pmtiles").path)
        tiles = VectorTiles(TILE_URL, archive.max_zoom, archive.label_characters)
        street = {"now": NOW, "asset_mode": "served", "center": JINGAN_CENTER, "zoom": 15}
        times = browser_times(
            {
                "/ours.html": ours_html,
                "/ours-small.html": small_html,
                "/reference.html": localise_reference(reference_html),
                "/ours-street.html": facility_map(frame, **street).get_root().render(),
                "/ours-basemap.html": facility_map(
                    frame, base_map="vector", vector_tiles=tiles, **street
                )
                .get_root()
                .render(),
            },
            basemap=archive,
        )
    ours_s = times["/ours.html"]["interactive"]
    reference_s = times["/reference.html"]["interactive"]
    print(
        f"interactive in headless Chromium (median of 3): ours {ours_s:.2f} s for {total:,} "
        f"(all clustered) | folium {reference_s:.2f} s for {reference_total:,} (load event)"
    )
    print(
        f"        per facility: ours {ours_s / total * 1e6:.1f} us, folium "
        f"{reference_s / reference_total * 1e6:.1f} us -> "
        f"{(reference_s / reference_total) / (ours_s / total):.0f}x faster"
    )
    for path, size, page in (
        ("/ours-small.html", small_total, small_html),
        ("/ours.html", total, ours_html),
    ):
        figures = times[path]
        print(
            f"ours, {size:>7,} facilities ({len(page.encode('utf-8')) / mb:.2f} MB, median of 3, "
            "loopback): "
            f"DOMContentLoaded {figures['dom_content_loaded'] * 1000:.0f} ms, "
            f"markers drawn {figures['drawn'] * 1000:.0f} ms "
            f"({figures['markers']:.0f} marker icons on screen)"
        )
    plain, based = times["/ours-street.html"], times["/ours-basemap.html"]
    print(
        f"on Jing'an at zoom 15, {total:,} facilities (median of 3, loopback): "
        f"with base map interactive {based['interactive'] * 1000:.0f} ms, markers drawn "
        f"{based['drawn'] * 1000:.0f} ms, first tiles painted {based['tiles'] * 1000:.0f} ms | "
        f"without base map interactive {plain['interactive'] * 1000:.0f} ms, markers drawn "
        f"{plain['drawn'] * 1000:.0f} ms"
    )
    checks = {
        "build < 2 s (warm)": ours_warm < 2.0,
        "build < 2 s (cold)": ours_cold < 2.0,
        "HTML < 5 MB": max(ours_bytes, inline_bytes) < 5 * mb,
        "interactive < 3 s": ours_s < 3.0,
        "with base map interactive < 1 s": based["interactive"] < 1.0,
        "first tiles painted < 1.5 s": based["tiles"] < 1.5,
    }
    print("targets: " + ", ".join(f"{k} {'met' if ok else 'NOT met'}" for k, ok in checks.items()))


if __name__ == "__main__":
    main()
