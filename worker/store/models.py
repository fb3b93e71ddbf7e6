"""The snapshot store: what was pulled, what was scored, what was written, and every run.

Tables, in the order of the data flow::

    connections        one CRM org / portal / export folder
    icp_versions       immutable, numbered ICP versions (content, hash, author, note, status: published,
                       held for approval, approved or rejected, and who decided when)
    reevaluation_requests  the publish outbox: a re-evaluation owed to a connection, committed with the
                       version that needs it, carried out by whoever runs next
    record_snapshots   last pulled attributes and status of every record
    record_fits        the current fit of each record and the values last written to the CRM
    fit_history        append-only: every change of score or tier
    reengage_flags     stale or dismissed records whose tier rose into a target tier
    sync_runs          one row per run: kind, status, counts, API calls, timings, error
    run_warnings       per run: values that could not be read, duplicate or missing ids, bad stamps
    cursors            per connection and object type: the modification stamp to resume from
    console_users      people who sign in to the web console (argon2 hash, role)
    console_sessions   signed-in browser sessions (only a hash of the cookie's token is kept)
    audit_events       who published, approved, rejected or rolled back which ICP version, and when

JSON columns use SQLAlchemy's generic ``JSON`` (JSONB-compatible text on PostgreSQL, TEXT on SQLite).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from worker.store.states import FlagState, RunStatus, TaskStatus, WriteStatus

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Connection(Base):
    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    crm: Mapped[str] = mapped_column(String(20))
    #: The connection's configuration as loaded (never a secret: those stay in the environment).
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IcpVersion(Base):
    __tablename__ = "icp_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    author: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: ``published`` (current when newest), ``held`` (waits for ``icp approve``), ``approved`` (was held,
    #: then approved: current when newest) or ``rejected``. Only published and approved versions score.
    status: Mapped[str] = mapped_column(String(20), default="published", server_default="published")
    #: Who approved or rejected a held version, and when.
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The impact summary that held it (per connection: scored, tier changes, share, writes, limits).
    impact: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ReevaluationRequest(Base):
    """The publish outbox: one row per connection owed a re-evaluation under ``icp_version``.

    Inserted in the transaction that makes a version current (publish, rollback, approve), so that no
    current version exists without it. ``pending``: not handed to a worker yet; ``queued``: a task was
    sent (``task_id``); ``done``: a run scored the connection under that version or a newer one."""

    __tablename__ = "reevaluation_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"), index=True)
    icp_version: Mapped[int] = mapped_column(Integer)
    #: ``publish``, ``rollback`` or ``approve``.
    reason: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    task_id: Mapped[str | None] = mapped_column(String(64))
    run_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RecordSnapshot(Base):
    __tablename__ = "record_snapshots"
    __table_args__ = (
        UniqueConstraint("connection_id", "object_type", "external_id", name="uq_snapshot_record"),
        #: The score phase's keyset scan: an object type's snapshots in id order.
        Index("ix_record_snapshots_scan", "connection_id", "object_type", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    object_type: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Values that could not be parsed, kept for the user ("employees: cannot read 'lots'").
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: The CRM's own text of the attributes whose normalised value reads differently ("USA" for country
    #: ``US``, "$67.3m" for 67300000), cut to 200 characters: what ``icp-worker explain`` shows as raw.
    raw: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    owner_id: Mapped[str | None] = mapped_column(String(64))
    last_activity: Mapped[date | None] = mapped_column(Date)
    crm_modstamp: Mapped[str] = mapped_column(String(40), default="")
    #: The account an opportunity (or a converted lead) belongs to: opportunities carry its fit.
    parent_id: Mapped[str | None] = mapped_column(String(64), index=True)
    #: Changed since it was scored (re-pulled with new values, or its context changed) and not yet
    #: scored again. Kept in the store, so a crash between pull and score loses nothing: the next run
    #: scores what is still dirty. A record never scored has no fit and is scored whatever this says:
    #: the pull stores new records clean.
    dirty: Mapped[bool] = mapped_column(Boolean, default=True)
    pulled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    fit: Mapped[RecordFit | None] = relationship(back_populates="snapshot", uselist=False, lazy="raise")


class RecordFit(Base):
    __tablename__ = "record_fits"
    #: The write phase's keyset scan: the fits of one write status in snapshot id order.
    __table_args__ = (Index("ix_record_fits_status_snapshot", "write_status", "snapshot_id"),)

    snapshot_id: Mapped[int] = mapped_column(
        ForeignKey("record_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    score: Mapped[int] = mapped_column(Integer)
    tier: Mapped[str] = mapped_column(String(40))
    coverage: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    reasons_text: Mapped[str] = mapped_column(String(255), default="")
    icp_version: Mapped[int] = mapped_column(Integer)
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Owned-field values the CRM should hold (without ``scored_at``): the diff is ``desired != written``.
    desired: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Owned-field values the CRM holds, as last written successfully (None: never written).
    written: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    written_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: A ``WriteStatus``: ``pending`` (a write is due), ``ok``, ``error`` (kept and retried next run).
    write_status: Mapped[str] = mapped_column(String(20), default=WriteStatus.PENDING.value)
    write_error: Mapped[str | None] = mapped_column(Text)
    write_attempts: Mapped[int] = mapped_column(Integer, default=0)

    snapshot: Mapped[RecordSnapshot] = relationship(back_populates="fit", lazy="raise")


class FitHistory(Base):
    __tablename__ = "fit_history"
    __table_args__ = (
        Index("ix_fit_history_record", "connection_id", "object_type", "external_id"),
        Index("ix_fit_history_scored_at", "scored_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    object_type: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(64))
    icp_version: Mapped[int] = mapped_column(Integer)
    score: Mapped[int] = mapped_column(Integer)
    tier: Mapped[str] = mapped_column(String(40))
    previous_tier: Mapped[str | None] = mapped_column(String(40))
    run_id: Mapped[int | None] = mapped_column(Integer)
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: The fit this entry replaced (None for a record's first score).
    previous_score: Mapped[int | None] = mapped_column(Integer)
    previous_version: Mapped[int | None] = mapped_column(Integer)
    #: Why: ``first``, ``revision``, ``data``, ``revision+data``, ``account`` (worker.icp.changes).
    #: Empty on entries written before the cause was recorded.
    cause: Mapped[str] = mapped_column(String(20), default="")
    #: The compact reasons of the new fit, as written to the CRM.
    reasons_text: Mapped[str] = mapped_column(String(255), default="")


class ReengageFlag(Base):
    __tablename__ = "reengage_flags"
    __table_args__ = (Index("ix_reengage_record", "connection_id", "object_type", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    object_type: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[str | None] = mapped_column(String(64))
    #: A ``FlagState``: ``active`` or ``cleared``.
    state: Mapped[str] = mapped_column(String(20), default=FlagState.ACTIVE.value, index=True)
    #: A ``FlagKind``: ``dismissed``, ``stale`` or ``backlog``.
    kind: Mapped[str] = mapped_column(String(20))
    from_tier: Mapped[str] = mapped_column(String(40))
    to_tier: Mapped[str] = mapped_column(String(40))
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    clear_reason: Mapped[str | None] = mapped_column(Text)
    #: Follow-up task, a ``TaskStatus``: ``none`` (not wanted), ``due``, ``created``, ``capped``, ``error``.
    task_status: Mapped[str] = mapped_column(String(20), default=TaskStatus.NONE.value)
    task_id: Mapped[str | None] = mapped_column(String(64))
    task_error: Mapped[str | None] = mapped_column(Text)


class SyncRun(Base):
    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    #: A ``RunKind``: ``incremental``, ``full``, ``reevaluate``, ``dry_run``.
    kind: Mapped[str] = mapped_column(String(20))
    #: A ``RunStatus``: ``running``, ``succeeded``, ``partial`` (some records failed), ``failed``,
    #: ``quota_reserved``, ``quota_exceeded``, ``skipped``.
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.RUNNING.value, index=True)
    icp_version: Mapped[int | None] = mapped_column(Integer)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    api_calls: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    timings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RunWarning(Base):
    """What a run found wrong in the pulled data, counted per kind, field and raw value.

    Bounded: every problem is counted, but only ``worker.sync.warnings.MAX_VALUES`` distinct raw values per
    (object type, kind, field) get their own row (the rest add to a row whose ``raw_value`` is None), and
    each row keeps at most ``MAX_EXAMPLES`` example record ids and places."""

    __tablename__ = "run_warnings"
    __table_args__ = (Index("ix_run_warnings_run", "run_id", "object_type", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id", ondelete="CASCADE"))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"), index=True)
    object_type: Mapped[str] = mapped_column(String(20))
    #: ``unreadable``, ``impossible``, ``duplicate_id``, ``missing_id``, ``unreadable_stamp``.
    kind: Mapped[str] = mapped_column(String(20))
    #: The canonical attribute or field (``country``, ``id``, ``modstamp``).
    field: Mapped[str] = mapped_column(String(100))
    #: The raw value as text (cut to 200 characters); None: the other values beyond the kept ones.
    raw_value: Mapped[str | None] = mapped_column(String(200))
    count: Mapped[int] = mapped_column(Integer, default=0)
    #: Up to MAX_EXAMPLES record ids and places (``accounts.csv line 12``).
    example_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    example_places: Mapped[list[Any]] = mapped_column(JSON, default=list)


class Cursor(Base):
    __tablename__ = "cursors"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    object_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConsoleUser(Base):
    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    #: ``viewer``, ``editor`` or ``approver``.
    role: Mapped[str] = mapped_column(String(20))
    #: argon2id hash in PHC form (never the password).
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    #: SHA-256 (hex) of the cookie's random token: a leaked table cannot be replayed as a cookie.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("console_users.id", ondelete="CASCADE"), index=True)
    #: The synchronizer token every state-changing form of this session must carry.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Who: a console user's name, or the CLI's author.
    actor: Mapped[str] = mapped_column(String(200))
    #: ``publish``, ``hold``, ``approve``, ``reject``, ``rollback``, ``login``, ...
    action: Mapped[str] = mapped_column(String(40), index=True)
    icp_version: Mapped[int | None] = mapped_column(Integer, index=True)
    #: Where it came from: ``console`` or ``cli``.
    source: Mapped[str] = mapped_column(String(20), default="console")
    detail: Mapped[str] = mapped_column(Text, default="")


__all__ = [
    "AuditEvent",
    "Base",
    "ConsoleSession",
    "ConsoleUser",
    "Connection",
    "Cursor",
    "FitHistory",
    "IcpVersion",
    "RecordFit",
    "RecordSnapshot",
    "ReengageFlag",
    "ReevaluationRequest",
    "RunWarning",
    "SyncRun",
]
