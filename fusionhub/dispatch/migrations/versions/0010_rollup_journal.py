"""The statistics rollup's journal: each transition inserts its counter deltas instead of updating
shared counter rows (which serialised concurrent transitions on their locks until COMMIT).

Revision ID: 0010
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0003"
branch_labels = None
depends_on = None

METRICS = ("filed", "dispatched", "handled", "handled_late", "closed", "on_time", "current")


def upgrade() -> None:
    op.create_table(
        "case_stat_deltas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dim", sa.String(16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("region", sa.String(128), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        *(sa.Column(m, sa.Integer(), nullable=False) for m in METRICS),
        sa.PrimaryKeyConstraint("id", name="pk_case_stat_deltas"),
    )


def downgrade() -> None:
    op.drop_table("case_stat_deltas")
