"""``icp-worker worker | beat | schedule show``: the background processes and their schedule."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import typer
from rich.table import Table

from worker.cli.common import STATE, UserError, handle_errors, out, print_json

schedule_app = typer.Typer(help="When beat runs each connection's sync.", no_args_is_help=True)

ALL_QUEUES = "sync,reevaluate,schedule"


def _export_config() -> None:
    """Worker processes read the connections file from ``ICP_WORKER_CONFIG``: hand ``--config`` on."""
    from worker.celery_app import get_runtime_settings
    from worker.settings import get_settings

    if STATE.config_path is not None:
        os.environ["ICP_WORKER_CONFIG"] = str(STATE.config_path.resolve())
    get_settings.cache_clear()
    get_runtime_settings.cache_clear()
    STATE.config()  # a broken file fails here, with file:line messages, not in every task


def _require_broker() -> None:
    from worker.settings import get_settings

    if not get_settings().broker_url():
        raise UserError(
            "CELERY_BROKER_URL is not set. Without a broker work runs in-process (icp-worker sync); "
            "set it (e.g. redis://localhost:6379/0) to run workers and beat"
        )


@handle_errors
def worker(
    queues: str = typer.Option(ALL_QUEUES, "--queues", "-Q", help="Comma-separated queues to consume."),
    concurrency: int = typer.Option(
        None, "--concurrency", "-c", min=1, help="Processes (default: WORKER_CONCURRENCY, 2)."
    ),
    loglevel: str = typer.Option(None, "--loglevel", "-l", help="Default: LOG_LEVEL."),
    pool: str = typer.Option("prefork", "--pool", "-P", help="prefork, solo or threads."),
    hostname: str = typer.Option(None, "--hostname", "-n", help="Node name (default: celery@HOST)."),
) -> None:
    """Start a Celery worker: syncs, re-evaluations and the scheduler's fan-out."""
    _export_config()
    _require_broker()
    from worker.celery_app import app, get_runtime_settings
    from worker.settings import get_settings

    argv = [
        "worker",
        "--queues", queues,
        "--concurrency", str(concurrency or get_runtime_settings().worker_concurrency),
        "--loglevel", (loglevel or get_settings().log_level).upper(),
        "--pool", pool,
    ]  # fmt: skip
    if hostname:
        argv += ["--hostname", hostname]
    app.worker_main(argv)


@handle_errors
def beat(
    loglevel: str = typer.Option(None, "--loglevel", "-l", help="Default: LOG_LEVEL."),
    schedule_file: str = typer.Option(
        None, "--schedule-file", "-s", help="Beat's state file (default: BEAT_SCHEDULE_FILE)."
    ),
) -> None:
    """Start beat: queues each connection's sync at its scheduled times (run exactly one beat)."""
    _export_config()
    _require_broker()
    from worker.celery_app import app
    from worker.settings import get_settings

    argv = ["beat", "--loglevel", (loglevel or get_settings().log_level).upper()]
    if schedule_file:
        argv += ["--schedule", schedule_file]
    app.start(argv)


@schedule_app.command("show")
@handle_errors
def schedule_show(
    count: int = typer.Option(3, "--count", "-n", min=1, max=100, help="Next runs per connection."),
    connection: str = typer.Option(None, "--connection", help="Only this connection (default: every one)."),
    as_json: bool = typer.Option(False, "--json", help="Print the schedule as JSON."),
) -> None:
    """The next scheduled runs of each connection, in its time zone and in UTC."""
    from worker.schedule import CronError, next_runs

    config = STATE.config()
    conns = [STATE.connection(connection)] if connection else config.connections
    if not conns:
        raise UserError("no connections configured: write icp-worker.yaml (see the README) or pass --config")
    now = datetime.now(UTC)
    rows = []
    for c in conns:
        try:
            runs = next_runs(c, now, count)
        except CronError as exc:
            raise UserError(f"connection {c.name}: schedule.cron {c.schedule.cron!r}: {exc}") from None
        rows.append((c, runs))
    if as_json:
        print_json([
            {"connection": c.name, "cron": c.schedule.cron, "timezone": c.schedule.timezone,
             "next_runs": [r.isoformat() for r in runs],
             "next_runs_utc": [r.astimezone(UTC).isoformat() for r in runs]}
            for c, runs in rows
        ])  # fmt: skip
        return
    table = Table("connection", "cron", "time zone", "next runs (local)", "UTC")
    for c, runs in rows:
        table.add_row(
            c.name, c.schedule.cron, c.schedule.timezone,
            "\n".join(r.strftime("%a %Y-%m-%d %H:%M %Z") for r in runs),
            "\n".join(r.astimezone(UTC).strftime("%Y-%m-%d %H:%M") for r in runs),
        )  # fmt: skip
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add ``worker``, ``beat`` and ``schedule`` to the ``icp-worker`` app."""
    app.command("worker")(worker)
    app.command("beat")(beat)
    app.add_typer(schedule_app, name="schedule")
