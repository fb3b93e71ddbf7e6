"""A CRM for tests that kill and race worker processes: the files connector (CSV on disk, so every process
sees the same CRM), made slow and observable on write.

Start a worker with ``celery -A testing.crash_crm worker ...``: the app is ``worker.celery_app``'s,
with ``worker.jobs.build_connector`` wrapped so that every ``crm: files`` connection gets a
``SlowFilesConnector``. The environment of the worker process controls it:

``CRASH_CRM_BATCH``         records per write request (default: the files connector's 10,000)
``CRASH_CRM_WRITE_DELAY``   seconds to wait before each write request is applied ("network latency")
``CRASH_CRM_SLOW_FLAG``     a path: when set, the delay applies only while that file exists
``CRASH_CRM_EVENTS``        a file to which each write appends ``start``/``done`` lines as JSON, with the
                            process id and the record ids: a test sees where a run is and what was in flight
``CRASH_CRM_LOG_SECRETS``   comma-separated names of environment variables whose values the connector logs
                            as a careless SDK would (stdlib logging and a structlog event), for redaction
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from connectors.base import FitUpdate, WriteResult
from connectors.registry import build_connector as real_build_connector
from worker import jobs
from worker.celery_app import app

__all__ = ["SlowFilesConnector", "app"]


class SlowFilesConnector:
    """Delegates to the files connector; slow, logged and chatty on write."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.crm = inner.crm
        self.write_batch_size = int(os.environ.get("CRASH_CRM_BATCH") or inner.write_batch_size)
        self.delay = float(os.environ.get("CRASH_CRM_WRITE_DELAY") or 0)
        self.slow_flag = os.environ.get("CRASH_CRM_SLOW_FLAG")
        self.events = os.environ.get("CRASH_CRM_EVENTS")
        self._chatter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _event(self, what: str, object_type: str, ids: list[str]) -> None:
        if self.events:
            with open(self.events, "a", encoding="utf-8") as f:
                f.write(
                    json.dumps({"event": what, "pid": os.getpid(), "object_type": object_type, "ids": ids})
                    + "\n"
                )
                f.flush()
                os.fsync(f.fileno())

    def _chatter(self) -> None:
        for name in filter(None, (os.environ.get("CRASH_CRM_LOG_SECRETS") or "").split(",")):
            value = os.environ.get(name, "")
            logging.getLogger("chatty_sdk.auth").info("POST /oauth2/token password=%s", value)
            structlog.get_logger("chatty_sdk").info(
                "sdk.request", headers={"Authorization": f"Bearer {value}"}, body=[{"secret": value}]
            )
            logging.getLogger("chatty_sdk.auth").warning(
                "retrying after error: %r", RuntimeError(f"bad {value}")
            )

    def write(self, object_type: str, updates: Sequence[FitUpdate]) -> list[WriteResult]:
        ids = [u.external_id for u in updates]
        self._event("start", object_type, ids)
        if self.delay and (not self.slow_flag or os.path.exists(self.slow_flag)):
            time.sleep(self.delay)
        results = self.inner.write(object_type, updates)
        self._event("done", object_type, ids)
        return results


def build_connector(crm: str, options: Mapping[str, Any], *, env_prefix: str,
                    env: Mapping[str, str] | None = None, limiter: Any = None) -> Any:  # fmt: skip
    connector = real_build_connector(crm, options, env_prefix=env_prefix, env=env, limiter=limiter)
    return SlowFilesConnector(connector) if crm == "files" else connector


jobs.build_connector = build_connector  # type: ignore[assignment]
