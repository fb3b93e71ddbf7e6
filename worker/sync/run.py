"""The run: its record in ``sync_runs`` and the order of the phases."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select, update

from connectors.base import Connector, RunAware
from connectors.errors import ConnectorError, MissingFieldsError, QuotaExceededError
from worker.config import ConnectionConfig
from worker.errors import describe
from worker.evaluate import Policy, ordered, policy_for
from worker.icp.scoring import Scorer
from worker.icp.versions import latest_icp, spec_of
from worker.store.db import Store
from worker.store.models import Connection, IcpVersion, SyncRun
from worker.store.queries import ensure_connection, is_first_sync
from worker.store.states import SYNC_KINDS, RunKind, RunStatus
from worker.sync.counts import RunCounts
from worker.sync.followups import create_followups
from worker.sync.plan import plan, record_row
from worker.sync.pull import pull_objects
from worker.sync.score import ScoringContext, score_object
from worker.sync.tables import ProgressFn
from worker.sync.write import RecordError, write_objects

# The name ``worker.observability`` lifts the run id from (see ``lift_run_id``).
log = structlog.get_logger("worker.sync")

__all__ = ["NoIcpError", "ProgressFn", "RunSummary", "close_abandoned_runs", "run_sync", "utcnow"]


class NoIcpError(RuntimeError):
    """No ICP version is published yet."""


NO_ICP = (
    "no ICP is published yet: run `icp-worker icp publish FILE --note TEXT` first (or `icp-worker sync "
    "--no-score` to only pull snapshots, e.g. for `icp-worker icp derive`)"
)


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
    #: The first records the CRM refused (``RecordError.as_dict``: object_type, id, field, code, message).
    record_errors: list[dict[str, Any]] = field(default_factory=list)
    #: A dry run: every record the run would write (``worker.sync.plan.RECORD_COLUMNS``).
    records: list[dict[str, Any]] = field(default_factory=list)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Run:
    """One run in progress: its ids, what it counted, how long each phase took."""

    run_id: int
    conn_id: int
    version: IcpVersion | None
    #: No earlier pull of the connection finished: the backlog is flagged (``reengage.flag_backlog``).
    first_sync: bool
    counts: RunCounts = field(default_factory=RunCounts)
    timings: dict[str, float] = field(default_factory=dict)
    errors: list[RecordError] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def timed(self, name: str, started: float) -> float:
        self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - started, 3)
        return time.perf_counter()


def start_run(store: Store, cfg: ConnectionConfig, kind: str, now: datetime, task_id: str | None) -> _Run:
    """The run's row (``running``) under the latest ICP version; the connection's row follows the file."""
    with store.session() as s:
        conn = ensure_connection(s, cfg, now)
        version = latest_icp(s)
        run = SyncRun(
            connection_id=conn.id,
            kind=kind,
            status=RunStatus.RUNNING,
            started_at=now,
            task_id=task_id,
            icp_version=version.number if version else None,
            counts={},
            api_calls={},
            timings={},
        )
        s.add(run)
        s.flush()
        return _Run(run.id, conn.id, version, is_first_sync(s, conn.id, before=run.id))


def close_abandoned_runs(store: Store, connection: str) -> int:
    """Mark the connection's ``running`` runs as failed (abandoned). Call only while holding its lock
    (a worker or a CLI run): a run that is really running holds the lock, so any other ``running`` row
    belongs to a process that died (SIGKILL, out of memory, a lost machine)."""
    with store.session() as s:
        conn_id = s.scalar(select(Connection.id).where(Connection.name == connection))
        if conn_id is None:
            return 0
        result = s.execute(
            update(SyncRun)
            .where(SyncRun.connection_id == conn_id, SyncRun.status == RunStatus.RUNNING)
            .values(
                status=RunStatus.FAILED,
                finished_at=utcnow(),
                error="abandoned: the process running it stopped (killed or lost); the next run resumed",
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)


def finish_run(store: Store, run: _Run, summary: RunSummary) -> None:
    with store.session() as s:
        s.execute(
            update(SyncRun)
            .where(SyncRun.id == run.run_id)
            .values(
                status=summary.status,
                counts=summary.counts,
                api_calls=summary.api_calls,
                timings=summary.timings,
                error=summary.error,
                finished_at=utcnow(),
            )
        )


def check_owned_fields(cfg: ConnectionConfig, connector: Connector, policy: Policy) -> None:
    missing = connector.check_fields(policy.objects)
    if missing:
        raise MissingFieldsError(
            "owned fields are missing, so nothing will be written: "
            + ", ".join(missing)
            + f". Run `icp-worker fields install --connection {cfg.name}`.",
            missing=missing,
        )


#: Allocations (net) between the young generation's collections during a run (CPython's default is 700).
RUN_GC_THRESHOLD = 20_000
_gc_lock = threading.Lock()
_gc_runs = 0
_gc_saved: tuple[int, ...] = ()


@contextmanager
def quiet_collector() -> Iterator[None]:
    """Keep CPython's cyclic garbage collector out of a run's way.

    A run allocates a few containers per record (rows, dicts, tuples) that reference counting frees, but
    every few hundred allocations the collector scans the young ones, and every few dozen of those scans
    the whole heap: every module, SQLAlchemy's and pycountry's tables. Measured on a full sync of
    100,000 accounts: 5.9 s of CPU in collections (4.7 s of them in 69 full ones) out of about 35 s.
    For the run's length the objects that exist when it starts are frozen (``gc.freeze``: left out of
    every scan) and the young generation is collected every ``RUN_GC_THRESHOLD`` allocations: 0.4 s.
    Cycles made during the run are still collected; the old settings come back when the last of the
    process's overlapping runs ends (threads may run syncs side by side)."""
    global _gc_runs, _gc_saved
    with _gc_lock:
        _gc_runs += 1
        if _gc_runs == 1:
            gc.collect()
            gc.freeze()
            _gc_saved = gc.get_threshold()
            gc.set_threshold(max(_gc_saved[0], RUN_GC_THRESHOLD), *_gc_saved[1:])
    try:
        yield
    finally:
        with _gc_lock:
            _gc_runs -= 1
            if _gc_runs == 0:
                gc.set_threshold(*_gc_saved)
                gc.unfreeze()


