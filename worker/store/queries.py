"""Store reads shared by the sync service and the revision preview."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.config import ConnectionConfig
from worker.icp.reasons import EncodedReasons, encoded_or_none
from worker.store.bulk import Bulk
from worker.store.models import Connection, RecordFit, RecordSnapshot, SyncRun
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
    """An account's fit as an opportunity carries it (``reasons``: as stored, decoded when read)."""

    external_id: str
    score: int
    tier: str
    coverage: float
    reasons: EncodedReasons | None
    reasons_text: str


def account_fits(session: Session, conn_id: int, account_ids: set[str]) -> dict[str, AccountFit]:
    """Fit rows (score, tier, coverage, reasons, reasons_text) of the given accounts, by id."""
    if not account_ids:
        return {}
    bulk = Bulk(session)
    where, params = bulk.codec.in_list(list(account_ids))
    # The reasons as text on both back ends (PostgreSQL's driver would parse a json column).
    rows = bulk.rows(
        "SELECT s.external_id, f.score, f.tier, f.coverage, CAST(f.reasons AS TEXT), f.reasons_text"
        " FROM record_snapshots s JOIN record_fits f ON f.snapshot_id = s.id"
        f" WHERE s.connection_id = ? AND s.object_type = 'account' AND s.external_id {where}",
        [conn_id, *params],
    )
    return {
        ext: AccountFit(ext, sc, tier, cov, encoded_or_none(rs), text)
        for ext, sc, tier, cov, rs, text in rows
    }


def opportunities_of(bulk: Bulk) -> str:
    """SQL for "the connection's (``?``) opportunities", to go with a ``parent_id`` condition.

    SQLite plans without statistics and, given ``connection_id = ? AND object_type = ?``, takes
    ``ix_record_snapshots_scan`` (connection, object type, id): it then reads every opportunity of the
    connection for each batch of accounts (25 ms instead of 0.4 ms for 240 accounts at 100,000). The
    unary ``+`` keeps those two columns out of its index choice, so it looks up ``parent_id`` in its
    own index. PostgreSQL's statistics choose that index by themselves (``bulk.Statistics``)."""
    if bulk.codec.dialect == "sqlite":
        return "+connection_id = ? AND +object_type = 'opportunity'"
    return "connection_id = ? AND object_type = 'opportunity'"


#: What an account's state reads of its opportunities' statuses (``reengage.account_context``).
OPPORTUNITY_STATUS_KEYS = ("is_closed", "is_won", "close_date")


def opportunity_statuses(
    session: Session, conn_id: int, account_ids: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    """The statuses of the given accounts' opportunities (only ``OPPORTUNITY_STATUS_KEYS``, a key the
    status lacks as None, as ``dict.get`` reads it), by account id, each account's in snapshot id order
    (the order SQLite's ``parent_id`` index gives; ``account_context`` lets the last of equal close dates
    decide).

    The database picks the three values out of each status as a JSON array (SQLite's ``json_extract`` of
    several paths, PostgreSQL's ``json_build_array``), so only those are decoded: the same values, of the
    same JSON types, as decoding the whole status gives."""
    out: dict[str, list[dict[str, Any]]] = {}
    ids = list(account_ids)
    if not ids:
        return out
    bulk = Bulk(session)
    where, params = bulk.codec.in_list(ids)
    if bulk.codec.dialect == "sqlite":
        picked = "json_extract(status, " + ", ".join(f"'$.{k}'" for k in OPPORTUNITY_STATUS_KEYS) + ")"
    else:  # as text, decoded by orjson (the driver would use the standard library's json)
        keys_sql = ", ".join(f"status->'{k}'" for k in OPPORTUNITY_STATUS_KEYS)
        picked = f"CAST(json_build_array({keys_sql}) AS TEXT)"
    rows = bulk.rows(
        f"SELECT id, parent_id, {picked} FROM record_snapshots"
        f" WHERE {opportunities_of(bulk)} AND parent_id {where}",
        [conn_id, *params],
    )
    rows.sort()  # here, not in SQL: ORDER BY id would tempt the planner into a walk of the whole table
    keys = OPPORTUNITY_STATUS_KEYS
    for _, parent, values in rows:
        got = None if values is None else orjson.loads(values)  # None: no status, read as an empty one
        out.setdefault(parent, []).append(dict(zip(keys, got, strict=True)) if got else {})
    return out


@dataclass(frozen=True, slots=True)
class ActiveFlagRow:
    """An active re-engagement flag as the score phase reads it (what evaluating and clearing use)."""

    id: int
    external_id: str
    raised_at: datetime
    reason: str
    task_status: str


def flags(
    session: Session, conn_id: int, object_type: str, ids: Iterable[str]
) -> tuple[dict[str, ActiveFlagRow], dict[str, datetime]]:
    """The records' active flags, and when each record was last flagged at all (for the cool-off).

    One plain query reads every flag of the records; the active ones come back as ``ActiveFlagRow``
    (the newest, should a record have more than one), which the score phase clears by its id
    (``score.UPDATE_CLEARED``)."""
    active: dict[str, ActiveFlagRow] = {}
    last_raised: dict[str, datetime] = {}
    ids = list(ids)
    if not ids:
        return active, last_raised
    bulk = Bulk(session)
    where, params = bulk.codec.in_list(ids)
    read_moment = bulk.codec.read_moment
    for flag_id, external_id, state, raised_at, reason, task_status in bulk.rows(
        "SELECT id, external_id, state, raised_at, reason, task_status FROM reengage_flags"
        f" WHERE connection_id = ? AND object_type = ? AND external_id {where} ORDER BY id",
        [conn_id, object_type, *params],
    ):
        moment = read_moment(raised_at)
        assert moment is not None  # raised_at is never NULL
        raised = aware(moment)
        if state == FlagState.ACTIVE:
            active[external_id] = ActiveFlagRow(flag_id, external_id, raised, reason, task_status)
        if external_id not in last_raised or raised > last_raised[external_id]:
            last_raised[external_id] = raised
    return active, last_raised


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
