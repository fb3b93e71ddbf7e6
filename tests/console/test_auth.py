"""Accounts (``icp-worker users``), argon2 hashes, sign-in, sessions and the sign-in rate limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from tests.console.conftest import PASSWORD, client_for, csrf_of, sign_in
from worker.cli.app import app as cli
from worker.console import auth
from worker.console.http import SESSION_COOKIE
from worker.console.views.signin import FAILED
from worker.settings import get_settings
from worker.store.db import _store_for, get_store
from worker.store.models import ConsoleSession, ConsoleUser


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    monkeypatch.setenv("ICP_WORKER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()
    _store_for.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    _store_for.cache_clear()


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, list(args), input=stdin)


def test_users_add_list_passwd_remove(cli_env):
    done = run("users", "add", "rita", "--role", "editor", "--password-stdin", stdin="s3cret-words\n")
    assert done.exit_code == 0, done.output
    assert "added console user rita (editor)" in done.output
    listed = run("users", "list", "--json")
    assert listed.exit_code == 0
    assert '"name": "rita"' in listed.output and '"role": "editor"' in listed.output
    assert "s3cret" not in listed.output and "argon2" not in listed.output
    store = get_store()
    with store.session() as s:
        user = auth.get_user(s, "rita")
        assert user.password_hash.startswith("$argon2id$") and "s3cret" not in user.password_hash
        assert auth.verify_login(s, "rita", "s3cret-words") is not None
        token = auth.start_session(s, user, 60)
    assert run("users", "passwd", "rita", "--password-stdin", stdin="other-words-2\n").exit_code == 0
    with store.session() as s:
        assert auth.verify_login(s, "rita", "s3cret-words") is None
        assert auth.verify_login(s, "rita", "other-words-2") is not None
        assert auth.load_session(s, token) is None, "a new password ends the user's sessions"
    assert run("users", "remove", "rita").exit_code == 0
    with store.session() as s:
        assert s.query(ConsoleUser).count() == 0 and s.query(ConsoleSession).count() == 0


@pytest.mark.parametrize(
    "args,stdin,message",
    [
        (
            ["users", "add", "x1", "--role", "boss", "--password-stdin"],
            "long-enough\n",
            "unknown role 'boss'",
        ),
        (["users", "add", "x1", "--role", "viewer", "--password-stdin"], "short\n", "at least 8 characters"),
        (
            ["users", "add", "x1", "--role", "viewer", "--password-stdin"],
            "\n",
            "no password on standard input",
        ),
        (
            ["users", "add", "bad name!", "--role", "viewer", "--password-stdin"],
            "long-enough\n",
            "invalid user",
        ),
        (["users", "remove", "nobody"], None, "no console user 'nobody'"),
        (["users", "passwd", "nobody", "--password-stdin"], "long-enough\n", "no console user 'nobody'"),
    ],
)
def test_users_refuse_bad_input_with_exit_2(cli_env, args, stdin, message):
    done = run(*args, stdin=stdin)
    assert done.exit_code == 2, done.output
    assert message in done.output
    assert "Traceback" not in done.output


def test_users_add_twice_is_refused(cli_env):
    assert (
        run("users", "add", "rita", "--role", "viewer", "--password-stdin", stdin="long-enough\n").exit_code
        == 0
    )
    done = run("users", "add", "rita", "--role", "viewer", "--password-stdin", stdin="long-enough\n")
    assert done.exit_code == 2 and "exists already" in done.output


def test_sign_in_sets_an_httponly_samesite_expiring_cookie(env):
    c = client_for(env.app())
    response = sign_in(c, "eddie")
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and SESSION_COOKIE in v)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert f"Max-Age={env.settings.console_session_minutes * 60}" in cookie
    assert "Secure" not in cookie, "plain HTTP to 127.0.0.1 with the auto setting"
    assert c.get("/").status_code == 200
    with env.store.session() as s:
        row = s.query(ConsoleSession).one()
        assert row.token_hash != c.cookies[SESSION_COOKIE], "only a hash of the token is stored"


def test_cookies_are_secure_unless_plain_http_to_loopback(env):
    for base, mode, secure in [
        ("https://console.example.test", "auto", True),
        ("http://console.example.test", "auto", True),
        ("http://127.0.0.1", "always", True),
        ("http://127.0.0.1", "auto", False),
        ("http://console.example.test", "never", False),
    ]:
        from starlette.testclient import TestClient

        c = TestClient(env.app(console_cookie_secure=mode), base_url=base)
        page = c.get("/login")
        login_cookie = page.headers["set-cookie"]
        assert ("Secure" in login_cookie) is secure, (base, mode, login_cookie)


def test_a_failed_sign_in_does_not_say_which_part_was_wrong(client):
    wrong_password = sign_in(client, "eddie", "not the password", expect=401)
    unknown_user = sign_in(client, "nobody-here", PASSWORD, expect=401)
    for response in (wrong_password, unknown_user):
        assert FAILED in response.text
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_sign_in_is_rate_limited_per_name(env):
    c = client_for(env.app())
    for _ in range(env.settings.console_login_attempts):
        sign_in(c, "eddie", "wrong password!", expect=401)
    refused = sign_in(c, "eddie", PASSWORD, expect=429)
    assert "Too many failed sign-ins" in refused.text
    sign_in(c, "alice", PASSWORD)  # another name from the same address still may


def test_the_limiter_window_slides():
    now = [1000.0]
    limiter = auth.LoginLimiter(2, 60, clock=lambda: now[0])
    limiter.failed("k")
    limiter.failed("k")
    assert limiter.blocked("k") == pytest.approx(60)
    now[0] += 30
    assert limiter.blocked("k") == pytest.approx(30)
    now[0] += 31
    assert limiter.blocked("k") == 0
    limiter.failed("k")
    limiter.succeeded("k")
    assert limiter.blocked("k") == 0


def test_the_limiter_keeps_at_most_max_keys():
    limiter = auth.LoginLimiter(1, 60, max_keys=3)
    for i in range(10):
        limiter.failed(f"k{i}")
    assert len(limiter._fails) == 3
    assert limiter.blocked("k9") > 0


def test_a_session_expires(env):
    moment = [datetime(2026, 12, 1, 9, 0, tzinfo=UTC)]
    app = env.app()
    app.state.console.clock = lambda: moment[0]
    c = client_for(app)
    sign_in(c, "vera")
    assert c.get("/", follow_redirects=False).status_code == 200
    moment[0] += timedelta(minutes=env.settings.console_session_minutes + 1)
    later = c.get("/", follow_redirects=False)
    assert later.status_code == 303 and later.headers["location"].startswith("/login")


def test_sign_out_ends_the_session(client):
    sign_in(client, "vera")
    token = csrf_of(client)
    cookie = client.cookies[SESSION_COOKIE]
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    client.cookies.set(SESSION_COOKIE, cookie)  # a stolen copy of the cookie is worthless now
    assert client.get("/", follow_redirects=False).status_code == 303


def test_sign_in_needs_the_login_forms_token(client):
    response = client.post("/login", data={"name": "eddie", "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_next_only_leads_within_the_site(client):
    page = client.get("/login?next=//evil.example/x")
    assert 'name="next" value="/"' in page.text
    token = __import__("re").search(r'name="login_token" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/login",
        data={"login_token": token, "name": "vera", "password": PASSWORD, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/"
