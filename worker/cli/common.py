"""What every command shares: the config and store, clear errors with exit codes, progress, JSON output."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from connectors.errors import ConnectorError
from worker.config import ConnectionConfig, WorkerConfig, load_config
from worker.errors import ServiceUnavailable, describe, service_error
from worker.settings import get_settings
from worker.store.db import Store, get_store
from worker.yamlfile import YamlFileError

# Lines are never hard-wrapped (a file path, a count or an error must stay greppable); tables fit the width.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class State:
    """Global options (``icp-worker --config FILE ...``)."""

    config_path: Path | None = None
    _config: WorkerConfig | None = field(default=None, repr=False)

    def config(self) -> WorkerConfig:
        if self._config is None:
            path = self.config_path or get_settings().icp_worker_config
            if path is None and Path("icp-worker.yaml").exists():
                path = Path("icp-worker.yaml")
            self._config = load_config(path) if path else WorkerConfig()
        return self._config

    def connection(self, name: str) -> ConnectionConfig:
        try:
            return self.config().get(name)
        except KeyError as exc:
            raise UserError(str(exc.args[0])) from None

    def store(self) -> Store:
        return get_store()


STATE = State()


class UserError(Exception):
    """A mistake the user can fix: printed without a traceback, exit code 2."""


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True)
    raise typer.Exit(code)


def _infrastructure_error(exc: BaseException) -> ServiceUnavailable | None:
    """A broker, Redis or database driver error as a one-line ``ServiceUnavailable`` (None: not one)."""
    from sqlalchemy.exc import DBAPIError

    settings = get_settings()
    module = type(exc).__module__
    if module.startswith("kombu") or module.startswith("amqp"):
        return service_error("the broker", settings.broker_url() or "", exc, "check CELERY_BROKER_URL")
    if module.startswith("redis"):
        from worker.locks import redis_url_from_settings

        return service_error("Redis", redis_url_from_settings() or "", exc, "check REDIS_URL")
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return service_error("the store", settings.store_url(), exc, "check DATABASE_URL")
    return None


#: Connector error kinds the user fixes (exit code 2); a host that refuses connections too (``UNREACHABLE``).
_FIX_YOUR_INPUT = ("auth", "config", "missing_fields")


def handle_errors(func: F) -> F:
    """Turn known errors into one clear message and an exit code (2: fix your input; 1: the run failed).

    Messages start with words (``describe``), never with a class name, and are printed once."""
    from worker.icp.spec import IcpValidationError
    from worker.sync import NoIcpError

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (IcpValidationError, YamlFileError) as exc:
            err.print("[bold red]error:[/] invalid file", highlight=False)
            err.print(str(exc), markup=False, highlight=False)
            raise typer.Exit(2) from None
        except (KeyError, IndexError):
            raise  # a bug, not a user's mistake: show the traceback
        except (UserError, NoIcpError, LookupError, ServiceUnavailable) as exc:
            # LookupError: our own "no such version / connection / broker" errors subclass it
            fail(describe(exc))
        except ConnectorError as exc:
            fail(
                describe(exc),
                code=2
                if exc.code == "UNREACHABLE" or (not exc.transient and exc.kind in _FIX_YOUR_INPUT)
                else 1,
            )
        except Exception as exc:
            service = _infrastructure_error(exc)
            if service is None:
                raise
            fail(str(service))

    return wrapper  # type: ignore[return-value]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Callable[[str, int], None]]:
    """A ``progress(phase, n)`` callback drawing one bar per phase on stderr (silent when not a terminal)."""
    show = enabled and err.is_terminal and not os.environ.get("ICP_WORKER_NO_PROGRESS")
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not show,
        transient=False,
    ) as bar:
        tasks: dict[str, Any] = {}

        def advance(phase: str, n: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=None)
            bar.advance(tasks[phase], n)

        yield advance


def fit_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    drop_order: Sequence[str] = (),
    wrap: Sequence[str] = (),
    right: Sequence[str] = (),
    width: int | None = None,
) -> tuple[Table, list[str]]:
    """A table whose cells are never cut: columns in ``wrap`` fold their text; when even so the table is
    wider than the terminal, columns are left out in ``drop_order`` (returned, so the caller can say so)."""
    width = width or out.width
    widths = {h: max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)}
    kept = list(headers)

    def needed() -> int:
        # 3 characters of border and padding per column, plus the last border; folded columns need 12
        return sum(min(widths[h], 12) if h in wrap else widths[h] for h in kept) + 3 * len(kept) + 1

    dropped: list[str] = []
    for name in drop_order:
        if needed() <= width:
            break
        if name in kept:
            kept.remove(name)
            dropped.append(name)
    table = Table(*kept)
    for column in table.columns:
        name = str(column.header)
        if name in wrap:
            column.overflow = "fold"
        else:
            column.no_wrap = True
            column.min_width = widths[name]
        if name in right:
            column.justify = "right"
    index = [headers.index(h) for h in kept]
    for r in rows:
        table.add_row(*(r[i] for i in index))
    return table, dropped
