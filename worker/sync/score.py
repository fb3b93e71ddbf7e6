"""Score and re-engage: dirty records (and records scored under an older ICP version) are evaluated
in batches by ``worker.evaluate``; each batch's fits, flag changes, history and the clearing of
``dirty`` commit together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from worker.config import ConnectionConfig
from worker.evaluate import Evaluation, FlagView, Policy, evaluate
from worker.icp.scoring import Scorer
from worker.store import queries
from worker.store.db import Store
from worker.store.models import RecordFit, RecordSnapshot, ReengageFlag
from worker.store.states import FlagState, TaskStatus
from worker.sync.counts import RunCounts
from worker.sync.tables import FIT, HISTORY, SNAP, ProgressFn

#: What scoring reads: the snapshot's columns and its fit's (``fit_id`` is None when never scored).
SCORING_COLUMNS = (
    RecordSnapshot.id,
    RecordSnapshot.external_id,
    RecordSnapshot.object_type,
    RecordSnapshot.attributes,
    RecordSnapshot.status,
    RecordSnapshot.owner_id,
    RecordSnapshot.last_activity,
    RecordSnapshot.parent_id,
    RecordFit.snapshot_id.label("fit_id"),
    RecordFit.score,
    RecordFit.tier,
    RecordFit.coverage,
    RecordFit.reasons_text,
    RecordFit.icp_version,
    RecordFit.reasons,
    RecordFit.written,
    RecordFit.write_status,
    RecordFit.scored_at,
)

#: Records scored per transaction.
SCORE_BATCH = 2000


@dataclass
class ScoringContext:
    conn_id: int
    cfg: ConnectionConfig
    policy: Policy
    scorer: Scorer
    now: datetime
    run_id: int


def needs_scoring(conn_id: int, object_type: str, version: int) -> ColumnElement[bool]:
    """Records the score phase evaluates: changed, never scored, or scored under another version."""
    return and_(
        RecordSnapshot.connection_id == conn_id,
        RecordSnapshot.object_type == object_type,
        or_(
            RecordSnapshot.dirty.is_(True), RecordFit.snapshot_id.is_(None), RecordFit.icp_version != version
        ),
    )


@dataclass
class BatchContext:
    """What a batch's evaluations read from the store besides the rows themselves."""

    account_fits: dict[str, Any]
    opp_statuses: dict[str, list[dict[str, Any]]]
    active: dict[str, ReengageFlag]
    last_raised: dict[str, datetime]


def batch_context(session: Session, conn_id: int, object_type: str, rows: Sequence[Any]) -> BatchContext:
    ids = [row.external_id for row in rows]
    parents = {row.parent_id for row in rows if row.parent_id} if object_type == "opportunity" else set()
    active, last_raised = (
        queries.flags(session, conn_id, object_type, ids) if object_type != "opportunity" else ({}, {})
    )
    return BatchContext(
        account_fits=queries.account_fits(session, conn_id, parents),
        opp_statuses=queries.opportunity_statuses(session, conn_id, ids) if object_type == "account" else {},
        active=active,
        last_raised=last_raised,
    )


def evaluate_row(
    snap: Any, object_type: str, bc: BatchContext, scorer: Scorer, policy: Policy, now: datetime
) -> Evaluation:
    """One row of a batch (its snapshot's and its fit's columns) through the shared evaluation."""
    flag = bc.active.get(snap.external_id)
    return evaluate(
        snap,
        snap if snap.fit_id is not None else None,
        scorer=scorer,
        policy=policy,
        now=now,
        carried=bc.account_fits.get(snap.parent_id or "") if object_type == "opportunity" else None,
        opportunity_statuses=bc.opp_statuses,
        active_flag=FlagView(queries.aware(flag.raised_at), flag.reason) if flag is not None else None,
        last_raised=bc.last_raised.get(snap.external_id),
    )


