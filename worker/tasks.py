"""Celery tasks: thin wrappers that take a connection name, re-read the configuration and call
``worker.jobs.sync_connection`` under the connection's lock.

Task names are explicit, so that moving this module never orphans queued messages:

=============================  ==============  =============================================
``icp.sync_connection``        ``sync``        ``(name, kind="incremental")``: one run, ``full`` on demand
``icp.reevaluate_connection``  ``reevaluate``  ``(name)``: re-score from snapshots after an ICP publish
``icp.nightly_fanout``         ``schedule``    ``(kind="incremental")``: a sync task per connection
=============================  ==============  =============================================

What a failure does (``failure_policy``):

- transient (``ConnectorError.transient``: timeouts, 5xx, rate limits; a lost database or Redis
  connection): retried with exponential backoff and jitter, ``Retry-After`` honoured, at most
  ``TASK_MAX_RETRIES`` times;
- the daily API quota reached: not an error of the task. The run ends cleanly with status
  ``quota_reserved``/``quota_exceeded`` and is deferred to the connection's next window;
- permanent (bad credentials, invalid mapping, missing fields, no or invalid ICP, unknown
  connection): the run fails once, with its message in ``icp-worker runs``; no retry;
- the worker died (SIGKILL, out of memory): the message is delivered again (tasks acknowledge late) and
  the new run resumes the work; after ``MAX_REDELIVERIES`` such deliveries the task gives up.

The connection's lock is taken first. If another run holds it, the task is re-queued every
``LOCK_RETRY_SECONDS`` ("waiting for ...", naming the holder) for up to ``LOCK_WAIT_SECONDS``; after
that it records a ``skipped`` run saying who held the lock. Re-queueing instead of blocking keeps the
worker process free for other connections meanwhile.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from connectors.errors import ConnectorError, RateLimitedError
from worker import jobs
from worker.celery_app import (
    QUEUE_REEVALUATE,
    QUEUE_SCHEDULE,
    QUEUE_SYNC,
    TASK_FANOUT,
    TASK_REEVALUATE,
    TASK_SYNC,
    get_runtime_settings,
    load_worker_config,
)
from worker.celery_app import app as celery_app
from worker.config import ConnectionConfig, WorkerConfig
from worker.icp.spec import IcpValidationError
from worker.locks import LockBusy, connection_lock, redis_url_from_settings
from worker.observability import bind_task_context, clear_task_context, record_error, record_run
from worker.ratelimit import limiter_for
from worker.store.db import Store, get_store
from worker.store.models import SyncRun
from worker.store.queries import ensure_connection
from worker.store.states import SYNC_KINDS, RunKind, RunStatus
from worker.sync import NoIcpError, RunSummary
from worker.sync.run import close_abandoned_runs
from worker.yamlfile import YamlFileError

log = structlog.get_logger("worker.tasks")

KINDS = SYNC_KINDS
#: A message redelivered more often than this because its worker died is not run again: something in
#: the run kills workers (memory?), and redelivering it forever would take every worker down in turn.
MAX_REDELIVERIES = 3


class UnknownConnectionError(LookupError):
    """A task names a connection the connections file no longer has."""


#: Failures no retry can fix.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    NoIcpError,
    IcpValidationError,
    YamlFileError,
    UnknownConnectionError,
)
#: Failures of our own infrastructure a retry can fix.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (OperationalError,)
try:
    import redis.exceptions

    INFRASTRUCTURE_ERRORS += (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
except ImportError:  # pragma: no cover - redis is a dependency
    pass


# --------------------------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class Decision:
    """What to do after a failure: ``retry`` in ``countdown`` seconds, or ``fail``."""

    action: str
    kind: str
    countdown: float = 0.0
    reason: str = ""


def error_kind(exc: BaseException) -> str:
    if isinstance(exc, ConnectorError):
        return exc.kind
    if isinstance(exc, NoIcpError):
        return "no_icp"
    if isinstance(exc, IcpValidationError):
        return "invalid_icp"
    if isinstance(exc, YamlFileError | UnknownConnectionError):
        return "config"
    if isinstance(exc, INFRASTRUCTURE_ERRORS):
        return "infrastructure"
    return "internal"


def backoff(retries: int, *, base: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with "equal jitter": between half and all of ``min(cap, base * 2**retries)``,
    so that workers that failed together do not come back together."""
    ceiling = min(cap, base * (2 ** max(0, retries)))
    return ceiling / 2 + rng() * ceiling / 2


