"""Staff take photos down: ``facility_photos.deleted_at`` / ``deleted_by``.

A photo taken down keeps its row (so the later photos keep their numbers and no number ever
names another photo), without its image and thumbnail, with who took it down and when.

Revision ID: 0006_photo_removal
Revises: 0005_reportphoto_counter
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0006_photo_removal"
down_revision = "0005_reportphoto_counter"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE facility_photos ADD COLUMN deleted_at timestamptz, ADD COLUMN deleted_by text"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE facility_photos DROP COLUMN deleted_at, DROP COLUMN deleted_by")
