"""Flag clips: the MP4 the media gateway records around each flag (path, span, size, hash, state).

Revision ID: 0004
Revises: 0001
Create Date: 2025-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("flags", sa.Column("clip_state", sa.String(16), nullable=True))
    op.add_column("flags", sa.Column("clip_path", sa.String(512), nullable=True))
    op.add_column("flags", sa.Column("clip_reason", sa.String(32), nullable=True))
    op.add_column("flags", sa.Column("clip_start_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("flags", sa.Column("clip_end_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("flags", sa.Column("clip_size", sa.Integer(), nullable=True))
    op.add_column("flags", sa.Column("clip_sha256", sa.String(64), nullable=True))
    op.create_index("ix_flags_clip_path", "flags", ["clip_path"])


def downgrade() -> None:
    op.drop_index("ix_flags_clip_path", table_name="flags")
    for column in ("clip_sha256", "clip_size", "clip_end_at", "clip_start_at", "clip_reason", "clip_path", "clip_state"):
        with op.batch_alter_table("flags") as batch:
            batch.drop_column(column)
