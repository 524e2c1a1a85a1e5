"""Per-camera analytics settings: how the camera is sampled and how its samples are analysed.

Revision ID: 0006
Revises: 0001
Create Date: 2025-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cameras", sa.Column("sampling", sa.JSON(), nullable=True))
    op.add_column("cameras", sa.Column("analysis", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cameras") as batch:
        batch.drop_column("analysis")
        batch.drop_column("sampling")
