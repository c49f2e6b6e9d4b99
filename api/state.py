"""What the service keeps in memory: the store, a snapshot of the facilities with their index.

:func:`open_store` is the one place that chooses the store backend from the settings.
:class:`LiveFacilities` holds an immutable :class:`Snapshot` (the
:class:`~finder.index.FacilityIndex`, which owns the facility columns, and the store's change
counter), built from the table file every process of the machine maps
(:mod:`finder.table_file`), and swaps in a new one

* at once after every write made through the service (:meth:`LiveFacilities.refresh`), so the
  next request sees the change;
* in the background when another process changed the store: a poller thread
  (:meth:`LiveFacilities.polling`) compares ``store.change_counter()`` every ``poll_s`` seconds
  (at least every second) and swaps in a new snapshot once it is built.

Readers take ``live.current()`` once per request and use that snapshot throughout, so one answer
never mixes two versions of the data. ``current()`` never touches the store: when the database
hangs or is down, requests keep being answered from the last good snapshot, and
:meth:`LiveFacilities.health` tells ``/health`` how the store and the snapshot are doing without
asking the store either. An outage is logged once with its traceback when it starts, as a one-line
reminder every ``remind_s`` seconds while it lasts, and once when the store answers again.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from api.auth import KeyRing
from api.ratelimit import SourceLimiter, throttle_file
from api.settings import Settings
from finder.coverage import PopulationLayer, RegionGrids, SampleGrid, build_sample_grid
from finder.hours import HolidayCalendar, local_today
from finder.index import FacilityFilter, FacilityIndex
from finder.lru import LRUCache
from finder.table_file import columns_of_store
from finder.walk import FacilityTable, WalkNetwork, build_facility_table
from geodata.basemap_archive import BasemapArchive
from geodata.boundaries import load_districts, load_places
from geodata.crs import from_wgs84
from geodata.navigation import links_from_positions
from geodata.schema import COLUMNS, Facility, Viewer
from geodata.store import FacilityStore, GeoPackageStore

if TYPE_CHECKING:
    from api.live import EventWriter, LiveDoors

logger = logging.getLogger(__name__)


def open_store(settings: Settings) -> FacilityStore:
    """The facility store the settings name: PostGIS for ``database_url``, else the GeoPackage."""
    if settings.database_url:
        from geodata.postgis import PostGISStore

        return PostGISStore(settings.database_url, timeouts=settings.database_timeouts())
    return GeoPackageStore(settings.store_path(), lock_timeout_s=settings.store_lock_timeout_s)


def load_calendar(settings: Settings) -> HolidayCalendar:
    """The base holiday calendar of the settings: ``FINDER_CALENDAR``'s file, else the bundled
    one, with provisional statutory holidays for the years it does not cover.

    The service lays the years loaded into the store over it (:func:`store_calendar`).
    """
    if settings.calendar is not None:
        base = HolidayCalendar.from_csv(settings.calendar)
    else:
        base = HolidayCalendar.default()
    return base.with_provisional()


def store_calendar(base: HolidayCalendar, store: FacilityStore) -> HolidayCalendar:
    """``base`` with every year loaded into the store (``finder calendar load``) taken from it."""
    return base.updated_with(HolidayCalendar.from_store_days(store.calendar_days()))


class CalendarWarning:
    """The service's holiday-calendar warning, logged at most once a day.

    From 1 November the next year's official arrangement should be loaded
    (:meth:`finder.hours.HolidayCalendar.missing_next_year`); :meth:`check` returns the warning
    (``/health`` lists it) and logs it the first time it is seen on a (local) day.
    """

    def __init__(self) -> None:
        self._logged_on: dt.date | None = None
        self._lock = threading.Lock()

    def check(self, calendar: HolidayCalendar, today: dt.date | None = None) -> str | None:
        """The warning for ``today`` (default: today in Asia/Shanghai), or ``None``."""
        if today is None:
            today = local_today()
        message = calendar.missing_next_year(today)
        if message is not None:
            with self._lock:
                first_today = self._logged_on != today
                self._logged_on = today
            if first_today:
                logger.warning("holiday calendar: %s", message)
        return message


def _json_value(value: Any) -> Any:
    """A frame cell as a JSON value (NaN / NA -> None, numpy scalars -> Python)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def _stored_row(facility: Facility) -> dict[str, Any]:
    """A facility as the store's frames hold it (dates and times as ISO text)."""
    row = facility.to_row()
    for key in ("verified_at", "created_at", "updated_at"):
        if row[key] is not None:
            row[key] = row[key].isoformat()
    return row


