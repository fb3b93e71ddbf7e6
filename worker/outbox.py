"""The publish outbox: re-evaluations owed after an ICP version became current.

``request`` inserts one ``reevaluation_requests`` row per connection in the transaction that makes a
version current (publish, rollback, approve), so a current version never exists without the request
for its re-evaluation. Then:

- ``dispatch`` hands pending rows to the Celery broker (bounded timeouts; when the broker is down the
  rows stay ``pending`` and the caller says so);
- beat (every ``DISPATCH_INTERVAL`` seconds) and a starting worker call ``dispatch`` too;
- ``worker.jobs.sync_connection`` carries out a connection's owed re-evaluation first, before the run
  it was asked for (an in-process ``icp-worker sync``, or a worker's sync task), and ``settle`` marks
  the rows done once a run scored the connection under that version (or a newer one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from worker.store.db import Store
from worker.store.models import Connection, ReevaluationRequest, SyncRun
from worker.store.states import RequestStatus, RunKind, RunStatus

log = structlog.get_logger("worker.outbox")

PENDING, QUEUED, DONE = RequestStatus.PENDING, RequestStatus.QUEUED, RequestStatus.DONE
#: Seconds between beat's looks at the outbox.
DISPATCH_INTERVAL = 30.0
#: Seconds to wait for the broker before saying it is down.
BROKER_TIMEOUT = 3.0
#: Run statuses after which the connection was scored under the run's version.
_SCORED = (RunStatus.SUCCEEDED, RunStatus.PARTIAL)
#: Runs that score and write (a dry run writes nothing, so it never settles a re-evaluation).
SETTLING_KINDS = (RunKind.INCREMENTAL, RunKind.FULL, RunKind.REEVALUATE)
#: Runs before which an owed re-evaluation is carried out.
FIRST_REEVALUATE_BEFORE = (RunKind.INCREMENTAL, RunKind.FULL)


@dataclass
class Dispatch:
    """What ``dispatch`` did: task ids by connection, or why the broker could not take them."""

    queued: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    pending: list[str] = field(default_factory=list)


def request(
    session: Session, version: int, reason: str, names: Iterable[str], now: datetime | None = None
) -> list[str]:
    """Owe a re-evaluation under ``version`` to each named connection the store has synced before
    (a connection never synced gets scored by its first sync anyway). Returns their names."""
    wanted = list(names)
    if not wanted:
        return []
    now = now or datetime.now(UTC)
    conns = session.scalars(select(Connection).where(Connection.name.in_(wanted)).order_by(Connection.name))
    made = []
    for conn in conns:
        session.add(
            ReevaluationRequest(
                connection_id=conn.id, icp_version=version, reason=reason, status=PENDING, created_at=now
            )
        )
        made.append(conn.name)
    session.flush()
    return made


def owed(session: Session, name: str | None = None) -> list[tuple[str, ReevaluationRequest]]:
    """Requests not carried out yet (pending or queued), with their connection's name."""
    q = (
        select(Connection.name, ReevaluationRequest)
        .join(Connection, Connection.id == ReevaluationRequest.connection_id)
        .where(ReevaluationRequest.status != DONE)
        .order_by(ReevaluationRequest.id)
    )
    if name is not None:
        q = q.where(Connection.name == name)
    return [(n, r) for n, r in session.execute(q).all()]


def owes(store: Store, name: str) -> bool:
    with store.session() as s:
        return bool(owed(s, name))


def settle(store: Store, name: str, run_id: int, status: str, kind: str) -> int:
    """Mark ``name``'s requests done when run ``run_id`` scored it under their version or a newer one."""
    if kind not in SETTLING_KINDS:
        return 0
    if status not in _SCORED and not (kind == RunKind.REEVALUATE and status.startswith("quota")):
        return 0
    with store.session() as s:
        version = s.scalar(select(SyncRun.icp_version).where(SyncRun.id == run_id))
        conn_id = s.scalar(select(Connection.id).where(Connection.name == name))
        if version is None or conn_id is None:
            return 0
        result = s.execute(
            update(ReevaluationRequest)
            .where(
                ReevaluationRequest.connection_id == conn_id,
                ReevaluationRequest.status != DONE,
                ReevaluationRequest.icp_version <= version,
            )
            .values(status=DONE, done_at=datetime.now(UTC), run_id=run_id)
        )
        return int(getattr(result, "rowcount", 0) or 0)


def existing_store() -> Store | None:
    """The configured store, or None when there is none yet (no ``DATABASE_URL``, no embedded file):
    beat and a starting worker look at the outbox without creating a store as a side effect."""
    from worker.settings import get_settings
    from worker.store.db import get_store

    settings = get_settings()
    if settings.database_url is None and not (settings.icp_worker_home / "icp-worker.db").exists():
        return None
    return get_store()


def dispatch_if_any(app: Any = None) -> Dispatch | None:
    """``dispatch`` on the configured store, if there is one (beat's tick, a worker's start)."""
    store = existing_store()
    return dispatch(store, app=app) if store is not None else None


def _celery(app: Any) -> Any:
    from worker.settings import get_settings

    if app is not None:
        return app
    from worker.celery_app import app as default_app
    from worker.celery_app import create_app

    url = get_settings().broker_url()
    return default_app if default_app.conf.broker_url == url else create_app()


def _reachable(celery: Any, timeout: float) -> str | None:
    """None when the broker answers within ``timeout`` seconds, else why not (no URL, no secret)."""
    try:
        with celery.connection_for_write(connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - any failure means "not now"; the rows stay pending
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'unreachable'}"
    return None


def dispatch(store: Store, *, app: Any = None, timeout: float = BROKER_TIMEOUT) -> Dispatch:
    """Send a re-evaluation task for every connection with pending requests; mark them queued."""
    from worker.celery_app import QUEUE_REEVALUATE, TASK_REEVALUATE

    with store.session() as s:
        names = sorted({n for n, r in owed(s) if r.status == PENDING})
    result = Dispatch(pending=names)
    if not names:
        return result
    celery = _celery(app)
    if not celery.conf.broker_url:
        result.error = "CELERY_BROKER_URL is not set"
        return result
    problem = _reachable(celery, timeout)
    if problem is not None:
        result.error = f"the broker is unreachable ({problem})"
        log.warning("outbox.broker_down", error=result.error, pending=names)
        return result
    for name in names:
        try:
            task_id = str(
                celery.send_task(TASK_REEVALUATE, args=[name], queue=QUEUE_REEVALUATE, retry=False).id
            )
        except Exception as exc:  # noqa: BLE001 - the broker went away meanwhile: keep the rest pending
            result.error = f"the broker is unreachable ({type(exc).__name__})"
            break
        with store.session() as s:
            conn_id = s.scalar(select(Connection.id).where(Connection.name == name))
            s.execute(
                update(ReevaluationRequest)
                .where(ReevaluationRequest.connection_id == conn_id, ReevaluationRequest.status == PENDING)
                .values(status=QUEUED, task_id=task_id, queued_at=datetime.now(UTC))
            )
        result.queued[name] = task_id
    result.pending = [n for n in names if n not in result.queued]
    if result.queued:
        log.info("outbox.dispatched", queued=result.queued)
    return result
