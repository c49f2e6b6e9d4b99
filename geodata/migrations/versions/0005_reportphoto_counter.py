"""Users' report photos and the reports' change counter.

``facility_photos.report_id`` marks the one photo a reporter sent with a report (unique per
report, deleted with it): the same table and encoding as staff's photos, left out of the
facility's photos until staff publish a copy. ``report_state.report_counter`` grows with every
new report and every change of a report's status, in a row of its own (reports never wait for
the facility writers' turn on ``store_state``), so that workers re-read the reports only when
it moved.

Revision ID: 0005_reportphoto_counter
Revises: 0004_entry_reports_photos
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0005_reportphoto_counter"
down_revision = "0004_entry_reports_photos"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE facility_photos ADD COLUMN report_id bigint
          REFERENCES facility_reports (report_id) ON DELETE CASCADE;
        CREATE UNIQUE INDEX facility_photos_report ON facility_photos (report_id)
          WHERE report_id IS NOT NULL;
        CREATE TABLE report_state (report_counter bigint NOT NULL);
        INSERT INTO report_state VALUES (0);
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP TABLE report_state; DROP INDEX facility_photos_report; "
        "ALTER TABLE facility_photos DROP COLUMN report_id"
    )