def run_phases(
    store: Store,
    cfg: ConnectionConfig,
    connector: Connector,
    run: _Run,
    kind: str,
    now: datetime,
    progress: ProgressFn | None,
    dry_run: bool = False,
    score: bool = True,
) -> RunStatus:
    """Pull (unless re-evaluating), score, write, follow-up tasks; the run's status when all went.

    ``score=False``: pull and snapshot only (no ICP needed, nothing scored or written). A dry run pulls
    (the snapshots are kept, still to be scored) and plans what the run would write instead of scoring
    and writing: no fit, flag or history changes, nothing sent to the CRM."""
    if not score:
        t = time.perf_counter()
        pull_objects(store, run.conn_id, cfg, connector, ordered(cfg.objects), full=kind == RunKind.FULL,
                     now=now, counts=run.counts, progress=progress)  # fmt: skip
        run.timed("pull", t)
        return RunStatus.SUCCEEDED
    if run.version is None:
        raise NoIcpError(NO_ICP)
    spec = spec_of(run.version)
    policy = policy_for(cfg, spec, run.version.number, first_sync=run.first_sync)
    counts = run.counts
    if kind != RunKind.REEVALUATE:
        check_owned_fields(cfg, connector, policy)
        t = time.perf_counter()
        pull_objects(store, run.conn_id, cfg, connector, policy.objects, full=kind == RunKind.FULL,
                     now=now, counts=counts, progress=progress, run_id=run.run_id)  # fmt: skip
        run.timed("pull", t)
    t = time.perf_counter()
    if dry_run:
        with store.session() as s:
            run.records = [
                record_row(cfg.name, p)
                for p in plan(s, run.conn_id, policy, Scorer(spec), now)
                if p.must_write
            ]
        run.timed("plan", t)
        return RunStatus.SUCCEEDED
    if isinstance(connector, RunAware):
        connector.start_run(run.run_id)
    ctx = ScoringContext(run.conn_id, cfg, policy, Scorer(spec), now, run.run_id)
    for obj in policy.objects:
        score_object(store, ctx, obj, counts, progress)
    t = run.timed("score", t)
    write_objects(store, run.conn_id, policy.objects, connector, counts, now, progress, run.errors)
    t = run.timed("write", t)
    if cfg.reengage.create_tasks:
        create_followups(store, run.conn_id, cfg, connector, counts, now)
        run.timed("tasks", t)
    return RunStatus.PARTIAL if counts.write_errors or counts.task_errors else RunStatus.SUCCEEDED


