"""The Celery app: Redis as the broker, no result backend (runs are recorded in ``sync_runs``).

Start a worker with ``icp-worker worker`` (or ``celery -A worker.celery_app worker -Q
sync,reevaluate,schedule``) and the scheduler with ``icp-worker beat`` (``celery -A worker.celery_app beat``).

Delivery guarantees, and why these settings:

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged after its task ends; if
  the pool child running it dies (SIGKILL, OOM) the message goes back to the queue at once. Tasks are
  idempotent: a run keeps its progress in the store, so a second delivery finishes the work.
- ``worker_prefetch_multiplier = 1``: a worker holds one message per process, so a long run never keeps
  other connections' messages waiting behind it.
- ``visibility_timeout`` (``CELERY_VISIBILITY_TIMEOUT``, default 7200 s). With Redis, an unacknowledged
  message of a worker that died *entirely* (machine lost, SIGKILL of the main process) is handed to
  another worker once it is that old. It must exceed the longest retry countdown
  (``RETRY_BACKOFF_MAX_SECONDS``, 900 s) or an ETA message would be delivered twice. A run longer than
  it (a first full sync of a large org) may be delivered a second time while it still runs: the
  per-connection lock makes that copy wait and then do an (idempotent, usually empty) incremental run.
  Two hours bounds how long a crashed worker's work waits, well inside the nightly cycle.
- no result backend: ``enqueue_*`` return task ids; the outcome of each run is in ``icp-worker runs``.
"""

from __future__ import annotations

import gc
import os
import random
from functools import lru_cache
from pathlib import Path
from typing import Any

from celery import Celery, signals
from kombu import Exchange, Queue
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.config import WorkerConfig, load_config
from worker.settings import Settings, get_settings

#: Queues, by the kind of work: syncs (incremental and full), re-evaluations after an ICP publish,
#: and the scheduler's fan-out.
QUEUE_SYNC = "sync"
QUEUE_REEVALUATE = "reevaluate"
QUEUE_SCHEDULE = "schedule"
QUEUES = (QUEUE_SYNC, QUEUE_REEVALUATE, QUEUE_SCHEDULE)

TASK_SYNC = "icp.sync_connection"
TASK_REEVALUATE = "icp.reevaluate_connection"
TASK_FANOUT = "icp.nightly_fanout"

TASK_ROUTES = {
    TASK_SYNC: {"queue": QUEUE_SYNC},
    TASK_REEVALUATE: {"queue": QUEUE_REEVALUATE},
    TASK_FANOUT: {"queue": QUEUE_SCHEDULE},
}