def failure_policy(
    exc: BaseException,
    retries: int,
    *,
    max_retries: int,
    base: float,
    cap: float,
    rng: Callable[[], float] = random.random,
) -> Decision:
    """Retry or fail, and after how long (pure; ``retries``: transient retries made so far)."""
    kind = error_kind(exc)
    transient = (isinstance(exc, ConnectorError) and exc.transient) or isinstance(exc, INFRASTRUCTURE_ERRORS)
    if not transient:
        return Decision("fail", kind, reason="permanent: fix the cause, no retry")
    if retries >= max_retries:
        return Decision("fail", kind, reason=f"still failing after {retries} retries")
    if isinstance(exc, RateLimitedError) and exc.retry_after:
        # The server said when: wait that long, plus up to 10% so that workers do not return at once.
        return Decision(
            "retry", kind, float(exc.retry_after) * (1 + 0.1 * rng()), "rate limited: Retry-After"
        )
    return Decision("retry", kind, backoff(retries, base=base, cap=cap, rng=rng), "transient")


# --------------------------------------------------------------------------------------------- helpers


def connection_config(name: str, config: WorkerConfig | None = None) -> ConnectionConfig:
    config = config or load_worker_config()
    try:
        return config.get(name)
    except KeyError as exc:
        raise UnknownConnectionError(str(exc.args[0])) from None


def record_unrun(store: Store, cfg: ConnectionConfig, kind: str, task_id: str | None, status: str,
                 reason: str) -> int:  # fmt: skip
    """A run that did not happen (``skipped``, or ``failed`` before starting), in the history, so that
    ``icp-worker runs`` shows why nothing happened."""
    now = datetime.now(UTC)
    with store.session() as s:
        conn = ensure_connection(s, cfg, now)
        run = SyncRun(connection_id=conn.id, kind=kind, status=status, started_at=now, finished_at=now,
                      task_id=task_id, error=reason[:2000], counts={}, api_calls={}, timings={})  # fmt: skip
        s.add(run)
        s.flush()
        return int(run.id)


def count_redelivery(task_id: str, redis_url: str | None, prefix: str) -> int:
    """How many times this task's message came back because its worker died (0 without Redis)."""
    if not redis_url or not task_id:
        return 0
    from worker.locks import redis_client

    client = redis_client(redis_url)
    key = f"{prefix}redelivered:{task_id}"
    count = int(client.incr(key))
    client.expire(key, 2 * 86400)
    return count


def _failed_run_summary(store: Store, name: str, kind: str, task_id: str | None) -> RunSummary | None:
    """The run a failed task recorded (run_sync re-raises, so the task never sees its summary)."""
    if not task_id:
        return None
    with store.session() as s:
        run = s.scalar(select(SyncRun).where(SyncRun.task_id == task_id).order_by(SyncRun.id.desc()).limit(1))
        if run is None:
            return None
        return RunSummary(
            run_id=run.id,
            connection=name,
            kind=kind,
            status=run.status,
            counts=run.counts or {},
            api_calls=run.api_calls or {},
            timings=run.timings or {},
            error=run.error,
        )


def _result(summary: RunSummary) -> dict[str, Any]:
    return {
        "run_id": summary.run_id,
        "connection": summary.connection,
        "kind": summary.kind,
        "status": summary.status,
        "counts": summary.counts,
        "error": summary.error,
    }


# --------------------------------------------------------------------------------------------- the body


