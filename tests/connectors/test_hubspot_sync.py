"""HubSpot through the real sync service with requests in flight: object types pulled at once, write
batches in parallel, and faults on the way (5xx, bursts of 429, an OAuth token expiring mid-run). No
record is lost or duplicated: every one is snapshotted once and the portal holds what the store says
was written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.hubspot.mapping import format_value
from testing.hubspot import FakeClock, FakeHubSpot, connector_for
from testing.hubspot_seed import seed_hubspot
from worker.config import ConnectionConfig
from worker.demo.sample_crm import DEMO_SYNONYMS
from worker.icp import versions
from worker.store.models import RecordFit, RecordSnapshot
from worker.sync import run_sync

DEMO = Path(__file__).resolve().parents[2] / "worker" / "demo"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
OBJECTS = {"account": "companies", "opportunity": "deals", "lead": "contacts"}


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def fake(clock):
    with FakeHubSpot(clock=clock, requests_per_10s=1000, search_per_second=100) as server:
        yield server


def connector(fake, clock):
    return connector_for(
        fake, clock, oauth=True, requests_per_10s=1000, search_requests_per_second=100, max_concurrency=4
    )


def written_everywhere(store, fake) -> int:
    """Check the portal against the store; return how many records the store holds."""
    with store.session() as s:
        rows = s.execute(
            select(RecordSnapshot.object_type, RecordSnapshot.external_id, RecordFit.written).join(
                RecordFit, RecordFit.snapshot_id == RecordSnapshot.id
            )
        ).all()
        distinct = s.scalar(
            select(func.count()).select_from(
                select(RecordSnapshot.object_type, RecordSnapshot.external_id).distinct().subquery()
            )
        )
    assert distinct == len(rows)  # one snapshot per record
    for object_type, external_id, written in rows:
        held = fake.get(OBJECTS[object_type], external_id)
        assert written is not None, (object_type, external_id)
        assert held["icp_fit_score"] == format_value(written["fit_score"])
        assert held["icp_fit_tier"] == format_value(written["fit_tier"])
    return len(rows)


def test_sync_with_requests_in_flight_and_faults_loses_and_duplicates_nothing(sqlite_store, fake, clock):
    counts = seed_hubspot(fake, 300, rng_seed=5)
    with sqlite_store.session() as s:
        versions.publish(s, (DEMO / "icp_v1.yaml").read_text(), filename="icp_v1.yaml", author="t", note="v1")
    cfg = ConnectionConfig(name="acme", crm="hubspot", options={}, industry_synonyms=DEMO_SYNONYMS)
    connector(fake, clock).install_fields(list(OBJECTS))
    fake.latency = 0.005  # real time: lets requests overlap
    fake.inject("status", path="/batch/update", status=502, times=3)
    fake.inject("rolling_429", path="/crm/v3/objects/contacts", retry_after=2, times=4)
    fake.inject("status", path="/crm/v3/objects/deals", status=503, times=2)
    fake.inject("expire_token", path="/batch/update", times=1)

    full = run_sync(sqlite_store, cfg, connector(fake, clock), kind="full", now=NOW)
    assert full.status == "succeeded", full.error
    total = sum(counts.values())
    assert full.counts["written"] == total and written_everywhere(sqlite_store, fake) == total
    assert fake.max_in_flight >= 2 and fake.rejected["TEN_SECONDLY_ROLLING"] == 4

    # Our own writes moved every stamp: the next run pulls them again and writes nothing new.
    quiet = run_sync(sqlite_store, cfg, connector(fake, clock), kind="incremental", now=NOW + timedelta(1))
    assert quiet.status == "succeeded" and quiet.counts.get("written", 0) == 0
    assert written_everywhere(sqlite_store, fake) == total
