"""Bad input and a misconfigured machine, through the command line: exit code 2, a short message naming the
file, line, record or host, no traceback, and the store left as it was (issue 10)."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest
import requests
import responses
from typer.testing import CliRunner

from worker.cli.app import app
from worker.demo.sample_crm import write_sample_crm
from worker.settings import get_settings
from worker.store.db import _store_for

BUNDLED = Path(__file__).resolve().parents[2] / "worker" / "demo"
PG = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("ICP_WORKER_HOME", str(tmp_path / "home"))
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "LOG_LEVEL", "ICP_WORKER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ICP_WORKER_NO_PROGRESS", "1")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    _store_for.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    _store_for.cache_clear()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def invoke(*args: str, code: int = 2, within: float = 10.0):
    started = time.monotonic()
    result = CliRunner().invoke(app, list(args))
    elapsed = time.monotonic() - started
    assert result.exit_code == code, result.output + repr(result.exception)
    assert "Traceback" not in result.output
    assert elapsed < within, f"took {elapsed:.1f}s"
    if code == 2:
        assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def files_config(path: Path, body: str = "") -> Path:
    path.write_text(
        "connections:\n  - name: acme\n    crm: files\n    options:\n      path: crm\n      out: out\n"
        + body,
        encoding="utf-8",
    )
    return path


# ----------------------------------------------------------------------------------------------- ICP files


def test_publish_of_a_binary_file_is_refused_and_stores_nothing(env):
    binary = env / "logo.yaml"
    binary.write_bytes(b"name: x\n\x89PNG\r\n\x1a\n\x00\xff")
    result = invoke("icp", "publish", str(binary), "--note", "oops")
    assert f"{binary}:2: not valid UTF-8 text (byte 0x89)" in result.output
    history = invoke("icp", "history", "--json", code=0)
    assert history.stdout.strip() == "[]"


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_fails_in_well_under_a_second(env):
    bomb = env / "bomb.yaml"
    bomb.write_text(billion_laughs(), encoding="utf-8")
    result = invoke("icp", "validate", str(bomb), within=1.0)
    assert re.search(rf"{re.escape(str(bomb))}:\d+: YAML aliases expand to more than", result.output)
    connections = env / "icp-worker.yaml"
    connections.write_text("connections: []\n" + billion_laughs(), encoding="utf-8")
    result = invoke("--config", str(connections), "connections", "list", within=1.0)
    assert "YAML aliases expand to more than" in result.output


def test_yaml_files_over_the_size_limit_are_refused(env, monkeypatch):
    monkeypatch.setenv("YAML_MAX_BYTES", "2000")
    get_settings.cache_clear()
    big = env / "big.yaml"
    text = (BUNDLED / "icp_v1.yaml").read_text(encoding="utf-8")
    big.write_text(text + "#" * 3000 + "\n", encoding="utf-8")
    result = invoke("icp", "validate", str(big))
    assert "more than the limit of 2,000 (YAML_MAX_BYTES)" in result.output
    invoke("icp", "publish", str(big), "--note", "x")
    connections = files_config(env / "icp-worker.yaml", "#" * 3000 + "\n")
    result = invoke("--config", str(connections), "connections", "list")
    assert f"{connections}:1: the file is" in result.output


# ------------------------------------------------------------------------------------------- connections file


def test_connections_list_reports_every_mistake_with_file_and_line(env):
    bad = env / "icp-worker.yaml"
    bad.write_text(
        "connections:\n"
        "  - name: acme\n"  # 2
        "    crm: salesforce\n"
        "    options:\n"
        "      domian: acme.my.salesforce.com\n"  # 5
        "      password: hunter2\n"  # 6
        "    attribute_kinds: {segment: integr}\n"  # 7
        "    schedule:\n"
        "      cron: '0 25 * * *'\n"  # 9
        "      timezone: Mars/Olympus\n"  # 10
        "  - name: beta\n"
        "    crm: hubspot\n"
        "    env_prefix: HS_\n"
        "    options:\n"
        "      access_token: pat-na1-123\n"  # 15
        "      client_secret: abc\n",  # 16
        encoding="utf-8",
    )
    result = invoke("--config", str(bad), "connections", "list")
    out = result.output
    assert f"{bad}:5 connections[0].options.domian: unknown salesforce option 'domian'" in out
    assert "did you mean 'domain'?" in out
    assert f"{bad}:6 connections[0].options.password: a secret is never written" in out
    assert "set ACME_SF_PASSWORD in the environment instead" in out
    assert "hunter2" not in out
    assert f"{bad}:7 connections[0].attribute_kinds.segment: unknown kind 'integr'" in out
    assert "did you mean 'integer'?" in out
    assert f"{bad}:9 connections[0].schedule.cron: invalid cron '0 25 * * *': hour: 25 is outside 0-23" in out
    assert f"{bad}:10 connections[0].schedule.timezone: unknown time zone 'Mars/Olympus'" in out
    assert "set HS_HUBSPOT_ACCESS_TOKEN in the environment" in out and "pat-na1-123" not in out
    assert "set HS_HUBSPOT_CLIENT_SECRET in the environment" in out
    assert "Value error" not in out


def test_unknown_attribute_kind_fails_at_load_not_during_sync(env):
    write_sample_crm(env / "crm", accounts=5)
    # published before the broken file exists: a publish checks the ICP against the connections file
    invoke("icp", "publish", str(BUNDLED / "icp_v1.yaml"), "--note", "v1", "--no-reevaluate", code=0)
    config = files_config(env / "icp-worker.yaml", "    attribute_kinds: {segment: money}\n")
    result = invoke("--config", str(config), "sync")
    assert f"{config}:7 connections[0].attribute_kinds.segment: unknown kind 'money'" in result.output
    runs = invoke("runs", "--json", code=0)
    assert runs.stdout.strip() == "[]", "nothing was run or stored"


def test_relative_paths_resolve_against_the_connections_files_folder(env, monkeypatch):
    folder = env / "conf"
    folder.mkdir()
    config = files_config(folder / "icp-worker.yaml")
    write_sample_crm(folder / "crm", accounts=5)
    elsewhere = env / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    invoke("icp", "publish", str(BUNDLED / "icp_v1.yaml"), "--note", "v1", code=0)
    invoke("--config", str(config), "sync", code=0)
    assert list((folder / "out").glob("run-*/account_updates.csv"))
    assert not (elsewhere / "out").exists()


def test_connector_errors_start_with_words_and_are_printed_once(env):
    files_config(env / "icp-worker.yaml")  # no crm/ folder: the export is missing
    invoke("icp", "publish", str(BUNDLED / "icp_v1.yaml"), "--note", "v1", code=0)
    result = CliRunner().invoke(app, ["sync"])
    assert result.exit_code in (1, 2), result.output
    lines = error_lines(result)
    assert not any(re.match(r"\s*\w+Error:", line) for line in lines), lines
    assert not any("run.failed" in line for line in lines), "the failure is not logged and then printed"


def test_no_icp_error_is_printed_once(env):
    files_config(env / "icp-worker.yaml")
    write_sample_crm(env / "crm", accounts=5)
    result = invoke("sync")
    lines = error_lines(result)
    assert len([line for line in lines if "no ICP is published yet" in line]) == 1, lines
    assert not any("NoIcpError" in line for line in lines), lines


# ----------------------------------------------------------------------------------------------- machine


def test_an_unreachable_database_is_one_line_with_host_port_and_database(env, monkeypatch):
    port = closed_port()
    monkeypatch.setenv("DATABASE_URL", f"postgresql://icp:s3cret-pw@127.0.0.1:{port}/icpstore")
    get_settings.cache_clear()
    result = invoke("runs")
    lines = error_lines(result)
    assert len(lines) == 1, lines
    assert f"127.0.0.1:{port}" in lines[0] and "database icpstore" in lines[0]
    assert "connection refused" in lines[0]
    assert "s3cret-pw" not in result.output and "icp:" not in result.output


def test_a_database_that_does_not_exist_is_named(env, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"{PG}/no_such_db_for_icp_tests")
    get_settings.cache_clear()
    result = invoke("db", "upgrade")
    lines = error_lines(result)
    assert len(lines) == 1, lines
    assert "127.0.0.1:5432" in lines[0]
    assert "database no_such_db_for_icp_tests does not exist" in lines[0]


def test_sqlite_outside_home_does_not_create_folders(env, monkeypatch):
    target = env / "nonexistent" / "dir" / "x.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{target}")
    get_settings.cache_clear()
    result = invoke("runs")
    assert f"folder {target.parent} does not exist" in result.output
    assert not target.parent.exists() and not (env / "nonexistent").exists()


def test_db_upgrade_on_a_fresh_database_says_it_created_the_schema(env):
    result = invoke("db", "upgrade", code=0)
    assert "created the store's schema" in result.stdout
    _store_for.cache_clear()
    again = invoke("db", "upgrade", code=0)
    assert "store is up to date" in again.stdout


def test_a_broker_that_is_down(env, monkeypatch):
    files_config(env / "icp-worker.yaml")
    port = closed_port()
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{port}/0")
    get_settings.cache_clear()
    result = invoke("sync", "--enqueue", within=15.0)
    lines = error_lines(result)
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: cannot reach the broker") and f"127.0.0.1:{port}" in lines[0]


def test_redis_for_locks_that_is_down(env, monkeypatch):
    files_config(env / "icp-worker.yaml")
    write_sample_crm(env / "crm", accounts=5)
    invoke("icp", "publish", str(BUNDLED / "icp_v1.yaml"), "--note", "v1", code=0)
    port = closed_port()
    monkeypatch.setenv("REDIS_URL", f"redis://:pw@127.0.0.1:{port}/3")
    get_settings.cache_clear()
    result = invoke("sync", within=15.0)
    lines = error_lines(result)
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: cannot reach Redis") and f"127.0.0.1:{port}" in lines[0]
    assert ":pw@" not in result.output


@responses.activate
def test_salesforce_login_that_cannot_connect_names_the_host(env, monkeypatch):
    (env / "icp-worker.yaml").write_text(
        "connections:\n  - name: acme\n    crm: salesforce\n    options:\n      auth: password\n"
        "      domain: acme.my.salesforce.com\n      max_attempts: 1\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("ACME_SF_USERNAME", "integration@acme.example")
    monkeypatch.setenv("ACME_SF_PASSWORD", "pw")
    responses.add(
        responses.POST,
        re.compile(r"https://acme\.my\.salesforce\.com/.*"),
        body=requests.ConnectionError("down"),
    )
    invoke("icp", "publish", str(BUNDLED / "icp_v1.yaml"), "--note", "v1", code=0)
    result = invoke("sync")
    assert "Salesforce login at acme.my.salesforce.com: cannot connect" in result.output
    assert not any(re.match(r"\s*(error: )?\w+Error:", line) for line in error_lines(result))