def run_connection_task(task: Any, name: str, kind: str, lock_waits: int = 0) -> dict[str, Any]:
    """The body of the sync and re-evaluation tasks (``task`` is the bound Celery task): the connection's
    configuration, its lock, one run, and what to do with the outcome."""
    if kind not in KINDS:
        raise ValueError(f"unknown sync kind {kind!r} (expected one of {', '.join(KINDS)})")
    runtime = get_runtime_settings()
    request = task.request
    redelivered = bool((request.delivery_info or {}).get("redelivered"))
    bind_task_context(task_id=request.id, task=task.name, connection=name, kind=kind)
    try:
        try:
            cfg = connection_config(name)
        except PERMANENT_ERRORS as exc:
            log.error(
                "sync.failed", error=f"{type(exc).__name__}: {exc}", error_kind=error_kind(exc), retry=False
            )
            record_error(name, error_kind(exc))
            raise
        store: Store | None = None
        try:
            store = get_store()
            redis_url = redis_url_from_settings()
            if (
                redelivered
                and count_redelivery(request.id, redis_url, runtime.redis_key_prefix) > MAX_REDELIVERIES
            ):
                return _give_up(store, cfg, kind, request.id)
            log.info(
                "task.started",
                attempt=request.retries,
                lock_waits=lock_waits,
                **({"redelivered": True} if redelivered else {}),
            )
            with connection_lock(
                name,
                redis_url=redis_url,
                ttl=runtime.lock_ttl_seconds,
                prefix=runtime.redis_key_prefix,
                task_id=request.id,
                kind=kind,
            ):
                abandoned = close_abandoned_runs(store, cfg.name)
                if abandoned:
                    log.warning(
                        "sync.resuming",
                        abandoned_runs=abandoned,
                        detail="earlier run(s) stopped without finishing; this run picks up their work",
                    )
                # One request budget per CRM org, shared by every worker (None: the connector paces itself).
                limiter = (
                    limiter_for(cfg, redis_url=redis_url, prefix=runtime.redis_key_prefix)
                    if redis_url
                    else None
                )
                summary = jobs.sync_connection(store, cfg, kind=kind, task_id=request.id, limiter=limiter)
        except LockBusy as busy:
            assert store is not None
            return _wait_or_skip(task, busy, store, cfg, kind, lock_waits)
        except Exception as exc:
            _retry_or_fail(task, exc, store, cfg, kind, lock_waits)
            raise
        record_run(summary, crm=cfg.crm)
        if summary.status.startswith("quota"):
            log.warning(
                "sync.deferred",
                run_id=summary.run_id,
                status=summary.status,
                detail="daily API quota reached: deferred to the next window, no retry",
            )
        else:
            log.info("task.finished", run_id=summary.run_id, status=summary.status)
        return _result(summary)
    finally:
        clear_task_context()


def _wait_or_skip(
    task: Any, busy: LockBusy, store: Store, cfg: ConnectionConfig, kind: str, lock_waits: int
) -> dict[str, Any]:
    """Another run holds the lock: re-queue to wait for it, or, having waited long enough, skip."""
    runtime = get_runtime_settings()
    waited = lock_waits * runtime.lock_retry_seconds
    if waited < runtime.lock_wait_seconds:
        log.info(
            "sync.waiting",
            reason=str(busy),
            holder=busy.holder.get("task_id"),
            retry_in=runtime.lock_retry_seconds,
            waited=waited,
        )
        raise task.retry(
            countdown=runtime.lock_retry_seconds,
            kwargs={"lock_waits": lock_waits + 1},
            max_retries=task.request.retries + 1,
        )
    reason = f"skipped after waiting {waited:.0f}s: {busy}"
    run_id = record_unrun(store, cfg, kind, task.request.id, RunStatus.SKIPPED, reason)
    log.warning("sync.skipped", run_id=run_id, reason=reason, holder=busy.holder.get("task_id"))
    return {
        "run_id": run_id,
        "connection": cfg.name,
        "kind": kind,
        "status": RunStatus.SKIPPED,
        "error": reason,
    }


def _retry_or_fail(
    task: Any, exc: Exception, store: Store | None, cfg: ConnectionConfig, kind: str, lock_waits: int
) -> None:
    """Record the failure; re-queue the task if ``failure_policy`` says a retry can help (else return,
    and the caller re-raises: the task fails once)."""
    runtime = get_runtime_settings()
    request = task.request
    retries = request.retries - lock_waits  # waiting for the lock is not a failure
    decision = failure_policy(
        exc,
        retries,
        max_retries=runtime.task_max_retries,
        base=runtime.retry_backoff_seconds,
        cap=runtime.retry_backoff_max_seconds,
    )
    failed = _failed_run_summary(store, cfg.name, kind, request.id) if store is not None else None
    if failed is not None:
        record_run(failed, crm=cfg.crm, error_kind_hint=decision.kind)
    else:
        record_error(cfg.name, decision.kind)
    error = f"{type(exc).__name__}: {exc}"
    if decision.action == "retry":
        log.warning(
            "sync.retrying",
            error=error,
            error_kind=decision.kind,
            retry_in=round(decision.countdown, 1),
            attempt=retries + 1,
            of=runtime.task_max_retries,
            why=decision.reason,
        )
        raise task.retry(
            exc=exc,
            countdown=decision.countdown,
            kwargs={"lock_waits": lock_waits},
            max_retries=request.retries + 1,
        ) from None
    log.error("sync.failed", error=error, error_kind=decision.kind, retry=False, why=decision.reason)


