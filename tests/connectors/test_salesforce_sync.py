"""The issue's "done when", checked through the real sync service against the fake Salesforce: call
counts of a full sync, a no-change run that writes nothing, a re-evaluation that reads nothing, the
reserved share ending a run cleanly and the next run resuming with no update lost."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.errors import MissingFieldsError
from testing.salesforce import FakeSalesforce
from testing.salesforce_seed import mutate_salesforce, seed_salesforce
from worker.config import ConnectionConfig, ReengageConfig
from worker.demo.sample_crm import DEMO_SYNONYMS
from worker.icp import versions
from worker.sync import run_sync

DEMO = Path(__file__).resolve().parents[2] / "worker" / "demo"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
OPTIONS = {
    "fields": {"account": {"Tech_Stack__c": "tech_stack"}, "lead": {"Tech_Stack__c": "tech_stack"}},
    "customer_field": "Type",
}


@pytest.fixture
def fake():
    with FakeSalesforce() as f:
        yield f


def publish(store, name: str) -> None:
    with store.session() as s:
        versions.publish(s, (DEMO / name).read_text(), filename=name, author="test", note=name)


def config(**reengage) -> ConnectionConfig:
    return ConnectionConfig(
        name="acme",
        crm="salesforce",
        options=OPTIONS,
        industry_synonyms=DEMO_SYNONYMS,
        reengage=ReengageConfig(**reengage),
    )


def test_full_incremental_and_reevaluate_cost_what_the_issue_allows(sqlite_store, fake):
    counts = seed_salesforce(fake, 400, rng_seed=3)
    publish(sqlite_store, "icp_v1.yaml")
    cfg = config()
    with pytest.raises(MissingFieldsError, match="fields install"):
        run_sync(sqlite_store, cfg, fake.connector(**OPTIONS), kind="full", now=NOW)
    fake.connector(**OPTIONS).install_fields(["account", "opportunity", "lead"])

    fake.reset_counts()
    full = run_sync(sqlite_store, cfg, fake.connector(**OPTIONS), kind="full", now=NOW)
    assert full.status == "succeeded", full.error
    total = sum(counts.values())
    assert full.counts["written"] == total
    assert full.api_calls["calls"]["read"] == sum(math.ceil(n / 2000) for n in counts.values())
    assert full.api_calls["calls"]["write"] == sum(math.ceil(n / 200) for n in counts.values())
    assert fake.calls["describe"] == 3

    quiet = run_sync(
        sqlite_store, cfg, fake.connector(**OPTIONS), kind="incremental", now=NOW + timedelta(hours=1)
    )
    assert quiet.status == "succeeded"
    assert quiet.counts.get("written", 0) == 0 and quiet.api_calls["calls"]["write"] == 0

    changed = mutate_salesforce(fake, share=0.05, rng_seed=5)
    assert changed > 0
    incremental = run_sync(
        sqlite_store, cfg, fake.connector(**OPTIONS), kind="incremental", now=NOW + timedelta(hours=2)
    )
    assert incremental.status == "succeeded"
    # Changed accounts and leads, plus the opportunities that carry a changed account's fit.
    assert 0 < incremental.counts.get("written", 0) < total // 5

    publish(sqlite_store, "icp_v2.yaml")
    fake.reset_counts()
    reevaluate = run_sync(
        sqlite_store, cfg, fake.connector(**OPTIONS), kind="reevaluate", now=NOW + timedelta(hours=3)
    )
    assert reevaluate.status == "succeeded"
    assert reevaluate.api_calls["calls"]["read"] == 0 and fake.calls["read"] == 0
    assert reevaluate.counts["written"] > 0
    assert reevaluate.api_calls["calls"]["write"] <= sum(math.ceil(n / 200) for n in counts.values())


def test_reserved_share_ends_the_run_cleanly_and_the_next_run_loses_nothing(sqlite_store, fake):
    counts = seed_salesforce(fake, 600, rng_seed=4)
    publish(sqlite_store, "icp_v1.yaml")
    fake.add_owned_fields()
    fake.set_daily_usage(960, limit=1212)  # 20% reserve: this run may use 9 calls, a full sync needs 20
    cfg = config()
    first = run_sync(sqlite_store, cfg, fake.connector(**OPTIONS), kind="full", now=NOW)
    assert first.status == "quota_reserved", first.error
    assert fake.daily_used == 969
    fake.set_daily_usage(0)  # the next day
    second = run_sync(
        sqlite_store, cfg, fake.connector(**OPTIONS), kind="incremental", now=NOW + timedelta(days=1)
    )
    assert second.status == "succeeded", second.error
    for sobject in ("Account", "Opportunity", "Lead"):
        rows = fake.records(sobject)
        assert len(rows) == counts[sobject]
        assert all(r["ICP_Fit_Tier__c"] for r in rows), f"{sobject}: a record was never written"


def test_lock_errors_and_an_expired_session_during_a_sync(sqlite_store, fake):
    seed_salesforce(fake, 150, rng_seed=5)
    publish(sqlite_store, "icp_v1.yaml")
    fake.add_owned_fields()
    fake.lock_records(fake.ids("Lead")[:5], times=10)  # still locked after the in-run retries
    fake.expire_sessions(after=4)
    cfg = config()
    first = run_sync(sqlite_store, cfg, fake.connector(**OPTIONS), kind="full", now=NOW)
    assert first.status == "partial" and first.counts["write_errors"] == 5
    assert fake.calls["auth"] == 2
    fake.locks.clear()
    second = run_sync(
        sqlite_store, cfg, fake.connector(**OPTIONS), kind="incremental", now=NOW + timedelta(hours=1)
    )
    assert second.status == "succeeded"
    assert all(r["ICP_Fit_Tier__c"] for r in fake.records("Lead"))
