"""Store reads behind the console's pages (read-only; every rule stays in the modules the CLI uses)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from worker.store.models import (
    AuditEvent,
    Connection,
    IcpVersion,
    RecordFit,
    RecordSnapshot,
    ReengageFlag,
    SyncRun,
)

OBJECT_TYPES = ("account", "opportunity", "lead")


@dataclass
class ConnectionOverview:
    name: str
    crm: str
    synced: bool
    #: object type -> tier -> records
    tiers: dict[str, dict[str, int]] = field(default_factory=dict)
    runs: list[SyncRun] = field(default_factory=list)
    #: active re-engagement flags by kind
    reengage: Counter[str] = field(default_factory=Counter)
    write_errors: int = 0
    records: int = 0

    @property
    def last_api(self) -> dict[str, Any]:
        for run in self.runs:
            if run.api_calls:
                return dict(run.api_calls)
        return {}


def connection_by_name(session: Session, name: str) -> Connection | None:
    return session.scalar(select(Connection).where(Connection.name == name))


def connection_names(session: Session) -> list[str]:
    return list(session.scalars(select(Connection.name).order_by(Connection.name)))


def tier_counts(session: Session, conn_id: int) -> dict[str, dict[str, int]]:
    rows = session.execute(
        select(RecordSnapshot.object_type, RecordFit.tier, func.count())
        .join(RecordFit, RecordFit.snapshot_id == RecordSnapshot.id)
        .where(RecordSnapshot.connection_id == conn_id)
        .group_by(RecordSnapshot.object_type, RecordFit.tier)
    ).all()
    out: dict[str, dict[str, int]] = {}
    for obj, tier, n in rows:
        out.setdefault(obj, {})[tier] = n
    return {o: out[o] for o in OBJECT_TYPES if o in out}


def overview(
    session: Session, configured: Sequence[tuple[str, str]], runs: int = 5
) -> list[ConnectionOverview]:
    """One overview per connection: the configured ones (in the file's order), then others in the store."""
    stored = {c.name: c for c in session.scalars(select(Connection).order_by(Connection.name))}
    names = [n for n, _ in configured] + [n for n in stored if n not in dict(configured)]
    crms = dict(configured)
    result = []
    for name in names:
        conn = stored.get(name)
        ov = ConnectionOverview(name, conn.crm if conn else crms.get(name, "?"), conn is not None)
        if conn is not None:
            ov.tiers = tier_counts(session, conn.id)
            ov.records = sum(sum(t.values()) for t in ov.tiers.values())
            ov.runs = list(
                session.scalars(
                    select(SyncRun)
                    .where(SyncRun.connection_id == conn.id)
                    .order_by(SyncRun.id.desc())
                    .limit(runs)
                )
            )
            ov.reengage = Counter(
                dict(
                    session.execute(  # type: ignore[arg-type]
                        select(ReengageFlag.kind, func.count())
                        .where(ReengageFlag.connection_id == conn.id, ReengageFlag.state == "active")
                        .group_by(ReengageFlag.kind)
                    ).all()
                )
            )
            ov.write_errors = (
                session.scalar(
                    select(func.count())
                    .select_from(RecordFit)
                    .join(RecordSnapshot, RecordSnapshot.id == RecordFit.snapshot_id)
                    .where(RecordSnapshot.connection_id == conn.id, RecordFit.write_status == "error")
                )
                or 0
            )
        result.append(ov)
    return result


# ------------------------------------------------------------------------------------------------ runs


def list_runs(session: Session, connection: str | None, limit: int) -> list[tuple[SyncRun, str | None]]:
    q = select(SyncRun, Connection.name).outerjoin(Connection, Connection.id == SyncRun.connection_id)
    if connection:
        q = q.where(Connection.name == connection)
    return [(r, n) for r, n in session.execute(q.order_by(SyncRun.id.desc()).limit(limit)).all()]


def get_run(session: Session, run_id: int) -> tuple[SyncRun, str | None] | None:
    row = session.execute(
        select(SyncRun, Connection.name)
        .outerjoin(Connection, Connection.id == SyncRun.connection_id)
        .where(SyncRun.id == run_id)
    ).first()
    return (row[0], row[1]) if row else None


def record_errors(session: Session, conn_id: int, limit: int = 200) -> list[tuple[RecordSnapshot, RecordFit]]:
    """Records whose last write failed (kept and retried by the next run), with the CRM's message."""
    rows = session.execute(
        select(RecordSnapshot, RecordFit)
        .join(RecordFit, RecordFit.snapshot_id == RecordSnapshot.id)
        .where(RecordSnapshot.connection_id == conn_id, RecordFit.write_status == "error")
        .order_by(RecordSnapshot.object_type, RecordSnapshot.external_id)
        .limit(limit)
    ).all()
    return [(s, f) for s, f in rows]


# ------------------------------------------------------------------------------------------- re-engagement


@dataclass(frozen=True)
class FlagFilter:
    connection: str = ""
    owner: str = ""
    kind: str = ""
    tier: str = ""
    include_cleared: bool = False


def _flag_query(f: FlagFilter) -> Any:
    q = (
        select(ReengageFlag, Connection.name, RecordSnapshot.name)
        .join(Connection, Connection.id == ReengageFlag.connection_id)
        .outerjoin(
            RecordSnapshot,
            (RecordSnapshot.connection_id == ReengageFlag.connection_id)
            & (RecordSnapshot.object_type == ReengageFlag.object_type)
            & (RecordSnapshot.external_id == ReengageFlag.external_id),
        )
    )
    if f.connection:
        q = q.where(Connection.name == f.connection)
    if f.owner:
        q = q.where(ReengageFlag.owner_id == f.owner)
    if f.kind:
        q = q.where(ReengageFlag.kind == f.kind)
    if f.tier:
        q = q.where(ReengageFlag.to_tier == f.tier)
    if not f.include_cleared:
        q = q.where(ReengageFlag.state == "active")
    return q


def flags(session: Session, f: FlagFilter, limit: int) -> tuple[list[Any], int]:
    """The flags matching ``f`` (newest first, at most ``limit``) and how many match in all."""
    q = _flag_query(f)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.execute(q.order_by(ReengageFlag.id.desc()).limit(limit)).all()
    return list(rows), total


def iter_flags(session: Session, f: FlagFilter, batch: int = 1000) -> Iterator[Any]:
    """Every matching flag, oldest id first, read in batches (for the CSV export)."""
    last = 0
    while True:
        rows = session.execute(
            _flag_query(f).where(ReengageFlag.id > last).order_by(ReengageFlag.id).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1][0].id


def flag_choices(session: Session) -> dict[str, list[str]]:
    """Values to filter the queue by."""

    def distinct(col: Any) -> list[str]:
        return [v for v in session.scalars(select(col).distinct().order_by(col)) if v]

    return {
        "connection": connection_names(session),
        "owner": distinct(ReengageFlag.owner_id),
        "kind": distinct(ReengageFlag.kind),
        "tier": distinct(ReengageFlag.to_tier),
    }


# ------------------------------------------------------------------------------------------------ versions


def audit_for(session: Session, numbers: list[int] | None = None) -> dict[int, list[AuditEvent]]:
    q = select(AuditEvent).where(AuditEvent.icp_version.is_not(None)).order_by(AuditEvent.at, AuditEvent.id)
    if numbers is not None:
        q = q.where(AuditEvent.icp_version.in_(numbers))
    out: dict[int, list[AuditEvent]] = {}
    for ev in session.scalars(q):
        out.setdefault(ev.icp_version or 0, []).append(ev)
    return out


def latest_number(session: Session) -> int | None:
    return session.scalar(select(func.max(IcpVersion.number)))


# ------------------------------------------------------------------------------------------------ records


def search_records(
    session: Session, query: str, limit: int = 50
) -> list[tuple[RecordSnapshot, RecordFit | None, str]]:
    """Records whose id is ``query`` or whose name contains it (case-insensitive)."""
    text = query.strip()
    if not text:
        return []
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = session.execute(
        select(RecordSnapshot, RecordFit, Connection.name)
        .outerjoin(RecordFit, RecordFit.snapshot_id == RecordSnapshot.id)
        .join(Connection, Connection.id == RecordSnapshot.connection_id)
        .where(
            or_(
                RecordSnapshot.external_id == text,
                func.lower(RecordSnapshot.name).like(pattern.lower(), escape="\\"),
            )
        )
        .order_by((RecordSnapshot.external_id != text), RecordSnapshot.name)
        .limit(limit)
    ).all()
    return [(s, f, n) for s, f, n in rows]
