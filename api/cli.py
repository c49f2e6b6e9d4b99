"""The ``finder`` command. Other tools and scripts call it: keep these forms stable.

::

    finder import FILE [--crs wgs84|cgcs2000|gcj02|bd09] [--kind KIND] [--access ACCESS]
                       [--columns FIELD=HEADER,...] [--report REJECTS.csv] [--dry-run]
    finder export --format geojson|csv|gpkg --out FILE [--public-only]
    finder nearest LON LAT [--crs ...] [--k N] [--kind KIND] [--json]
    finder serve [--host 127.0.0.1] [--port 8000] [--workers N]
    finder map --out map.html [--kind KIND] [--district ADCODE] [--base-map none|osm|tianditu|amap]
               [--lang zh|en] [--all-access]
    finder streets FILE.osm|FILE.osm.pbf [--out NETWORK.npz]
    finder basemap build FILE.osm|FILE.osm.pbf [--out BASEMAP.pmtiles]
    finder coverage [--district ADCODE ...] [--radius 1000] [--kind KIND ...] [--format json|csv]
                    [--out FILE] [--gaps GAPS.geojson] [--map coverage.html] [--basemap F.osm]
                    [--population-raster PEOPLE.tif]
    finder coverage --national [--radius 1000] [--format json|csv] [--out FILE]
    finder suggest --district ADCODE [--radius 1000] [--n 5] [--candidates FILE.csv]
                   [--objective area|population] [--weight none|use] [--use-days 28]
                   [--out SITES.geojson]
    finder print --district ADCODE [--radius 1000] [--paper A4|A3] [--orientation ...] --out F.pdf
                 [--basemap FILE.osm|FILE.osm.pbf] [--suggest N [--weight use] [--use-days 28]]
    finder print --all-districts [--paper ...] [--orientation ...] --out atlas.pdf
    finder print --national [--paper A3|A4] [--orientation ...] --out national.pdf|png
    finder keys add NAME --scope edit|read-private|read-all [--org ORG ...] [--member]
                         [--expires YYYY-MM-DD | --days N]
    finder keys list [--json]
    finder keys revoke NAME
    finder devices add FACILITY_ID     (prints the device's secret once)
    finder devices list [--facility ID] [--json]
    finder devices revoke DEVICE_ID
    finder usage --district ADCODE [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--out FILE.csv|.pdf]
                 [--paper A4|A3] [--orientation portrait|landscape]
    finder db upgrade                  (PostgreSQL + PostGIS: FINDER_DATABASE_URL)
    finder calendar load FILE [--actor NAME]    (the State Council's holiday arrangement, CSV)
    finder calendar show [--year YEAR]

Coverage, siting and maps count public facilities only unless ``--all-access`` is given (internal
planning); every figure says which kinds and access classes it counts.

Every command takes ``--store PATH`` (the GeoPackage; default ``FINDER_STORE``, else a copy of the
bundled sample in the user's data directory). Exit status: 0 when the command ran (an import with
rejected rows included), 2 for a usage error, an unreadable input file or a store that cannot be
used now (unreachable, locked beyond FINDER_STORE_LOCK_TIMEOUT_S, full or read-only), with a
one-line message.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from geodata.crs import CRS_NAMES
from geodata.errors import FinderError
from geodata.schema import ACCESS_CLASSES, ANONYMOUS, KINDS, Viewer
from maps.paper import ORIENTATIONS, PAPERS

#: Gap outlines in ``finder coverage --gaps`` are simplified to this, metres (0.2 mm at 1:25,000).
GAP_SIMPLIFY_M = 5.0
logger = logging.getLogger("finder")


def _store_path(args: argparse.Namespace) -> Path:
    from api.settings import Settings

    if args.store:
        return Path(args.store)
    return Settings().store_path()


def _open_store(args: argparse.Namespace) -> Any:
    """``--store`` (a GeoPackage), else the store the settings name (PostGIS or GeoPackage)."""
    from api.settings import Settings
    from api.state import open_store
    from geodata.store import GeoPackageStore

    settings = Settings()
    if args.store:
        return GeoPackageStore(Path(args.store), lock_timeout_s=settings.store_lock_timeout_s)
    return open_store(settings)


def _table_dir(args: argparse.Namespace) -> Path:
    """The directory of the facility table files of the store :func:`_open_store` opens."""
    from api.settings import Settings

    return (Settings(store=Path(args.store)) if args.store else Settings()).table_path()


def _districts(args: argparse.Namespace) -> Any:
    from api.settings import Settings
    from geodata.boundaries import load_districts

    path = getattr(args, "boundaries", None) or Settings().boundaries
    return load_districts(path)


def _places(args: argparse.Namespace) -> Any:
    """The boundaries that name points: ``--boundaries``, else the national ones (the china
    extra, cached beside the store), else Shanghai's (:func:`geodata.boundaries.load_places`)."""
    from api.settings import Settings
    from geodata.boundaries import load_places

    settings = Settings()
    path = getattr(args, "boundaries", None) or settings.boundaries
    store = getattr(args, "store", None)
    cache_dir = Path(store).parent if store else settings.boundaries_cache_dir()
    return load_places(path, cache_dir=cache_dir)


