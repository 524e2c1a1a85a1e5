"""The records: SQLAlchemy 2.0 typed declarative models. Timestamps are stored as UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in and out, on every database (SQLite keeps naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: dispatch stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        # asyncpg already hands out timestamptz as aware UTC datetimes: a board list's rows carry
        # hundreds of them, and converting each again cost a few percent of the list's time
        if dialect.name == "postgresql" and dialect.driver == "asyncpg":
            return self.impl_instance.result_processor(dialect, coltype)
        return super().result_processor(dialect, coltype)


def to_datetime(epoch: float) -> datetime:
    """Epoch seconds as an aware UTC datetime (microsecond precision, as both databases keep)."""
    return datetime.fromtimestamp(epoch, UTC)


def to_epoch(value: datetime | None) -> float | None:
    """An aware datetime as epoch seconds (JSON out)."""
    return None if value is None else value.timestamp()


class Base(DeclarativeBase):
    """Declarative base with constraint names fixed so migrations can refer to them."""

    metadata = MetaData(naming_convention=NAMING)


class Team(Base):
    """A field team (patrol squad) that receives tasks."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    region: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    members: Mapped[list[User]] = relationship(back_populates="team", order_by="User.id")


class User(Base):
    """A person who logs in; the role says what they do, the region what they see."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    region: Mapped[str] = mapped_column(String(128), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    team: Mapped[Team | None] = relationship(back_populates="members")


class Camera(Base):
    """A camera on record. `url` and `substream_url` may carry credentials: they leave only for the
    media gateway (camera_source_url, all_cameras_internal)."""

    __tablename__ = "cameras"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    region: Mapped[str] = mapped_column(String(128), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # analytics settings of this camera (dispatch/camera_settings.py); None: the hub's defaults
    sampling: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # the camera's substream, which analytics decodes instead of `url` (revision 0012); None: `url`
    substream_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)

    zones: Mapped[list[Zone]] = relationship(
        back_populates="camera", order_by="Zone.id", cascade="all, delete-orphan", passive_deletes=True
    )


class Zone(Base):
    """A polygon on a camera's picture (normalised 0–1 coordinates) that a rule watches."""

    __tablename__ = "zones"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    polygon: Mapped[list[list[float]]] = mapped_column(JSON)
    dwell_s: Mapped[float] = mapped_column(Float)
    classes: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # -- zone rules (revision 0005); NULL means the default --
    rule: Mapped[str | None] = mapped_column(String(32))  # default by kind: road occupied_road, bin overflowing_bin
    min_count: Mapped[int | None] = mapped_column(Integer)
    windows: Mapped[list[str] | None] = mapped_column(JSON)  # "HH:MM-HH:MM" in the hub's time zone
    realert_s: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)  # bin zones: change score threshold
    reference_path: Mapped[str | None] = mapped_column(String(512))  # bin zones: captured normal picture
    reference_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    camera: Mapped[Camera] = relationship(back_populates="zones")


