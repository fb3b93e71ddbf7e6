"""Every response carries the security headers; every state-changing request needs the session's CSRF token
and the right role; a viewer sees no form that changes anything; no page shows a secret."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Route

from tests.console.conftest import PASSWORD, USERS, client_for, csrf_of, sign_in, signed_in
from worker.console.http import SESSION_COOKIE
from worker.console.security import CSP
from worker.store.models import AuditEvent, ConsoleUser, IcpVersion

READ_PAGES = ["/", "/icp", "/icp/v1", "/icp/diff", "/runs", "/runs/1", "/reengage", "/records?q=a"]


def post_routes(app) -> list[tuple[str, str]]:
    """Every POST route of the app, with its path filled in, and the role it needs."""
    found = []
    for route in app.routes:
        if isinstance(route, Route) and "POST" in (route.methods or ()) and route.path != "/login":
            path = route.path.replace("{number}", "1")
            found.append((path, getattr(route.endpoint, "needed_role", "")))
    return sorted(found, key=lambda f: f[0] == "/logout")  # signing out last


def test_every_response_carries_the_security_headers(env):
    c, _ = signed_in(env.app(), "eddie")
    anonymous = client_for(env.app())
    responses = [c.get(p) for p in READ_PAGES + ["/icp/draft", "/static/console.css", "/no/such/page"]]
    responses += [anonymous.get("/login"), anonymous.get("/", follow_redirects=False)]
    responses += [c.post("/icp/draft/check", data={"yaml": "x"})]  # refused: no token
    for r in responses:
        h = r.headers
        assert h["content-security-policy"] == CSP, r.url
        assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff", r.url
        assert h["referrer-policy"] == "same-origin", r.url
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP and "frame-ancestors 'none'" in CSP
    assert responses[0].headers["cache-control"] == "no-store"


def test_pages_have_no_inline_script_or_style(env):
    c, _ = signed_in(env.app(), "alice")
    for path in READ_PAGES + ["/icp/draft"]:
        html = c.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert not re.search(r"\sstyle=", html), path
        assert not re.search(r"\son[a-z]+=", html), path
        assert "<style" not in html, path


def test_every_post_without_the_csrf_token_is_refused(env):
    app = env.app()
    routes = post_routes(app)
    expected = {"/logout", "/icp/draft/check", "/icp/draft/preview", "/icp/draft/publish", "/icp/v1/rollback"}
    assert {p for p, _ in routes} >= expected
    c, token = signed_in(app, "alice")
    with env.store.session() as s:
        versions_before = s.query(IcpVersion).count()
    for path, _ in routes:
        missing = c.post(path, data={"yaml": "name: x", "note": "n"}, follow_redirects=False)
        wrong = c.post(path, data={"csrf_token": token[:-2] + "xx", "note": "n"}, follow_redirects=False)
        assert missing.status_code == 403 and wrong.status_code == 403, path
    # and without signing in at all
    anonymous = client_for(app)
    for path, _ in routes:
        assert anonymous.post(path, data={"csrf_token": token}, follow_redirects=False).status_code == 403
    with env.store.session() as s:
        assert s.query(IcpVersion).count() == versions_before
    assert c.get("/", follow_redirects=False).status_code == 200, "still signed in: logout was refused"


def test_another_sessions_token_is_refused(env):
    app = env.app()
    c1, _ = signed_in(app, "eddie")
    _, other = signed_in(app, "alice")
    assert c1.post("/icp/draft/check", data={"csrf_token": other, "yaml": "name: x"}).status_code == 403


@pytest.mark.parametrize("name", ["vera", "eddie"])
def test_roles_below_the_needed_one_are_refused(env, name):
    app = env.app()
    c, token = signed_in(app, name)
    role = USERS[name]
    order = ["viewer", "editor", "approver"]
    for path, needed in post_routes(app):
        response = c.post(path, data={"csrf_token": token, "yaml": "name: x", "note": "n"},
                          follow_redirects=False)  # fmt: skip
        if order.index(role) < order.index(needed):
            assert response.status_code == 403, (name, path)
            assert f"needs the {needed} role" in response.text
    with env.store.session() as s:
        assert s.query(AuditEvent).count() == 0
        assert s.query(IcpVersion).count() == 1


def test_a_viewer_sees_no_form_that_changes_anything(env):
    c, _ = signed_in(env.app(), "vera")
    for path in READ_PAGES:
        html = c.get(path).text
        actions = re.findall(r'<form[^>]*method="post"[^>]*action="([^"]+)"', html)
        assert actions == ["/logout"], (path, actions)
    assert "/icp/draft" not in c.get("/").text, "no Draft link for a viewer"
    assert c.get("/icp/draft").status_code == 403


def test_no_page_shows_a_secret(env, monkeypatch):
    monkeypatch.setenv("DEMO_HUBSPOT_ACCESS_TOKEN", "pat-na1-very-secret-token")
    app = env.app()
    c, _ = signed_in(app, "alice")
    session_token = c.cookies[SESSION_COOKIE]
    with env.store.session() as s:
        hashes = [u.password_hash for u in s.query(ConsoleUser)]
    for path in READ_PAGES + ["/icp/draft", "/icp/v1", "/records/demo/account/001000000000001"]:
        html = c.get(path).text
        for secret in [PASSWORD, session_token, "pat-na1-very-secret-token", *hashes]:
            assert secret not in html, path


def test_a_form_too_large_is_refused(env):
    c, token = signed_in(env.app(), "eddie")
    big = "x" * (1024 * 1024 + 200_000)
    assert c.post("/icp/draft/check", data={"csrf_token": token, "yaml": big}).status_code == 400


def test_signing_in_again_gives_a_new_session(env):
    app = env.app()
    c = client_for(app)
    sign_in(c, "eddie")
    first = c.cookies[SESSION_COOKIE]
    c.cookies.clear()
    sign_in(c, "eddie", PASSWORD)
    assert c.cookies[SESSION_COOKIE] != first
    assert csrf_of(c)
