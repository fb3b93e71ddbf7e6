"""The glue between Starlette and the console: who is signed in, role and CSRF checks, page rendering.

Every route is declared with :func:`view` (GET, a role needed to read) or :func:`action` (POST: signed in,
the session's CSRF token in the form, and the role needed); a request that fails a check gets 403 and changes
nothing. Handlers are plain functions run in a thread: the store is synchronous.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from worker.config import WorkerConfig
from worker.console import auth
from worker.console.settings import ConsoleSettings
from worker.store.db import Store

SESSION_COOKIE = "icp_console_session"
#: Before sign-in: a random token in a cookie that the sign-in form must repeat (double submit).
LOGIN_COOKIE = "icp_console_login"
#: A form (or an upload) larger than this is refused: ICP files are small.
MAX_FORM_BYTES = 1024 * 1024

Handler = Callable[..., Response]
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass
class Console:
    """What every handler shares (``request.app.state.console``)."""

    store: Store
    config: Callable[[], WorkerConfig]
    settings: ConsoleSettings
    templates: jinja2.Environment
    limiter: auth.LoginLimiter
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def console_of(request: Request) -> Console:
    return request.app.state.console  # type: ignore[no-any-return]


def current_user(request: Request) -> auth.SignedIn | None:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    c = console_of(request)
    with c.store.session() as s:
        return auth.load_session(s, token, c.clock())


def render(
    request: Request, template: str, user: auth.SignedIn | None, status: int = 200, **context: Any
) -> HTMLResponse:
    c = console_of(request)
    html = c.templates.get_template(template).render(
        request=request, user=user, csrf=user.csrf_token if user else "", path=request.url.path, **context
    )
    return HTMLResponse(html, status_code=status)


def forbidden(request: Request, user: auth.SignedIn | None, message: str) -> HTMLResponse:
    return render(request, "error.html", user, status=403, title="Not allowed", message=message)


def not_found(request: Request, user: auth.SignedIn | None, message: str) -> HTMLResponse:
    return render(request, "error.html", user, status=404, title="Not found", message=message)


def bad_request(request: Request, user: auth.SignedIn | None, message: str) -> HTMLResponse:
    return render(request, "error.html", user, status=400, title="Cannot do that", message=message)


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def view(needed: str = "viewer") -> Callable[[Handler], Endpoint]:
    """A GET page for signed-in users of at least role ``needed``: ``fn(request, user) -> Response``."""

    def decorate(fn: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            user = await run_in_threadpool(current_user, request)
            if user is None:
                return _login_redirect(request)
            if not user.can(needed):
                return forbidden(request, user, f"This page needs the {needed} role (you are {user.role}).")
            return await run_in_threadpool(fn, request, user)

        endpoint.__name__ = fn.__name__
        endpoint.needed_role = needed  # type: ignore[attr-defined]
        return endpoint

    return decorate


async def read_form(request: Request) -> FormData | None:
    """The posted form, or None when it is too large or malformed."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_FORM_BYTES + 64 * 1024:
        return None
    try:
        return await request.form(max_files=1, max_fields=50, max_part_size=MAX_FORM_BYTES)
    except Exception:  # noqa: BLE001 - a malformed body is the client's problem: refuse it
        return None


def csrf_ok(form: FormData, expected: str) -> bool:
    given = form.get("csrf_token")
    return isinstance(given, str) and bool(expected) and secrets.compare_digest(given, expected)


def action(needed: str) -> Callable[[Handler], Endpoint]:
    """A POST for signed-in users of at least role ``needed``, carrying the session's CSRF token:
    ``fn(request, user, form) -> Response``. Anything else: 403 and nothing changes."""

    def decorate(fn: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            user = await run_in_threadpool(current_user, request)
            form = await read_form(request)
            if user is None:
                return forbidden(request, None, "Sign in first.")
            if form is None:
                return bad_request(request, user, "The form could not be read (too large or malformed).")
            if not csrf_ok(form, user.csrf_token):
                return forbidden(
                    request, user, "The form's security token is missing or stale: reload the page."
                )
            if not user.can(needed):
                return forbidden(request, user, f"This needs the {needed} role (you are {user.role}).")
            return await run_in_threadpool(fn, request, user, form)

        endpoint.__name__ = fn.__name__
        endpoint.needed_role = needed  # type: ignore[attr-defined]
        return endpoint

    return decorate


def form_text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value if isinstance(value, str) else default
