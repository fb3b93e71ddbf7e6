"""``icp-worker``: the command line. One module per command group."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer

from worker import observability
from worker.cli import console, demo, explain, icp, operations, quality, runs, runtime, score
from worker.cli.common import STATE
from worker.observability import configure_logging

app = typer.Typer(
    name="icp-worker",
    help="Score CRM records against your Ideal Customer Profile and write explainable fit fields back.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Plain help: a switch reads as a switch (``--json``), not ``--json <bool>``; every line greppable.
    rich_markup_mode=None,
)


@app.callback()
def main_options(
    config: Path = typer.Option(
        None,
        "--config",
        "-c",
        envvar="ICP_WORKER_CONFIG",
        help="Connections file (default: ./icp-worker.yaml if present).",
    ),
) -> None:
    STATE.config_path = config
    STATE._config = None
    # Log lines go to stderr, redacted; a one-shot command shows warnings unless LOG_LEVEL asks for more.
    configure_logging(level=os.environ.get("LOG_LEVEL", "WARNING"))
    if "LOG_LEVEL" not in os.environ:
        handler = observability._configured_handler
        if handler is not None:
            handler.addFilter(ShownByTheCommand())


class ShownByTheCommand(logging.Filter):
    """Drops the log events a command prints itself, so that an error is printed once: a failed run's
    error is on its summary line (``LOG_LEVEL`` set explicitly keeps every event)."""

    EVENTS = frozenset({"run.failed"})

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        return not (isinstance(msg, dict) and msg.get("event") in self.EVENTS)


app.add_typer(icp.app, name="icp")
app.add_typer(operations.reengage_app, name="reengage")
app.add_typer(operations.fields_app, name="fields")
app.add_typer(operations.db_app, name="db")
app.add_typer(operations.connections_app, name="connections")
app.command("sync")(operations.sync)
app.add_typer(runs.runs_app, name="runs")
app.command("score")(score.score)
app.command("quality")(quality.quality)
app.command("demo")(demo.demo)
app.command("console")(console.console)
app.add_typer(console.users_app, name="users")
runtime.register(app)
explain.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
