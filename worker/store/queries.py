"""Store reads shared by the sync service and the revision preview."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.config import ConnectionConfig
from worker.store.bulk import Bulk, among
from worker.store.models import Connection, RecordFit, RecordSnapshot, ReengageFlag, SyncRun
from worker.store.states import FlagState, RunKind, RunStatus


def ensure_connection(session: Session, cfg: ConnectionConfig, now: datetime) -> Connection:
    """The connection's row, created on first use; its stored config follows the file."""
    conn = session.scalar(select(Connection).where(Connection.name == cfg.name))
    stored = cfg.model_dump(mode="json")
    if conn is None:
        conn = Connection(name=cfg.name, crm=cfg.crm, config=stored, created_at=now)
        session.add(conn)
        session.flush()
    elif conn.config != stored or conn.crm != cfg.crm:
        conn.config, conn.crm = stored, cfg.crm
    return conn


def is_first_sync(session: Session, conn_id: int, *, before: int | None = None) -> bool:
    """The connection's first sync, which also flags the backlog (``reengage.flag_backlog``): no pull of
    it has finished yet (``succeeded`` or ``partial``; runs before run id ``before`` when given), or none
    of its records was ever scored (pulls with ``--no-score`` only)."""
    query = select(SyncRun.id).where(
        SyncRun.connection_id == conn_id,
        SyncRun.kind.in_((RunKind.INCREMENTAL, RunKind.FULL)),
        SyncRun.status.in_((RunStatus.SUCCEEDED, RunStatus.PARTIAL)),
    )
    if before is not None:
        query = query.where(SyncRun.id < before)
    if session.scalar(query.limit(1)) is None:
        return True
    scored = (
        select(RecordFit.snapshot_id)
        .join(RecordSnapshot, RecordSnapshot.id == RecordFit.snapshot_id)
        .where(RecordSnapshot.connection_id == conn_id)
        .limit(1)
    )
    return session.scalar(scored) is None


class AccountFit(NamedTuple):
    """An account's fit as an opportunity carries it."""

    external_id: str
    score: int
    tier: str
    coverage: float
    reasons: list[Any]
    reasons_text: str


def account_fits(session: Session, conn_id: int, account_ids: set[str]) -> dict[str, AccountFit]:
    """Fit rows (score, tier, coverage, reasons, reasons_text) of the given accounts, by id."""
    if not account_ids:
        return {}
    bulk = Bulk(session)
    where, params = bulk.codec.in_list(list(account_ids))
    rows = bulk.rows(
        "SELECT s.external_id, f.score, f.tier, f.coverage, f.reasons, f.reasons_text FROM record_snapshots s"
        " JOIN record_fits f ON f.snapshot_id = s.id WHERE s.connection_id = ? AND s.object_type = 'account'"
        f" AND s.external_id {where}",
        [conn_id, *params],
    )
    js = bulk.codec.read_json
    return {ext: AccountFit(ext, sc, tier, cov, js(rs), text) for ext, sc, tier, cov, rs, text in rows}


def opportunity_statuses(
    session: Session, conn_id: int, account_ids: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    """The statuses of the given accounts' opportunities, by account id, each account's in snapshot id
    order (the order SQLite's ``parent_id`` index gives; ``account_context`` lets the last of equal
    close dates decide)."""
    out: dict[str, list[dict[str, Any]]] = {}
    ids = list(account_ids)
    if not ids:
        return out
    bulk = Bulk(session)
    where, params = bulk.codec.in_list(ids)
    js = bulk.codec.read_json
    for parent, status in bulk.rows(
        "SELECT parent_id, status FROM record_snapshots WHERE connection_id = ?"
        f" AND object_type = 'opportunity' AND parent_id {where} ORDER BY id",
        [conn_id, *params],
    ):
        out.setdefault(parent, []).append(js(status) or {})
    return out


def flags(
    session: Session, conn_id: int, object_type: str, ids: Iterable[str]
) -> tuple[dict[str, ReengageFlag], dict[str, datetime]]:
    """The records' active flags, and when each record was last flagged at all (for the cool-off)."""
    active: dict[str, ReengageFlag] = {}
    last_raised: dict[str, datetime] = {}
    for flag in session.scalars(
        select(ReengageFlag).where(
            ReengageFlag.connection_id == conn_id,
            ReengageFlag.object_type == object_type,
            among(session, ReengageFlag.external_id, ids),
        )
    ):
        raised = aware(flag.raised_at)
        if flag.state == FlagState.ACTIVE:
            active[flag.external_id] = flag
        if flag.external_id not in last_raised or raised > last_raised[flag.external_id]:
            last_raised[flag.external_id] = raised
    return active, last_raised


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