class Case(Base):
    """A case (案件) moving through the workflow; `version` guards against concurrent edits."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), index=True)
    source: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(64))
    camera_id: Mapped[int | None] = mapped_column(ForeignKey("cameras.id", ondelete="SET NULL"))
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id", ondelete="SET NULL"))
    # the flag points at its case with a foreign key; this is the way back (no FK cycle)
    flag_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    region: Mapped[str] = mapped_column(String(128), index=True)
    location: Mapped[str] = mapped_column(String(512))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    deadline_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    # -- workflow branches (revision 0002) --
    description: Mapped[str | None] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(String(128))  # a hotline caller's name / number
    # no ON DELETE on the two user references 0002 adds to existing tables: SQLite cannot reflect
    # an option of a foreign key added by ALTER TABLE (users with history are never deleted anyway)
    reported_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    suspended_from: Mapped[str | None] = mapped_column(String(16))  # the status `resume` returns to
    satisfaction: Mapped[int | None] = mapped_column(Integer)  # return visit: 1 (bad) .. 5 (very good)
    # -- revision 0009 --
    # hash of the newest timeline entry, written with it: entries deleted from the end break the match
    timeline_head: Mapped[str | None] = mapped_column(String(64))

    __mapper_args__ = {"version_id_col": version}

    team: Mapped[Team | None] = relationship()
    events: Mapped[list[CaseEvent]] = relationship(back_populates="case", order_by="CaseEvent.seq")
    tasks: Mapped[list[Task]] = relationship(back_populates="case", order_by="Task.id")
    attachments: Mapped[list[Attachment]] = relationship(back_populates="case", order_by="Attachment.id")
    clock: Mapped[CaseClock | None] = relationship(back_populates="case", uselist=False)
    extensions: Mapped[list[CaseExtension]] = relationship(back_populates="case", order_by="CaseExtension.id")


class Flag(Base):
    """A flag raised by analytics, waiting for (or after) a duty officer's review."""

    __tablename__ = "flags"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    camera_id: Mapped[int | None] = mapped_column(ForeignKey("cameras.id", ondelete="SET NULL"))
    camera_name: Mapped[str] = mapped_column(String(128))
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id", ondelete="SET NULL"))
    zone_name: Mapped[str] = mapped_column(String(128))
    rule: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(Float)
    boxes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    frame_width: Mapped[int] = mapped_column(Integer)
    frame_height: Mapped[int] = mapped_column(Integer)
    evidence_path: Mapped[str] = mapped_column(String(512))
    frame_path: Mapped[str | None] = mapped_column(String(512))  # the undrawn frame (revision 0005)
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(16), index=True)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    dismiss_reason: Mapped[str | None] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    region: Mapped[str] = mapped_column(String(128), index=True)
    # -- the flag's video clip (revision 0004): state NULL (none yet), ready or missing --
    clip_state: Mapped[str | None] = mapped_column(String(16))
    clip_path: Mapped[str | None] = mapped_column(String(512), index=True)  # clips/<uuid>.mp4 under the data dir
    clip_reason: Mapped[str | None] = mapped_column(String(32))  # why missing: no_video, disk_full, retention...
    clip_start_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    clip_end_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    clip_size: Mapped[int | None] = mapped_column(Integer)
    clip_sha256: Mapped[str | None] = mapped_column(String(64))

    reviewer: Mapped[User | None] = relationship()


# each flag asks "is a case of this camera and zone still open?" (revision 0005)
Index("ix_cases_camera_id_zone_id", Case.camera_id, Case.zone_id)


class CaseEvent(Base):
    """One timeline entry. Append-only (database triggers refuse UPDATE and DELETE);
    `hash` = sha256(prev_hash + canonical JSON of the entry), so an edit breaks the chain."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_case_events_case_id_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    case: Mapped[Case] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()


class Attachment(Base):
    """A file of a case (flag evidence, field photo), stored under the data directory."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    case: Mapped[Case] = relationship(back_populates="attachments")


