"""The console on a small demo store: a sample CRM synced under ICP v1, and one user of each role.

The store is built once per session and copied for each test (SQLite file), so tests may publish freely."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from starlette.testclient import TestClient

from worker.config import ConnectionConfig, WorkerConfig
from worker.console.auth import add_user
from worker.console.settings import ConsoleSettings
from worker.console.web import create_app
from worker.demo.sample_crm import DEMO_SYNONYMS, write_sample_crm
from worker.jobs import publish_file, sync_connection
from worker.settings import get_settings
from worker.store.db import Store

BUNDLED = Path(__file__).resolve().parents[2] / "worker" / "demo"
PASSWORD = "correct horse battery"
#: name -> role
USERS = {"vera": "viewer", "eddie": "editor", "alice": "approver", "arno": "approver"}


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("console-demo")
    write_sample_crm(folder / "crm", accounts=250)
    store = Store(f"sqlite:///{folder / 'template.db'}")
    cfg = connection(folder, folder / "reimport")
    publish_file(store, BUNDLED / "icp_v1.yaml", note="first ICP", author="demo")
    sync_connection(store, cfg, kind="full")
    with store.session() as s:
        for name, role in USERS.items():
            add_user(s, name, role, PASSWORD)
    store.dispose()
    return folder


def connection(template: Path, out: Path) -> ConnectionConfig:
    return ConnectionConfig(
        name="demo",
        crm="files",
        options={"path": str(template / "crm"), "out": str(out)},
        industry_synonyms=DEMO_SYNONYMS,
    )


@dataclass
class Env:
    store: Store
    config: WorkerConfig
    settings: ConsoleSettings
    folder: Path

    def app(self, **settings):
        merged = self.settings.model_copy(update=settings) if settings else self.settings
        return create_app(self.store, lambda: self.config, merged)


@pytest.fixture
def env(demo_template, tmp_path, monkeypatch) -> Iterator[Env]:
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setenv("ICP_WORKER_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    shutil.copy(demo_template / "template.db", tmp_path / "store.db")
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    config = WorkerConfig(connections=[connection(demo_template, tmp_path / "reimport")])
    settings = ConsoleSettings(
        console_cookie_secure="auto", console_login_attempts=3, console_login_window_seconds=600
    )
    yield Env(store, config, settings, tmp_path)
    store.dispose()
    get_settings.cache_clear()


def client_for(app) -> TestClient:
    # 127.0.0.1: plain HTTP to a loopback address, where "auto" cookies are not Secure
    return TestClient(app, base_url="http://127.0.0.1")


@pytest.fixture
def client(env) -> TestClient:
    return client_for(env.app())


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
LOGIN_RE = re.compile(r'name="login_token" value="([^"]+)"')


def sign_in(client: TestClient, name: str, password: str = PASSWORD, *, expect: int = 303):
    page = client.get("/login")
    token = LOGIN_RE.search(page.text).group(1)
    response = client.post(
        "/login",
        data={"login_token": token, "name": name, "password": password, "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == expect, response.text[:500]
    return response


def csrf_of(client: TestClient, path: str = "/") -> str:
    return CSRF_RE.search(client.get(path).text).group(1)


def signed_in(app, name: str) -> tuple[TestClient, str]:
    c = client_for(app)
    sign_in(c, name)
    return c, csrf_of(c)


# ------------------------------------------------------------------------------------------ a live server


@dataclass
class LiveServer:
    url: str
    env: Env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(env) -> Iterator[LiveServer]:
    """The console served by uvicorn on 127.0.0.1 in a thread; start-up waits at most 15 s."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(env.app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            pytest.fail("the console did not start within 15 s")
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", env)
    server.should_exit = True
    thread.join(timeout=10)
