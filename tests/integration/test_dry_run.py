"""Record-level dry runs (``icp preview --records``, ``sync --dry-run``), honest exit codes, run folders
of the files connector, and abandoned CLI runs, through the ``icp-worker`` command line on a files
connection built from the demo's sample CRM."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from connectors.base import WriteResult
from connectors.errors import QuotaExceededError
from connectors.files import FilesConnector
from tests.integration.test_cli import BUNDLED, env, run  # noqa: F401 - env is a fixture
from worker.store.db import get_store
from worker.store.models import Connection, RecordFit, SyncRun
from worker.store.states import RunKind, RunStatus, WriteStatus

COLUMNS = [
    "connection",
    "object_type",
    "id",
    "name",
    "fit_score_before",
    "fit_score_after",
    "fit_tier_before",
    "fit_tier_after",
    "reengage_before",
    "reengage_after",
    "reason",
]


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def folder_ids(folder: Path) -> dict[str, list[str]]:
    """The ids in each ``<object>_updates.csv`` of one run folder, in file order."""
    out = {}
    for path in sorted(folder.glob("*_updates.csv")):
        out[path.name.removesuffix("_updates.csv")] = [row["Id"] for row in read_csv(path)[1]]
    return out


def test_dry_run_writes_nothing_and_the_next_run_writes_exactly_what_it_listed(env):  # noqa: F811
    run("icp", "publish", str(BUNDLED / "icp_v1.yaml"), "--note", "v1")
    listed = env / "dry.csv"
    dry = json.loads(run("sync", "--dry-run", "--records", str(listed), "--json").stdout)[0]
    assert dry["kind"] == RunKind.DRY_RUN and dry["status"] == RunStatus.SUCCEEDED
    header, rows = read_csv(listed)
    assert header == COLUMNS
    assert rows and len(rows) == len(dry["records"])
    assert [r["id"] for r in rows] == [r["id"] for r in dry["records"]], "--json gives the same rows"
    assert not list((env / "out").glob("run-*/*.csv")), "a dry run writes nothing to the CRM"
    with get_store().session() as s:
        assert s.scalar(select(func.count()).select_from(RecordFit)) == 0, "no fit pretends to be written"

    real = json.loads(run("sync", "--json").stdout)[0]
    assert real["status"] == RunStatus.SUCCEEDED
    written = folder_ids(env / "out" / f"run-{real['run_id']}")
    assert sorted((obj, i) for obj, ids in written.items() for i in ids) == sorted(
        (r["object_type"], r["id"]) for r in rows
    )
    assert real["counts"]["written"] == len(rows)
    assert all(r["fit_score_before"] == "" and r["reason"].startswith("never written") for r in rows)


def test_preview_records_list_exactly_the_ids_the_publish_writes_once_each_in_its_run_folder(env):  # noqa: F811
    run("icp", "publish", str(BUNDLED / "icp_v1.yaml"), "--note", "v1")
    run("sync")
    listed = env / "v2.csv"
    preview = json.loads(
        run("icp", "preview", str(BUNDLED / "icp_v2.yaml"), "--records", str(listed), "--json").stdout
    )
    header, rows = read_csv(listed)
    assert header == COLUMNS and rows
    assert [r["id"] for r in rows] == [r["id"] for r in preview["rows"]]
    assert set(preview["rows"][0]) == set(COLUMNS)
    moved = [r for r in rows if r["fit_tier_before"] != r["fit_tier_after"]]
    assert moved and all(f"tier {r['fit_tier_before']} → {r['fit_tier_after']}" in r["reason"] for r in moved)

    published = json.loads(
        run("icp", "publish", str(BUNDLED / "icp_v2.yaml"), "--note", "v2", "--json").stdout
    )
    reevaluation = published["runs"][0]
    written = folder_ids(env / "out" / f"run-{reevaluation['run_id']}")
    for ids in written.values():
        assert len(ids) == len(set(ids)), "a run folder never holds an id twice"
    assert sorted((obj, i) for obj, ids in written.items() for i in ids) == sorted(
        (r["object_type"], r["id"]) for r in rows
    )
    by_id = {(r["object_type"], r["id"]): r for r in rows}
    for obj in written:
        for row in read_csv(env / "out" / f"run-{reevaluation['run_id']}" / f"{obj}_updates.csv")[1]:
            assert row["ICP_Fit_Tier__c"] == by_id[(obj, row["Id"])]["fit_tier_after"]
            assert row["ICP_Fit_Score__c"] == by_id[(obj, row["Id"])]["fit_score_after"]


def test_a_run_with_record_errors_exits_1_and_prints_them(env, monkeypatch):  # noqa: F811
    run("icp", "publish", str(BUNDLED / "icp_v1.yaml"), "--note", "v1")
    original = FilesConnector.write

    def refuse_some(self, object_type, updates):
        results = original(self, object_type, updates)
        return [
            WriteResult(r.external_id, False, "INVALID_FIELD", "value too long", field="ICP_Fit_Reasons__c")
            if object_type == "lead" and i < 3
            else r
            for i, r in enumerate(results)
        ]

    monkeypatch.setattr(FilesConnector, "write", refuse_some)
    result = run("sync", code=1)
    assert "partial" in result.output
    assert "3 record(s) not written" in result.output
    assert "field ICP_Fit_Reasons__c  INVALID_FIELD: value too long" in result.output
    as_json = run("sync", "--json", code=1)  # the failed records are retried first, and fail again
    (summary,) = json.loads(as_json.stdout)
    assert summary["status"] == RunStatus.PARTIAL and summary["error"]
    assert [e["field"] for e in summary["record_errors"]] == ["ICP_Fit_Reasons__c"] * 3
    assert all(
        e["message"] == "value too long" and e["object_type"] == "lead" for e in summary["record_errors"]
    )

    monkeypatch.setattr(FilesConnector, "write", original)
    assert json.loads(run("sync", "--json").stdout)[0]["status"] == RunStatus.SUCCEEDED
    with get_store().session() as s:
        assert s.scalar(select(func.count()).where(RecordFit.write_status == WriteStatus.ERROR)) == 0


def test_quota_stop_exits_1_and_a_failing_run_prints_a_json_error(env, monkeypatch):  # noqa: F811
    run("icp", "publish", str(BUNDLED / "icp_v1.yaml"), "--note", "v1")
    original = FilesConnector.pull

    def quota(self, object_type, since):
        raise QuotaExceededError("daily API requests limit reached", reserved=True)

    monkeypatch.setattr(FilesConnector, "pull", quota)
    text = run("sync", code=1)
    assert "quota_reserved" in text.output
    (summary,) = json.loads(run("sync", "--json", code=1).stdout)
    assert summary["status"] == RunStatus.QUOTA_RESERVED and "limit" in summary["error"]

    monkeypatch.setattr(FilesConnector, "pull", original)
    (env / "crm" / "accounts.csv").unlink()
    failed = run("sync", "--json", code=2)  # a missing export is the user's to fix: exit 2, as without --json
    error = json.loads(failed.stdout)
    assert error["status"] == RunStatus.FAILED and "accounts.csv" in error["error"]
    assert error["connection"] == "exports"
    run("sync", code=2)


def test_a_killed_cli_run_is_closed_as_abandoned_by_the_next_run(env):  # noqa: F811
    run("icp", "publish", str(BUNDLED / "icp_v1.yaml"), "--note", "v1")
    run("sync")
    store = get_store()
    with store.session() as s:  # what a SIGKILL leaves behind: a run that never finished
        conn_id = s.scalar(select(Connection.id).where(Connection.name == "exports"))
        s.add(SyncRun(connection_id=conn_id, kind=RunKind.INCREMENTAL, status=RunStatus.RUNNING,
                      started_at=datetime.now(UTC), counts={}, api_calls={}, timings={}))  # fmt: skip
    result = run("sync")
    assert "1 earlier run(s) had stopped unfinished" in result.output
    with store.session() as s:
        statuses = [r.status for r in s.scalars(select(SyncRun).order_by(SyncRun.id))]
        abandoned = s.scalars(select(SyncRun).where(SyncRun.error.like("abandoned%"))).all()
    assert statuses[-1] == RunStatus.SUCCEEDED and RunStatus.RUNNING not in statuses
    assert len(abandoned) == 1 and abandoned[0].status == RunStatus.FAILED
