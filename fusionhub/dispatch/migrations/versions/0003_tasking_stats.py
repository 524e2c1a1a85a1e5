"""Tasking (instructions and their recipients), the outbox, the statistics rollup, board indexes.

Revision ID: 0003
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

OPEN_DEADLINE = "status IN ('filed', 'dispatched', 'handling', 'returned') AND deadline_at IS NOT NULL"
TASK_OPEN = "status IN ('pending', 'acknowledged')"


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _int(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.Integer(), nullable=False)


def upgrade() -> None:
    # the board queries at city scale (see bench/cases.py)
    op.create_index("ix_cases_status_created_at", "cases", ["status", "created_at"])
    op.create_index("ix_cases_created_at", "cases", ["created_at"])
    op.create_index(
        "ix_cases_open_deadline",
        "cases",
        ["deadline_at"],
        postgresql_where=sa.text(OPEN_DEADLINE),
        sqlite_where=sa.text(OPEN_DEADLINE),
    )
    op.create_index("ix_tasks_team_id_created_at", "tasks", ["team_id", "created_at"])
    op.create_index(
        "ix_tasks_open_team_id_created_at",
        "tasks",
        ["team_id", "created_at"],
        postgresql_where=sa.text(TASK_OPEN),
        sqlite_where=sa.text(TASK_OPEN),
    )

    op.create_table(
        "instructions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("region", sa.String(128), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        _ts("created_at"),
        _ts("deadline_at"),
        _int("ack_within_s"),
        _ts("cancelled_at", nullable=True),
        sa.Column("cancelled_by", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_instructions"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_instructions_case_id_cases", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name="fk_instructions_created_by_users", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["cancelled_by"], ["users.id"], name="fk_instructions_cancelled_by_users", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_instructions_case_id", "instructions", ["case_id"])
    op.create_index("ix_instructions_region", "instructions", ["region"])
    op.create_index("ix_instructions_created_at", "instructions", ["created_at"])

    op.create_table(
        "instruction_recipients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instruction_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("region", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("ack_due_at", nullable=True),
        _ts("escalated_at", nullable=True),
        _ts("acknowledged_at", nullable=True),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        _ts("reported_at", nullable=True),
        sa.Column("reported_by", sa.Integer(), nullable=True),
        sa.Column("report_note", sa.Text(), nullable=True),
        sa.Column("photo_path", sa.String(512), nullable=True),
        sa.Column("photo_sha256", sa.String(64), nullable=True),
        sa.Column("photo_type", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_instruction_recipients"),
        sa.CheckConstraint(
            "(team_id IS NULL) <> (user_id IS NULL)", name=op.f("ck_instruction_recipients_one_target")
        ),
        sa.ForeignKeyConstraint(
            ["instruction_id"],
            ["instructions.id"],
            name="fk_instruction_recipients_instruction_id_instructions",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name="fk_instruction_recipients_team_id_teams"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_instruction_recipients_user_id_users"),
        sa.ForeignKeyConstraint(
            ["acknowledged_by"],
            ["users.id"],
            name="fk_instruction_recipients_acknowledged_by_users",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["reported_by"], ["users.id"], name="fk_instruction_recipients_reported_by_users", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_instruction_recipients_instruction_id", "instruction_recipients", ["instruction_id"])
    op.create_index("ix_instruction_recipients_team_id", "instruction_recipients", ["team_id"])
    op.create_index("ix_instruction_recipients_user_id", "instruction_recipients", ["user_id"])
    op.create_index("ix_instruction_recipients_region", "instruction_recipients", ["region"])
    op.create_index(
        "ix_instruction_recipients_status_ack_due_at", "instruction_recipients", ["status", "ack_due_at"]
    )

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        _ts("created_at"),
        _ts("claimed_until", nullable=True),
        _int("attempts"),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_claimed_until", "outbox", ["claimed_until"])

    op.create_table(
        "case_stats",
        sa.Column("dim", sa.String(16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("region", sa.String(128), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        _int("filed"),
        _int("dispatched"),
        _int("handled"),
        _int("handled_late"),
        _int("closed"),
        _int("on_time"),
        _int("current"),
        sa.PrimaryKeyConstraint("dim", "day", "region", "key", name="pk_case_stats"),
    )


def downgrade() -> None:
    for table in ("case_stats", "outbox", "instruction_recipients", "instructions"):
        op.drop_table(table)
    op.drop_index("ix_tasks_open_team_id_created_at", table_name="tasks")
    op.drop_index("ix_tasks_team_id_created_at", table_name="tasks")
    op.drop_index("ix_cases_open_deadline", table_name="cases")
    op.drop_index("ix_cases_created_at", table_name="cases")
    op.drop_index("ix_cases_status_created_at", table_name="cases")
