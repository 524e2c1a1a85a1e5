"""Zone rules (rule, least count, time windows, re-alert, bin threshold and reference) and the
clean frame of each flag (review-based training); an index for the open-case lookup of flags.

Revision ID: 0005
Revises: 0001
Create Date: 2025-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None

ZONE_COLUMNS = ("rule", "min_count", "windows", "realert_s", "threshold", "reference_path", "reference_at")


def upgrade() -> None:
    op.add_column("zones", sa.Column("rule", sa.String(32), nullable=True))
    op.add_column("zones", sa.Column("min_count", sa.Integer(), nullable=True))
    op.add_column("zones", sa.Column("windows", sa.JSON(), nullable=True))
    op.add_column("zones", sa.Column("realert_s", sa.Float(), nullable=True))
    op.add_column("zones", sa.Column("threshold", sa.Float(), nullable=True))
    op.add_column("zones", sa.Column("reference_path", sa.String(512), nullable=True))
    op.add_column("zones", sa.Column("reference_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("flags", sa.Column("frame_path", sa.String(512), nullable=True))
    op.create_index("ix_cases_camera_id_zone_id", "cases", ["camera_id", "zone_id"])


def downgrade() -> None:
    op.drop_index("ix_cases_camera_id_zone_id", table_name="cases")
    with op.batch_alter_table("flags") as batch:
        batch.drop_column("frame_path")
    with op.batch_alter_table("zones") as batch:
        for name in ZONE_COLUMNS:
            batch.drop_column(name)