def _print_place(args: argparse.Namespace) -> None:
    """Say on standard error which province, city and district the query point lies in."""
    from geodata.boundaries import place_points
    from geodata.crs import to_wgs84

    lon, lat = to_wgs84(args.lon, args.lat, args.crs)
    place = place_points([lon], [lat], _places(args)).iloc[0]
    if place["adcode"] is None:
        print(f"warning: {place['unplaced']}", file=sys.stderr)
        return
    names = " ".join(dict.fromkeys(n for n in place[["province", "city", "district"]] if n))
    print(f"point in {names} (adcode {place['adcode']})", file=sys.stderr)


def cmd_import(args: argparse.Namespace) -> int:
    """Import a facility list; print the counts; write the reject report."""
    from api.settings import Settings
    from geodata.imports import import_file
    from geodata.validate import parse_column_map

    columns = parse_column_map(args.columns) if args.columns else None
    store = _open_store(args)
    try:
        report = import_file(
            store,
            args.file,
            crs=args.crs,
            columns=columns,
            kind=args.kind,
            access=args.access,
            actor=args.actor,
            districts=_places(args),
            dry_run=args.dry_run,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
            limits=Settings().read_limits(),
        )
    finally:
        store.close()
    if args.report:
        with Path(args.report).open("wb") as out:
            report.write_csv(out)
    print(
        f"{report.total_rows} rows: {report.accepted} accepted "
        f"({report.inserted} new, {report.updated} updated, {report.unchanged} unchanged), "
        f"{report.rejected} rejected, {report.warnings} warnings"
        + (" [dry run: nothing written]" if report.dry_run else "")
    )
    for issue in report.issues[: args.show]:
        where = f"row {issue.row}" if issue.row else "file"
        print(f"  {where} {issue.level} {issue.field}: {issue.reason}")
    if len(report.issues) > args.show:
        print(
            f"  ... {len(report.issues) - args.show} more (--show N prints them)"
            + (f"; every rejected row is in {args.report}" if args.report else "")
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export the store as GeoJSON, CSV (formulas quoted, :mod:`geodata.cells`) or GeoPackage
    (WGS-84)."""
    from geodata.export import export_bytes
    from geodata.store import GeoPackageStore

    store = _open_store(args)
    try:
        frame = store.frame()
    finally:
        store.close()
    if args.public_only:
        frame = frame[frame["access"] == "public"]
    out = Path(args.out)
    if args.format in ("csv", "geojson"):
        out.write_bytes(export_bytes(frame, args.format))
    else:
        if out.exists():
            out.unlink()
        target = GeoPackageStore(out)
        try:
            target.copy_frame(frame, actor="export", source_name=str(_store_path(args)))
        finally:
            target.close()
    print(f"exported {len(frame)} facilities to {out}")
    return 0


def cmd_nearest(args: argparse.Namespace) -> int:
    """Print the nearest facilities the caller may use."""
    from finder.index import FacilityFilter, FacilityIndex

    store = _open_store(args)
    try:
        index = FacilityIndex.from_store(store, table_dir=_table_dir(args))
    finally:
        store.close()
    _print_place(args)
    where = FacilityFilter(kinds=args.kind, viewer=_viewer(args))
    results = index.nearest(args.lon, args.lat, k=args.k, crs=args.crs, where=where)
    rows = []
    for r in results:
        facility = index.record(r.position)
        rows.append(
            {
                "id": r.facility_id,
                "name": facility["name"],
                "kind": facility["kind"],
                "access": facility["access"],
                "distance_m": round(r.distance_m, 1),
                "bearing_deg": round(r.bearing_deg, 1),
                "walk_s_est": round(r.walk_s_est),
                "lon": r.lon,
                "lat": r.lat,
                "crs": r.crs,
                "address": facility["address"],
                "opening_hours": facility["opening_hours"],
            }
        )
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for row in rows:
            print(f"{row['distance_m']:>9.1f} m  {row['kind']:<15} {row['id']:<24} {row['name']}")
        if not rows:
            print("no facility found")
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    """Write a standalone HTML map (every script and style inlined: works offline)."""
    from api.settings import Settings
    from api.state import load_calendar, store_calendar
    from maps.webmap import facility_map

    settings = Settings()
    store = _open_store(args)
    try:
        frame = store.frame()
        calendar = store_calendar(load_calendar(settings), store)
    finally:
        store.close()
    fmap = facility_map(
        frame,
        viewer=_viewer(args),
        kinds=args.kind,
        districts=args.district,
        base_map=args.base_map,
        language=args.lang,
        boundaries=_districts(args),
        approval_no=settings.approval_no or None,
        tianditu_key=settings.tianditu_key or None,
        asset_mode="inline",
        calendar=calendar,
    )
    fmap.save(args.out)
    print(f"wrote {args.out}")
    return 0


def streets_path_for(store_path: Path) -> Path:
    """Where the walking network of a store is kept: beside it, ``<store>.streets.npz``."""
    return store_path.with_name(store_path.name + ".streets.npz")


def cmd_streets(args: argparse.Namespace) -> int:
    """Import an OpenStreetMap file as the walking network kept beside the store."""
    from geodata.streets import save_network, streets_from_osm

    network = streets_from_osm(args.file)
    out = Path(args.out) if args.out else streets_path_for(_store_path(args))
    save_network(network, out)
    dropped = network.dropped_part_sizes
    print(
        f"walking network: {network.n_nodes:,} nodes, {network.n_edges:,} edges "
        f"(largest connected part; {len(dropped)} smaller parts with "
        f"{sum(dropped):,} nodes dropped) written to {out}"
    )
    return 0


def cmd_basemap(args: argparse.Namespace) -> int:
    """Build the vector-tile base map (PMTiles) kept beside the store, progress on stderr."""
    from geodata.basemap import basemap_from_osm, basemap_path_for

    out = Path(args.out) if args.out else basemap_path_for(_store_path(args))
    summary = basemap_from_osm(
        args.file, out, progress=lambda line: print(line, file=sys.stderr, flush=True)
    )
    print(
        f"base map: {summary.features:,} features in {summary.tiles:,} tiles, "
        f"{summary.bytes / 1e6:,.1f} MB, written to {out} in {summary.seconds:,.1f} s"
    )
    return 0


def _coverage_inputs(args: argparse.Namespace) -> tuple[Any, Any]:
    """(grid, counted facilities) of a coverage command: the API's question (one
    :class:`finder.index.FacilityFilter`), for an anonymous caller or (``--all-access``) one who
    sees every access class."""
    from finder.coverage import build_sample_grid, counted_facilities
    from finder.index import FacilityIndex

    store = _open_store(args)
    try:
        index = FacilityIndex.from_store(store)
    finally:
        store.close()
    where = _counted_where(args)
    national = getattr(args, "national", False)
    districts = _places(args) if national else _districts(args)
    population = None
    if args.population_raster:
        from finder.population import population_from_geotiff

        population = population_from_geotiff(
            args.population_raster, bounds=tuple(districts.total_bounds)
        )
    if national:  # every county of China with the china extra, at most 5,000 cells each
        from finder.national import NATIONAL_MAX_CELLS

        grid = build_sample_grid(
            districts, population=population, max_cells_per_district=NATIONAL_MAX_CELLS
        )
    else:
        grid = build_sample_grid(districts, population=population)
    return grid, counted_facilities(index, where)


def _counted_where(args: argparse.Namespace) -> Any:
    """The facilities a coverage command counts: ``--kind``, as :func:`_viewer` sees them."""
    from finder.index import FacilityFilter

    return FacilityFilter(kinds=args.kind, viewer=_viewer(args))


def _viewer(args: argparse.Namespace) -> Viewer:
    """Who the command asks as: anonymous, or (``--all-access``) one who sees everything."""
    return Viewer(see_all=True) if args.all_access else ANONYMOUS


def _wrote(path: str | Path) -> None:
    print(f"wrote {path}", file=sys.stderr)


def _write_json(data: Any, out: str | None) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
        _wrote(out)
    else:
        print(text)


def cmd_coverage(args: argparse.Namespace) -> int:
    """Per-district coverage table (JSON or CSV), gap polygons and a coverage web map.

    Standard output holds only the table; messages go to standard error.
    """
    from finder.coverage import (
        RegionGrids,
        coverage_layers,
        coverage_table,
        region_coverage,
        rounded_table,
    )
    from geodata.cells import frame_to_csv
    from maps.coveragemap import coverage_map

    if args.national:
        return _national_table(args)
    grid, counted = _coverage_inputs(args)
    lon, lat, kind = counted.lon, counted.lat, counted.kind
    adcodes = None
    if args.district:
        grids = RegionGrids(grid, _places(args))
        result = region_coverage(grids, args.district, lon, lat, radius_m=args.radius, kind=kind)
        adcodes = result.table["adcode"].tolist()
        grid = grids.grid_for(adcodes)
    else:
        result = coverage_table(grid, lon, lat, radius_m=args.radius, kind=kind)
    if args.walk_minutes:
        import dataclasses

        table = result.table.merge(_walk_columns(args, grid, lon, lat), on="adcode", how="left")
        result = dataclasses.replace(result, table=table)
    if args.format == "csv":
        if args.out:
            frame_to_csv(rounded_table(result.table_with_regions()), args.out)
            _wrote(args.out)
        else:
            print(frame_to_csv(rounded_table(result.table_with_regions())), end="")
    else:
        document = result.to_json()
        document["metadata"]["counted"] = counted.summary
        _write_json(document, args.out)
    if args.gaps:
        gaps = coverage_layers(
            grid, lon, lat, radius_m=args.radius, adcodes=adcodes, simplify_m=GAP_SIMPLIFY_M
        )["gaps"]
        gaps["metadata"]["counted"] = counted.summary
        if args.basemap:
            from geodata.osmcontext import context_from_osm, nearest_road_names

            roads = context_from_osm(args.basemap).roads
            for feature in gaps["features"]:
                properties = feature["properties"]
                properties["near_roads"] = nearest_road_names(
                    roads, properties["lon"], properties["lat"]
                )
        _write_json(gaps, args.gaps)
    if args.map:
        coverage_map(
            grid,
            lon,
            lat,
            kind,
            radius_m=args.radius,
            adcode=adcodes[0] if adcodes and len(adcodes) == 1 else None,
            coverage=result,
        ).save(args.map)
        _wrote(args.map)
    return 0


def _national_table(args: argparse.Namespace) -> int:
    """``finder coverage --national``: provinces, cities and ranked counties (JSON or CSV)."""
    from finder.national import national_coverage, rounded_national
    from geodata.cells import frame_to_csv

    if args.district or args.gaps or args.map or args.walk_minutes:
        print(
            "finder coverage: --national takes no --district, --gaps, --map or --walk-minutes",
            file=sys.stderr,
        )
        return 2
    grid, counted = _coverage_inputs(args)
    national = national_coverage(
        grid, counted.lon, counted.lat, radius_m=args.radius, kind=counted.kind
    )
    if args.format == "csv":
        table = rounded_national(national.to_frame())
        if args.out:
            frame_to_csv(table, args.out)
            _wrote(args.out)
        else:
            print(frame_to_csv(table), end="")
    else:
        document = national.to_json()
        document["metadata"]["counted"] = counted.summary
        _write_json(document, args.out)
    print(f"population basis: {national.population_basis}", file=sys.stderr)
    return 0


def _walk_columns(args: argparse.Namespace, grid: Any, lon: Any, lat: Any) -> Any:
    """Walking-time coverage columns from the network kept beside the store."""
    from finder.walk import WalkNetwork, build_facility_table, walk_coverage_by_district
    from geodata.errors import OffNetwork
    from geodata.streets import load_network

    path = streets_path_for(_store_path(args))
    if not path.exists():
        raise OffNetwork(f"no walking network at {path}: run 'finder streets FILE.osm' first")
    network = WalkNetwork(load_network(path))
    table = build_facility_table(network, lon, lat)
    walk = walk_coverage_by_district(
        grid, network, table, minutes=args.walk_minutes, radius_m=args.radius, adcodes=args.district
    )
    suffix = f"{args.walk_minutes:g}min"
    return walk.rename(
        columns={
            "walk_share": f"walk_share_{suffix}",
            "line_share": "line_share_on_network",
            "points_on_network": "walk_points_on_network",
        }
    )[["adcode", f"walk_share_{suffix}", "line_share_on_network", "walk_points_on_network"]]


def cmd_suggest(args: argparse.Namespace) -> int:
    """Propose new sites that cover the most of a district (maximal covering location)."""
    import pandas as pd

    from finder.coverage import RegionGrids
    from geodata.crs import to_wgs84

    grid, counted = _coverage_inputs(args)
    grids = RegionGrids(grid, _places(args))
    lon, lat = counted.lon, counted.lat
    cand_lon = cand_lat = None
    if args.candidates:
        from geodata.readers import read_table
        from geodata.validate import map_headers

        raw = read_table(args.candidates)
        mapping, _ = map_headers(raw.columns)
        table = raw.rename(columns=mapping)
        if "lon" not in table and "_geom_lon" in raw:
            table["lon"], table["lat"] = raw["_geom_lon"], raw["_geom_lat"]
        cand_lon, cand_lat = to_wgs84(
            pd.to_numeric(table["lon"]).to_numpy(float),
            pd.to_numeric(table["lat"]).to_numpy(float),
            args.crs,
        )
    result = _suggested(
        args, grids, lon, lat, args.n, candidates_lon=cand_lon, candidates_lat=cand_lat
    )
    _write_json(result.to_geojson() if args.out else result.to_json(), args.out)
    print(
        f"coverage of {args.district} at {args.radius:g} m: {result.before_share:.1%} -> "
        f"{result.after_share:.1%} with {len(result.lon)} new sites; {_weighting_words(result)}",
        file=sys.stderr,
    )
    return 0


def _suggested(
    args: argparse.Namespace, grids: Any, lon: Any, lat: Any, n_sites: int, **candidates: Any
) -> Any:
    """New sites for ``--district`` (:func:`finder.siting.suggest_sites`), weighted by use
    with ``--weight use``."""
    from finder.siting import suggest_sites

    region = grids.region(args.district)
    grid = grids.merged_grid(region)
    use = None
    if args.weight == "use":
        use = _observed_use(args, grid.district(region.adcode))
    return suggest_sites(
        grid,
        region.adcode,
        lon,
        lat,
        n_sites=n_sites,
        radius_m=args.radius,
        objective=args.objective,
        use=use,
        **candidates,
    )


def _observed_use(args: argparse.Namespace, cells: Any) -> Any:
    """Door counts of the counted facilities near a district over ``--use-days``
    (:func:`finder.siting.observed_use_near`)."""
    from finder.index import FacilityIndex
    from finder.siting import observed_use_near
    from finder.usage import USE_WINDOW_DAYS, use_window
    from geodata.events import event_log

    store = _open_store(args)
    try:
        index = FacilityIndex.from_store(store)
        counted = index.frame.iloc[index.select(_counted_where(args))]
        window = use_window(args.use_days or USE_WINDOW_DAYS)
        return observed_use_near(event_log(store), counted, cells, args.radius, window)
    finally:
        store.close()


def _weighting_words(result: Any) -> str:
    """How a siting answer weighted demand, in a line."""
    w = result.weighting
    if w["weighting"] != "use":
        return "demand not weighted by use"
    return (
        f"demand weighted by use from {w['from']} to {w['to']} ({w['days']} days): "
        f"{w['measured_facilities']} facilities with door counts, {w['unmeasured_facilities']} "
        f"without (assumed {w['reference_visits_per_day']:g} visits a day, the average)"
    )


def cmd_print(args: argparse.Namespace) -> int:
    """Print a district coverage map to PDF or PNG, or an atlas of every district (PDF)."""
    from api.settings import Settings
    from geodata.osmcontext import context_from_osm
    from maps.atlas import print_atlas
    from maps.printmap import print_coverage_map

    if [bool(args.district), args.all_districts, args.national].count(True) != 1:
        print(
            "finder print: give one of --district ADCODE, --all-districts or --national",
            file=sys.stderr,
        )
        return 2
    if args.suggest and not args.district:
        print("finder print: --suggest needs --district", file=sys.stderr)
        return 2
    grid, counted = _coverage_inputs(args)
    if args.national:
        from finder.national import national_coverage
        from maps.national import print_national_sheet

        national = national_coverage(
            grid, counted.lon, counted.lat, radius_m=args.radius, kind=counted.kind
        )
        sheet = print_national_sheet(
            args.out,
            national,
            grid.districts,
            paper=args.paper,
            orientation=args.orientation,
            approval_number=Settings().approval_no or None,
            counted=counted.summary,
        )
        print(f"wrote {sheet.path} ({args.paper} {args.orientation})", file=sys.stderr)
        return 0
    adcode = sites = None
    if args.district:
        from finder.coverage import RegionGrids

        grids = RegionGrids(grid, _places(args))
        region = grids.region(args.district)
        if args.suggest:
            sites = _suggested(args, grids, counted.lon, counted.lat, args.suggest)
        grid = grids.grid_for(region.counties, exact=region.level != "county")
        adcode = region.adcode if region.level == "county" else None
    options: dict[str, Any] = {
        "radius_m": args.radius,
        "paper": args.paper,
        "orientation": args.orientation,
        "approval_number": Settings().approval_no or None,
        "counted": counted.summary,
        "context": context_from_osm(args.basemap) if args.basemap else None,
    }
    if args.all_districts:
        atlas = print_atlas(args.out, grid, counted.lon, counted.lat, counted.kind, **options)
        print(f"wrote {atlas.path} ({atlas.pages} pages)", file=sys.stderr)
        return 0
    printed = print_coverage_map(
        args.out,
        grid,
        counted.lon,
        counted.lat,
        counted.kind,
        adcode=adcode,
        sites=sites,
        **options,
    )
    print(f"wrote {printed.path} ({args.paper} {args.orientation})", file=sys.stderr)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    """Add, list or revoke API keys; a new key is printed once and never stored."""
    import datetime as dt

    from api.auth import create_api_key, expiry_from_date, list_api_keys, revoke_api_key
    from api.settings import Settings

    path = args.keys_file or Settings().api_keys_file
    if path is None:
        print("finder keys: set FINDER_API_KEYS_FILE or pass --keys-file", file=sys.stderr)
        return 2
    if args.action == "list":
        now = dt.datetime.now(dt.UTC)
        rows = [k.to_json(now) for k in list_api_keys(path)]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=2))
            return 0
        if not rows:
            print(f"no keys in {path}")
        for i, row in enumerate(rows):
            if i == 0:
                print("\t".join(row))
            cells = (
                (",".join(v) or "-") if isinstance(v, list) else "-" if v is None else str(v)
                for v in row.values()
            )
            print("\t".join(cells))
        return 0
    if args.action == "revoke":
        info = revoke_api_key(path, args.name)
        print(f"key {info.name!r} revoked at {info.revoked.isoformat() if info.revoked else ''}")
        return 0
    expires = None
    if args.expires:
        expires = expiry_from_date(args.expires)
    elif args.days is not None:
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=args.days)
    key = create_api_key(
        path, args.name, args.scope, args.org or (), member=args.member, expires=expires
    )
    print(key)
    print(
        f"key {args.name!r} ({', '.join(sorted(set(args.scope)))}) added to {path}"
        + (f", expires {expires.isoformat(timespec='seconds')}" if expires else "")
        + "; this is the only time the key is shown",
        file=sys.stderr,
    )
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    """Add, list or revoke door and sensor devices; a new device's secret is printed once."""
    from api.auth import create_device
    from geodata.events import event_log

    store = _open_store(args)
    try:
        log = event_log(store)
        if args.action == "list":
            rows = [d._asdict() for d in log.devices(args.facility)]
            if args.json:
                print(json.dumps(rows, ensure_ascii=False, indent=2))
            elif not rows:
                print("no devices")
            for i, row in enumerate([] if args.json else rows):
                if i == 0:
                    print("\t".join(row))
                print("\t".join("-" if v is None else str(v) for v in row.values()))
            return 0
        if args.action == "revoke":
            device = log.revoke_device(args.device_id)
            print(
                f"device {device.device_id} of {device.facility_id} revoked at {device.revoked_at}"
            )
            return 0
        device, secret = create_device(log, args.facility_id)
    finally:
        store.close()
    print(secret)
    print(
        f"device {device.device_id} added for facility {device.facility_id}; this is the only "
        "time its secret is shown. It signs each event body with HMAC-SHA256 under the key "
        "SHA-256(secret) (see docs/live.md)",
        file=sys.stderr,
    )
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    """Visits per facility, day and hour of a district, from door entry events (CSV), or the
    printed table per facility (``--out F.pdf``)."""
    import datetime as dt

    from finder.hours import local_today
    from finder.usage import usage_from_log, usage_report
    from geodata.cells import frame_to_csv
    from geodata.events import event_log

    last = dt.date.fromisoformat(args.to) if args.to else local_today()
    first = dt.date.fromisoformat(args.from_) if args.from_ else last - dt.timedelta(days=6)
    pdf = bool(args.out) and Path(args.out).suffix.lower() == ".pdf"
    store = _open_store(args)
    try:
        frame = store.frame()
        if not args.all_access:
            frame = frame[frame["access"] == "public"]
        frame = frame[frame["adcode"] == args.district]
        if pdf:
            report = usage_report(event_log(store), frame, first, last)
        else:
            table = usage_from_log(event_log(store), frame, first, last)
    finally:
        store.close()
    if pdf:
        from maps.usagesheet import print_usage_table

        printed = print_usage_table(
            args.out, report, adcode=args.district, paper=args.paper, orientation=args.orientation
        )
        print(
            f"wrote {printed.path} ({printed.pages} pages, {printed.total_visits:,} visits)",
            file=sys.stderr,
        )
        return 0
    if args.out:
        frame_to_csv(table, args.out)
        _wrote(args.out)
    else:
        print(frame_to_csv(table), end="")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    """Create or migrate the PostGIS schema (Alembic) of FINDER_DATABASE_URL."""
    from api.settings import Settings
    from geodata.migrations import migrate

    url = args.database_url or Settings().database_url
    if not url:
        print("finder db: set FINDER_DATABASE_URL or pass --database-url", file=sys.stderr)
        return 2
    migrate(url)
    print("database schema is up to date")
    return 0


