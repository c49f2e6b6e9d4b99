"""The holiday calendar loaded with ``finder calendar load``: one row per special day.

``type`` is ``holiday`` (a day off) or ``workday`` (a weekend day worked, 调休); ``source``,
``loaded_at`` and ``actor`` tell where each year came from. A load replaces whole years.

Revision ID: 0002_holiday_calendar
Revises: 0001_initial
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0002_holiday_calendar"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE holiday_calendar (
          day date PRIMARY KEY,
          type text NOT NULL CONSTRAINT holiday_calendar_type
            CHECK (type IN ('holiday', 'workday')),
          name text NOT NULL,
          source text NOT NULL,
          loaded_at timestamptz NOT NULL,
          actor text NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE holiday_calendar")
