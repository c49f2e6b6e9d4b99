"""The facility store: facilities (geography point + GiST), audit trail, imports, change counter.

The same columns and CHECK constraints as the GeoPackage store (:mod:`geodata.store`). ``geog`` is
a WGS-84 ``geography(Point, 4326)`` generated from ``lon``/``lat``, so the two can never disagree.
``id`` sorts bytewise (``COLLATE "C"``), as in SQLite, whatever the database's locale. There is
no index on ``kind`` (three values: a scan is as quick), and ``facility_audit.import_id`` is not
a foreign key (the store writes both rows in one transaction; a per-row check would slow imports).

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute(
        """
        CREATE TABLE facilities (
          id text COLLATE "C" PRIMARY KEY,
          name text,
          kind text,
          format text,
          address text,
          province text,
          city text,
          district text,
          adcode text,
          lon double precision NOT NULL,
          lat double precision NOT NULL,
          source_crs text,
          access text,
          organization text,
          opening_hours text,
          amenities text,
          star_rating integer,
          area_m2 double precision,
          phone text,
          operator text,
          status text,
          verified_at date,
          source text,
          created_at timestamptz NOT NULL,
          updated_at timestamptz NOT NULL,
          version integer NOT NULL,
          geog geography(Point, 4326) NOT NULL
            GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography) STORED,
          CONSTRAINT facilities_lonlat_range
            CHECK (lon BETWEEN -180 AND 180 AND lat BETWEEN -90 AND 90),
          CONSTRAINT facilities_kind
            CHECK (kind IN ('mother_room', 'worker_station', 'rest_stop')),
          CONSTRAINT facilities_access CHECK (access IN ('public', 'members', 'employees')),
          CONSTRAINT facilities_status
            CHECK (status IN ('open', 'temporarily_closed', 'closed')),
          CONSTRAINT facilities_star_rating
            CHECK (star_rating IS NULL OR star_rating BETWEEN 1 AND 5),
          CONSTRAINT facilities_employees_organization
            CHECK (access <> 'employees' OR organization IS NOT NULL)
        )
        """
    )
    op.execute("CREATE INDEX facilities_geog ON facilities USING gist (geog)")
    op.execute("CREATE INDEX facilities_adcode ON facilities (adcode)")
    op.execute("CREATE INDEX facilities_lonlat ON facilities (lon, lat)")
    op.execute(
        """
        CREATE TABLE imports (
          import_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          at timestamptz NOT NULL,
          actor text NOT NULL,
          source_name text,
          inserted integer,
          updated integer
        )
        """
    )
    op.execute(
        """
        CREATE TABLE facility_audit (
          seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          at timestamptz NOT NULL,
          actor text NOT NULL,
          action text NOT NULL,
          facility_id text COLLATE "C" NOT NULL,
          import_id bigint,
          changes jsonb
        )
        """
    )
    op.execute("CREATE INDEX facility_audit_id ON facility_audit (facility_id, seq)")
    op.execute(
        """
        CREATE TABLE store_state (
          singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
          change_counter bigint NOT NULL
        )
        """
    )
    op.execute("INSERT INTO store_state (singleton, change_counter) VALUES (true, 0)")


def downgrade() -> None:
    op.execute("DROP TABLE store_state")
    op.execute("DROP TABLE facility_audit")
    op.execute("DROP TABLE imports")
    op.execute("DROP TABLE facilities")
