"""Logs and metrics of the worker processes.

Logs
    ``configure_logging()`` routes structlog *and* the standard library (Celery, kombu, the CRM SDKs,
    urllib3) through one formatter: JSON lines when ``LOG_FORMAT=json``, a readable console format
    otherwise. Every line carries the context bound in ``structlog.contextvars``: the Celery task id
    and name, the connection, and the run id (lifted from ``worker.sync``'s own events, see
    ``carry_run_context``). A redaction step removes every secret value the process knows of, before
    and after rendering: the ``SecretStr`` settings (and the passwords inside their URLs) and every
    environment variable whose name ends in ``_TOKEN``, ``_SECRET``, ``_PASSWORD``, ``_KEY``,
    ``_PRIVATE_KEY`` or ``_SESSION_ID``.

Metrics
    Prometheus counters and histograms recorded from a run's ``RunSummary`` (``record_run``). A Celery
    worker with the prefork pool runs tasks in child processes, so the worker uses the client's
    multiprocess mode: ``prepare_multiprocess_dir()`` runs in the main process before the pool forks,
    each child writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR``, and the HTTP endpoint
    (``METRICS_PORT``) in the main process aggregates them. ``prometheus_client`` is imported lazily
    so that the directory is set before the library picks its value class.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog
from pydantic import SecretStr

from connectors import errors as connector_errors
from worker.errors import KIND_BY_WORDS
from worker.store.states import RunStatus

#: Environment variables whose names end like this hold secrets.
SECRET_SUFFIXES = ("_TOKEN", "_SECRET", "_PASSWORD", "_KEY", "_PRIVATE_KEY", "_SESSION_ID")
REDACTED = "[REDACTED]"
#: Shorter values are not redacted: replacing "1" or "true" everywhere would garble every line.
MIN_SECRET_LENGTH = 6


# --------------------------------------------------------------------------------------------- secrets


def _variants(value: str) -> set[str]:
    """The forms in which a secret can reach a log line: as set, stripped, with ``\\n`` escapes
    expanded (PEM keys in one env line), each long line of a multi-line value, the password inside a
    URL, and the JSON-escaped form."""
    found: set[str] = set()
    for v in {value, value.strip(), value.replace("\\n", "\n").strip()}:
        found.add(v)
        if "\n" in v:
            found.update(line.strip() for line in v.splitlines())
        if "://" in v:
            try:
                password = urlsplit(v).password
            except ValueError:
                password = None
            if password:
                found.update({password, unquote(password)})
    found.update([json.dumps(v)[1:-1] for v in list(found)])
    return {v for v in found if len(v) >= MIN_SECRET_LENGTH}


def secret_values(settings: Any = None, environ: Mapping[str, str] | None = None) -> set[str]:
    """Every secret value known to this process (see the module notes)."""
    environ = os.environ if environ is None else environ
    values: set[str] = set()
    for name, value in environ.items():
        if value and name.upper().endswith(SECRET_SUFFIXES):
            values |= _variants(value)
    if settings is not None:
        for name in type(settings).model_fields:
            field_value = getattr(settings, name, None)
            if isinstance(field_value, SecretStr) and field_value.get_secret_value():
                values |= _variants(field_value.get_secret_value())
    return values


class Redactor:
    """Replaces secret values with ``[REDACTED]`` in strings and, recursively, in event dicts.

    The environment is looked at again on every call (cheap: a scan of a few dozen names), so a secret
    set after logging was configured is still caught."""

    def __init__(self, settings: Any = None, extra: Iterable[str] = ()) -> None:
        self._fixed = secret_values(settings, environ={}) | {v for s in extra for v in _variants(s)}
        self._lock = threading.Lock()
        self._key: frozenset[str] | None = None
        self._pattern: re.Pattern[str] | None = None

    def pattern(self) -> re.Pattern[str] | None:
        values = frozenset(self._fixed | secret_values(None))
        with self._lock:
            if values != self._key:
                self._key = values
                alternatives = sorted(values, key=len, reverse=True)  # longest first: no partial leftovers
                self._pattern = re.compile("|".join(map(re.escape, alternatives))) if alternatives else None
            return self._pattern

    def text(self, value: str) -> str:
        pattern = self.pattern()
        return pattern.sub(REDACTED, value) if pattern else value

    def value(self, value: Any, pattern: re.Pattern[str] | None) -> Any:
        if pattern is None:
            return value
        if isinstance(value, str):
            return pattern.sub(REDACTED, value)
        if isinstance(value, Mapping):
            return {self.value(k, pattern): self.value(v, pattern) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v, pattern) for v in value]
        if isinstance(value, BaseException):
            return pattern.sub(REDACTED, f"{type(value).__name__}: {value}")
        return value

    def __call__(self, logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        """A structlog processor."""
        pattern = self.pattern()
        if pattern is None:
            return event_dict
        return {k: self.value(v, pattern) for k, v in event_dict.items()}


class RedactingRenderer:
    """Wraps the final renderer and redacts its output too (a value may only become a secret-bearing
    string when rendered, e.g. inside a ``repr``)."""

    def __init__(self, renderer: Any, redactor: Redactor) -> None:
        self.renderer = renderer
        self.redactor = redactor

    def __call__(self, logger: Any, method_name: str, event_dict: dict[str, Any]) -> Any:
        out = self.renderer(logger, method_name, event_dict)
        return self.redactor.text(out) if isinstance(out, str) else out


# --------------------------------------------------------------------------------------------- logging

#: Keys lifted from ``worker.sync``'s events into the context, so that lines logged during the run by
#: other modules (connectors, SDKs, Celery) carry them too.
RUN_KEYS = ("run_id",)


def carry_run_context(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """``worker.sync`` binds ``run_id`` to its own logger only; copy it into the context variables when
    a run starts and drop it when the run finishes."""
    if event_dict.get("logger", getattr(logger, "name", None)) != "worker.sync":
        return event_dict
    event = event_dict.get("event")
    if event == "run.finished":
        structlog.contextvars.unbind_contextvars(*RUN_KEYS)
    elif "run_id" in event_dict:
        structlog.contextvars.bind_contextvars(**{k: event_dict[k] for k in RUN_KEYS if k in event_dict})
    return event_dict


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # logging sets it in __init__; ignored
        pass


_configured_handler: logging.Handler | None = None


def configure_logging(
    settings: Any = None,
    *,
    level: str | None = None,
    fmt: str | None = None,
    handler: logging.Handler | None = None,
) -> Redactor:
    """Configure structlog and the standard library's root logger (idempotent: a second call replaces
    the first configuration). Returns the redactor in use."""
    global _configured_handler
    if settings is None:
        from worker.settings import get_settings

        settings = get_settings()
    fmt = fmt or settings.log_format
    level_name = (level or settings.log_level or "INFO").upper()
    redactor = Redactor(settings)
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    pre_chain: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        timestamper,
    ]
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(default=str)
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    final: list[Any] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        carry_run_context,
        structlog.processors.format_exc_info,
        redactor,
        RedactingRenderer(renderer, redactor),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=pre_chain, processors=final)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            timestamper,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = handler or _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    if _configured_handler is not None and _configured_handler in root.handlers:
        root.removeHandler(_configured_handler)
    for existing in list(root.handlers):  # Celery or basicConfig handlers would print lines unredacted
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level_name)
    _configured_handler = handler
    logging.captureWarnings(True)
    return redactor


def logging_configured() -> bool:
    return _configured_handler is not None and _configured_handler in logging.getLogger().handlers


def bind_task_context(**values: Any) -> None:
    """Start a fresh log context for one task (the previous task's values must not leak into it)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**{k: v for k, v in values.items() if v is not None})


def clear_task_context() -> None:
    structlog.contextvars.clear_contextvars()


# --------------------------------------------------------------------------------------------- metrics

#: Error kind by exception class name, for runs whose summary only has the error text.
_ERROR_KINDS: dict[str, str] = {
    cls.__name__: cls.kind
    for cls in vars(connector_errors).values()
    if isinstance(cls, type) and issubclass(cls, connector_errors.ConnectorError)
}
_ERROR_KINDS.update({"NoIcpError": "no_icp", "IcpValidationError": "invalid_icp"})
# A run's error starts with words, not a class name (``worker.errors.describe``).
_ERROR_KINDS.update(KIND_BY_WORDS)
_ERROR_KINDS["no ICP is published yet"] = "no_icp"

DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, float("inf"))


