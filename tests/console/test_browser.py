"""The console in a real browser: Debian's headless Chromium driven by playwright (no downloaded browser).

An editor uploads a draft with an error and sees it at its line, fixes it, previews the impact and publishes;
a viewer sees no form and their POSTs are refused; a POST without the CSRF token is refused."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.conftest import BUNDLED, PASSWORD
from worker.store.models import AuditEvent, IcpVersion

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
V2 = (BUNDLED / "icp_v2.yaml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=60_000)
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server) -> Iterator:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    pg = context.new_page()
    pg.problems = []  # CSP violations and script errors end up here
    pg.on("console", lambda m: m.type == "error" and pg.problems.append(m.text))
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    yield pg
    context.close()


def sign_in(page, name: str) -> None:
    page.goto("/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("header .who")
    assert name in page.inner_text("header .who")


def test_draft_with_an_error_then_fixed_previewed_and_published(page, live_server, tmp_path):
    sign_in(page, "eddie")
    page.click("text=Draft")
    page.wait_for_url("**/icp/draft")
    broken = V2.replace("    weight: 25\n", "    weight: lots\n")
    line = broken.splitlines().index("    weight: lots") + 1
    upload = tmp_path / "draft.yaml"
    upload.write_text(broken, encoding="utf-8")
    page.set_input_files("#upload", str(upload))
    page.click("#check")  # htmx: only the result panel is replaced
    note = page.wait_for_selector(f'tr.error-note[data-line="{line}"]')
    assert "criteria[1].weight" in note.inner_text() and "must be a number" in note.inner_text()
    assert page.is_visible(f"tr#line-{line}.has-error")
    assert page.url.endswith("/icp/draft"), "the check replaced a part of the page, no navigation"

    page.set_input_files("#upload", [])
    page.fill("#yaml", V2)
    page.click("#check")
    page.wait_for_selector("#check-ok")
    page.click("#preview")
    page.wait_for_selector("svg.heatmap")
    heat = page.inner_html("svg.heatmap")
    assert "records change tier" in heat
    assert page.is_visible("#backtest-demo") and "AUC" in page.inner_text("#backtest-demo")
    assert "re-engagement candidates" in page.inner_text("#impact-demo")

    page.fill("#note", "mid-market revision")
    page.click("#publish-button")
    page.wait_for_url(re.compile(r".*/icp/v2\?done=.*"))
    assert "Mid-market software" in page.inner_text("h1")
    with live_server.env.store.session() as s:
        assert s.query(IcpVersion).filter_by(number=2).one().author == "eddie"
        assert s.query(AuditEvent).filter_by(action="publish", actor="eddie").count() == 1

    page.goto("/")
    chart = page.inner_html("section#conn-demo svg.chart")
    assert "Tier distribution" in chart
    assert page.problems == [], page.problems


def test_a_viewer_has_no_forms_and_their_posts_are_refused(page, live_server):
    sign_in(page, "vera")
    for path in ["/", "/icp", "/icp/v1", "/reengage", "/runs"]:
        page.goto(path)
        actions = page.eval_on_selector_all(
            "form[method=post]", "fs => fs.map(f => f.getAttribute('action'))"
        )
        assert actions == ["/logout"], (path, actions)
    assert page.locator("text=Draft").count() == 0
    token = page.get_attribute("input[name=csrf_token]", "value")
    response = page.request.post("/icp/draft/publish", form={"csrf_token": token, "yaml": V2, "note": "x"})
    assert response.status == 403 and "needs the editor role" in response.text()
    response = page.request.post("/icp/v1/rollback", form={"csrf_token": token})
    assert response.status == 403
    with live_server.env.store.session() as s:
        assert s.query(IcpVersion).count() == 1


def test_a_post_without_the_csrf_token_is_refused(page, live_server):
    sign_in(page, "eddie")
    response = page.request.post("/icp/draft/publish", form={"yaml": V2, "note": "no token"})
    assert response.status == 403 and "security token" in response.text()
    with live_server.env.store.session() as s:
        assert s.query(IcpVersion).count() == 1


def test_a_failed_sign_in_in_the_browser(page):
    page.goto("/login")
    page.fill("#name", "eddie")
    page.fill("#password", "wrong password")
    page.click("button[type=submit]")
    message = page.wait_for_selector("#login-message").inner_text()
    assert message == "Sign-in failed: the user name or the password is wrong."
    assert page.context.cookies() and all(c["name"] != "icp_console_session" for c in page.context.cookies())
