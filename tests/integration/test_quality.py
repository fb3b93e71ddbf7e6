"""What the data got wrong, visible: run warnings, ``icp-worker quality``, the line ``sync`` ends with and
``runs show`` (issue 10)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.cli import run_cli as run
from worker.settings import get_settings
from worker.store.db import _store_for
from worker.store.models import RecordFit, RecordSnapshot, RunWarning
from worker.sync.warnings import MAX_EXAMPLES, MAX_VALUES, WarningTally

BUNDLED = Path(__file__).resolve().parents[2] / "worker" / "demo"

ACCOUNTS = (
    "Id,Name,Industry,NumberOfEmployees,AnnualRevenue,BillingCountry,LastModifiedDate\n"
    "A1,Acme,Computer Software,600,60000000,Untied Kingdom,2026-11-01T00:00:00Z\n"  # line 2
    "A2,Beta,Staffing,-3,-5000000,US,2026-11-01T00:00:00Z\n"  # line 3: impossible values
    "A3,Gamma,IT Services,250,,Canada,yesterday\n"  # line 4: unreadable stamp
    "A4,Delta,Computer Software,900,80000000,United States,2026-11-01T00:00:00Z\n"
    "A3,Gamma again,IT Services,260,,Canada,2026-11-02T00:00:00Z\n"  # line 6: duplicate id
    ",Nobody,Retail,5,,US,2026-11-01T00:00:00Z\n"  # line 7: no id
)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("ICP_WORKER_HOME", str(tmp_path / "home"))
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ICP_WORKER_NO_PROGRESS", "1")
    get_settings.cache_clear()
    _store_for.cache_clear()
    crm = tmp_path / "crm"
    crm.mkdir()
    (crm / "accounts.csv").write_text(ACCOUNTS, encoding="utf-8")
    (crm / "leads.csv").write_text("Id,Company\n", encoding="utf-8")
    (crm / "opportunities.csv").write_text("Id,Name,AccountId\n", encoding="utf-8")
    config = tmp_path / "icp-worker.yaml"
    config.write_text(
        "connections:\n  - name: acme\n    crm: files\n    options: {path: crm, out: out}\n", encoding="utf-8"
    )
    monkeypatch.setenv("ICP_WORKER_CONFIG", str(config))
    yield tmp_path
    get_settings.cache_clear()
    _store_for.cache_clear()


def synced(env) -> str:
    run("icp", "publish", str(BUNDLED / "icp_v2.yaml"), "--note", "v2", "--no-reevaluate")
    return run("sync").stdout


def test_quality_json_reports_unreadable_impossible_and_duplicate(env):
    synced(env)
    data = json.loads(run("quality", "--json").stdout)
    [report] = data["connections"]
    by_attr = {(a["object_type"], a["attribute"]): a for a in report["attributes"]}
    country = by_attr[("account", "country")]
    assert country["unreadable"] == 1
    assert country["values"][0]["raw"] == "Untied Kingdom" and country["values"][0]["example_ids"] == ["A1"]
    employees = by_attr[("account", "employees")]
    assert employees["impossible"] == 1 and employees["values"][0]["raw"] == "-3"
    assert employees["values"][0]["example_ids"] == ["A2"]
    assert by_attr[("account", "annual_revenue")]["impossible"] == 1
    assert [d["raw"] for d in report["duplicate_ids"]] == ["A3"]
    assert report["duplicate_ids"][0]["places"] == ["accounts.csv line 6"]
    assert report["missing_ids"][0]["places"] == ["accounts.csv line 7"]
    assert report["unreadable_stamps"][0]["raw"] == "yesterday"
    assert report["unreadable_stamps"][0]["places"] == ["accounts.csv line 4"]
    assert report["records"] == {"account": 4}
    assert report["warnings"] == {"duplicate_id": 1, "impossible": 2, "missing_id": 1, "unreadable": 1,
                                  "unreadable_stamp": 1}  # fmt: skip
    assert country["with_value"] == 3, "A1's country is missing, not guessed"
    coverage = {(c["key"], c["object_type"]): c for c in report["criteria"]}
    assert coverage[("employees", "account")]["with_value"] == 3
    assert coverage[("employees", "account")]["records"] == 4


def test_a_negative_head_count_never_fires_a_disqualifier(env, tmp_path):
    icp = tmp_path / "tiny.yaml"
    icp.write_text(
        (BUNDLED / "icp_v2.yaml").read_text(encoding="utf-8")
        + "  - {key: tiny, attribute: employees, max: 10}\n",
        encoding="utf-8",
    )
    run("icp", "publish", str(icp), "--note", "tiny", "--no-reevaluate")
    run("sync")
    from worker.store.db import get_store

    with get_store().session() as s:
        a2 = s.execute(
            select(RecordFit.tier, RecordSnapshot.attributes)
            .join(RecordSnapshot, RecordSnapshot.id == RecordFit.snapshot_id)
            .where(RecordSnapshot.external_id == "A2")
        ).one()
    assert "employees" not in a2.attributes and "annual_revenue" not in a2.attributes
    # A2 is in Staffing: disqualified by that, and only that; never by the impossible head count.
    fits = json.loads(run("quality", "--json").stdout)["connections"][0]
    assert fits["attributes"]
    assert a2.tier == "disqualified"
    with get_store().session() as s:
        reasons = s.scalar(
            select(RecordFit.reasons)
            .join(RecordSnapshot, RecordSnapshot.id == RecordFit.snapshot_id)
            .where(RecordSnapshot.external_id == "A2")
        )
    assert "tiny" not in json.dumps(reasons)


def test_sync_ends_with_one_line_pointing_to_quality(env):
    stdout = synced(env)
    lines = [line for line in stdout.splitlines() if "icp-worker quality" in line]
    assert lines == [
        "3 values could not be read, 1 duplicate id, 1 record without an id, 1 unreadable stamp; "
        "icp-worker quality --connection acme"
    ]


def test_quality_text_shows_values_counts_and_examples(env, monkeypatch):
    from worker.cli.common import out

    monkeypatch.setattr(out, "_width", 200)  # a wide terminal: no cell folds
    synced(env)
    text = run("quality", "--connection", "acme").stdout
    assert "'Untied Kingdom' ×1 (A1)" in text
    assert "'-3' ×1 (A2)" in text
    assert "duplicate ids (the last row wins): 1: 'A3' ×1 (accounts.csv line 6)" in text
    assert "records without an id (skipped): 1" in text and "accounts.csv line 7" in text


def test_quality_of_an_unknown_run_or_connection_is_a_clear_error(env):
    synced(env)
    assert "no run 99" in run("quality", "--connection", "acme", "--run", "99", code=2).output
    assert "never been synced" in run("quality", "--connection", "nope", code=2).output


def test_a_run_without_problems_adds_no_line(env):
    (env / "crm" / "accounts.csv").write_text(
        "Id,Name,Industry,NumberOfEmployees,BillingCountry\nA1,Acme,Computer Software,600,US\n",
        encoding="utf-8",
    )
    assert "icp-worker quality" not in synced(env)


def test_the_tally_is_bounded_but_counts_everything():
    tally = WarningTally()
    for i in range(MAX_VALUES + 30):
        for j in range(MAX_EXAMPLES + 3):
            tally.add("account", "unreadable", "country", f"land {i}", f"A{i}-{j}")
    assert tally.total == (MAX_VALUES + 30) * (MAX_EXAMPLES + 3)
    rows = tally.rows(run_id=1, connection_id=1)
    assert len(rows) == MAX_VALUES + 1
    assert sum(r["count"] for r in rows) == tally.total
    other = [r for r in rows if r["raw_value"] is None]
    assert other and other[0]["count"] == 30 * (MAX_EXAMPLES + 3)
    assert max(len(r["example_ids"]) for r in rows) == MAX_EXAMPLES


def test_warnings_are_stored_once_per_run(env):
    synced(env)
    run("sync")
    from worker.store.db import get_store

    with get_store().session() as s:
        per_run = dict(
            s.execute(select(RunWarning.run_id, func.sum(RunWarning.count)).group_by(RunWarning.run_id)).all()
        )
    # The second run re-reads the file: unchanged records are not normalised again, but the export's own
    # problems (the duplicate, the row without an id, the unreadable stamp) are found again.
    assert per_run[1] == 6 and per_run[2] == 3


def test_report_on_both_stores(store, now, tmp_path):
    """The run's warnings and the report, on SQLite and on PostgreSQL."""
    from connectors.files import FilesConnector
    from connectors.files.config import FilesConfig
    from worker.config import ConnectionConfig
    from worker.icp import versions
    from worker.icp.spec import parse_icp
    from worker.quality import build_report
    from worker.sync import run_sync

    crm = tmp_path / "crm"
    crm.mkdir()
    (crm / "accounts.csv").write_text(ACCOUNTS, encoding="utf-8")
    (crm / "leads.csv").write_text("Id,Company\n", encoding="utf-8")
    (crm / "opportunities.csv").write_text("Id,Name,AccountId\n", encoding="utf-8")
    text = (BUNDLED / "icp_v2.yaml").read_text(encoding="utf-8")
    with store.session() as s:
        versions.publish(s, text, filename="icp.yaml", author="t", note="", now=now)
    cfg = ConnectionConfig(name="acme", crm="files")
    connector = FilesConnector(FilesConfig(path=crm, out=tmp_path / "out"))
    summary = run_sync(store, cfg, connector, kind="full", now=now)
    assert summary.counts["warnings"] == 6
    with store.session() as s:
        report = build_report(s, "acme", spec=parse_icp(text))
    assert report.run_id == summary.run_id
    assert report.warnings == {"duplicate_id": 1, "impossible": 2, "missing_id": 1, "unreadable": 1,
                               "unreadable_stamp": 1}  # fmt: skip
    country = next(a for a in report.attributes if a.attribute == "country")
    assert country.unreadable == 1
    assert (country.values[0].raw, country.values[0].example_ids) == ("Untied Kingdom", ("A1",))
    assert [c.key for c in report.criteria][:2] == ["industry", "employees"]
