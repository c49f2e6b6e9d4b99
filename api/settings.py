"""Service settings, read from ``FINDER_*`` environment variables (only ``api`` reads them).

=========================  =========================================================================
variable                   meaning
=========================  =========================================================================
FINDER_STORE               GeoPackage file of the embedded store (default: the sample, copied into
                           the user's data directory on first use)
FINDER_DATABASE_URL        ``postgresql://...``: use PostgreSQL + PostGIS instead of the GeoPackage
FINDER_BOUNDARIES          district boundary file (WGS-84 GeoJSON with adcode, name); default the
                           bundled Shanghai districts
FINDER_POPULATION_RASTER   GeoTIFF of persons per cell (GHS-POP, WorldPop) for population-weighted
                           coverage; default none (2020 census county totals, spread evenly)
FINDER_CALENDAR            holiday / make-up working day CSV (default the bundled one)
FINDER_CORS_ORIGINS        comma-separated origins allowed to call the API from a browser
FINDER_API_KEYS_FILE       JSON file of hashed API keys (see ``finder keys``)
FINDER_APPROVAL_NO         审图号 printed on maps where a base map needs one
FINDER_TIANDITU_KEY        Tianditu key for the Tianditu base map
FINDER_LOG_LEVEL           logging level (INFO)
FINDER_MAX_UPLOAD_MB       largest bulk-import upload, MB (50)
FINDER_IMPORT_MAX_EXPANDED_MB  most an imported archive (XLSX, zipped Shapefile) may expand to, MiB
                           (512)
FINDER_IMPORT_MAX_RATIO    largest compression ratio of an archive member of 1 MiB or more (100)
FINDER_IMPORT_MAX_ROWS     most rows of an imported file (2,000,000)
FINDER_IMPORT_MAX_CELLS    most cells (rows x columns) of an imported file (50,000,000)
FINDER_INDEX_POLL_S        interval between looks for changes by other processes (at most 1 s) (0.5)
FINDER_STREETS             walking network (``.npz`` of ``finder streets``) for ``metric=walk`` and
                           isochrones; default ``<store>.streets.npz`` beside the GeoPackage store
                           when that file exists, else none (straight-line answers only)
FINDER_BASEMAP             vector base map (``.pmtiles`` of ``finder basemap build``) served at
                           ``/basemap/{z}/{x}/{y}.mvt`` and drawn under every web map; default
                           ``<store>.basemap.pmtiles`` beside the GeoPackage store when it exists
FINDER_TABLE_DIR           directory of the facility table files that every worker and CLI process
                           memory-maps (one per store and change counter); default
                           ``<store>.tables`` beside the GeoPackage store, the user cache
                           directory with PostGIS
FINDER_STORE_LOCK_TIMEOUT_S  longest wait of a write for another write's lock, s (5); then 503 /
                           exit 2 (GeoPackage busy timeout; PostgreSQL ``lock_timeout``)
FINDER_DB_CONNECT_TIMEOUT_S  PostgreSQL connect timeout, s (5)
FINDER_DB_STATEMENT_TIMEOUT_S  PostgreSQL ``statement_timeout`` of every statement, s (30)
FINDER_DB_IDLE_TIMEOUT_S   PostgreSQL ``idle_in_transaction_session_timeout``, and the age after
                           which an unused pooled connection is closed, s (60)
FINDER_DB_KEEPALIVE_S      TCP keepalive idle time and interval (3 probes) to PostgreSQL, s (10)
FINDER_HEADER_TIMEOUT_S    ``finder serve``: a connection must send a request's headers within this
                           many seconds of connecting (or of its previous answer), else it is
                           closed, s (10)
FINDER_BODY_TIMEOUT_S      longest wait for the next part of a request body, s (30); then 408
FINDER_LIMIT_CONCURRENCY   ``finder serve``: connections + requests in progress per worker beyond
                           which requests are answered 503 at once (1000)
FINDER_REPORTS_PER_HOUR    users' reports one client address may send per hour and worker (6, all
                           of them at once if it likes)
FINDER_PHOTO_MAX_MB        largest photo upload, MB (10)
FINDER_MAX_REQUESTS_PER_CONNECTION  ``finder serve``: a keep-alive connection is closed after this
                           many requests, so clients spread over the workers again (1000)
FINDER_EVENT_WINDOW_S      a device event whose ``at`` is further than this from now is refused
                           as stale, s (300); also how long replay keys are kept (twice this)
FINDER_DEVICE_EVENTS_PER_S events one device may post per second and worker (20), beyond a burst
FINDER_DEVICE_EVENT_BURST  of this many (100); then 429 for that device only
=========================  =========================================================================
"""

from __future__ import annotations

import shutil
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import platformdirs
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from geodata.basemap_archive import basemap_path_for
from geodata.readers import DEFAULT_LIMITS, ReadLimits
from geodata.sample import BUNDLED_SAMPLE

if TYPE_CHECKING:
    from geodata.postgis import DatabaseTimeouts


def default_store_path() -> Path:
    """The GeoPackage in the user's data directory, created from the bundled sample if absent."""
    path = Path(platformdirs.user_data_dir("zhigong-finder")) / "facilities.gpkg"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(BUNDLED_SAMPLE, path)
    return path


