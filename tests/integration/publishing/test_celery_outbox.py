"""The publish outbox with real Celery workers (Redis broker, PostgreSQL store): a publish made while the
broker was down is re-evaluated once a worker starts, or when beat looks at the outbox."""

from __future__ import annotations

import json
import socket
import time

import pytest
from sqlalchemy import select

from tests.integration.test_celery import ICP_V1, ICP_V2, wait_for
from worker.jobs import publish_file, sync_connection
from worker.store.models import ReevaluationRequest

pytestmark = pytest.mark.celery


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def outbox_rows(stack) -> list[tuple[int, str]]:
    with stack.store.session() as s:
        return [(r.icp_version, r.status) for r in s.scalars(select(ReevaluationRequest))]


def publish_with_the_broker_down(stack) -> str:
    publish_file(stack.store, ICP_V1, note="v1", author="test")
    sync_connection(stack.store, stack.config().get("acme"), kind="full")
    dead = f"redis://127.0.0.1:{closed_port()}/0"
    started = time.monotonic()
    done = stack.cli("icp", "publish", str(ICP_V2), "-m", "q4", "--yes", CELERY_BROKER_URL=dead)
    assert time.monotonic() - started < 60
    assert "re-evaluation not queued: the broker is unreachable" in done.stderr
    assert outbox_rows(stack) == [(2, "pending")]
    return done.stderr


def reevaluated(stack):
    return wait_for(
        lambda: [r for r in stack.runs(kind="reevaluate") if r.status != "running" and r.icp_version == 2],
        60,
        "the owed re-evaluation",
    )[0]


def test_a_starting_worker_queues_what_a_publish_could_not(stack):
    publish_with_the_broker_down(stack)
    stack.worker("late").wait_ready()
    run = reevaluated(stack)
    assert run.status == "succeeded" and run.counts["written"] > 0 and run.api_calls["calls"]["read"] == 0
    wait_for(lambda: outbox_rows(stack) == [(2, "done")], 30, "the request to be settled")


def test_beat_queues_what_a_publish_could_not(stack, tmp_path):
    from worker.schedule import ConnectionScheduler

    stack.worker("early").wait_ready()  # started before the publish: its start found nothing owed
    publish_with_the_broker_down(stack)
    assert stack.runs(kind="reevaluate") == []
    stack.app.conf.icp_worker_config = str(stack.config_path)
    beat = ConnectionScheduler(app=stack.app, schedule_filename=str(tmp_path / "beat-state"), lazy=False)
    try:
        # beat's tick looks at the outbox of the store the settings name: the test's PostgreSQL schema
        import os

        from worker.settings import get_settings
        from worker.store.db import _store_for

        os.environ["DATABASE_URL"] = stack.store.url
        get_settings.cache_clear()
        _store_for.cache_clear()
        try:
            beat.tick()
        finally:
            del os.environ["DATABASE_URL"]
            get_settings.cache_clear()
            _store_for.cache_clear()
    finally:
        beat.close()
    run = reevaluated(stack)
    assert run.status == "succeeded"
    wait_for(lambda: outbox_rows(stack) == [(2, "done")], 30, "the request to be settled")
    assert json.loads(stack.cli("icp", "history", "--json").stdout)[-1]["current"] is True