#: Facilities whose navigation positions :meth:`Snapshot.links` converts at once.
NAV_BLOCK = 1024
_NAV = "navigation-positions"


@dataclass
class Snapshot:
    """The facilities at one change-counter value. Do not mutate.

    The snapshot holds the :class:`~finder.index.FacilityIndex`, which owns the facility columns
    (every access class; filter with :func:`api.auth.visible`), the change counter and caches
    only: a facility becomes a dict (:meth:`record`) or JSON only for the answers sent.
    Position ``i`` is index position ``i`` (id order).

    ``shared`` is handed from each snapshot to the next and holds caches keyed by facility id
    (values stamped with :meth:`stamp`), such as the pre-rendered JSON of ``/nearest``: they
    stay valid across snapshots for every facility that did not change, and writes through the
    service evict the ids they touch. ``memo`` is this snapshot's own cache (any keys).
    """

    index: FacilityIndex
    counter: int
    shared: dict[str, Any] = field(default_factory=dict, repr=False)
    memo: dict[Any, Any] = field(default_factory=dict, repr=False)

    def with_changes(self, upserts: list[Facility], deletes: list[str], counter: int) -> Snapshot:
        """A new snapshot with facilities added or replaced and ids removed."""
        rows = pd.DataFrame([_stored_row(f) for f in upserts], columns=list(COLUMNS))
        index = self.index.with_changes(rows if upserts else None, deletes)
        return Snapshot(index, counter, self.shared)

    def visible_frame(self, viewer: Viewer) -> pd.DataFrame:
        """The rows of ``frame`` that ``viewer`` may see, whatever their status: the index's
        mask of ``FacilityFilter(viewer=viewer, statuses=None)``, as every surface selects."""
        return self.index.frame[self.index.mask(FacilityFilter(viewer=viewer, statuses=None))]

    def stamp(self, position: int) -> tuple[str, tuple[Any, ...]]:
        """Id and a stamp of the facility's state at a position: (version, created, updated).

        Every write raises the version; created/updated tell a re-created id from the old one.
        Writes through the service also evict the ids they touch from ``shared`` caches.
        """
        c = self.index.columns
        return self.facility_id(position), (
            c.extra_value("version", position),
            c.extra_value("created_at", position),
            c.extra_value("updated_at", position),
        )

    def facility_id(self, position: int) -> str:
        """The id of the facility at a position."""
        return str(self.index.columns.ids[position])

    def opening_hours(self, position: int) -> str | None:
        """The ``opening_hours`` expression of a position (``None`` where unknown)."""
        c = self.index.columns
        code = int(c.hours[position])
        return c.hours_exprs[code] if code >= 0 else None

    def record(self, position: int, names: Sequence[str] = COLUMNS) -> dict[str, Any]:
        """The facility at a position as JSON-ready fields (``amenities`` a list), or just its
        fields ``names``."""
        rec = {c: _json_value(v) for c, v in self.index.record(position, names).items()}
        if "amenities" in rec:
            rec["amenities"] = [a for a in (rec["amenities"] or "").split(";") if a]
        return rec

    def links(self, position: int) -> dict[str, str]:
        """Navigation links of one facility: Amap (GCJ-02), Baidu (BD-09), ``geo:`` (WGS-84).

        The strings of :func:`geodata.navigation.navigation_links`, with the GCJ-02 / BD-09
        positions converted a block of :data:`NAV_BLOCK` facilities at a time on first use (one
        vectorised conversion instead of two scalar ones per facility), kept in ``memo``.
        """
        c = self.index.columns
        block, row = divmod(int(position), NAV_BLOCK)
        blocks: dict[int, np.ndarray] = self.memo.setdefault(_NAV, {})
        converted = blocks.get(block)
        if converted is None:
            lon = c.lon[block * NAV_BLOCK : (block + 1) * NAV_BLOCK]
            lat = c.lat[block * NAV_BLOCK : (block + 1) * NAV_BLOCK]
            converted = np.column_stack(
                [*from_wgs84(lon, lat, "gcj02"), *from_wgs84(lon, lat, "bd09")]
            )
            blocks[block] = converted
        gx, gy, bx, by = (float(v) for v in converted[row])
        name = str(c.extra_value("name", position))
        wgs84 = (float(c.lon[position]), float(c.lat[position]))
        return links_from_positions(wgs84, (gx, gy), (bx, by), name)


