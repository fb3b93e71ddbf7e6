"""The sync service end to end on the store (SQLite and PostgreSQL) with an in-memory CRM."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from connectors.errors import MissingFieldsError
from testing.memory import MemoryConnector, MemoryCrm
from worker.config import ConnectionConfig, ReengageConfig
from worker.icp import versions
from worker.store import queries
from worker.store.models import Cursor, FitHistory, RecordFit, RecordSnapshot, ReengageFlag, SyncRun
from worker.sync import NoIcpError, run_sync

ICP_V1 = """
name: test v1
criteria:
  - {key: industry, attribute: industry, weight: 50, type: categorical, values: {Computer Software: 1.0}}
  - key: employees
    attribute: employees
    weight: 50
    type: bands
    bands: [{min: 1000, credit: 1.0}]
disqualifiers:
  - {key: public_sector, attribute: industry, values: [Government]}
"""
# v2 widens the employee band: 500+ companies now fit.
ICP_V2 = ICP_V1.replace("bands: [{min: 1000, credit: 1.0}]", "bands: [{min: 500, credit: 1.0}]").replace(
    "test v1", "test v2"
)


def publish(store, text, now):
    with store.session() as s:
        return versions.publish(s, text, filename="icp.yaml", author="test", note="", now=now).version.number


def cfg(**reengage) -> ConnectionConfig:
    return ConnectionConfig(name="mem", crm="files", reengage=ReengageConfig(**reengage))


@pytest.fixture
def crm() -> MemoryCrm:
    crm = MemoryCrm()
    crm.put("account", "A1", {"industry": "Computer Software", "employees": "1,200"})
    crm.put("account", "A2", {"industry": "Computer Software", "employees": "600"})
    crm.put("account", "A3", {"industry": "Government", "employees": "5000"})
    crm.put("opportunity", "O1", status={"account_id": "A1", "is_closed": False})
    crm.put(
        "opportunity",
        "O2",
        status={"account_id": "A2", "is_closed": True, "is_won": False, "close_date": "2026-01-10"},
    )
    crm.put(
        "lead",
        "L1",
        {"industry": "Computer Software", "employees": "700"},
        status={"lead_status": "Unqualified", "is_converted": False},
        owner="005B",
    )
    crm.put(
        "lead",
        "L2",
        {"industry": "Computer Software", "employees": "800"},
        status={"lead_status": "Working", "is_converted": False},
        last_activity=date(2026, 1, 1),
    )
    crm.put("lead", "L3", {"industry": "n/a", "employees": "lots"}, status={"lead_status": "Open"})
    return crm


def fits(store) -> dict[str, tuple[int, str, str]]:
    with store.session() as s:
        rows = s.execute(
            select(RecordSnapshot.external_id, RecordFit.score, RecordFit.tier, RecordFit.write_status).join(
                RecordFit, RecordFit.snapshot_id == RecordSnapshot.id
            )
        ).all()
    return {ext: (score, tier, status) for ext, score, tier, status in rows}


def test_first_sync_scores_and_writes_everything_then_a_rerun_writes_nothing(store, crm, now):
    publish(store, ICP_V1, now)
    conn = MemoryConnector(crm)
    first = run_sync(store, cfg(), conn, kind="full", now=now)
    assert first.status == "succeeded"
    assert first.counts["scored"] == 8 and first.counts["written"] == 8
    f = fits(store)
    assert f["A1"][:2] == (100, "best")
    assert f["A2"][:2] == (50, "poor")
    assert f["A3"][:2] == (0, "disqualified")
    assert f["O1"][:2] == f["A1"][:2], "an opportunity carries its account's fit"
    assert f["L3"][1] == "insufficient_data", "unreadable employees is missing data, not a false poor"
    assert crm.fields["A1"]["fit_tier"] == "best" and crm.fields["A1"]["icp_version"] == 1
    # batches respect the connector's size: 3 accounts / 2 a call -> 2 calls, etc.
    assert conn.api.calls["write"] == 2 + 1 + 2
    with store.session() as s:
        warnings = s.scalar(select(RecordSnapshot.warnings).where(RecordSnapshot.external_id == "L3"))
        assert warnings and "employees" in warnings[0]

    crm.writes.clear()
    second = run_sync(store, cfg(), MemoryConnector(crm), now=now + timedelta(hours=1))
    assert second.status == "succeeded"
    assert second.counts.get("written", 0) == 0 and crm.writes == []
    assert second.counts.get("changed_account", 0) == 0, (
        "look-back rows with the same stamp are not re-processed"
    )


def test_incremental_change_writes_only_the_changed_record_and_its_opportunities(store, crm, now):
    publish(store, ICP_V1, now)
    run_sync(store, cfg(), MemoryConnector(crm), kind="full", now=now)
    crm.writes.clear()
    crm.put("account", "A2", {"industry": "Computer Software", "employees": "2000"})  # grew
    summary = run_sync(store, cfg(), MemoryConnector(crm), now=now + timedelta(days=1))
    written = sorted(ext for _, ext, _ in crm.writes)
    assert written == ["A2", "O2"]
    assert fits(store)["O2"][:2] == (100, "best")
    assert summary.counts["pulled_account"] >= 1
    with store.session() as s:
        hist = s.scalars(
            select(FitHistory.tier).where(FitHistory.external_id == "A2").order_by(FitHistory.id)
        ).all()
    assert hist == ["poor", "best"]


def test_icp_revision_reevaluates_from_snapshots_and_flags_dismissed_and_stale_records(store, crm, now):
    publish(store, ICP_V1, now)
    config = cfg(create_tasks=True)
    run_sync(store, config, MemoryConnector(crm), kind="full", now=now)
    publish(store, ICP_V2, now)
    crm.writes.clear()
    conn = MemoryConnector(crm)
    summary = run_sync(store, config, conn, kind="reevaluate", now=now + timedelta(minutes=5))
    assert conn.api.calls["read"] == 0, "re-evaluation reads nothing from the CRM"
    written = {ext for _, ext, _ in crm.writes}
    # A2 (600) and its opportunity O2, L1 (700), L2 (800) rise; A1, A3, L3 keep their values.
    assert written == {"A2", "O2", "L1", "L2"}
    with store.session() as s:
        flags = {f.external_id: f for f in s.scalars(select(ReengageFlag))}
    assert set(flags) == {"A2", "L1", "L2"}
    assert flags["A2"].kind == "dismissed", "latest opportunity lost and none open"
    assert flags["L1"].kind == "dismissed"
    assert flags["L2"].kind == "stale", "no activity since January"
    assert flags["L1"].reason.startswith("dismissed: poor → best under ICP v2: employees")
    assert crm.fields["L1"]["reengage_flag"] is True and "ICP v2" in crm.fields["L1"]["reengage_reason"]
    assert summary.counts["flags_raised"] == 3 and summary.counts["tasks_created"] == 3
    assert {t.external_id for t in crm.tasks.values()} == {"A2", "L1", "L2"}

    # A re-run raises nothing twice and creates no second task.
    again = run_sync(store, config, MemoryConnector(crm), now=now + timedelta(minutes=10))
    assert again.counts.get("flags_raised", 0) == 0 and len(crm.tasks) == 3

    # The lead is worked again: its flag clears and the CRM field follows.
    crm.put(
        "lead",
        "L1",
        {"industry": "Computer Software", "employees": "700"},
        status={"lead_status": "Working"},
        owner="005B",
        last_activity=(now + timedelta(days=2)).date(),
    )
    cleared = run_sync(store, config, MemoryConnector(crm), now=now + timedelta(days=2))
    assert cleared.counts["flags_cleared"] == 1
    assert crm.fields["L1"]["reengage_flag"] is False
    with store.session() as s:
        flag = s.scalars(select(ReengageFlag).where(ReengageFlag.external_id == "L1")).one()
    assert flag.state == "cleared" and flag.clear_reason
    assert queries.aware(flag.cleared_at) == now + timedelta(days=2)
    assert flag.task_status == "created", "its task was created: that stays on record"


def test_cooloff_and_per_owner_cap(store, crm, now):
    publish(store, ICP_V1, now)
    crm.put(
        "lead",
        "L4",
        {"industry": "Computer Software", "employees": "900"},
        status={"lead_status": "Unqualified"},
        owner="005B",
    )
    config = cfg(create_tasks=True, per_owner_cap=1)
    run_sync(store, config, MemoryConnector(crm), kind="full", now=now)
    publish(store, ICP_V2, now)
    summary = run_sync(store, config, MemoryConnector(crm), kind="reevaluate", now=now)
    # owners 005A (A2, L2) and 005B (L1, L4) have two flags each, and a cap of one task per run
    assert summary.counts["flags_raised"] == 4
    assert summary.counts["tasks_created"] == 2 and summary.counts["tasks_capped"] == 2
    # Back to v1 (no longer fits: flags clear), then v2 again within the cool-off: no new flag.
    publish(store, ICP_V1 + "\n", now)
    run_sync(store, config, MemoryConnector(crm), kind="reevaluate", now=now + timedelta(days=1))
    publish(store, ICP_V2 + "\n", now)
    within = run_sync(store, config, MemoryConnector(crm), kind="reevaluate", now=now + timedelta(days=2))
    assert within.counts.get("flags_raised", 0) == 0
    with store.session() as s:
        assert (
            s.scalar(select(func.count()).select_from(ReengageFlag).where(ReengageFlag.state == "active"))
            == 0
        )


def test_failed_records_keep_the_crm_error_and_are_retried_next_run(store, crm, now):
    publish(store, ICP_V1, now)
    conn = MemoryConnector(crm)
    conn.fail_ids["A1"] = ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Fit score must be set by an admin")
    summary = run_sync(store, cfg(), conn, kind="full", now=now)
    assert summary.status == "partial" and summary.counts["write_errors"] == 1
    with store.session() as s:
        fit = s.scalar(select(RecordFit).join(RecordSnapshot).where(RecordSnapshot.external_id == "A1"))
        assert fit.write_status == "error" and "FIELD_CUSTOM_VALIDATION_EXCEPTION" in fit.write_error
    assert "A1" not in crm.fields
    retry = run_sync(store, cfg(), MemoryConnector(crm), now=now + timedelta(hours=1))
    assert retry.status == "succeeded" and retry.counts["written"] == 1
    assert crm.fields["A1"]["fit_tier"] == "best"


def test_a_run_killed_mid_write_is_finished_by_the_next_run(store, crm, now):
    publish(store, ICP_V1, now)
    conn = MemoryConnector(crm)
    conn.crash_after_writes = 1  # the second write request dies
    with pytest.raises(KeyboardInterrupt):
        run_sync(store, cfg(), conn, kind="full", now=now)
    with store.session() as s:
        assert s.scalar(select(SyncRun.status)) == "failed"
    done_before = {ext for _, ext, _ in crm.writes}
    assert len(done_before) == 2
    run_sync(store, cfg(), MemoryConnector(crm), now=now + timedelta(minutes=1))
    assert set(crm.fields) == {"A1", "A2", "A3", "O1", "O2", "L1", "L2", "L3"}
    # nothing written twice: each record once in all
    ids = [ext for _, ext, _ in crm.writes]
    assert len(ids) == len(set(ids))


def test_quota_reserved_ends_the_run_cleanly_and_the_next_run_resumes(store, crm, now):
    publish(store, ICP_V1, now)
    conn = MemoryConnector(crm, page_size=1)
    conn.quota_after_pages = 2
    summary = run_sync(store, cfg(), conn, kind="full", now=now)
    assert summary.status == "quota_reserved" and "limit" in summary.error
    with store.session() as s:
        cursor = s.get(Cursor, (1, "account"))
        assert cursor is not None and cursor.value == crm.records["account"]["A2"].modstamp
    resumed = run_sync(store, cfg(), MemoryConnector(crm), now=now + timedelta(days=1))
    assert resumed.status == "succeeded"
    assert set(crm.fields) == {"A1", "A2", "A3", "O1", "O2", "L1", "L2", "L3"}


def test_missing_owned_fields_refuse_to_write_with_a_clear_message(store, crm, now):
    publish(store, ICP_V1, now)
    conn = MemoryConnector(crm)
    conn.missing = ["Account.ICP_Fit_Score__c"]
    with pytest.raises(MissingFieldsError, match="fields install --connection mem"):
        run_sync(store, cfg(), conn, now=now)
    assert crm.writes == []
    with store.session() as s:
        run = s.scalar(select(SyncRun))
        assert run.status == "failed" and "ICP_Fit_Score__c" in run.error


def test_no_published_icp_is_a_clear_error(store, crm, now):
    with pytest.raises(NoIcpError, match="icp publish"):
        run_sync(store, cfg(), MemoryConnector(crm), now=now)


def test_no_score_pulls_snapshots_without_any_icp(store, crm, now):
    """``sync --no-score``: the history ``icp derive`` reads, before any ICP is published."""
    summary = run_sync(store, cfg(), MemoryConnector(crm), now=now, score=False)
    assert summary.status == "succeeded" and summary.counts.get("scored", 0) == 0
    assert sum(v for k, v in summary.counts.items() if k.startswith("pulled_")) > 0
    assert crm.writes == []
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(RecordSnapshot)) > 0
        assert s.scalar(select(func.count()).select_from(RecordFit)) == 0
    with pytest.raises(ValueError, match="re-evaluation"):
        run_sync(store, cfg(), MemoryConnector(crm), now=now, kind="reevaluate", score=False)
