"""The hash of each case's newest timeline entry, kept on the case: a timeline cut short at its end
(the newest entries deleted) no longer passes for intact.

Revision ID: 0009
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("timeline_head", sa.String(64), nullable=True))
    # cases filed before this revision: their newest entry as it is now
    op.execute(
        "UPDATE cases SET timeline_head = (SELECT e.hash FROM case_events e WHERE e.case_id = cases.id "
        "ORDER BY e.seq DESC LIMIT 1)"
    )


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("timeline_head")