#: A store call unanswered for this long counts as the store being unreachable, seconds.
UNANSWERED_S = 1.0


@dataclass(frozen=True)
class StoreHealth:
    """How the store and the served snapshot are doing, as last seen by the poller.

    ``reachable`` is false when the last look at the store failed or has been waiting for more
    than :data:`UNANSWERED_S`; ``down_s`` is how long it has been unreachable (0 when it is
    reachable). ``snapshot_age_s`` is the time since the served snapshot was last known to
    match the store; ``snapshot_behind`` says the store has changes not served yet.
    """

    reachable: bool
    down_s: float
    snapshot_age_s: float
    snapshot_behind: bool


class LiveFacilities:
    """The current :class:`Snapshot` of a store, kept fresh.

    Parameters
    ----------
    store
        The facility store (source of truth).
    calendar
        Base holiday calendar of the index's "open now" (:func:`load_calendar`); each snapshot
        lays the years loaded into the store over it (:func:`store_calendar`), so a calendar
        loaded by any process is picked up like a facility change.
    poll_s
        Interval between two looks at ``store.change_counter()`` by the poller, seconds
        (at least 0.05, at most 1: the looks also tell :meth:`health` whether the store answers).
    remind_s
        Least interval between two log lines about a continuing outage, seconds.
    table_dir
        Directory of the facility table files shared by the processes of this machine
        (:mod:`finder.table_file`); ``None`` reads the whole store in every process.
    """

    def __init__(
        self,
        store: FacilityStore,
        calendar: HolidayCalendar,
        *,
        poll_s: float = 0.5,
        remind_s: float = 60.0,
        table_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.calendar = calendar
        self.table_dir = table_dir
        self.calendar_warning = CalendarWarning()
        self.poll_s = poll_s
        self.remind_s = remind_s
        self._lock = threading.Lock()
        self._shared: dict[str, Any] = {}
        self._snapshot = self._build()
        self._confirmed_at = time.monotonic()
        self._seen_counter = self._snapshot.counter
        self._asking_since: float | None = None
        self._down_since: float | None = None
        self._reminded_at = 0.0
        self._failed_counter: int | None = None

    def _build(self) -> Snapshot:
        columns, counter = columns_of_store(self.store, self.table_dir)
        calendar = store_calendar(self.calendar, self.store)
        self.calendar_warning.check(calendar)
        snap = Snapshot(FacilityIndex(columns, calendar=calendar), counter, self._shared)
        logger.info("indexed %d facilities at change %d", len(columns), counter)
        return snap

    def current(self) -> Snapshot:
        """The snapshot to answer a request with (never waits for the store)."""
        return self._snapshot

    @contextmanager
    def polling(self) -> Iterator[None]:
        """Run the poller thread, and a watchdog that notices when a look at the store hangs,
        while the block runs (the service's lifetime)."""
        stop = threading.Event()
        interval = min(max(self.poll_s, 0.05), UNANSWERED_S)

        def poll_until_stopped() -> None:
            while not stop.wait(interval):
                self.poll()

        def watch_until_stopped() -> None:
            while not stop.wait(UNANSWERED_S / 4):
                self._watch()

        threads = [
            threading.Thread(target=poll_until_stopped, daemon=True, name="store-poller"),
            threading.Thread(target=watch_until_stopped, daemon=True, name="store-watchdog"),
        ]
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=5.0)

    def poll(self) -> None:
        """Look at the store once: note whether it answers, rebuild the snapshot if it changed."""
        self._asking_since = time.monotonic()
        try:
            counter = self.store.change_counter()
        except Exception as exc:
            self._asking_since = None
            self._unreachable(exc)
            return
        self._asking_since = None
        self._reachable()
        self._seen_counter = counter
        if counter == self._snapshot.counter:
            self._confirmed_at = time.monotonic()
            return
        try:
            self.refresh()
        except Exception:
            if counter != self._failed_counter:  # once per change, not once per poll
                logger.error("rebuilding the facility index failed", exc_info=True)
            self._failed_counter = counter

    def _unreachable(self, exc: Exception | None, since: float | None = None) -> None:
        """Note a failed (``exc``) or hanging (``since``) look at the store, and log it: the
        start of an outage with its traceback, then a reminder every ``remind_s``."""
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now if since is None else since
            self._reminded_at = now
            logger.error(
                "the facility store %s; answering from the facilities of change %d",
                "is unreachable" if exc is not None else f"does not answer within {UNANSWERED_S} s",
                self._snapshot.counter,
                exc_info=exc,
            )
        elif now - self._reminded_at >= self.remind_s:
            self._reminded_at = now
            logger.warning(
                "the facility store is still unreachable after %.0f s%s",
                now - self._down_since,
                "" if exc is None else f": {exc}",
            )

    def _watch(self) -> None:
        """Treat a look at the store unanswered for :data:`UNANSWERED_S` as an outage."""
        asking_since = self._asking_since
        if asking_since is not None and time.monotonic() - asking_since > UNANSWERED_S:
            self._unreachable(None, asking_since)

    def _reachable(self) -> None:
        if self._down_since is not None:
            logger.warning(
                "the facility store answers again after %.1f s",
                time.monotonic() - self._down_since,
            )
            self._down_since = None

    def health(self) -> StoreHealth:
        """The state of the store and the snapshot, from memory (never asks the store)."""
        now = time.monotonic()
        down_since = self._down_since
        asking_since = self._asking_since
        if down_since is None and asking_since is not None and now - asking_since > UNANSWERED_S:
            down_since = asking_since  # the watchdog has not noticed yet
        return StoreHealth(
            reachable=down_since is None,
            down_s=0.0 if down_since is None else now - down_since,
            snapshot_age_s=now - self._confirmed_at,
            snapshot_behind=self._seen_counter != self._snapshot.counter,
        )

    def refresh(self) -> Snapshot:
        """Rebuild now if the store changed since the current snapshot; return the snapshot."""
        with self._lock:
            if self.store.change_counter() != self._snapshot.counter:
                self._snapshot = self._build()
            self._confirmed_at = time.monotonic()
            return self._snapshot

    def applied(self, upserts: list[Facility], deletes: list[str]) -> Snapshot:
        """Publish the effect of one write just committed through this service.

        When the store's change counter moved by exactly one (only this write happened), the
        snapshot is updated incrementally; otherwise it is rebuilt from the store.
        """
        with self._lock:
            for cache in self._shared.values():
                for fid in [*deletes, *(f.id for f in upserts)]:
                    cache.pop(fid, None)
            counter = self.store.change_counter()
            if counter == self._snapshot.counter + 1:
                self._snapshot = self._snapshot.with_changes(upserts, deletes, counter)
            elif counter != self._snapshot.counter:
                self._snapshot = self._build()
            self._confirmed_at = time.monotonic()
            return self._snapshot


