"""The statistics rollup summed per area (a region and everything below it), so that a district's
or the city's statistics read one row per day and key, not one per region below them; and on
PostgreSQL the overdue-deadline index carries what the overdue count groups and scopes by.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

METRICS = ("filed", "dispatched", "handled", "handled_late", "closed", "on_time", "current")
BATCH = 2000


def _areas(region: str) -> list[str]:
    parts = region.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


OPEN_DEADLINE = "status IN ('filed', 'dispatched', 'handling', 'returned') AND deadline_at IS NOT NULL"
INCLUDE = ["region", "category", "source", "team_id", "status"]


def _open_deadline_index(include: list[str] | None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no INCLUDE: its index stays as it was
    op.drop_index("ix_cases_open_deadline", table_name="cases")
    op.create_index(
        "ix_cases_open_deadline",
        "cases",
        ["deadline_at"],
        postgresql_where=sa.text(OPEN_DEADLINE),
        postgresql_include=include or [],
    )


def upgrade() -> None:
    _open_deadline_index(INCLUDE)
    areas = op.create_table(
        "case_stat_areas",
        sa.Column("dim", sa.String(16), nullable=False),
        sa.Column("area", sa.String(128), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        *(sa.Column(m, sa.Integer(), nullable=False) for m in METRICS),
        sa.PrimaryKeyConstraint("dim", "area", "day", "key", name="pk_case_stat_areas"),
    )
    # the counters folded so far, summed into every area above their region (the journal not folded
    # yet stays where it is: the fold adds it to both tables)
    stats = sa.table(
        "case_stats",
        sa.column("dim", sa.String()),
        sa.column("day", sa.Date()),  # SQLite keeps text: the typed column reads it back as a date
        sa.column("region", sa.String()),
        sa.column("key", sa.String()),
        *(sa.column(m, sa.Integer()) for m in METRICS),
    )
    sums: dict[tuple[str, str, object, str], list[int]] = defaultdict(lambda: [0] * len(METRICS))
    bind = op.get_bind()
    for row in bind.execute(sa.select(stats)):
        for area in _areas(row.region):
            total = sums[(row.dim, area, row.day, row.key)]
            for i, m in enumerate(METRICS):
                total[i] += getattr(row, m)
    rows = [
        {"dim": k[0], "area": k[1], "day": k[2], "key": k[3], **dict(zip(METRICS, v, strict=True))}
        for k, v in sorted(sums.items())
    ]
    for start in range(0, len(rows), BATCH):
        op.bulk_insert(areas, rows[start : start + BATCH])


def downgrade() -> None:
    op.drop_table("case_stat_areas")
    _open_deadline_index(None)