def _give_up(store: Store, cfg: ConnectionConfig, kind: str, task_id: str) -> dict[str, Any]:
    reason = (
        f"gave up: delivered {MAX_REDELIVERIES + 1} times and its worker died each time "
        "(out of memory? killed?); the next scheduled run tries again"
    )
    run_id = record_unrun(store, cfg, kind, task_id, RunStatus.FAILED, reason)
    log.error("sync.failed", run_id=run_id, error=reason, error_kind="worker_lost", retry=False)
    record_error(cfg.name, "worker_lost")
    return {
        "run_id": run_id,
        "connection": cfg.name,
        "kind": kind,
        "status": RunStatus.FAILED,
        "error": reason,
    }


#: Expected failures: Celery logs them in one line, without a traceback (our own line has the detail).
EXPECTED = (ConnectorError, *PERMANENT_ERRORS)


@celery_app.task(bind=True, name=TASK_SYNC, throws=EXPECTED, max_retries=None)
def sync_connection(
    self: Any, name: str, kind: str = RunKind.INCREMENTAL, lock_waits: int = 0
) -> dict[str, Any]:
    """One sync run of connection ``name`` (``incremental`` or ``full``)."""
    return run_connection_task(self, name, kind, lock_waits)


@celery_app.task(bind=True, name=TASK_REEVALUATE, throws=EXPECTED, max_retries=None)
def reevaluate_connection(self: Any, name: str, lock_waits: int = 0) -> dict[str, Any]:
    """Re-score connection ``name`` from its snapshots under the latest ICP and write what changed."""
    return run_connection_task(self, name, RunKind.REEVALUATE, lock_waits)


@celery_app.task(bind=True, name=TASK_FANOUT)
def nightly_fanout(self: Any, kind: str = RunKind.INCREMENTAL) -> list[str]:
    """A sync task for every configured connection (for a single global schedule, or by hand:
    ``celery -A worker.celery_app call icp.nightly_fanout``). Beat schedules each connection itself."""
    bind_task_context(task_id=self.request.id, task=self.name)
    try:
        ids = [enqueue_sync(c.name, kind, app=self.app) for c in load_worker_config().connections]
        log.info("fanout.queued", tasks=len(ids), kind=kind)
        return ids
    finally:
        clear_task_context()


# --------------------------------------------------------------------------------------------- enqueue


class BrokerNotConfigured(LookupError):
    """``CELERY_BROKER_URL`` is not set, so there is no queue to put work on."""


def _broker_app(app: Any) -> Any:
    celery = app or celery_app
    if not celery.conf.broker_url:
        raise BrokerNotConfigured(
            "CELERY_BROKER_URL is not set, so there is no worker queue: run the work in-process "
            "(without --enqueue), or set it (e.g. redis://localhost:6379/0) and start `icp-worker worker`"
        )
    return celery


def enqueue_sync(name: str, kind: str = RunKind.INCREMENTAL, *, app: Any = None) -> str:
    """Queue one run of connection ``name``; returns the task id (``icp-worker sync --enqueue``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown sync kind {kind!r} (expected one of {', '.join(KINDS)})")
    celery = _broker_app(app)
    if kind == RunKind.REEVALUATE:
        return str(celery.send_task(TASK_REEVALUATE, args=[name], queue=QUEUE_REEVALUATE).id)
    return str(celery.send_task(TASK_SYNC, args=[name, kind], queue=QUEUE_SYNC).id)


def enqueue_reevaluation(names: Iterable[str] | None = None, *, app: Any = None) -> list[str]:
    """Queue a re-evaluation of every configured connection (or of ``names``); one task id each."""
    celery = _broker_app(app)
    if names is None:
        names = [c.name for c in load_worker_config().connections]
    return [str(celery.send_task(TASK_REEVALUATE, args=[n], queue=QUEUE_REEVALUATE).id) for n in names]


def enqueue_fanout(kind: str = RunKind.INCREMENTAL, *, app: Any = None) -> str:
    """Queue the fan-out: a sync of every connection, decided by the worker from its connections file."""
    celery = _broker_app(app)
    return str(celery.send_task(TASK_FANOUT, args=[kind], queue=QUEUE_SCHEDULE).id)


__all__ = [
    "enqueue_fanout",
    "enqueue_reevaluation",
    "enqueue_sync",
    "failure_policy",
    "nightly_fanout",
    "reevaluate_connection",
    "sync_connection",
]
