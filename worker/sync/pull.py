"""Pull and snapshot: each page's snapshots commit, then the cursor advances past them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from connectors.base import Connector, CrmRecord, ObjectType
from worker.config import ConnectionConfig
from worker.normalize import NormalizeConfig, normalize_status, normalize_values
from worker.store.db import Store
from worker.store.models import Cursor
from worker.sync.counts import RunCounts
from worker.sync.tables import SNAP, ProgressFn
from worker.sync.warnings import WarningTally, take_connector_problems


def normalize_config(cfg: ConnectionConfig) -> NormalizeConfig:
    return NormalizeConfig(
        industry_synonyms=dict(cfg.industry_synonyms), attribute_kinds=dict(cfg.attribute_kinds)
    )


def snapshot_page(
    session: Session,
    conn_id: int,
    object_type: str,
    records: Sequence[CrmRecord],
    norm: NormalizeConfig,
    now: datetime,
    tally: WarningTally | None = None,
) -> tuple[int, int]:
    """Upsert one page of pulled records; unchanged ones (same modification stamp) are skipped.
    Attributes and status values are normalised here, once; what could not be read is counted in
    ``tally``. Returns (changed, warnings)."""
    latest: dict[str, CrmRecord] = {}
    for rec in records:  # the same id twice in a page: the last one wins
        latest[rec.external_id] = rec
    warnings = 0
    if len(latest) < len(records):  # the rows that lost still count their problems
        for rec in records:
            if latest[rec.external_id] is not rec:
                lost = normalize_values(rec.raw, norm)[1]
                warnings += len(lost)
                if tally is not None:
                    tally.add_values(object_type, rec.external_id, lost)
    existing: dict[str, int] = {}
    stamps: dict[str, str] = {}
    for ext_id, snap_id, stamp in session.execute(
        select(SNAP.c.external_id, SNAP.c.id, SNAP.c.crm_modstamp).where(
            SNAP.c.connection_id == conn_id, SNAP.c.object_type == object_type, SNAP.c.external_id.in_(latest)
        )
    ):
        existing[ext_id], stamps[ext_id] = snap_id, stamp
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    parents: set[str] = set()
    for ext_id, rec in latest.items():
        if ext_id in stamps and stamps[ext_id] == rec.modstamp and rec.modstamp:
            continue  # re-pulled by the look-back, unchanged
        attributes, problems = normalize_values(rec.raw, norm)
        status, status_problems = normalize_status(rec.status)
        problems += status_problems
        warnings += len(problems)
        if tally is not None:
            tally.add_values(object_type, ext_id, problems)
        parent = status.get("account_id")
        row = {
            "name": (rec.name or "")[:255] or None,
            "attributes": attributes,
            "status": {k: (v.isoformat() if isinstance(v, date) else v) for k, v in status.items()},
            "warnings": [str(p) for p in problems],
            "owner_id": rec.owner_id,
            "last_activity": rec.last_activity,
            "crm_modstamp": rec.modstamp,
            "parent_id": str(parent) if parent else None,
            "dirty": True,
            "pulled_at": now,
        }
        if ext_id in existing:
            updates.append({"b_id": existing[ext_id], **row})
        else:
            inserts.append(
                {"connection_id": conn_id, "object_type": object_type, "external_id": ext_id, **row}
            )
        if object_type == "opportunity" and parent:
            parents.add(str(parent))
    if inserts:
        session.execute(insert(SNAP), inserts)
    if updates:
        session.execute(update(SNAP).where(SNAP.c.id == bindparam("b_id")), updates)
    if parents:  # an account's pipeline changed: its re-engagement state must be looked at again
        session.execute(
            update(SNAP)
            .where(
                SNAP.c.connection_id == conn_id,
                SNAP.c.object_type == "account",
                SNAP.c.external_id.in_(parents),
            )
            .values(dirty=True)
        )
    return len(inserts) + len(updates), warnings


def pull_object(
    store: Store,
    conn_id: int,
    cfg: ConnectionConfig,
    connector: Connector,
    object_type: ObjectType,
    *,
    full: bool,
    now: datetime,
    counts: RunCounts,
    progress: ProgressFn | None,
    run_id: int | None = None,
) -> None:
    """Pull one object type page by page; with ``run_id``, the data problems found are stored with the
    run (``run_warnings``) when the pull is done."""
    norm = normalize_config(cfg)
    tally = WarningTally()
    with store.session() as s:
        cursor = s.get(Cursor, (conn_id, object_type))
        since = None if full or cursor is None else cursor.value
    for page in connector.pull(object_type, since):
        with store.session() as s:
            changed, warnings = snapshot_page(s, conn_id, object_type, page.records, norm, now, tally)
            if page.cursor:
                cur = s.get(Cursor, (conn_id, object_type))
                if cur is None:
                    s.add(
                        Cursor(
                            connection_id=conn_id, object_type=object_type, value=page.cursor, updated_at=now
                        )
                    )
                elif page.cursor > cur.value:
                    cur.value, cur.updated_at = page.cursor, now
        found = take_connector_problems(connector)
        tally.add_connector(object_type, found)
        counts.add_pulled(object_type, len(page.records), changed)
        counts.warnings += warnings + len(found)
        if progress:
            progress(f"pull:{object_type}", len(page.records))
    found = take_connector_problems(connector)  # rows skipped after the last page (an empty id)
    tally.add_connector(object_type, found)
    counts.warnings += len(found)
    if run_id is not None and tally.entries:
        with store.session() as s:
            tally.store(s, run_id, conn_id)
