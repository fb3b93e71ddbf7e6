"""What a task does with each outcome of a run: retry (backoff, jitter, Retry-After), fail once, defer, wait
for the lock or skip. The task body is called as a plain function with a stand-in for Celery's bound task
(no broker: the real worker is exercised in test_celery.py); the store is SQLite, the lock a file lock."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from connectors.errors import AuthError, MissingFieldsError, RateLimitedError, TransientError
from worker import tasks
from worker.celery_app import get_runtime_settings
from worker.locks import FileLock
from worker.settings import get_settings
from worker.store.db import get_store
from worker.store.models import SyncRun
from worker.sync import NoIcpError, RunSummary


class Retried(Exception):
    def __init__(self, options):
        super().__init__(options)
        self.options = options


class StandInTask:
    name = "icp.sync_connection"

    def __init__(self, retries: int = 0, redelivered: bool = False) -> None:
        self.request = SimpleNamespace(
            id="task-1", retries=retries, delivery_info={"redelivered": redelivered}
        )

    def retry(self, **options):
        raise Retried(options)


@pytest.fixture
def embedded(tmp_path, monkeypatch):
    """The embedded default (no broker, no Redis) with one connection, and quick retry settings."""
    config = tmp_path / "icp-worker.yaml"
    config.write_text("connections:\n  - {name: acme, crm: files, options: {path: crm, out: out}}\n")
    for name in ("CELERY_BROKER_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ICP_WORKER_CONFIG", str(config))
    monkeypatch.setenv("ICP_WORKER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("RETRY_BACKOFF_SECONDS", "10")
    monkeypatch.setenv("RETRY_BACKOFF_MAX_SECONDS", "300")
    monkeypatch.setenv("TASK_MAX_RETRIES", "3")
    monkeypatch.setenv("LOCK_RETRY_SECONDS", "30")
    monkeypatch.setenv("LOCK_WAIT_SECONDS", "60")
    get_settings.cache_clear()
    get_runtime_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    get_runtime_settings.cache_clear()


def failing_with(monkeypatch, exc: BaseException) -> None:
    def sync(*args, **kwargs):
        raise exc

    monkeypatch.setattr(tasks.jobs, "sync_connection", sync)


def test_backoff_is_exponential_capped_and_jittered():
    assert tasks.backoff(0, base=10, cap=300, rng=lambda: 0.0) == 5
    assert tasks.backoff(0, base=10, cap=300, rng=lambda: 1.0) == 10
    assert tasks.backoff(3, base=10, cap=300, rng=lambda: 1.0) == 80
    assert tasks.backoff(10, base=10, cap=300, rng=lambda: 0.5) == pytest.approx(225)


@pytest.mark.parametrize(
    ("exc", "action", "kind"),
    [
        (TransientError("502 from the CRM"), "retry", "transient"),
        (RateLimitedError("429", retry_after=30), "retry", "rate_limited"),
        (AuthError("INVALID_LOGIN"), "fail", "auth"),
        (
            MissingFieldsError("owned fields missing", missing=["Account.ICP_Fit_Score__c"]),
            "fail",
            "missing_fields",
        ),
        (NoIcpError("no ICP"), "fail", "no_icp"),
        (ValueError("a bug"), "fail", "internal"),
    ],
)
def test_failure_policy(exc, action, kind):
    decision = tasks.failure_policy(exc, 0, max_retries=3, base=10, cap=300)
    assert (decision.action, decision.kind) == (action, kind)


def test_retry_after_is_honoured_with_a_little_jitter():
    decision = tasks.failure_policy(
        RateLimitedError("429", retry_after=42), 2, max_retries=3, base=10, cap=300
    )
    assert 42 <= decision.countdown <= 42 * 1.1


def test_a_transient_error_is_retried_with_backoff(embedded, monkeypatch):
    failing_with(monkeypatch, TransientError("read timed out"))
    with pytest.raises(Retried) as retried:
        tasks.run_connection_task(StandInTask(retries=1), "acme", "incremental")
    assert 10 <= retried.value.options["countdown"] <= 20
    assert retried.value.options["kwargs"] == {"lock_waits": 0}


def test_a_transient_error_fails_after_the_last_retry(embedded, monkeypatch):
    failing_with(monkeypatch, TransientError("read timed out"))
    with capture_logs() as logs, pytest.raises(TransientError):
        tasks.run_connection_task(StandInTask(retries=3), "acme", "incremental")
    assert any(x["event"] == "sync.failed" and x["retry"] is False for x in logs)


@pytest.mark.parametrize(
    "exc", [AuthError("INVALID_LOGIN: check ACME_SF_USERNAME"), NoIcpError("no ICP yet")]
)
def test_a_permanent_error_fails_once_without_retry(embedded, monkeypatch, exc):
    failing_with(monkeypatch, exc)
    with capture_logs() as logs, pytest.raises(type(exc)):
        tasks.run_connection_task(StandInTask(), "acme", "incremental")
    failed = [x for x in logs if x["event"] == "sync.failed"]
    assert failed and failed[0]["why"].startswith("permanent")


def test_an_unknown_connection_fails_without_retry(embedded):
    with pytest.raises(tasks.UnknownConnectionError, match="no connection named 'gone'"):
        tasks.run_connection_task(StandInTask(), "gone", "incremental")


def test_a_quota_run_is_deferred_not_retried(embedded, monkeypatch):
    summary = RunSummary(run_id=9, connection="acme", kind="incremental", status="quota_reserved",
                         error="daily API requests limit reached")  # fmt: skip
    monkeypatch.setattr(tasks.jobs, "sync_connection", lambda *a, **k: summary)
    with capture_logs() as logs:
        result = tasks.run_connection_task(StandInTask(), "acme", "incremental")
    assert result["status"] == "quota_reserved"
    deferred = [x for x in logs if x["event"] == "sync.deferred"]
    assert deferred and "deferred to the next window" in deferred[0]["detail"]


def test_a_locked_connection_waits_by_requeueing_then_is_skipped_and_says_why(embedded, monkeypatch):
    monkeypatch.setattr(tasks.jobs, "sync_connection", lambda *a, **k: pytest.fail("must not run"))
    holder = FileLock(embedded / "home" / "locks", "acme", task_id="task-0", kind="full")
    assert holder.acquire()
    try:
        with pytest.raises(Retried) as retried:
            tasks.run_connection_task(StandInTask(), "acme", "incremental")
        assert retried.value.options["countdown"] == 30 and retried.value.options["kwargs"] == {
            "lock_waits": 1
        }
        with capture_logs() as logs:
            result = tasks.run_connection_task(StandInTask(retries=2), "acme", "incremental", lock_waits=2)
    finally:
        holder.release()
    assert result["status"] == "skipped" and "task-0" in result["error"]
    assert any(x["event"] == "sync.skipped" for x in logs)
    with get_store().session() as s:
        run = s.scalar(select(SyncRun))
    assert run.status == "skipped" and "task-0" in run.error and run.task_id == "task-1"


def test_enqueueing_without_a_broker_says_how_to_fix_it(embedded):
    from worker.celery_app import create_app

    app = create_app()
    with pytest.raises(tasks.BrokerNotConfigured, match="CELERY_BROKER_URL is not set"):
        tasks.enqueue_sync("acme", "full", app=app)
    with pytest.raises(LookupError):
        tasks.enqueue_reevaluation(["acme"], app=app)


@pytest.mark.celery
def test_a_message_whose_worker_keeps_dying_is_given_up_after_three_redeliveries(embedded, monkeypatch):
    import uuid

    import redis

    url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")
    prefix = f"icptest-{uuid.uuid4().hex[:10]}:"
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv("REDIS_KEY_PREFIX", prefix)
    get_settings.cache_clear()
    get_runtime_settings.cache_clear()
    summary = RunSummary(run_id=1, connection="acme", kind="full", status="succeeded")
    monkeypatch.setattr(tasks.jobs, "sync_connection", lambda *a, **k: summary)
    client = redis.Redis.from_url(url)
    try:
        for _ in range(3):  # the first three redeliveries run (the run resumes the work)
            assert (
                tasks.run_connection_task(StandInTask(redelivered=True), "acme", "full")["status"]
                == "succeeded"
            )
        given_up = tasks.run_connection_task(StandInTask(redelivered=True), "acme", "full")
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
    assert given_up["status"] == "failed" and given_up["error"].startswith("gave up: delivered 4 times")
    with get_store().session() as s:
        assert s.scalar(select(SyncRun.status).where(SyncRun.id == given_up["run_id"])) == "failed"


def test_a_store_that_is_down_is_retried(embedded, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def down():
        raise OperationalError("connect", None, Exception("connection refused"))

    monkeypatch.setattr(tasks, "get_store", down)
    with pytest.raises(Retried) as retried:
        tasks.run_connection_task(StandInTask(), "acme", "full")
    assert 5 <= retried.value.options["countdown"] <= 10