class Metrics:
    """The worker's Prometheus metrics (created once per process, on first use)."""

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import REGISTRY, Counter, Gauge, Histogram

        registry = REGISTRY if registry is None else registry
        self.records_pulled = Counter(
            "icp_records_pulled_total",
            "Records pulled from the CRM, by connection and object type.",
            ["connection", "object_type"],
            registry=registry,
        )
        self.records_scored = Counter(
            "icp_records_scored_total", "Records scored.", ["connection"], registry=registry
        )
        self.records_written = Counter(
            "icp_records_written_total",
            "Records whose fit fields were written to the CRM.",
            ["connection"],
            registry=registry,
        )
        self.flags_raised = Counter(
            "icp_reengage_flags_raised_total",
            "Re-engagement flags raised.",
            ["connection"],
            registry=registry,
        )
        self.api_calls = Counter(
            "icp_api_calls_total",
            "CRM API calls, by CRM and kind of call.",
            ["crm", "kind"],
            registry=registry,
        )
        self.errors = Counter(
            "icp_errors_total",
            "Errors, by connection and kind (auth, config, transient, rate_limited, quota, "
            "write: per-record write failures, ...).",
            ["connection", "kind"],
            registry=registry,
        )
        self.runs = Counter(
            "icp_runs_total",
            "Runs by connection, kind and final status.",
            ["connection", "kind", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "icp_run_duration_seconds",
            "Wall time of a run.",
            ["connection", "kind", "status"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.last_success = Gauge(
            "icp_last_success_timestamp_seconds",
            "Unix time of the last run that completed (status succeeded or partial), by connection.",
            ["connection"],
            registry=registry,
            multiprocess_mode="max",
        )


_metrics: Metrics | None = None
_metrics_lock = threading.Lock()


def metrics() -> Metrics:
    global _metrics
    with _metrics_lock:
        if _metrics is None:
            _metrics = Metrics()
        return _metrics


def error_kind(error: str | None) -> str:
    """``"login failed: bad password"`` (or ``"AuthError: ..."``) -> ``auth``; unknown -> ``internal``."""
    if not error:
        return "internal"
    return _ERROR_KINDS.get(error.split(":", 1)[0].strip(), "internal")


def record_run(
    summary: Any,
    *,
    crm: str,
    error_kind_hint: str | None = None,
    finished_at: float | None = None,
    into: Metrics | None = None,
) -> None:
    """Record one run's figures from its ``worker.sync.RunSummary`` (or anything with the same fields).

    The Celery tasks call it after every run; the CLI can call it after an in-process run (its figures
    then live in that process only: a one-shot command exposes no endpoint)."""
    import time

    m = into or metrics()
    conn, counts = summary.connection, summary.counts or {}
    for key, value in counts.items():
        if key.startswith("pulled_") and value:
            m.records_pulled.labels(conn, key.removeprefix("pulled_")).inc(value)
    for key, counter in (("scored", m.records_scored), ("written", m.records_written)):
        if counts.get(key):
            counter.labels(conn).inc(counts[key])
    if counts.get("flags_raised"):
        m.flags_raised.labels(conn).inc(counts["flags_raised"])
    if counts.get("write_errors"):
        m.errors.labels(conn, "write").inc(counts["write_errors"])
    if counts.get("task_errors"):
        m.errors.labels(conn, "task_create").inc(counts["task_errors"])
    calls = (summary.api_calls or {}).get("calls") or {}
    for kind, n in calls.items():
        if n:
            m.api_calls.labels(crm, kind).inc(n)
    status = summary.status
    if status == RunStatus.FAILED:
        m.errors.labels(conn, error_kind_hint or error_kind(summary.error)).inc()
    elif status.startswith("quota"):
        m.errors.labels(conn, "quota").inc()
    m.runs.labels(conn, summary.kind, status).inc()
    seconds = (summary.timings or {}).get("total")
    if seconds is not None:
        m.duration.labels(conn, summary.kind, status).observe(seconds)
    if status in (RunStatus.SUCCEEDED, RunStatus.PARTIAL):
        m.last_success.labels(conn).set(finished_at or time.time())


def record_error(connection: str, kind: str) -> None:
    """An error outside a run (a task that could not start one, for example)."""
    metrics().errors.labels(connection, kind).inc()


def prepare_multiprocess_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Set up ``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary directory unless given or set) and empty
    it of a previous run's files. Call in the worker's main process, before the pool forks and before
    ``prometheus_client`` is imported."""
    target = path or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    directory = Path(target) if target else Path(tempfile.mkdtemp(prefix="icp-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values = sys.modules.get("prometheus_client.values")
    if values is not None and "MultiProcess" not in getattr(values.ValueClass, "__name__", ""):
        structlog.get_logger("worker.observability").warning(
            "metrics.single_process",
            reason="prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR "
            "was set: samples from pool children will be missing",
        )
    return directory


def start_metrics_server(port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from outside
    """Serve ``/metrics`` on ``port`` from this process, aggregating the multiprocess files if the
    directory is set."""
    from prometheus_client import CollectorRegistry, start_http_server

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(port, addr, registry=registry)
    else:
        start_http_server(port, addr)
    structlog.get_logger("worker.observability").info("metrics.serving", port=port)


def mark_process_dead(pid: int) -> None:
    """Tell the multiprocess collector a pool child is gone (its live gauges stop counting)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
