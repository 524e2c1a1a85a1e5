"""Workflow branches, time limits and supervision: intake fields on cases, named assignees on tasks,
case clocks (deadlines the supervisor watches), extension requests, auto-dispatch rules and the
centre's calendar overrides.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _user_fk(name: str, fk_name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.Integer(), sa.ForeignKey("users.id", name=fk_name), nullable=True)


def _add_column(table: str, column: sa.Column) -> None:  # type: ignore[type-arg]
    fks = list(column.foreign_keys)
    if op.get_bind().dialect.name != "sqlite" or not fks:
        op.add_column(table, column)
        return
    # SQLite adds a nullable column with its foreign key in place; Alembic would ask for batch mode,
    # which copies and drops the table that the timeline and tasks reference
    [fk] = fks
    target = fk.target_fullname.split(".")
    op.execute(
        f"ALTER TABLE {table} ADD COLUMN {column.name} INTEGER CONSTRAINT {fk.name} "
        f"REFERENCES {target[0]} ({target[1]})"
    )


def upgrade() -> None:
    _add_column("cases", sa.Column("description", sa.Text(), nullable=True))
    _add_column("cases", sa.Column("contact", sa.String(128), nullable=True))
    _add_column("cases", _user_fk("reported_by", "fk_cases_reported_by_users"))
    _add_column("cases", sa.Column("suspended_from", sa.String(16), nullable=True))
    _add_column("cases", sa.Column("satisfaction", sa.Integer(), nullable=True))
    _add_column("tasks", _user_fk("assignee_id", "fk_tasks_assignee_id_users"))

    op.create_table(
        "case_clocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("limit_type", sa.String(16), nullable=False),
        sa.Column("limit_amount", sa.Float(), nullable=False),
        _ts("started_at"),
        _ts("warn_at"),
        _ts("due_at"),
        sa.Column("state", sa.String(16), nullable=False),
        _ts("next_check_at", nullable=True),
        _ts("paused_at", nullable=True),
        sa.Column("remaining", sa.Float(), nullable=True),
        sa.Column("reminders", sa.Integer(), nullable=False),
        sa.Column("unanswered", sa.Integer(), nullable=False),
        _ts("last_reminder_at", nullable=True),
        sa.Column("penalties", sa.Integer(), nullable=False),
        _ts("penalized_at", nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        _ts("claimed_until", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_case_clocks"),
        sa.UniqueConstraint("case_id", name="uq_case_clocks_case_id"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_case_clocks_case_id_cases", ondelete="CASCADE"),
    )
    op.create_index("ix_case_clocks_next_check_at", "case_clocks", ["next_check_at"])

    op.create_table(
        "case_extensions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("limit_type", sa.String(16), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        _ts("requested_at"),
        _ts("old_due_at", nullable=True),
        _ts("new_due_at", nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        _ts("decided_at", nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_case_extensions"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_case_extensions_case_id_cases", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name="fk_case_extensions_requested_by_users", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name="fk_case_extensions_decided_by_users", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_case_extensions_case_id", "case_extensions", ["case_id"])

    op.create_table(
        "dispatch_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("region", sa.String(128), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(256), nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_dispatch_rules"),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name="fk_dispatch_rules_team_id_teams", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_dispatch_rules_user_id_users", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_dispatch_rules_team_id", "dispatch_rules", ["team_id"])

    op.create_table(
        "calendar_overrides",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("note", sa.String(256), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("day", name="pk_calendar_overrides"),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name="fk_calendar_overrides_created_by_users", ondelete="SET NULL"
        ),
    )


def downgrade() -> None:
    for table in ("calendar_overrides", "dispatch_rules", "case_extensions", "case_clocks"):
        op.drop_table(table)
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("assignee_id")
    with op.batch_alter_table("cases") as batch:
        for column in ("satisfaction", "suspended_from", "reported_by", "contact", "description"):
            batch.drop_column(column)
