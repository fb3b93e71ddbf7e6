"""Follow-up tasks: one per due re-engagement flag, under the per-owner cap, idempotent by flag."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, select, update

from connectors.base import Connector, FollowUpTask
from worker.config import ConnectionConfig
from worker.reengage import cap_per_owner
from worker.store.db import Store
from worker.store.models import RecordSnapshot, ReengageFlag
from worker.store.states import FlagState, TaskStatus
from worker.sync.counts import RunCounts

#: Follow-up tasks created per connector call.
TASK_BATCH = 100


def create_followups(
    store: Store,
    conn_id: int,
    cfg: ConnectionConfig,
    connector: Connector,
    counts: RunCounts,
    now: datetime,
) -> None:
    """A follow-up task per due flag, under the per-owner cap; the connector de-duplicates by key."""
    with store.session() as s:
        due = s.execute(
            select(
                ReengageFlag.id,
                ReengageFlag.object_type,
                ReengageFlag.external_id,
                ReengageFlag.owner_id,
                ReengageFlag.reason,
                RecordSnapshot.name,
            )
            .outerjoin(
                RecordSnapshot,
                and_(
                    RecordSnapshot.connection_id == ReengageFlag.connection_id,
                    RecordSnapshot.object_type == ReengageFlag.object_type,
                    RecordSnapshot.external_id == ReengageFlag.external_id,
                ),
            )
            .where(
                ReengageFlag.connection_id == conn_id,
                ReengageFlag.state == FlagState.ACTIVE,
                ReengageFlag.task_status == TaskStatus.DUE,
            )
            .order_by(ReengageFlag.id)
        ).all()
    if not due:
        return
    allowed = cap_per_owner((row.owner_id for row in due), cfg.reengage.per_owner_cap)
    capped = [row.id for row, ok in zip(due, allowed, strict=True) if not ok]
    todo = [row for row, ok in zip(due, allowed, strict=True) if ok]
    if capped:
        with store.session() as s:
            s.execute(
                update(ReengageFlag).where(ReengageFlag.id.in_(capped)).values(task_status=TaskStatus.CAPPED)
            )
        counts.tasks_capped += len(capped)
    due_date = (now + timedelta(days=cfg.reengage.task_due_days)).date()
    for start in range(0, len(todo), TASK_BATCH):
        chunk = todo[start : start + TASK_BATCH]
        tasks = [
            FollowUpTask(
                key=f"icp-{conn_id}-{row.id}",
                object_type=row.object_type,
                external_id=row.external_id,
                owner_id=row.owner_id,
                subject=f"Re-engage {row.name or row.external_id}: now an ICP fit",
                description=row.reason,
                due_date=due_date,
            )
            for row in chunk
        ]
        results = {r.key: r for r in connector.create_tasks(tasks)}
        with store.session() as s:
            for row, task in zip(chunk, tasks, strict=True):
                res = results.get(task.key)
                if res is not None and res.ok:
                    s.execute(
                        update(ReengageFlag)
                        .where(ReengageFlag.id == row.id)
                        .values(task_status=TaskStatus.CREATED, task_id=res.task_id, task_error=None)
                    )
                    counts.tasks_created += 1
                else:
                    s.execute(
                        update(ReengageFlag)
                        .where(ReengageFlag.id == row.id)
                        .values(task_status=TaskStatus.ERROR, task_error=(res.error if res else "no result"))
                    )
                    counts.task_errors += 1
