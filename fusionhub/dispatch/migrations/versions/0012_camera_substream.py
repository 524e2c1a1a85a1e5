"""A camera's substream: a second, smaller stream of the same picture that analytics decodes
instead of the main one (which viewers and clips keep).

Revision ID: 0012
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cameras", sa.Column("substream_url", sa.String(2048), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cameras") as batch:
        batch.drop_column("substream_url")
