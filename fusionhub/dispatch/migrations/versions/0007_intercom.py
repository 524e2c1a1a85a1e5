"""Push-to-talk intercom: rooms formed from cases, recorded bursts.

Revision ID: 0007
Revises: 0001
Create Date: 2025-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0001"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "intercom_rooms",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("region", sa.String(128), nullable=False),
        sa.Column("team_ids", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_intercom_rooms"),
        sa.UniqueConstraint("case_id", name="uq_intercom_rooms_case_id"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_intercom_rooms_case_id_cases", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name="fk_intercom_rooms_created_by_users", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_intercom_rooms_region", "intercom_rooms", ["region"])

    op.create_table(
        "ptt_bursts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("room_id", sa.String(200), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("speaker_id", sa.Integer(), nullable=True),
        sa.Column("speaker_name", sa.String(64), nullable=False),
        _ts("started_at"),
        _ts("ended_at"),
        sa.Column("end_reason", sa.String(32), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("packets", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        _ts("recorded_at"),
        sa.PrimaryKeyConstraint("id", name="pk_ptt_bursts"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_ptt_bursts_case_id_cases", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["speaker_id"], ["users.id"], name="fk_ptt_bursts_speaker_id_users", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_ptt_bursts_room_id", "ptt_bursts", ["room_id"])
    op.create_index("ix_ptt_bursts_case_id", "ptt_bursts", ["case_id"])
    op.create_index("ix_ptt_bursts_started_at", "ptt_bursts", ["started_at"])


def downgrade() -> None:
    op.drop_table("ptt_bursts")
    op.drop_table("intercom_rooms")
