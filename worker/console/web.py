"""The console's ASGI application: ``create_app(store, config)``; ``icp-worker console`` serves it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from worker.config import WorkerConfig
from worker.console import actions, charts, views
from worker.console.auth import LoginLimiter
from worker.console.http import Console
from worker.console.security import SecurityHeaders
from worker.console.settings import ConsoleSettings, get_console_settings
from worker.store.db import Store

HERE = Path(__file__).parent


def _number(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _pulled(counts: dict[str, int] | None) -> int:
    return sum(v for k, v in (counts or {}).items() if k.startswith("pulled_") and isinstance(v, int))


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["n"] = _number
    env.filters["when"] = _when
    env.globals["tier_colour"] = charts.tier_colour
    env.globals["pulled"] = _pulled
    env.globals["version_state"] = actions.version_state
    return env


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    title = {404: "Not found", 405: "Not allowed"}.get(status, "Error")
    html = request.app.state.console.templates.get_template("error.html").render(
        request=request, user=None, csrf="", path=request.url.path, title=title, message=title
    )
    return HTMLResponse(html, status_code=status)


def create_app(
    store: Store,
    config: Callable[[], WorkerConfig],
    settings: ConsoleSettings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
) -> Starlette:
    """The console on ``store``; ``config()`` gives the connections file (read when a page needs it)."""
    settings = settings or get_console_settings()
    console = Console(
        store=store,
        config=config,
        settings=settings,
        templates=templates(),
        limiter=LoginLimiter(settings.console_login_attempts, settings.console_login_window_seconds),
    )
    if clock is not None:
        console.clock = clock
    routes = [*views.routes(), Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static")]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={404: _http_error, 405: _http_error},
    )
    app.state.console = console
    return app
