"""Conference terminals reached over SIP: the hub dials them and shows them like cameras.

Revision ID: 0008
Revises: 0001
Create Date: 2025-03-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "terminals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("sip_uri", sa.String(256), nullable=False),
        sa.Column("region", sa.String(128), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_terminals"),
        sa.UniqueConstraint("name", name="uq_terminals_name"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name="fk_terminals_created_by_users", ondelete="SET NULL"),
    )
    op.create_index("ix_terminals_region", "terminals", ["region"])


def downgrade() -> None:
    op.drop_table("terminals")
