"""Door and sensor devices, their events and the replay store (see :mod:`geodata.events`).

Events never raise ``store_state.change_counter``: workers follow ``facility_events.seq``.

Revision ID: 0003_door_events
Revises: 0002_holiday_calendar
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0003_door_events"
down_revision = "0002_holiday_calendar"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE devices (
          device_id text PRIMARY KEY,
          facility_id text NOT NULL,
          key_sha256 text NOT NULL CONSTRAINT devices_key_hex CHECK (key_sha256 ~ '^[0-9a-f]{64}$'),
          created_at timestamptz NOT NULL,
          revoked_at timestamptz
        );
        CREATE INDEX devices_facility ON devices (facility_id);
        CREATE TABLE facility_events (
          seq bigserial PRIMARY KEY,
          facility_id text NOT NULL,
          device_id text NOT NULL REFERENCES devices (device_id),
          type text NOT NULL CONSTRAINT facility_events_type
            CHECK (type IN ('entry', 'occupied', 'vacant', 'opened', 'locked')),
          at timestamptz NOT NULL,
          received_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX facility_events_facility ON facility_events (facility_id, type, at);
        CREATE TABLE event_replays (
          replay_key text PRIMARY KEY,
          at timestamptz NOT NULL
        );
        CREATE INDEX event_replays_at ON event_replays (at);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE event_replays; DROP TABLE facility_events; DROP TABLE devices")