def cmd_calendar(args: argparse.Namespace) -> int:
    """Load an official holiday arrangement into the store, or show the calendar in use."""
    from api.settings import Settings
    from api.state import load_calendar, store_calendar
    from finder.calendar import STATUTORY_RULES_FROM, STATUTORY_RULES_UNTIL
    from finder.hours import HolidayCalendar, local_today

    if args.action == "load":
        if not args.file:
            print("finder calendar load: give the FILE (CSV date,type,name)", file=sys.stderr)
            return 2
        try:
            loaded = HolidayCalendar.from_csv(args.file)
        except OSError as exc:
            print(f"finder calendar load: cannot read the file: {exc}", file=sys.stderr)
            return 2
    store = _open_store(args)
    try:
        if args.action == "load":
            days = [(day, entry.type, entry.name) for day, entry in loaded.entries.items()]
            store.load_calendar(days, source=Path(args.file).name, actor=args.actor)
            years = ", ".join(str(y) for y in sorted(loaded.years))
            print(f"loaded {len(days)} days of {years} from {args.file} into the store")
            return 0
        calendar = store_calendar(load_calendar(Settings()), store)
    finally:
        store.close()
    if args.year is not None:
        source = calendar.sources.get(args.year, "provisional: statutory holidays only")
        print(f"{args.year}: {source}")
        for day, entry in calendar.days_of(args.year).items():
            print(f"{day} {day:%a} {entry.type:<8} {entry.name}")
        return 0
    note = "statutory holidays only (no 调休 or bridging days known)"
    lines = {
        year: f"{year}  provisional  {len(calendar.days_of(year))} {note}"
        for year in range(STATUTORY_RULES_FROM, max(calendar.years))
        if year not in calendar.years
    }
    for year, source in calendar.sources.items():
        special = calendar.days_of(year).values()
        holidays = sum(entry.type == "holiday" for entry in special)
        workdays = len(special) - holidays
        lines[year] = f"{year}  official  {holidays} holidays, {workdays} 调休 workdays: {source}"
    for _, line in sorted(lines.items()):
        print(line)
    print(f"{max(calendar.years) + 1}-{STATUTORY_RULES_UNTIL}  provisional  {note}")
    warning = calendar.missing_next_year(local_today())
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the API with uvicorn, with the serving limits of the settings (:mod:`api.serving`)."""
    import os

    import uvicorn

    from api.settings import Settings

    if args.store:
        os.environ["FINDER_STORE"] = str(Path(args.store).resolve())
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        access_log=False,  # api.access logs every request once
        http="api.serving:GuardedHttpToolsProtocol",
        limit_concurrency=Settings().limit_concurrency,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="finder", description="职工设施地图 facility finder")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help_text: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--store", help="GeoPackage store (default FINDER_STORE or the sample)")
        p.set_defaults(func=func)
        return p

    p = add("import", cmd_import, "import a CSV/XLSX/GeoJSON/GeoPackage/Shapefile list")
    p.add_argument("file")
    p.add_argument(
        "--crs",
        choices=CRS_NAMES,
        help="coordinate system of the file's coordinates (default: what the coordinate "
        "headers name, as lng_gcj02 or 经度(GCJ02), else wgs84)",
    )
    p.add_argument("--kind", choices=KINDS, help="kind for rows without one")
    p.add_argument("--access", choices=ACCESS_CLASSES, help="access class for rows without one")
    p.add_argument(
        "--columns",
        metavar="FIELD=HEADER,...",
        help="map headers not understood by name, e.g. 'lon=经度X,lat=纬度X,name=点位'",
    )
    p.add_argument(
        "--report",
        help="write the rejected rows (their own cells, then field, reason and row) to this "
        "CSV; fix it and import it again as it is",
    )
    p.add_argument("--boundaries", help="district boundary file for adcode assignment")
    p.add_argument("--actor", default="cli", help="name recorded in the audit trail")
    p.add_argument("--dry-run", action="store_true", help="validate only, write nothing")
    p.add_argument("--show", type=int, default=20, help="issues to print (default 20)")

    p = add("export", cmd_export, "export the store")
    p.add_argument("--format", choices=("geojson", "csv", "gpkg"), required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--public-only", action="store_true", help="only public facilities")

    p = add("nearest", cmd_nearest, "the nearest facilities to a point")
    p.add_argument("lon", type=float)
    p.add_argument("lat", type=float)
    p.add_argument("--crs", choices=CRS_NAMES, default="wgs84")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--kind", choices=KINDS, action="append")
    p.add_argument(
        "--all-access",
        action="store_true",
        help="include members/employees facilities (administrators)",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--boundaries", help="district boundary file naming the point's place")

    p = add("map", cmd_map, "write a standalone (offline) HTML facility map")
    p.add_argument("--out", required=True)
    p.add_argument("--kind", choices=KINDS, action="append")
    p.add_argument("--district", action="append", help="adcode or name; repeatable")
    p.add_argument("--base-map", choices=("none", "osm", "tianditu", "amap"), default="none")
    p.add_argument("--lang", choices=("zh", "en"), default="zh")
    p.add_argument("--boundaries", help="district boundary file")
    p.add_argument(
        "--all-access",
        action="store_true",
        help="include members/employees facilities (internal maps only)",
    )

    p = add("streets", cmd_streets, "import an OpenStreetMap walking network for the store")
    p.add_argument("file", help=".osm or .osm.pbf")
    p.add_argument("--out", help="network file (default: <store>.streets.npz beside the store)")

    basemap = sub.add_parser("basemap", help="build the served base map from OpenStreetMap")
    basemap_sub = basemap.add_subparsers(dest="action", required=True)
    p = basemap_sub.add_parser(
        "build", help="OpenStreetMap extract -> vector tiles (PMTiles) for 'finder serve'"
    )
    p.add_argument("--store", help="GeoPackage store (default FINDER_STORE or the sample)")
    p.set_defaults(func=cmd_basemap)
    p.add_argument("file", help=".osm or .osm.pbf")
    p.add_argument(
        "--out",
        help="archive (default: <store>.basemap.pmtiles beside the store, served by default)",
    )

    def basemap_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--basemap",
            help="OpenStreetMap extract (.osm/.osm.pbf): roads, water and 街道/镇 for context "
            "and for naming gaps by their nearest roads",
        )

    def coverage_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--radius", type=float, default=1000.0, help="reach in metres (1000)")
        p.add_argument("--kind", choices=KINDS, action="append")
        p.add_argument("--boundaries", help="district boundary file")
        p.add_argument(
            "--all-access",
            action="store_true",
            help="count members/employees facilities too (internal planning)",
        )
        p.add_argument(
            "--population-raster",
            help="GeoTIFF of persons per cell (GHS-POP, WorldPop) for population-weighted shares",
        )

    def siting_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--objective", choices=("area", "population"), default="area")
        p.add_argument(
            "--weight",
            choices=("none", "use"),
            default="none",
            help="use: weight demand by door entries per day of the facilities near it "
            "(docs/coverage.md)",
        )
        p.add_argument(
            "--use-days", type=int, help="window of observed use: whole days before today (28)"
        )

    p = add("coverage", cmd_coverage, "coverage of each district within a radius")
    coverage_options(p)
    basemap_option(p)
    p.add_argument(
        "--district",
        action="append",
        help="adcode of a province (41), city (4101) or county (410102); repeatable "
        "(default all districts); a province or city adds its aggregate row",
    )
    p.add_argument(
        "--national",
        action="store_true",
        help="one row per province and per city, counties ranked by a 15-minute walk, over "
        "--boundaries or else every county of China (china extra)",
    )
    p.add_argument("--format", choices=("json", "csv"), default="json")
    p.add_argument("--out", help="table file (default: standard output)")
    p.add_argument("--gaps", help="write the out-of-reach areas as GeoJSON")
    p.add_argument("--map", help="write a coverage web map (HTML)")
    p.add_argument(
        "--walk-minutes",
        type=float,
        help="add the share within this many minutes' walk on the street network "
        "(needs 'finder streets'), beside the straight-line share",
    )

    p = add("suggest", cmd_suggest, "propose new sites for a district")
    coverage_options(p)
    p.add_argument(
        "--district", required=True, help="adcode of a county, city (4101) or province (41)"
    )
    p.add_argument("--n", type=int, default=5, help="number of new sites (5)")
    p.add_argument("--candidates", help="CSV/XLSX/GeoJSON of candidate sites (default: a grid)")
    p.add_argument("--crs", choices=CRS_NAMES, default="wgs84", help="of the candidates")
    siting_options(p)
    p.add_argument("--out", help="write the proposed sites as GeoJSON")

    p = add("print", cmd_print, "print a district coverage map (PDF or PNG)")
    coverage_options(p)
    basemap_option(p)
    p.add_argument("--district", help="adcode of a county (310106), city (4101) or province")
    p.add_argument(
        "--all-districts",
        action="store_true",
        help="an atlas (PDF): overview of the city, then one page per district",
    )
    p.add_argument(
        "--national",
        action="store_true",
        help="the national sheet: province choropleth and ranking (PDF or PNG)",
    )
    p.add_argument("--paper", choices=PAPERS, default="A4")
    p.add_argument("--orientation", choices=ORIENTATIONS, default="landscape")
    p.add_argument("--out", required=True, help=".pdf or .png")
    p.add_argument(
        "--suggest", type=int, metavar="N", help="mark N proposed new sites (with --district)"
    )
    siting_options(p)

    p = add("keys", cmd_keys, "manage API keys (stored hashed)")
    key_actions = p.add_subparsers(dest="action", required=True)
    key_add = key_actions.add_parser("add", help="add a key; it is printed once")
    key_add.add_argument("name", help="the key's name: the actor in the audit trail")
    key_add.add_argument(
        "--scope", action="append", required=True, choices=("edit", "read-private", "read-all")
    )
    key_add.add_argument(
        "--org",
        action="append",
        help="organisation whose employees facilities the key may see (and with the edit "
        "scope edit); repeatable",
    )
    key_add.add_argument("--member", action="store_true", help="the key sees members facilities")
    expiry = key_add.add_mutually_exclusive_group()
    expiry.add_argument(
        "--expires",
        metavar="YYYY-MM-DD",
        help="the last day the key works (China time; refused from the next midnight)",
    )
    expiry.add_argument("--days", type=int, help="the key works for this many days from now")
    key_list = key_actions.add_parser("list", help="every key, never its secret")
    key_list.add_argument("--json", action="store_true")
    key_revoke = key_actions.add_parser("revoke", help="refuse a key from now on")
    key_revoke.add_argument("name")
    for action in (key_add, key_list, key_revoke):
        action.add_argument("--keys-file", help="key file (default FINDER_API_KEYS_FILE)")

    p = add("devices", cmd_devices, "manage door and sensor devices (secrets stored hashed)")
    device_actions = p.add_subparsers(dest="action", required=True)
    device_add = device_actions.add_parser("add", help="add a device; its secret is printed once")
    device_add.add_argument("facility_id")
    device_list = device_actions.add_parser("list", help="every device, never its secret")
    device_list.add_argument("--facility", help="only the devices of this facility")
    device_list.add_argument("--json", action="store_true")
    device_actions.add_parser("revoke", help="refuse a device from now on").add_argument(
        "device_id"
    )

    p = add("usage", cmd_usage, "visits per facility, day and hour of a district (CSV)")
    p.add_argument("--district", required=True, help="adcode")
    p.add_argument("--from", dest="from_", metavar="YYYY-MM-DD", help="first day (6 days ago)")
    p.add_argument("--to", metavar="YYYY-MM-DD", help="last day (default today, China time)")
    p.add_argument(
        "--out",
        help="CSV file (default: standard output), or a .pdf: the printed table per facility",
    )
    p.add_argument("--paper", choices=PAPERS, default="A4", help="of a .pdf")
    p.add_argument("--orientation", choices=ORIENTATIONS, default="portrait", help="of a .pdf")
    p.add_argument(
        "--all-access", action="store_true", help="count members/employees facilities too"
    )

    p = add("calendar", cmd_calendar, "load or show the holiday calendar (official arrangements)")
    p.add_argument("action", choices=("load", "show"))
    p.add_argument("file", nargs="?", help="load: the arrangement as CSV date,type,name")
    p.add_argument("--year", type=int, help="show: list the days of this year")
    p.add_argument("--actor", default="cli", help="load: name recorded with the calendar")

    p = add("db", cmd_db, "create or migrate the PostgreSQL + PostGIS schema")
    p.add_argument("action", choices=("upgrade",))
    p.add_argument("--database-url", help="default FINDER_DATABASE_URL")

    p = add("serve", cmd_serve, "serve the API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``finder`` console command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except FinderError as exc:
        message = " ".join(str(exc).split())  # one line, also for multi-line driver messages
        print(f"finder {args.command}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
