"""Structured logs with task/run context and no secrets; Prometheus metrics from a run summary."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from worker import observability
from worker.observability import REDACTED, Metrics, Redactor, configure_logging, record_run, secret_values
from worker.settings import Settings
from worker.sync import RunSummary

SF_PASSWORD = "hunter2-Pa55word!"
HS_TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
PEM = (
    "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\nBKcwggSjAgEAAoIBAQC7\\n"
    "-----END PRIVATE KEY-----"
)
DB_PASSWORD = "s3cr3t%21db"  # URL-encoded "s3cr3t!db"


@pytest.fixture
def secrets_env(monkeypatch):
    monkeypatch.setenv("ACME_SF_PASSWORD", SF_PASSWORD)
    monkeypatch.setenv("ACME_HUBSPOT_ACCESS_TOKEN", HS_TOKEN)
    monkeypatch.setenv("ACME_SF_PRIVATE_KEY", PEM)
    monkeypatch.setenv("ACME_SF_USERNAME", "integration@acme.example")  # not a secret: kept
    monkeypatch.setenv("SHORT_TOKEN", "abc")  # too short to redact without garbling every line


@pytest.fixture
def captured(secrets_env):
    """Logging configured as in a worker (JSON), writing to a buffer; restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    settings = Settings(
        database_url=SecretStr(f"postgresql://icp:{DB_PASSWORD}@db.internal:5432/icp"),
        log_format="json",
        _env_file=None,
    )
    configure_logging(settings, handler=logging.StreamHandler(buffer))
    yield buffer
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved_handlers:
        root.addHandler(h)
    root.setLevel(saved_level)


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_secret_values_cover_env_suffixes_settings_and_url_passwords(secrets_env):
    settings = Settings(celery_broker_url=SecretStr("redis://:br0ker-pass@redis:6379/0"), _env_file=None)
    values = secret_values(settings)
    assert {SF_PASSWORD, HS_TOKEN, "br0ker-pass", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"} <= values
    assert "integration@acme.example" not in values and "abc" not in values


def test_every_line_is_json_with_task_and_run_context_and_no_secret(captured):
    observability.bind_task_context(task_id="t-123", task="icp.sync_connection", connection="acme")
    structlog.get_logger("worker.sync").info("run.started", run_id=42, connection="acme")
    logging.getLogger("simple_salesforce.api").warning("login as %s with %s", "bob", SF_PASSWORD)
    structlog.get_logger("chatty").info(
        "request", headers={"Authorization": f"Bearer {HS_TOKEN}"}, keys=[PEM]
    )
    try:
        raise RuntimeError(f"token {HS_TOKEN} refused; db s3cr3t!db")
    except RuntimeError:
        logging.getLogger("urllib3").exception("boom")
    structlog.get_logger("worker.sync").info("run.finished", run_id=42, connection="acme")
    logging.getLogger("celery.app.trace").info("Task done")
    observability.clear_task_context()

    text = captured.getvalue()
    for secret in (SF_PASSWORD, HS_TOKEN, "s3cr3t!db", DB_PASSWORD, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"):
        assert secret not in text
    assert text.count(REDACTED) >= 5
    records = lines(captured)
    by_event = {r["event"].split(" ")[0]: r for r in records}
    assert all(r["task_id"] == "t-123" and r["connection"] == "acme" for r in records)
    # the run id reaches lines of other loggers logged during the run, and leaves with the run
    assert by_event["login"]["run_id"] == 42 and by_event["login"]["logger"] == "simple_salesforce.api"
    assert "RuntimeError" in by_event["boom"]["exception"] and by_event["boom"]["run_id"] == 42
    assert "run_id" not in by_event["Task"]
    assert "integration@acme.example" not in text  # (not logged at all; usernames are not redacted)


def test_console_format_is_readable_and_redacted(secrets_env):
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = list(root.handlers)
    try:
        configure_logging(
            Settings(log_format="console", _env_file=None), handler=logging.StreamHandler(buffer)
        )
        structlog.get_logger("worker.tasks").warning("sync.retrying", error=f"401 for {HS_TOKEN}")
    finally:
        structlog.reset_defaults()
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved:
            root.addHandler(h)
    out = buffer.getvalue()
    assert "sync.retrying" in out and "warning" in out and HS_TOKEN not in out and REDACTED in out
    assert not out.lstrip().startswith("{")


def test_a_secret_set_after_configuration_is_still_redacted(monkeypatch):
    redactor = Redactor()
    assert redactor.text("x late-secret-value y") == "x late-secret-value y"
    monkeypatch.setenv("LATE_API_KEY", "late-secret-value")
    assert redactor.text("x late-secret-value y") == f"x {REDACTED} y"


def summary(**kw) -> RunSummary:
    base = dict(
        run_id=7,
        connection="acme",
        kind="incremental",
        status="succeeded",
        counts={"pulled_account": 10, "pulled_lead": 5, "scored": 15, "written": 4, "write_errors": 1},
        api_calls={"calls": {"read": 3, "write": 2, "other": 0}},
        timings={"total": 12.5},
    )
    base.update(kw)
    return RunSummary(**base)


def test_run_summary_becomes_metrics():
    registry = CollectorRegistry()
    m = Metrics(registry)
    record_run(summary(), crm="salesforce", into=m, finished_at=1_800_000_000.0)
    record_run(
        summary(status="failed", error="AuthError: INVALID_LOGIN", counts={}, timings={"total": 1.0}),
        crm="salesforce",
        into=m,
    )
    record_run(summary(status="quota_reserved", counts={}, api_calls={}), crm="salesforce", into=m)

    def value(name, **labels):
        return registry.get_sample_value(name, labels)

    assert value("icp_records_pulled_total", connection="acme", object_type="account") == 10
    assert value("icp_records_scored_total", connection="acme") == 15
    assert value("icp_records_written_total", connection="acme") == 4
    assert value("icp_api_calls_total", crm="salesforce", kind="read") == 6
    assert value("icp_errors_total", connection="acme", kind="write") == 1
    assert value("icp_errors_total", connection="acme", kind="auth") == 1
    assert value("icp_errors_total", connection="acme", kind="quota") == 1
    assert value("icp_runs_total", connection="acme", kind="incremental", status="failed") == 1
    assert (
        value("icp_run_duration_seconds_count", connection="acme", kind="incremental", status="succeeded")
        == 1
    )
    assert (
        value("icp_run_duration_seconds_sum", connection="acme", kind="incremental", status="succeeded")
        == 12.5
    )
    assert value("icp_last_success_timestamp_seconds", connection="acme") == 1_800_000_000.0
