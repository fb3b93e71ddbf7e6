"""One sync run: pull → snapshot → score → diff → write → re-engage → run record.

Plain functions (the Celery tasks in ``worker.tasks`` only wrap them). Every step commits as it goes
and keeps its pending work in the store, so a run killed at any point is finished by the next one:

- pull: a page's snapshots are committed, then the cursor advances past them; a changed record is
  marked ``dirty``;
- score: dirty records (and records scored under an older ICP version) are scored in batches;
  each batch's fits and the clearing of ``dirty`` commit together;
- diff: a fit's ``desired`` owned-field values are compared with what was last ``written``;
  only records whose values differ are ``pending``;
- write: pending (and previously failed) records go to the CRM in the connector's batch size;
  each batch's per-record results commit right after the CRM answers (a crash re-sends at most
  the one batch in flight);
- re-engage: flags are raised and cleared while scoring; follow-up tasks are created afterwards,
  idempotently by flag.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import structlog
from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from connectors.base import OBJECT_TYPES, Connector, CrmRecord, FitUpdate, FollowUpTask
from connectors.errors import ConnectorError, MissingFieldsError, QuotaExceededError
from worker.config import ConnectionConfig
from worker.icp.model import IcpSpec
from worker.icp.scoring import Scorer
from worker.icp.spec import parse_icp
from worker.normalize import NormalizeConfig, normalize_record
from worker.reengage import ActiveFlag, cap_per_owner, decide, rise_explanation
from worker.store import queries
from worker.store.db import Store
from worker.store.models import (
    Connection,
    Cursor,
    FitHistory,
    IcpVersion,
    RecordFit,
    RecordSnapshot,
    ReengageFlag,
    SyncRun,
)

log = structlog.get_logger("worker.sync")

# The hot paths use Core statements on the tables: plain rows and executemany, no ORM identity map.
SNAP = RecordSnapshot.__table__
FIT = RecordFit.__table__
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
    RecordFit.reasons_text,
    RecordFit.icp_version,
    RecordFit.reasons,
    RecordFit.written,
    RecordFit.write_status,
    RecordFit.scored_at,
)

#: Records scored per transaction.
SCORE_BATCH = 2000
#: Follow-up tasks created per connector call.
TASK_BATCH = 100

ProgressFn = Callable[[str, int], None]
"""``progress(phase, n)``: ``n`` more records done in ``phase`` (pull:account, score:lead, write:...)."""


class NoIcpError(RuntimeError):
    """No ICP version is published yet."""


@dataclass
class RunSummary:
    run_id: int
    connection: str
    kind: str
    status: str
    counts: dict[str, Any] = field(default_factory=dict)
    api_calls: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None


# --------------------------------------------------------------------------- helpers


def utcnow() -> datetime:
    return datetime.now(UTC)


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


def latest_icp(session: Session) -> IcpVersion | None:
    """The current ICP version (held and rejected versions never score)."""
    from worker.icp.versions import current_version

    return current_version(session)


def spec_of(version: IcpVersion) -> IcpSpec:
    return parse_icp(version.content, f"ICP v{version.number}")


def normalize_config(cfg: ConnectionConfig) -> NormalizeConfig:
    return NormalizeConfig(
        industry_synonyms=dict(cfg.industry_synonyms), attribute_kinds=dict(cfg.attribute_kinds)
    )


def ordered(object_types: Iterable[str]) -> list[str]:
    """Accounts before opportunities (which carry their account's fit) before leads."""
    wanted = set(object_types)
    return [t for t in OBJECT_TYPES if t in wanted]


def material(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """Owned values that decide whether a record is written: a new ICP version alone is not a change
    (the CRM's ICP version field tells which version produced the values it shows)."""
    if values is None:
        return None
    return {k: v for k, v in values.items() if k != "icp_version"}


def _bump(counts: dict[str, Any], key: str, n: int = 1) -> None:
    counts[key] = counts.get(key, 0) + n


# --------------------------------------------------------------------------- pull


def snapshot_page(
    session: Session,
    conn_id: int,
    object_type: str,
    records: Sequence[CrmRecord],
    norm: NormalizeConfig,
    now: datetime,
) -> tuple[int, int]:
    """Upsert one page of pulled records; unchanged ones (same modification stamp) are skipped.
    Returns (changed, warnings)."""
    latest: dict[str, CrmRecord] = {}
    for rec in records:  # the same id twice in a page: the last one wins
        latest[rec.external_id] = rec
    existing: dict[str, int] = {}
    stamps: dict[str, str] = {}
    for ext_id, snap_id, stamp in session.execute(
        select(SNAP.c.external_id, SNAP.c.id, SNAP.c.crm_modstamp).where(
            SNAP.c.connection_id == conn_id, SNAP.c.object_type == object_type, SNAP.c.external_id.in_(latest)
        )
    ):
        existing[ext_id], stamps[ext_id] = snap_id, stamp
    inserts, updates, parents = [], [], set()
    warnings = 0
    for ext_id, rec in latest.items():
        if ext_id in stamps and stamps[ext_id] == rec.modstamp and rec.modstamp:
            continue  # re-pulled by the look-back, unchanged
        attributes, problems = normalize_record(rec.raw, norm)
        warnings += len(problems)
        parent = rec.status.get("account_id")
        row = {
            "name": (rec.name or "")[:255] or None,
            "attributes": attributes,
            "status": {k: (v.isoformat() if isinstance(v, date) else v) for k, v in rec.status.items()},
            "warnings": problems,
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
    object_type: str,
    *,
    full: bool,
    now: datetime,
    counts: dict[str, Any],
    progress: ProgressFn | None,
) -> None:
    norm = normalize_config(cfg)
    with store.session() as s:
        cursor = s.get(Cursor, (conn_id, object_type))
        since = None if full or cursor is None else cursor.value
    for page in connector.pull(object_type, since):  # type: ignore[arg-type]
        with store.session() as s:
            changed, warnings = snapshot_page(s, conn_id, object_type, page.records, norm, now)
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
        _bump(counts, f"pulled_{object_type}", len(page.records))
        _bump(counts, f"changed_{object_type}", changed)
        _bump(counts, "warnings", warnings)
        if progress:
            progress(f"pull:{object_type}", len(page.records))


# --------------------------------------------------------------------------- score and re-engage


@dataclass
class ScoringContext:
    conn_id: int
    cfg: ConnectionConfig
    version: IcpVersion
    spec: IcpSpec
    scorer: Scorer
    now: datetime
    run_id: int

    @property
    def targets(self) -> frozenset[str]:
        return frozenset(self.spec.reengage_tiers)


def _needs_scoring(conn_id: int, object_type: str, version: int):
    return and_(
        RecordSnapshot.connection_id == conn_id,
        RecordSnapshot.object_type == object_type,
        or_(
            RecordSnapshot.dirty.is_(True), RecordFit.snapshot_id.is_(None), RecordFit.icp_version != version
        ),
    )


def score_batch(
    session: Session, ctx: ScoringContext, object_type: str, rows: Sequence[Any], counts: dict[str, Any]
) -> set[str]:
    """Score one batch of (snapshot, fit-or-None) rows; returns account ids whose fit changed."""
    conn_id, version, now = ctx.conn_id, ctx.version.number, ctx.now
    ids = [row.external_id for row in rows]
    parents = {row.parent_id for row in rows if row.parent_id} if object_type == "opportunity" else set()
    account_fits = queries.account_fits(session, conn_id, parents)
    opp_statuses = queries.opportunity_statuses(session, conn_id, ids) if object_type == "account" else {}
    active, last_raised = (
        queries.flags(session, conn_id, object_type, ids) if object_type != "opportunity" else ({}, {})
    )
    fit_inserts, fit_updates, history, changed_accounts = [], [], [], set()
    for snap in rows:
        fit = snap if snap.fit_id is not None else None
        carried = account_fits.get(snap.parent_id or "") if object_type == "opportunity" else None
        if carried is not None:  # opportunities carry their account's fit
            score, tier, coverage = carried.score, carried.tier, carried.coverage
            reasons, text = carried.reasons, carried.reasons_text
        else:
            result = ctx.scorer.score(snap.attributes or {})
            score, tier, coverage = result.score, result.tier, result.coverage
            reasons, text = result.reasons_json(), result.compact(255)
        previous_tier = fit.tier if fit is not None else None
        result_changed = fit is None or (fit.score, fit.tier, fit.reasons_text, fit.icp_version) != (
            score,
            tier,
            text,
            version,
        )

        flag_on, flag_reason = False, ""
        if object_type != "opportunity":
            flag = active.get(snap.external_id)
            decision = decide(
                queries.record_state(snap, opp_statuses),
                previous_tier=previous_tier,
                new_tier=tier,
                target_tiers=ctx.targets,
                active_flag=ActiveFlag(queries.aware(flag.raised_at)) if flag else None,
                last_raised=last_raised.get(snap.external_id),
                now=now,
                dismissed_statuses=ctx.cfg.dismissed,
                stale_days=ctx.cfg.reengage.stale_days,
                cooloff_days=ctx.cfg.reengage.cooloff_days,
                explanation=partial(
                    rise_explanation, previous_tier or "", tier, version, fit.reasons if fit else [], reasons
                ),
            )
            if decision.clear_reason and flag is not None:
                flag.state, flag.cleared_at, flag.clear_reason = "cleared", now, decision.clear_reason
                if flag.task_status == "due":
                    flag.task_status = "none"
                _bump(counts, "flags_cleared")
                flag = None
            elif decision.raise_kind:
                flag = ReengageFlag(
                    connection_id=conn_id,
                    object_type=object_type,
                    external_id=snap.external_id,
                    owner_id=snap.owner_id,
                    state="active",
                    kind=decision.raise_kind,
                    from_tier=previous_tier or "",
                    to_tier=tier,
                    from_version=fit.icp_version if fit else None,
                    to_version=version,
                    reason=decision.reason or "",
                    raised_at=now,
                    task_status="due" if ctx.cfg.reengage.create_tasks else "none",
                )
                session.add(flag)
                _bump(counts, "flags_raised")
            if flag is not None:
                flag_on, flag_reason = True, flag.reason[:255]

        desired = {
            "fit_score": score,
            "fit_tier": tier,
            "fit_reasons": text,
            "icp_version": version,
            "reengage_flag": flag_on,
            "reengage_reason": flag_reason,
        }
        values = {
            "score": score,
            "tier": tier,
            "coverage": coverage,
            "reasons": reasons,
            "reasons_text": text,
            "icp_version": version,
            "desired": desired,
            "scored_at": now if result_changed or fit is None else fit.scored_at,
        }
        if fit is None or material(fit.written) != material(desired):
            values["write_status"] = "pending" if fit is None or fit.write_status != "error" else "error"
        else:
            values["write_status"] = "ok"
        if result_changed:
            _bump(counts, "fits_changed")
            if fit is None or fit.tier != tier or fit.score != score:
                history.append(
                    {
                        "connection_id": conn_id,
                        "object_type": object_type,
                        "external_id": snap.external_id,
                        "icp_version": version,
                        "score": score,
                        "tier": tier,
                        "previous_tier": previous_tier,
                        "run_id": ctx.run_id,
                        "scored_at": now,
                    }
                )
            if object_type == "account" and fit is not None:
                changed_accounts.add(snap.external_id)
        if fit is None:
            fit_inserts.append({"snapshot_id": snap.id, "written": None, "write_attempts": 0, **values})
        else:
            fit_updates.append({"b_id": snap.id, **values})
    if fit_inserts:
        session.execute(insert(FIT), fit_inserts)
    if fit_updates:
        session.execute(update(FIT).where(FIT.c.snapshot_id == bindparam("b_id")), fit_updates)
    if history:
        session.execute(insert(FitHistory.__table__), history)
    session.execute(update(SNAP).where(SNAP.c.id.in_([row.id for row in rows])).values(dirty=False))
    _bump(counts, "scored", len(rows))
    return changed_accounts


def score_object(
    store: Store, ctx: ScoringContext, object_type: str, counts: dict[str, Any], progress: ProgressFn | None
) -> None:
    last_id = 0
    while True:
        with store.session() as s:
            rows = s.execute(
                select(*SCORING_COLUMNS)
                .outerjoin(RecordFit, RecordFit.snapshot_id == RecordSnapshot.id)
                .where(
                    _needs_scoring(ctx.conn_id, object_type, ctx.version.number), RecordSnapshot.id > last_id
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


# --------------------------------------------------------------------------- write


#: Pending fits read per query in the write phase (then sent in the connector's batch size).
WRITE_READ_CHUNK = 2000


def write_object(
    store: Store,
    conn_id: int,
    object_type: str,
    connector: Connector,
    counts: dict[str, Any],
    now: datetime,
    progress: ProgressFn | None,
) -> None:
    """Send every pending (or previously failed) record once, in the connector's batch size.

    Last run's failures go first, then the pending records: a record failing now is marked ``error``
    and not tried again in this run. One status per query keeps the index scan in key order (an
    ``IN`` over both statuses makes SQLite sort every remaining row, once per query).
    """
    batch = max(1, int(connector.write_batch_size))
    for status in ("error", "pending"):
        last_id = 0
        while True:
            with store.session() as s:
                rows = s.execute(
                    select(
                        RecordFit.snapshot_id,
                        RecordSnapshot.external_id,
                        RecordFit.desired,
                        RecordFit.scored_at,
                    )
                    .join(RecordSnapshot, RecordSnapshot.id == RecordFit.snapshot_id)
                    .where(
                        RecordFit.write_status == status,
                        RecordFit.snapshot_id > last_id,
                        RecordSnapshot.connection_id == conn_id,
                        RecordSnapshot.object_type == object_type,
                    )
                    .order_by(RecordFit.snapshot_id)
                    .limit(max(batch, WRITE_READ_CHUNK))
                ).all()
            if not rows:
                break
            last_id = rows[-1][0]
            for start in range(0, len(rows), batch):
                write_batch(store, object_type, connector, rows[start : start + batch], counts, now)
                if progress:
                    progress(f"write:{object_type}", len(rows[start : start + batch]))


def write_batch(
    store: Store,
    object_type: str,
    connector: Connector,
    rows: Sequence[Any],
    counts: dict[str, Any],
    now: datetime,
) -> None:
    """One write request and its per-record results, committed as soon as the CRM answers."""
    updates = [
        FitUpdate(ext, {**desired, "scored_at": queries.aware(scored_at).isoformat(timespec="seconds")})
        for _, ext, desired, scored_at in rows
    ]
    results = connector.write(object_type, updates)  # type: ignore[arg-type]
    by_id = {r.external_id: r for r in results}
    ok_rows, failed_rows = [], []
    for snapshot_id, ext, desired, _ in rows:
        res = by_id.get(ext)
        if res is not None and res.ok:
            ok_rows.append(
                {
                    "b_id": snapshot_id,
                    "written": desired,
                    "written_at": now,
                    "write_status": "ok",
                    "write_error": None,
                }
            )
        else:
            error = "no result from the CRM" if res is None else f"{res.error_code}: {res.error_message}"
            failed_rows.append((snapshot_id, error[:2000]))
    with store.session() as s:
        if ok_rows:
            s.execute(update(FIT).where(FIT.c.snapshot_id == bindparam("b_id")), ok_rows)
        for snapshot_id, error in failed_rows:
            s.execute(
                update(RecordFit)
                .where(RecordFit.snapshot_id == snapshot_id)
                .values(write_status="error", write_error=error, write_attempts=RecordFit.write_attempts + 1)
            )
    _bump(counts, "written", len(ok_rows))
    _bump(counts, "write_errors", len(failed_rows))


def create_followups(
    store: Store,
    conn_id: int,
    cfg: ConnectionConfig,
    connector: Connector,
    counts: dict[str, Any],
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
                ReengageFlag.state == "active",
                ReengageFlag.task_status == "due",
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
            s.execute(update(ReengageFlag).where(ReengageFlag.id.in_(capped)).values(task_status="capped"))
        _bump(counts, "tasks_capped", len(capped))
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
                        .values(task_status="created", task_id=res.task_id, task_error=None)
                    )
                    _bump(counts, "tasks_created")
                else:
                    s.execute(
                        update(ReengageFlag)
                        .where(ReengageFlag.id == row.id)
                        .values(task_status="error", task_error=(res.error if res else "no result"))
                    )
                    _bump(counts, "task_errors")


# --------------------------------------------------------------------------- the run


def run_sync(
    store: Store,
    cfg: ConnectionConfig,
    connector: Connector,
    *,
    kind: str = "incremental",
    now: datetime | None = None,
    progress: ProgressFn | None = None,
    task_id: str | None = None,
) -> RunSummary:
    """One run for one connection. ``kind``: ``incremental``, ``full`` or ``reevaluate`` (no pull:
    re-score from snapshots under the latest ICP and write what changed).

    A daily quota reached ends the run cleanly (status ``quota_reserved`` / ``quota_exceeded``) and the
    next run resumes from its cursor. Other connector errors fail the run and are re-raised.
    """
    if kind not in ("incremental", "full", "reevaluate"):
        raise ValueError(f"unknown sync kind {kind!r}")
    now = now or utcnow()
    counts: dict[str, Any] = {}
    timings: dict[str, float] = {}
    with store.session() as s:
        conn = ensure_connection(s, cfg, now)
        version = latest_icp(s)
        run = SyncRun(
            connection_id=conn.id,
            kind=kind,
            status="running",
            started_at=now,
            task_id=task_id,
            icp_version=version.number if version else None,
            counts={},
            api_calls={},
            timings={},
        )
        s.add(run)
        s.flush()
        run_id, conn_id = run.id, conn.id
    summary = RunSummary(run_id=run_id, connection=cfg.name, kind=kind, status="running")
    clock = time.perf_counter()
    bound = log.bind(run_id=run_id, connection=cfg.name, kind=kind)
    # Every log line of this run (connectors, SDKs) carries its id.
    structlog.contextvars.bind_contextvars(run_id=run_id)
    bound.info("run.started", icp_version=version.number if version else None)

    def phase(name: str, started: float) -> float:
        timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - started, 3)
        return time.perf_counter()

    try:
        if version is None:
            raise NoIcpError("no ICP is published yet: run `icp-worker icp publish FILE --note TEXT` first")
        spec = spec_of(version)
        ctx = ScoringContext(conn_id, cfg, version, spec, Scorer(spec), now, run_id)
        objects = ordered(cfg.objects)
        if kind != "reevaluate":
            missing = connector.check_fields(objects)  # type: ignore[arg-type]
            if missing:
                raise MissingFieldsError(
                    "owned fields are missing, so nothing will be written: "
                    + ", ".join(missing)
                    + f". Run `icp-worker fields install --connection {cfg.name}`.",
                    missing=missing,
                )
            t = time.perf_counter()
            for obj in objects:
                pull_object(
                    store,
                    conn_id,
                    cfg,
                    connector,
                    obj,
                    full=kind == "full",
                    now=now,
                    counts=counts,
                    progress=progress,
                )
            phase("pull", t)
        t = time.perf_counter()
        for obj in objects:
            score_object(store, ctx, obj, counts, progress)
        t = phase("score", t)
        for obj in objects:
            write_object(store, conn_id, obj, connector, counts, now, progress)
        t = phase("write", t)
        if cfg.reengage.create_tasks:
            create_followups(store, conn_id, cfg, connector, counts, now)
            phase("tasks", t)
        summary.status = "partial" if counts.get("write_errors") or counts.get("task_errors") else "succeeded"
    except QuotaExceededError as exc:
        summary.status = "quota_reserved" if exc.reserved else "quota_exceeded"
        summary.error = str(exc)
        bound.warning("run.quota", status=summary.status, error=summary.error)
    except (ConnectorError, NoIcpError) as exc:
        summary.status, summary.error = "failed", f"{type(exc).__name__}: {exc}"
        bound.error("run.failed", error=summary.error, transient=getattr(exc, "transient", False))
        raise
    except BaseException as exc:
        summary.status, summary.error = "failed", f"{type(exc).__name__}: {exc}"
        bound.error("run.failed", error=summary.error)
        raise
    finally:
        timings["total"] = round(time.perf_counter() - clock, 3)
        summary.counts, summary.timings = counts, timings
        try:
            summary.api_calls = connector.usage().as_dict()
        except Exception:  # noqa: BLE001 - usage is informative; never mask the run's own outcome
            summary.api_calls = {}
        with store.session() as s:
            s.execute(
                update(SyncRun)
                .where(SyncRun.id == run_id)
                .values(
                    status=summary.status,
                    counts=counts,
                    api_calls=summary.api_calls,
                    timings=timings,
                    error=summary.error,
                    finished_at=utcnow(),
                )
            )
        bound.info(
            "run.finished",
            status=summary.status,
            counts=counts,
            seconds=timings["total"],
            api_calls=summary.api_calls.get("calls"),
        )
        structlog.contextvars.unbind_contextvars("run_id")
    return summary