@dataclass(frozen=True, eq=False)
class WalkTable:
    """A :class:`~finder.walk.FacilityTable` of some facilities of one snapshot.

    ``positions[i]`` is the snapshot (index) position of table facility ``i``.
    """

    table: FacilityTable
    positions: np.ndarray


class WalkService:
    """The walking network and what the service derives from it, cached.

    * Facility tables (:func:`finder.walk.build_facility_table`) per snapshot and key (the
      caller's visibility and the static filters): kept in the snapshot's ``memo``, so a new
      snapshot (any change of the facilities) starts afresh; at most ``table_cache_size`` per
      snapshot, least recently used dropped first.
    * Isochrone GeoJSON per key (facility id and stamp, minutes, speed), at most
      ``isochrone_cache_size``.

    Parameters
    ----------
    network
        The walking network (WGS-84).
    table_cache_size, isochrone_cache_size
        Sizes of the two LRU caches.
    """

    _TABLES = "walk-tables"

    def __init__(
        self, network: WalkNetwork, *, table_cache_size: int = 32, isochrone_cache_size: int = 256
    ) -> None:
        self.network = network
        self.table_cache_size = table_cache_size
        self.isochrone_cache_size = isochrone_cache_size
        self._isochrones: LRUCache[Hashable, dict[str, Any]] = LRUCache(isochrone_cache_size)

    def table(
        self, snapshot: Snapshot, key: Hashable, positions: Callable[[], np.ndarray]
    ) -> WalkTable:
        """The table of the facilities at ``positions()`` of ``snapshot``, built once per key.

        ``positions`` is called only when the table is not cached; it must depend on nothing
        but ``snapshot`` and ``key``.
        """
        tables: LRUCache[Hashable, WalkTable] = snapshot.memo.setdefault(
            self._TABLES, LRUCache(self.table_cache_size)
        )

        def build() -> WalkTable:
            chosen = np.asarray(positions(), dtype=np.int64)
            c = snapshot.index.columns
            return WalkTable(
                build_facility_table(
                    self.network, c.lon[chosen], c.lat[chosen], ids=c.ids[chosen].tolist()
                ),
                chosen,
            )

        return tables.get_or_build(key, build)

    def isochrone(self, key: Hashable, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The isochrone document of ``key``, made by ``build()`` when not cached."""
        return self._isochrones.get_or_build(key, build)


@dataclass
class AppState:
    """Everything the routes need, built once in the lifespan and kept on ``app.state``.

    ``districts`` are the boundaries of ``FINDER_BOUNDARIES``, ``grid`` their coverage sample
    grid; ``regions`` the grids of any province, city or county, and (``regions.places``) the
    boundaries that name every point (:func:`geodata.boundaries.load_places`); all four are built
    on first use (the districts and the grid take seconds and tens of MB that a worker answering
    only ``/nearest`` and OGC items need not pay; a bad boundaries file is reported then);
    ``walk`` the walking network (``None`` when no network file is configured); ``basemap``
    the served vector base map (``None`` when none is configured); ``doors`` the live door and
    sensor state and ``events`` the writer of their events (:mod:`api.live`).
    """

    settings: Settings
    store: FacilityStore
    live: LiveFacilities
    doors: LiveDoors
    events: EventWriter
    keyring: KeyRing
    walk: WalkService | None = None
    basemap: BasemapArchive | None = None
    #: Raised by every photo added, published or taken down through this worker
    #: (:meth:`photos_changed`): the map pages that show first photos are made again.
    photo_version: int = 0

    def photos_changed(self) -> None:
        """Note a change of the facilities' photos made through this worker."""
        self.photo_version += 1

    @cached_property
    def districts(self) -> gpd.GeoDataFrame:
        """The district boundaries (:func:`geodata.boundaries.load_districts`)."""
        return load_districts(self.settings.boundaries)

    @cached_property
    def grid(self) -> SampleGrid:
        """The coverage sample grid of ``districts``, people-weighted with the configured
        population raster."""
        return build_sample_grid(self.districts, population=self._population())

    def _population(self) -> PopulationLayer | None:
        if self.settings.population_raster is None:
            return None
        from finder.population import population_from_geotiff  # rasterio: only with a raster

        return population_from_geotiff(
            self.settings.population_raster, bounds=tuple(self.districts.total_bounds)
        )

    @cached_property
    def regions(self) -> RegionGrids:
        """The grids of any province, city or county, and the boundaries naming every point."""
        places = functools.partial(
            load_places, self.settings.boundaries, cache_dir=self.settings.boundaries_cache_dir()
        )
        return RegionGrids(self.grid, places)

    @cached_property
    def report_limiter(self) -> SourceLimiter:
        """The throttle of users' reports, per client address (``FINDER_REPORTS_PER_HOUR``),
        shared by the workers of this machine."""
        path = throttle_file(self.settings.table_path(), self.store.identity(), "reports")
        return SourceLimiter(self.settings.reports_per_hour, path=path)
