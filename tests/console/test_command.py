"""``icp-worker console`` starts the server on the address and port it is given (a real subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.console.conftest import free_port

BIN = Path(sys.executable).parent


def test_icp_worker_console_serves_on_the_given_port(tmp_path, demo_template):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DATABASE_", "ICP_WORKER_"))}
    env |= {"ICP_WORKER_HOME": str(tmp_path), "DATABASE_URL": f"sqlite:///{demo_template / 'template.db'}"}
    proc = subprocess.Popen(
        [str(BIN / "icp-worker"), "console", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        response = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert response is not None, f"no answer within 30 s: {proc.poll()=}"
        assert response.status_code == 200 and 'name="login_token"' in response.text
        assert response.headers["x-frame-options"] == "DENY"
        assert "server" not in response.headers, "no server banner"
        redirect = httpx.get(f"http://127.0.0.1:{port}/", timeout=5, follow_redirects=False)
        assert redirect.status_code == 303 and redirect.headers["location"].startswith("/login")
    finally:
        proc.terminate()
        try:
            output, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate(timeout=5)
    assert f"ICP console on http://127.0.0.1:{port}/" in output