class Task(Base):
    """What a team has to do for a case, with its deadline."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    deadline_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    done_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # the named responsible person ("one click to the person"); revision 0002
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    case: Mapped[Case] = relationship(back_populates="tasks")
    team: Mapped[Team] = relationship()
    acknowledger: Mapped[User | None] = relationship(foreign_keys=[acknowledged_by])
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])


# -- tasking, statistics and the board queries (revision 0003) ---------------------------------

def literal_in(column: Any, values: tuple[str, ...]) -> Any:
    """`column IN (…)` with the values written into the SQL text rather than bound: PostgreSQL
    can then prove a partial index's predicate even when it runs a prepared statement on a
    generic plan (bound parameters would hide the values from the planner)."""
    return column.in_(bindparam(f"in_{column.key}", list(values), expanding=True, literal_execute=True, unique=True))


# The statuses in which a case's stage clock runs (dispatch stage: filed, returned; handling stage:
# dispatched, handling); the overdue list and the `overdue_open` statistic count these. A handled
# case's clock is paused, a suspended one's stands still, a closed or refused one's is stopped.
CLOCK_RUNNING = ("filed", "dispatched", "handling", "returned")

# What the board reads at city scale (bench/cases.py): open cases by status, newest first; the
# overdue list (a partial index: only cases whose clock runs).
Index("ix_cases_status_created_at", Case.status, Case.created_at)
Index("ix_cases_created_at", Case.created_at)
# "deadline_at IS NOT NULL" in the predicate keeps the planner from scanning this small index for
# queries that do not ask about deadlines (it would, to filter the open cases by status)
_OPEN_DEADLINE = and_(Case.status.in_(CLOCK_RUNNING), Case.deadline_at.is_not(None))
# On PostgreSQL it carries the columns the statistics group and scope the overdue count by
# (revision 0011), so counting a city's overdue cases reads the index alone, not thousands of rows
Index(
    "ix_cases_open_deadline",
    Case.deadline_at,
    postgresql_include=["region", "category", "source", "team_id", "status"],
    postgresql_where=_OPEN_DEADLINE,
    sqlite_where=_OPEN_DEADLINE,  # queries use literal_in(Case.status, CLOCK_RUNNING) and deadline_at < …
)
# a team's tasks newest first (the field page), and its open ones (the inbox: partial, so the
# newest 50 open tasks are the first 50 index entries whatever the team's history)
Index("ix_tasks_team_id_created_at", Task.team_id, Task.created_at)
TASK_OPEN = ("pending", "acknowledged")
Index(
    "ix_tasks_open_team_id_created_at",
    Task.team_id,
    Task.created_at,
    postgresql_where=Task.status.in_(TASK_OPEN),
    sqlite_where=Task.status.in_(TASK_OPEN),  # queries use literal_in(Task.status, TASK_OPEN)
)


class Instruction(Base):
    """A commander's one-click instruction (patrol, emergency, notice) to teams and named people."""

    __tablename__ = "instructions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"), index=True)
    # the sender's region: who sees the instruction (besides the recipients' own regions)
    region: Mapped[str] = mapped_column(String(128), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    deadline_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ack_within_s: Mapped[int] = mapped_column(Integer)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    cancelled_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    creator: Mapped[User | None] = relationship(foreign_keys=[created_by])
    case: Mapped[Case | None] = relationship()
    recipients: Mapped[list[InstructionRecipient]] = relationship(
        back_populates="instruction",
        order_by="InstructionRecipient.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class InstructionRecipient(Base):
    """One recipient of an instruction: a team (any member answers for it) or one named person.

    `ack_due_at` is when an unanswered recipient escalates; the escalator claims the row with a
    guarded UPDATE (status still pending), so two hub processes never escalate it twice.
    """

    __tablename__ = "instruction_recipients"
    __table_args__ = (
        CheckConstraint("(team_id IS NULL) <> (user_id IS NULL)", name="one_target"),
        Index("ix_instruction_recipients_status_ack_due_at", "status", "ack_due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instruction_id: Mapped[int] = mapped_column(ForeignKey("instructions.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    region: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(16))
    ack_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    reported_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    report_note: Mapped[str | None] = mapped_column(Text)
    photo_path: Mapped[str | None] = mapped_column(String(512))
    photo_sha256: Mapped[str | None] = mapped_column(String(64))
    photo_type: Mapped[str | None] = mapped_column(String(64))

    instruction: Mapped[Instruction] = relationship(back_populates="recipients")
    team: Mapped[Team | None] = relationship()
    user: Mapped[User | None] = relationship(foreign_keys=[user_id])
    acknowledger: Mapped[User | None] = relationship(foreign_keys=[acknowledged_by])
    reporter: Mapped[User | None] = relationship(foreign_keys=[reported_by])


class OutboxEntry(Base):
    """A bus message written in the same transaction as the change it announces; a relay publishes
    and deletes it, so a crash between COMMIT and publish delays the message but never loses it."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # a relay's lease: another relay takes the entry over only after it lapses
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    attempts: Mapped[int] = mapped_column(Integer)


class _StatCounters:
    """The rollup's counters (dispatch/rollup.py METRICS)."""

    filed: Mapped[int] = mapped_column(Integer)
    dispatched: Mapped[int] = mapped_column(Integer)
    handled: Mapped[int] = mapped_column(Integer)
    handled_late: Mapped[int] = mapped_column(Integer)
    closed: Mapped[int] = mapped_column(Integer)
    on_time: Mapped[int] = mapped_column(Integer)
    current: Mapped[int] = mapped_column(Integer)


class CaseStat(_StatCounters, Base):
    """Daily statistics rollup: what the transitions' journal (CaseStatDelta) adds up to.

    One row per (dimension, day in the hub's time zone, region, key): `dim` is source, category or
    team (flow counters: how many cases reached a stage that day) or status (`current`: cases filed
    that day now in that status). Statistics over months read a few thousand of these, not millions
    of cases.
    """

    __tablename__ = "case_stats"

    dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    region: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)


class CaseStatArea(_StatCounters, Base):
    """The rollup summed per area (revision 0011): `area` is a region with everything below it, so a
    district's or the city's statistics read one row per day and key instead of one per region
    below them (a commander's month: 570 rows, not 6,700). Kept by the fold, with case_stats."""

    __tablename__ = "case_stat_areas"

    dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    area: Mapped[str] = mapped_column(String(128), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)


class CaseStatDelta(_StatCounters, Base):
    """Rollup deltas written in the same transaction as each timeline entry (revision 0010).

    Insert-only, so concurrent transitions never wait for each other on shared counter rows; the
    supervisor folds them into case_stats now and then, and statistics read both.
    """

    __tablename__ = "case_stat_deltas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dim: Mapped[str] = mapped_column(String(16))
    day: Mapped[date] = mapped_column(Date)
    region: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(64))


# -- workflow branches, clock and supervision (revision 0002) ----------------------------------


class CaseClock(Base):
    """The running time limit of a case's current stage (dispatch or handling) and its supervision.

    One row per case. The supervisor claims rows whose `next_check_at` has come (`claimed_by` /
    `claimed_until` is the lease), and every change it makes is conditional on the row as it
    claimed it, so two hub processes never send the same reminder twice.
    """

    __tablename__ = "case_clocks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), unique=True)
    stage: Mapped[str] = mapped_column(String(16))  # dispatch | handle
    limit_type: Mapped[str] = mapped_column(String(16))
    limit_amount: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    warn_at: Mapped[datetime] = mapped_column(UtcDateTime())
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    state: Mapped[str] = mapped_column(String(16))  # running | warned | overdue | paused | stopped
    next_check_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    paused_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    remaining: Mapped[float | None] = mapped_column(Float)  # of the limit, in its units, while paused
    reminders: Mapped[int] = mapped_column(Integer)
    unanswered: Mapped[int] = mapped_column(Integer)
    last_reminder_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    penalties: Mapped[int] = mapped_column(Integer)
    penalized_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime())

    case: Mapped[Case] = relationship(back_populates="clock")