class Settings(BaseSettings):
    """All settings of the service; see the module docstring for the variables."""

    model_config = SettingsConfigDict(env_prefix="FINDER_", extra="ignore")

    store: Path | None = None
    database_url: str | None = None
    boundaries: Path | None = None
    population_raster: Path | None = None
    calendar: Path | None = None
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    api_keys_file: Path | None = None
    approval_no: str = ""
    tianditu_key: str = ""
    log_level: str = "INFO"
    max_upload_mb: int = Field(default=50, ge=1, le=2000)
    import_max_expanded_mb: int = Field(default=DEFAULT_LIMITS.max_expanded_mb, ge=1)
    import_max_ratio: int = Field(default=DEFAULT_LIMITS.max_ratio, ge=1)
    import_max_rows: int = Field(default=DEFAULT_LIMITS.max_rows, ge=1)
    import_max_cells: int = Field(default=DEFAULT_LIMITS.max_cells, ge=1)
    index_poll_s: float = Field(default=0.5, ge=0.0, le=3600.0)
    streets: Path | None = None
    basemap: Path | None = None
    table_dir: Path | None = None
    store_lock_timeout_s: float = Field(default=5.0, gt=0.0, le=600.0)
    db_connect_timeout_s: float = Field(default=5.0, ge=2.0, le=600.0)
    db_statement_timeout_s: float = Field(default=30.0, gt=0.0, le=86400.0)
    db_idle_timeout_s: float = Field(default=60.0, gt=0.0, le=86400.0)
    db_keepalive_s: float = Field(default=10.0, ge=1.0, le=3600.0)
    header_timeout_s: float = Field(default=10.0, gt=0.0, le=3600.0)
    body_timeout_s: float = Field(default=30.0, gt=0.0, le=3600.0)
    limit_concurrency: int = Field(default=1000, ge=1)
    max_requests_per_connection: int = Field(default=1000, ge=1)
    reports_per_hour: int = Field(default=6, ge=1, le=100_000)
    photo_max_mb: int = Field(default=10, ge=1, le=100)
    event_window_s: float = Field(default=300.0, ge=1.0, le=86400.0)
    device_events_per_s: float = Field(default=20.0, gt=0.0)
    device_event_burst: int = Field(default=100, ge=1)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @model_validator(mode="after")
    def _one_backend(self) -> Settings:
        if self.store is not None and self.database_url:
            raise ValueError("set FINDER_STORE or FINDER_DATABASE_URL, not both")
        if self.database_url and not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ValueError("FINDER_DATABASE_URL must start with postgresql://")
        return self

    def database_timeouts(self) -> DatabaseTimeouts:
        """The limits of every PostgreSQL call (see :class:`geodata.postgis.DatabaseTimeouts`)."""
        from geodata.postgis import DatabaseTimeouts

        return DatabaseTimeouts(
            connect_s=self.db_connect_timeout_s,
            statement_s=self.db_statement_timeout_s,
            lock_s=self.store_lock_timeout_s,
            idle_s=self.db_idle_timeout_s,
            keepalive_s=self.db_keepalive_s,
        )

    def read_limits(self) -> ReadLimits:
        """What an imported file may expand to (``FINDER_IMPORT_MAX_*``)."""
        return ReadLimits(
            max_expanded_mb=self.import_max_expanded_mb,
            max_ratio=self.import_max_ratio,
            max_rows=self.import_max_rows,
            max_cells=self.import_max_cells,
        )

    def store_path(self) -> Path:
        """The GeoPackage path, falling back to the user's data directory copy of the sample."""
        return self.store if self.store is not None else default_store_path()

    def boundaries_cache_dir(self) -> Path | None:
        """Where the national boundaries are cached: beside the GeoPackage store, or the user
        cache directory (``None``) with PostGIS."""
        return None if self.database_url else self.store_path().parent

    def streets_path(self) -> Path | None:
        """The walking network file to load: ``streets``, else ``<store>.streets.npz`` beside
        the GeoPackage store when it exists (the file ``finder streets`` writes), else ``None``.
        """
        if self.streets is not None:
            return self.streets
        if self.database_url:
            return None
        store = self.store_path()
        beside = store.with_name(store.name + ".streets.npz")
        return beside if beside.exists() else None

    def table_path(self) -> Path:
        """The directory of the facility table files every process maps (``finder.table_file``):
        ``table_dir``, else ``<store>.tables`` beside the GeoPackage store, else (PostGIS) the
        user's cache directory."""
        if self.table_dir is not None:
            return self.table_dir
        if self.database_url:
            return Path(platformdirs.user_cache_dir("zhigong-finder")) / "tables"
        store = self.store_path()
        return store.with_name(store.name + ".tables")

    def basemap_path(self) -> Path | None:
        """The base map archive to serve: ``basemap``, else ``<store>.basemap.pmtiles`` beside
        the GeoPackage store when it exists (the file ``finder basemap build`` writes), else
        ``None`` (maps without a base map).
        """
        if self.basemap is not None:
            return self.basemap
        if self.database_url:
            return None
        beside = basemap_path_for(self.store_path())
        return beside if beside.exists() else None


@lru_cache
def get_settings() -> Settings:
    """The settings of this process (tests build their own ``Settings`` instead)."""
    return Settings()
