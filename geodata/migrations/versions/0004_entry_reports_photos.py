"""How to get in (``entry_*`` columns), users' reports and facility photos.

``facilities`` gains ``entry_method`` (one of :data:`geodata.entry_methods.ENTRY_METHODS`;
the constraint is :func:`geodata.entry_methods.entry_check_sql` as a literal),
``entry_phone`` and ``entry_note``. ``facility_reports`` keeps users' reports (the source as a
keyed hash, the reporter's token as its SHA-256) and ``facility_photos`` staff's photos as JPEG
``bytea`` (re-encoded without metadata, with a thumbnail). ``store_state.report_salt`` is the
secret of the source hashes, made here once per database.

Revision ID: 0004_entry_reports_photos
Revises: 0003_door_events
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0004_entry_reports_photos"
down_revision = "0003_door_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE facilities
          ADD COLUMN entry_method text CONSTRAINT facilities_entry_method CHECK (
            entry_method IN ('walk_in', 'scan_register', 'face_registration', 'app_unlock',
                             'call_keeper', 'staff_escort')),
          ADD COLUMN entry_phone text,
          ADD COLUMN entry_note text
        """
    )
    op.execute(
        "ALTER TABLE store_state ADD COLUMN report_salt text NOT NULL "
        "DEFAULT md5(random()::text || clock_timestamp()::text) || "
        "md5(random()::text || clock_timestamp()::text)"
    )
    op.execute(
        """
        CREATE TABLE facility_reports (
          report_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          facility_id text COLLATE "C" NOT NULL,
          type text NOT NULL CONSTRAINT facility_reports_type CHECK (
            type IN ('locked_during_hours', 'closed_for_good', 'moved', 'wrong_details',
                     'missing_amenity', 'other')),
          note text,
          source text NOT NULL,
          token_hash text NOT NULL,
          created_at timestamptz NOT NULL,
          status text NOT NULL DEFAULT 'pending' CONSTRAINT facility_reports_status
            CHECK (status IN ('pending', 'confirmed', 'dismissed')),
          resolved_at timestamptz,
          resolved_by text
        )
        """
    )
    op.execute(
        "CREATE INDEX facility_reports_facility ON facility_reports (facility_id, created_at)"
    )
    op.execute("CREATE INDEX facility_reports_created ON facility_reports (created_at)")
    op.execute(
        """
        CREATE TABLE facility_photos (
          photo_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          facility_id text COLLATE "C" NOT NULL,
          image bytea NOT NULL,
          thumb bytea NOT NULL,
          width integer NOT NULL,
          height integer NOT NULL,
          created_at timestamptz NOT NULL,
          actor text NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX facility_photos_facility ON facility_photos (facility_id, photo_id)")


def downgrade() -> None:
    op.execute("DROP TABLE facility_photos")
    op.execute("DROP TABLE facility_reports")
    op.execute("ALTER TABLE store_state DROP COLUMN report_salt")
    op.execute(
        "ALTER TABLE facilities DROP COLUMN entry_method, DROP COLUMN entry_phone, "
        "DROP COLUMN entry_note"
    )