class CaseExtension(Base):
    """A team's request for more time, and the centre's decision."""

    __tablename__ = "case_extensions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | approved | refused
    limit_type: Mapped[str] = mapped_column(String(16))
    amount: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    old_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    new_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decision_note: Mapped[str | None] = mapped_column(Text)

    case: Mapped[Case] = relationship(back_populates="extensions")


class DispatchRule(Base):
    """Auto-dispatch: cases of a category (or any) in a region (and below) go to a team, or to a
    named person of that team. The most specific matching rule wins."""

    __tablename__ = "dispatch_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    category: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(128))
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    team: Mapped[Team] = relationship()
    user: Mapped[User | None] = relationship()


class CalendarOverride(Base):
    """The centre's own calendar: an extra holiday or an extra workday, beside the official one."""

    __tablename__ = "calendar_overrides"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # holiday | workday
    note: Mapped[str | None] = mapped_column(String(256))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


# -- push-to-talk intercom (revision 0007) ------------------------------------------------------


class IntercomRoomRecord(Base):
    """A push-to-talk room formed from a case (team and region rooms need no record)."""

    __tablename__ = "intercom_rooms"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # "case:<case id>"
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), unique=True)
    name: Mapped[str] = mapped_column(String(256))
    region: Mapped[str] = mapped_column(String(128), index=True)
    team_ids: Mapped[list[int]] = mapped_column(JSON)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PttBurstRecord(Base):
    """One recorded push-to-talk burst: who talked in which room, when, and the file (hashed)."""

    __tablename__ = "ptt_bursts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the burst UUID media chose
    room_id: Mapped[str] = mapped_column(String(200), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"), index=True)
    speaker_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    speaker_name: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    ended_at: Mapped[datetime] = mapped_column(UtcDateTime())
    end_reason: Mapped[str] = mapped_column(String(32))
    duration_s: Mapped[float] = mapped_column(Float)
    packets: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class TerminalRecord(Base):
    """A video-conference terminal the hub dials over SIP (media/sip.py); viewed like a camera."""

    __tablename__ = "terminals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    sip_uri: Mapped[str] = mapped_column(String(256))
    region: Mapped[str] = mapped_column(String(128), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
