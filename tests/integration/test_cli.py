"""The ``icp-worker`` command line on the embedded default (SQLite, in-process), with the files connector."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.cli import run_cli
from worker.demo.sample_crm import write_sample_crm
from worker.settings import get_settings
from worker.store.db import _store_for

BUNDLED = Path(__file__).resolve().parents[2] / "worker" / "demo"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A private ICP_WORKER_HOME and connections file with one files connection."""
    monkeypatch.setenv("ICP_WORKER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setenv("ICP_WORKER_NO_PROGRESS", "1")
    get_settings.cache_clear()
    _store_for.cache_clear()
    write_sample_crm(tmp_path / "crm", accounts=200)
    config = tmp_path / "icp-worker.yaml"
    config.write_text(
        "connections:\n  - name: exports\n    crm: files\n    options:\n"
        f"      path: {tmp_path / 'crm'}\n      out: {tmp_path / 'out'}\n"
        "    industry_synonyms: {Software: Computer Software, SaaS: Computer Software}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("ICP_WORKER_CONFIG", str(config))
    yield tmp_path
    get_settings.cache_clear()
    _store_for.cache_clear()


def run(*args: str, code: int = 0):
    return run_cli(*args, code=code, traceback=True)


def test_demo_runs_with_no_configuration(tmp_path, monkeypatch):
    monkeypatch.setenv("ICP_WORKER_HOME", str(tmp_path))
    get_settings.cache_clear()
    result = run("demo", "--accounts", "300", "--dir", str(tmp_path / "demo"), "--json")
    summary = json.loads(result.stdout)
    assert summary["icp_versions"] == [1, 2]
    assert summary["first_sync"]["status"] == "succeeded"
    assert summary["reevaluation"]["api_calls"]["calls"]["read"] == 0
    assert summary["reengage"], "the v2 revision re-engages dismissed or stale records"
    assert all(r["reason"].startswith(("dismissed:", "stale:")) for r in summary["reengage"])
    assert list((tmp_path / "demo" / "reimport").glob("run-*/account_updates.csv"))
    get_settings.cache_clear()


def test_validate_reports_every_error_with_file_and_line(env):
    bad = env / "bad.yaml"
    bad.write_text(
        "name: x\ncriteria:\n  - key: a\n    attribute: industry\n    weight: -1\n"
        "    type: categorical\n    values: {A: 2}\n    colour: red\n",
        encoding="utf-8",
    )
    result = run("icp", "validate", str(bad), code=2)
    assert f"{bad}:5 criteria[0].weight" in result.output
    assert f"{bad}:7" in result.output and f"{bad}:8" in result.output


def test_publish_preview_history_diff_rollback_and_no_change_resync(env):
    run("icp", "publish", str(BUNDLED / "icp_v1.yaml"), "--note", "first")
    first = json.loads(run("sync", "--json").stdout)[0]
    assert first["status"] == "succeeded" and first["counts"]["written"] > 0
    again = json.loads(run("sync", "--json").stdout)[0]
    assert again["counts"].get("written", 0) == 0, "a no-change re-run writes nothing"

    preview = json.loads(run("icp", "preview", str(BUNDLED / "icp_v2.yaml"), "--json").stdout)
    conn = preview["connections"][0]
    assert conn["records"] > 0 and conn["records_to_write"]
    assert sum(conn["transitions"].values()) == conn["records"]

    published = json.loads(
        run("icp", "publish", str(BUNDLED / "icp_v2.yaml"), "--note", "q4", "--json").stdout
    )
    assert published["version"] == 2 and published["runs"][0]["kind"] == "reevaluate"
    assert published["runs"][0]["counts"]["written"] == sum(conn["records_to_write"].values()), (
        "the preview predicts exactly what the publish writes"
    )
    same = run("icp", "publish", str(BUNDLED / "icp_v2.yaml"), "--note", "again")
    assert "unchanged" in same.output

    history = json.loads(run("icp", "history", "--json").stdout)
    assert [v["version"] for v in history] == [1, 2] and history[1]["note"] == "q4"
    assert "employees" in run("icp", "diff", "1", "2").output
    run("icp", "rollback", "1")
    assert json.loads(run("icp", "history", "--json").stdout)[-1]["note"] == "rollback to v1"
    runs = json.loads(run("runs", "--json").stdout)
    assert runs[0]["kind"] == "reevaluate" and runs[0]["icp_version"] == 3
    run("icp", "show", "9", code=2)


def test_bad_connections_file_names_line_and_field(env, monkeypatch):
    bad = env / "broken.yaml"
    bad.write_text(
        "connections:\n  - name: x\n    crm: salesforce\n    schedule: {cron: '* *'}\n", encoding="utf-8"
    )
    result = run("--config", str(bad), "connections", "list", code=2)
    assert f"{bad}:4 connections[0].schedule.cron" in result.output


def test_sync_without_a_published_icp_says_what_to_do(env):
    result = run("sync", code=2)
    assert "icp publish" in result.output


def test_score_a_prospect_list_without_a_crm(env):
    src = env / "prospects.csv"
    with open(src, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Company", "Sector", "Head count", "HQ Country", "Revenue", "Technologies"])
        w.writerow(["Acme", "Software", "1,200", "USA", "$120m", "Okta;Slack"])
        w.writerow(["=cmd|' /C calc'!A0", "Retail", "15", "Germany", "n/a", ""])
        w.writerow(["Gov", "Government", "9000", "US", "", ""])
    out = env / "scored.csv"
    result = run(
        "score",
        str(src),
        "--icp",
        str(BUNDLED / "icp_v1.yaml"),
        "-o",
        str(out),
        "--connection",
        "exports",
        "--map",
        "Head count=employees",
        "--json",
    )
    summary = json.loads(result.stdout)
    assert summary["rows"] == 3
    with open(out, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["fit_tier"] == "best" and rows[0]["fit_score"] == "100"
    assert rows[1]["Company"].startswith("'="), "formula injection is escaped"
    assert rows[2]["fit_tier"] == "disqualified"
    assert "public_sector" in rows[2]["fit_reasons"]
