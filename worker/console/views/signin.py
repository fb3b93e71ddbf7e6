"""Sign in and out. A failed sign-in never says which part was wrong; repeated failures wait a while."""

from __future__ import annotations

import logging
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from worker.console import auth
from worker.console.http import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    action,
    console_of,
    current_user,
    forbidden,
    form_text,
    read_form,
    render,
)
from worker.console.security import cookie_secure

log = logging.getLogger(__name__)
FAILED = "Sign-in failed: the user name or the password is wrong."
#: Per client address, this many times the per-name allowance.
ADDRESS_FACTOR = 4


def _safe_next(target: str) -> str:
    """Only a path of this site (never //host or a scheme)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _login_page(request: Request, *, message: str = "", status: int = 200, name: str = "") -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        None,
        status=status,
        title="Sign in",
        login_token=token,
        message=message,
        name=name,
        next=_safe_next(request.query_params.get("next", "/")),
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request, console_of(request).settings.console_cookie_secure),
        path="/login",
    )
    return response


async def login_form(request: Request) -> Response:
    user = await run_in_threadpool(current_user, request)
    if user is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next", "/")), status_code=303)
    return _login_page(request)


def _attempt(request: Request, name: str, password: str, target: str) -> Response:
    c = console_of(request)
    limiter, settings = c.limiter, c.settings
    address = request.client.host if request.client else "unknown"
    keys = (
        (f"name:{name.lower()}", settings.console_login_attempts),
        (
            f"addr:{address}",
            settings.console_login_attempts * ADDRESS_FACTOR,
        ),
    )
    wait = max(limiter.blocked(k, n) for k, n in keys)
    if wait > 0:
        minutes = max(1, round(wait / 60))
        return _login_page(
            request,
            status=429,
            name=name,
            message=f"Too many failed sign-ins: try again in about {minutes} min.",
        )
    with c.store.session() as s:
        user = auth.verify_login(s, name, password) if name and password else None
        token = auth.start_session(s, user, settings.console_session_minutes, c.clock()) if user else None
    if user is None or token is None:
        for k, n in keys:
            limiter.failed(k, n)
        log.warning("console sign-in failed", extra={"client": address})
        return _login_page(request, status=401, name=name, message=FAILED)
    limiter.succeeded(keys[0][0])
    response = RedirectResponse(_safe_next(target), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.console_session_minutes * 60,
        httponly=True,
        samesite="lax",
        secure=cookie_secure(request, settings.console_cookie_secure),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


async def login(request: Request) -> Response:
    form = await read_form(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    given = form_text(form, "login_token") if form is not None else ""
    if not expected or not given or not secrets.compare_digest(given, expected):
        return forbidden(
            request, None, "The sign-in form's security token is missing or stale: reload the page."
        )
    assert form is not None
    return await run_in_threadpool(
        _attempt,
        request,
        form_text(form, "name").strip(),
        form_text(form, "password"),
        form_text(form, "next", "/"),
    )


@action("viewer")
def logout(request: Request, user: auth.SignedIn, form: object) -> Response:
    with console_of(request).store.session() as s:
        auth.end_session(s, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


ROUTES = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