def _apply_flag(
    session: Session, ctx: ScoringContext, snap: Any, ev: Evaluation, bc: BatchContext, counts: RunCounts
) -> None:
    """Clear the record's active flag, or raise a new one, as the evaluation decided."""
    flag = bc.active.get(snap.external_id)
    if ev.clear_reason and flag is not None:
        flag.state, flag.cleared_at, flag.clear_reason = FlagState.CLEARED, ctx.now, ev.clear_reason
        if flag.task_status == TaskStatus.DUE:
            flag.task_status = TaskStatus.NONE
        counts.flags_cleared += 1
    elif ev.raise_kind:
        fit = snap if snap.fit_id is not None else None
        session.add(
            ReengageFlag(
                connection_id=ctx.conn_id,
                object_type=snap.object_type,
                external_id=snap.external_id,
                owner_id=snap.owner_id,
                state=FlagState.ACTIVE,
                kind=ev.raise_kind,
                from_tier=fit.tier if fit is not None else "",
                to_tier=ev.tier,
                from_version=fit.icp_version if fit is not None else None,
                to_version=ctx.policy.icp_version,
                reason=ev.decision.reason or "",
                raised_at=ctx.now,
                task_status=TaskStatus.DUE if ctx.cfg.reengage.create_tasks else TaskStatus.NONE,
            )
        )
        counts.flags_raised += 1


def score_batch(
    session: Session, ctx: ScoringContext, object_type: str, rows: Sequence[Any], counts: RunCounts
) -> set[str]:
    """Score one batch of (snapshot, fit-or-None) rows; returns account ids whose fit changed."""
    bc = batch_context(session, ctx.conn_id, object_type, rows)
    version, now = ctx.policy.icp_version, ctx.now
    fit_inserts: list[dict[str, Any]] = []
    fit_updates: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    changed_accounts: set[str] = set()
    for snap in rows:
        ev = evaluate_row(snap, object_type, bc, ctx.scorer, ctx.policy, now)
        _apply_flag(session, ctx, snap, ev, bc, counts)
        values = {
            "score": ev.score,
            "tier": ev.tier,
            "coverage": ev.coverage,
            "reasons": ev.reasons,
            "reasons_text": ev.reasons_text,
            "icp_version": version,
            "desired": ev.desired,
            "scored_at": ev.scored_at,
            "write_status": ev.write_status,
        }
        if ev.result_changed:
            counts.fits_changed += 1
            if object_type == "account" and snap.fit_id is not None:
                changed_accounts.add(snap.external_id)
        if ev.history is not None:
            history.append(
                {
                    "connection_id": ctx.conn_id,
                    "object_type": object_type,
                    "external_id": snap.external_id,
                    "icp_version": version,
                    "score": ev.history.score,
                    "tier": ev.history.tier,
                    "previous_tier": ev.history.previous_tier,
                    "previous_score": ev.history.previous_score,
                    "previous_version": ev.history.previous_version,
                    "cause": ev.history.cause.value,
                    "reasons_text": ev.history.reasons_text,
                    "run_id": ctx.run_id,
                    "scored_at": now,
                }
            )
        if snap.fit_id is None:
            fit_inserts.append({"snapshot_id": snap.id, "written": None, "write_attempts": 0, **values})
        else:
            fit_updates.append({"b_id": snap.id, **values})
    if fit_inserts:
        session.execute(insert(FIT), fit_inserts)
    if fit_updates:
        session.execute(update(FIT).where(FIT.c.snapshot_id == bindparam("b_id")), fit_updates)
    if history:
        session.execute(insert(HISTORY), history)
    session.execute(update(SNAP).where(SNAP.c.id.in_([row.id for row in rows])).values(dirty=False))
    counts.scored += len(rows)
    return changed_accounts


def score_object(
    store: Store, ctx: ScoringContext, object_type: str, counts: RunCounts, progress: ProgressFn | None
) -> None:
    last_id = 0
    while True:
        with store.session() as s:
            rows = s.execute(
                select(*SCORING_COLUMNS)
                .outerjoin(RecordFit, RecordFit.snapshot_id == RecordSnapshot.id)
                .where(
                    needs_scoring(ctx.conn_id, object_type, ctx.policy.icp_version),
                    RecordSnapshot.id > last_id,
                )
                .order_by(RecordSnapshot.id)
                .limit(SCORE_BATCH)
            ).all()
            if not rows:
                return
            last_id = rows[-1].id
            changed_accounts = score_batch(s, ctx, object_type, rows, counts)
            if changed_accounts:  # their opportunities carry the account's fit: score them again
                s.execute(
                    update(SNAP)
                    .where(
                        SNAP.c.connection_id == ctx.conn_id,
                        SNAP.c.object_type == "opportunity",
                        SNAP.c.parent_id.in_(changed_accounts),
                    )
                    .values(dirty=True)
                )
        if progress:
            progress(f"score:{object_type}", len(rows))
