"""Loading one record's explanation from the store: the rows :func:`worker.icp.explain.explain` needs.

Thin: finds the record (by id, optionally narrowed by connection and object type), its fit, the spec of the
fit's ICP version, its opportunity's account, its flag, its fit history and its connection's runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.icp.explain import (
    CrmState,
    Explanation,
    FlagInfo,
    HistoryLine,
    HistoryRow,
    RecordData,
    StoredFit,
    explain,
    fit_as_of,
    history_lines,
)
from worker.icp.versions import get_version, spec_of
from worker.store.models import Connection, FitHistory, RecordFit, RecordSnapshot, ReengageFlag, SyncRun
from worker.store.queries import aware
from worker.store.states import FlagState, RunKind, RunStatus

__all__ = ["AmbiguousRecordError", "Candidate", "NotScoredError", "UnknownRecordError", "load_explanation"]


@dataclass(frozen=True, slots=True)
class Candidate:
    connection: str
    object_type: str
    external_id: str
    name: str | None

    def __str__(self) -> str:
        named = f" ({self.name})" if self.name else ""
        return f"--connection {self.connection} --object {self.object_type}: {self.external_id}{named}"


class UnknownRecordError(LookupError):
    """No snapshot has that id (within the given connection and object type)."""


class AmbiguousRecordError(LookupError):
    """The id names records in several connections or object types."""

    def __init__(self, record_id: str, candidates: list[Candidate]) -> None:
        self.candidates = candidates
        listed = "\n".join(f"  {c}" for c in candidates)
        super().__init__(
            f"{record_id!r} names {len(candidates)} records; "
            f"say which with --connection and --object:\n{listed}"
        )


class NotScoredError(LookupError):
    """The record was pulled but has not been scored yet."""


def find_record(
    session: Session, record_id: str, connection: str | None = None, object_type: str | None = None
) -> tuple[RecordSnapshot, Connection]:
    query = (
        select(RecordSnapshot, Connection)
        .join(Connection, Connection.id == RecordSnapshot.connection_id)
        .where(RecordSnapshot.external_id == record_id)
    )
    if connection is not None:
        query = query.where(Connection.name == connection)
    if object_type is not None:
        query = query.where(RecordSnapshot.object_type == object_type)
    rows = session.execute(query.order_by(Connection.name, RecordSnapshot.object_type)).all()
    if not rows:
        where = "".join(
            f" {label} {value!r}"
            for label, value in (("in connection", connection), ("among", object_type and f"{object_type}s"))
            if value
        )
        raise UnknownRecordError(f"no record {record_id!r}{where} in the store")
    if len(rows) > 1:
        raise AmbiguousRecordError(
            record_id, [Candidate(c.name, s.object_type, s.external_id, s.name) for s, c in rows]
        )
    snap, conn = rows[0]
    return snap, conn


def _record(snap: RecordSnapshot, connection: str) -> RecordData:
    return RecordData(
        connection=connection,
        object_type=snap.object_type,
        external_id=snap.external_id,
        name=snap.name,
        attributes=snap.attributes or {},
        warnings=tuple(str(w) for w in snap.warnings or ()),
        parent_id=snap.parent_id,
        pulled_at=aware(snap.pulled_at),
        raw={str(k): str(v) for k, v in (snap.raw or {}).items()},
    )


def _history(session: Session, snap: RecordSnapshot) -> tuple[HistoryLine, ...]:
    rows = session.scalars(
        select(FitHistory)
        .where(
            FitHistory.connection_id == snap.connection_id,
            FitHistory.object_type == snap.object_type,
            FitHistory.external_id == snap.external_id,
        )
        .order_by(FitHistory.scored_at, FitHistory.id)
    ).all()
    return history_lines(
        [
            HistoryRow(
                at=aware(h.scored_at),
                icp_version=h.icp_version,
                run_id=h.run_id,
                score=h.score,
                tier=h.tier,
                previous_tier=h.previous_tier,
                previous_score=h.previous_score,
                previous_version=h.previous_version,
                cause=h.cause or "",
                reasons_text=h.reasons_text or "",
            )
            for h in rows
        ]
    )


def _runs(session: Session, connection_id: int) -> list[tuple[datetime, int]]:
    rows = session.execute(
        select(SyncRun.finished_at, SyncRun.icp_version).where(
            SyncRun.connection_id == connection_id,
            SyncRun.status.in_([RunStatus.SUCCEEDED, RunStatus.PARTIAL]),
            SyncRun.kind != RunKind.DRY_RUN,
            SyncRun.finished_at.is_not(None),
            SyncRun.icp_version.is_not(None),
        )
    ).all()
    return [(aware(finished), int(version)) for finished, version in rows if finished and version]


def _flag(session: Session, snap: RecordSnapshot) -> FlagInfo | None:
    flags = session.scalars(
        select(ReengageFlag)
        .where(
            ReengageFlag.connection_id == snap.connection_id,
            ReengageFlag.object_type == snap.object_type,
            ReengageFlag.external_id == snap.external_id,
        )
        .order_by(ReengageFlag.raised_at.desc(), ReengageFlag.id.desc())
    ).all()
    if not flags:
        return None
    flag = next((f for f in flags if f.state == FlagState.ACTIVE), flags[0])
    return FlagInfo(
        active=flag.state == FlagState.ACTIVE,
        kind=flag.kind,
        reason=flag.reason
        if flag.state == FlagState.ACTIVE
        else f"{flag.reason} (cleared: {flag.clear_reason})",
        raised_at=aware(flag.raised_at),
        from_tier=flag.from_tier,
        to_tier=flag.to_tier,
    )


def _fit_of(session: Session, snap: RecordSnapshot) -> RecordFit | None:
    return session.scalar(select(RecordFit).where(RecordFit.snapshot_id == snap.id))


def load_explanation(
    session: Session,
    record_id: str,
    *,
    connection: str | None = None,
    object_type: str | None = None,
    as_of: datetime | None = None,
) -> Explanation:
    """The explanation of one record. Raises :class:`UnknownRecordError`, :class:`AmbiguousRecordError`,
    :class:`NotScoredError`."""
    snap, conn = find_record(session, record_id, connection, object_type)
    fit = _fit_of(session, snap)
    if fit is None:
        raise NotScoredError(
            f"{snap.object_type} {snap.external_id!r} in {conn.name!r} is pulled but not scored yet: "
            f"run `icp-worker sync --connection {conn.name}`"
        )
    spec = spec_of(get_version(session, fit.icp_version))
    scored: RecordData | None = None
    carried_name: str | None = None
    if snap.object_type == "opportunity" and snap.parent_id:
        account = session.scalar(
            select(RecordSnapshot).where(
                RecordSnapshot.connection_id == snap.connection_id,
                RecordSnapshot.object_type == "account",
                RecordSnapshot.external_id == snap.parent_id,
            )
        )
        if account is not None and _fit_of(session, account) is not None:  # it carries the account's fit
            scored, carried_name = _record(account, conn.name), account.name
    history = _history(session, snap)
    return explain(
        _record(snap, conn.name),
        StoredFit(
            score=fit.score,
            tier=fit.tier,
            coverage=fit.coverage,
            icp_version=fit.icp_version,
            scored_at=aware(fit.scored_at),
            reasons_text=fit.reasons_text,
            reasons=fit.reasons or [],
        ),
        spec,
        history=history,
        scored=scored,
        crm=CrmState(
            written=fit.written,
            written_at=aware(fit.written_at) if fit.written_at else None,
            desired=fit.desired or {},
            write_status=fit.write_status,
            write_error=fit.write_error,
        ),
        flag=_flag(session, snap) if snap.object_type != "opportunity" else None,
        carried_name=carried_name,
        as_of=fit_as_of(as_of, history, _runs(session, snap.connection_id)) if as_of is not None else None,
    )