def run_sync(
    store: Store,
    cfg: ConnectionConfig,
    connector: Connector,
    *,
    kind: str = RunKind.INCREMENTAL,
    now: datetime | None = None,
    progress: ProgressFn | None = None,
    task_id: str | None = None,
    dry_run: bool = False,
    score: bool = True,
) -> RunSummary:
    """One run for one connection. ``kind``: ``incremental``, ``full`` or ``reevaluate`` (no pull:
    re-score from snapshots under the latest ICP and write what changed). ``dry_run``: pull, then
    report in ``RunSummary.records`` what the run would write; the run is recorded as ``dry_run``.
    ``score=False``: pull and snapshot only, no ICP needed (the history ``icp derive`` reads).

    A daily quota reached ends the run cleanly (status ``quota_reserved`` / ``quota_exceeded``) and the
    next run resumes from its cursor. Other connector errors fail the run and are re-raised.
    """
    if kind not in SYNC_KINDS:
        raise ValueError(f"unknown sync kind {kind!r}")
    if not score and kind == RunKind.REEVALUATE:
        raise ValueError("a re-evaluation without scoring does nothing")
    now = now or utcnow()
    recorded = RunKind.DRY_RUN if dry_run else kind
    run = start_run(store, cfg, recorded, now, task_id)
    summary = RunSummary(run_id=run.run_id, connection=cfg.name, kind=recorded, status=RunStatus.RUNNING)
    clock = time.perf_counter()
    bound = log.bind(run_id=run.run_id, connection=cfg.name, kind=recorded)
    # Every log line of this run (connectors, SDKs) carries its id.
    structlog.contextvars.bind_contextvars(run_id=run.run_id)
    bound.info("run.started", icp_version=run.version.number if run.version else None)
    try:
        with quiet_collector():
            summary.status = run_phases(store, cfg, connector, run, kind, now, progress, dry_run, score)
    except QuotaExceededError as exc:
        summary.status = RunStatus.QUOTA_RESERVED if exc.reserved else RunStatus.QUOTA_EXCEEDED
        summary.error = str(exc)
        bound.warning("run.quota", status=summary.status, error=summary.error)
    except (ConnectorError, NoIcpError) as exc:
        summary.status, summary.error = RunStatus.FAILED, describe(exc)  # words first, never a class name
        bound.error("run.failed", error=summary.error, transient=getattr(exc, "transient", False))
        raise
    except BaseException as exc:
        summary.status, summary.error = RunStatus.FAILED, f"{type(exc).__name__}: {exc}"
        bound.error("run.failed", error=summary.error)
        raise
    finally:
        run.timings["total"] = round(time.perf_counter() - clock, 3)
        summary.counts, summary.timings = run.counts.as_dict(), run.timings
        summary.record_errors = [e.as_dict() for e in run.errors]
        summary.records = run.records
        try:
            summary.api_calls = connector.usage().as_dict()
        except Exception:  # noqa: BLE001 - usage is informative; never mask the run's own outcome
            summary.api_calls = {}
        finish_run(store, run, summary)
        bound.info(
            "run.finished",
            status=summary.status,
            counts=summary.counts,
            seconds=run.timings["total"],
            api_calls=summary.api_calls.get("calls"),
        )
        structlog.contextvars.unbind_contextvars("run_id")
    return summary