class RuntimeSettings(BaseSettings):
    """Settings of the worker processes only (the common ones are in ``worker.settings.Settings``)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    #: Seconds before Redis hands an unacknowledged message to another worker (see the module notes).
    celery_visibility_timeout: int = Field(default=7200, ge=1)
    #: Prefix of every broker key in Redis (kombu's ``global_keyprefix``); empty: Celery's own names.
    celery_key_prefix: str = ""
    #: Prefix of this program's own Redis keys (locks, rate limiter).
    redis_key_prefix: str = "icp:"
    #: Processes per worker (``icp-worker worker --concurrency`` overrides it).
    worker_concurrency: int = Field(default=2, ge=1)
    #: A connection's lock expires this long after its holder stopped renewing it (a dead worker).
    lock_ttl_seconds: float = Field(default=60.0, gt=0)
    #: A task that finds its connection locked is re-queued every ``LOCK_RETRY_SECONDS`` ...
    lock_retry_seconds: float = Field(default=30.0, gt=0)
    #: ... for at most this long; then it is recorded as ``skipped`` and says why.
    lock_wait_seconds: float = Field(default=3600.0, ge=0)
    #: Retries of a transient failure (timeout, 5xx, rate limit) before the task fails.
    task_max_retries: int = Field(default=5, ge=0)
    #: Exponential backoff between those retries: first wait and cap, in seconds (with jitter).
    retry_backoff_seconds: float = Field(default=30.0, ge=0)
    retry_backoff_max_seconds: float = Field(default=900.0, ge=0)
    #: Beat's state file (last run of each entry). Default: ``ICP_WORKER_HOME/celerybeat-schedule``.
    beat_schedule_file: Path | None = None


@lru_cache(maxsize=1)
def get_runtime_settings() -> RuntimeSettings:
    return RuntimeSettings()


def config_path(settings: Settings | None = None) -> Path | None:
    """The connections file: ``ICP_WORKER_CONFIG``, else ``./icp-worker.yaml`` if present (as the CLI)."""
    settings = settings or get_settings()
    if settings.icp_worker_config is not None:
        return Path(settings.icp_worker_config)
    default = Path("icp-worker.yaml")
    return default if default.exists() else None


def load_worker_config(settings: Settings | None = None) -> WorkerConfig:
    """The connections file, read afresh (a task always sees the file as it is now)."""
    path = config_path(settings)
    return load_config(path) if path else WorkerConfig()


def transport_options(runtime: RuntimeSettings) -> dict[str, Any]:
    options: dict[str, Any] = {"visibility_timeout": runtime.celery_visibility_timeout}
    if runtime.celery_key_prefix:
        options["global_keyprefix"] = runtime.celery_key_prefix
    if runtime.celery_visibility_timeout < 120:
        # A short timeout (tests, or impatient set-ups) is useless if the sweep for expired messages
        # only runs every ~100 s (kombu's default 10 s interval x 10 throttle).
        options["unacked_restore_interval"] = 1
        options["unacked_restore_throttle"] = 1
    return options


def create_app(settings: Settings | None = None, runtime: RuntimeSettings | None = None) -> Celery:
    """A Celery app configured from settings (the module-level ``app`` uses the environment)."""
    settings = settings or get_settings()
    runtime = runtime or get_runtime_settings()
    celery = Celery("icp_worker", set_as_current=False)
    celery.conf.update(
        broker_url=settings.broker_url(),
        broker_transport_options=transport_options(runtime),
        broker_connection_retry_on_startup=True,
        result_backend=None,
        task_ignore_result=True,
        result_expires=None,  # no backend: no cleanup entry in beat
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=runtime.worker_concurrency,
        # A child is replaced after this many tasks: CRM SDKs cache a lot, and a fresh process is cheap.
        worker_max_tasks_per_child=200,
        worker_hijack_root_logger=False,
        task_queues=tuple(Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES),
        task_default_queue=QUEUE_SYNC,
        task_routes=TASK_ROUTES,
        task_create_missing_queues=False,
        timezone="UTC",
        enable_utc=True,
        beat_scheduler="worker.schedule:ConnectionScheduler",
        beat_schedule_filename=str(
            runtime.beat_schedule_file or settings.icp_worker_home / "celerybeat-schedule"
        ),
        beat_schedule={},
        imports=("worker.tasks",),
    )
    return celery


app = create_app()


# --------------------------------------------------------------------------------------------- signals


@signals.setup_logging.connect
def _setup_logging(loglevel: Any = None, **_: Any) -> None:
    """Connected, so Celery leaves logging alone: ours routes everything through one redacting formatter."""
    from worker.observability import configure_logging

    level = loglevel if isinstance(loglevel, str) else None
    if isinstance(loglevel, int):
        import logging

        level = logging.getLevelName(loglevel)
    configure_logging(get_settings(), level=level)


@signals.worker_init.connect
def _worker_init(**_: Any) -> None:
    """In the worker's main process, before the pool forks: the metrics endpoint (multiprocess mode)."""
    from worker.observability import configure_logging, logging_configured

    if not logging_configured():  # worker_init comes before Celery's setup_logging
        configure_logging(get_settings())
    port = get_settings().metrics_port
    if port and port > 0:
        from worker.observability import prepare_multiprocess_dir, start_metrics_server

        prepare_multiprocess_dir()
        start_metrics_server(port)


@signals.worker_ready.connect
def _worker_ready(sender: Any = None, **_: Any) -> None:
    """A starting worker hands on the re-evaluations a publish could not queue (broker down then)."""
    import structlog

    from worker.outbox import dispatch_if_any

    try:
        dispatch_if_any(getattr(sender, "app", None))
    except Exception as exc:  # noqa: BLE001 - never stop a worker from starting; beat tries again
        structlog.get_logger("worker.outbox").warning(
            "outbox.dispatch_failed", error=f"{type(exc).__name__}: {exc}"
        )


@signals.worker_process_init.connect
def _worker_process_init(**_: Any) -> None:
    """In each forked pool child: never reuse the parent's database connections.

    ``worker.store.db.get_store`` is keyed by pid, so the child opens its own engine; an engine the
    parent made before forking is dropped without closing its sockets (``close=False``), which would
    otherwise end the parent's sessions on the server."""
    from sqlalchemy.engine import Engine

    for obj in gc.get_objects():
        if isinstance(obj, Engine):
            obj.dispose(close=False)
    random.seed()  # backoff jitter must differ between children
    from worker.observability import clear_task_context

    clear_task_context()


@signals.worker_process_shutdown.connect
def _worker_process_shutdown(pid: int | None = None, **_: Any) -> None:
    from worker.observability import mark_process_dead

    mark_process_dead(pid or os.getpid())
