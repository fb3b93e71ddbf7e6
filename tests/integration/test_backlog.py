"""The backlog at adoption: a connection's first sync also flags the stale or dismissed records that
already fit a target tier (kind ``backlog``), with the same reasons, cool-off and per-owner cap."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from testing.memory import MemoryConnector
from tests.integration.test_sync import ICP_V1, ICP_V2, cfg, crm, publish  # noqa: F401 - crm is a fixture
from worker.store.models import Connection, ReengageFlag
from worker.store.states import FlagKind, FlagState, TaskStatus
from worker.sync import run_sync


def flags(store) -> dict[str, ReengageFlag]:
    with store.session() as s:
        return {f.external_id: f for f in s.scalars(select(ReengageFlag))}


def test_first_sync_flags_what_already_fits_then_only_rises(store, crm, now):  # noqa: F811
    publish(store, ICP_V2, now)  # A2 (600, last deal lost), L1 (Unqualified, 700), L2 (stale, 800) fit
    first = run_sync(
        store, cfg(create_tasks=True, per_owner_cap=1), MemoryConnector(crm), kind="full", now=now
    )
    raised = flags(store)
    assert set(raised) == {"A2", "L1", "L2"} and first.counts["flags_raised"] == 3
    assert all(f.kind == FlagKind.BACKLOG and f.state == FlagState.ACTIVE for f in raised.values())
    assert raised["L1"].reason.startswith("backlog (dismissed): unscored → best under ICP v1")
    assert raised["L2"].reason.startswith("backlog (stale): ")
    assert raised["A2"].reason.startswith("backlog (dismissed): ")
    assert (
        crm.fields["L1"]["reengage_flag"] is True
        and crm.fields["L1"]["reengage_reason"] == raised["L1"].reason
    )
    # The per-owner cap rations their tasks like any flag's: 005A (A2, L2) gets one, 005B (L1) one.
    assert first.counts["tasks_created"] == 2 and first.counts["tasks_capped"] == 1
    assert sorted(f.task_status for f in raised.values()) == [
        TaskStatus.CAPPED,
        TaskStatus.CREATED,
        TaskStatus.CREATED,
    ]

    # A record that appears later is not the backlog: it is flagged only when its tier rises.
    crm.put(
        "lead",
        "L4",
        {"industry": "Computer Software", "employees": "900"},
        status={"lead_status": "Unqualified"},
    )
    later = run_sync(store, cfg(create_tasks=True), MemoryConnector(crm), now=now + timedelta(hours=1))
    assert later.counts["flags_raised"] == 0 and "L4" not in flags(store)


def test_no_backlog_when_flag_backlog_is_off(store, crm, now):  # noqa: F811
    publish(store, ICP_V2, now)
    off = run_sync(store, cfg(flag_backlog=False), MemoryConnector(crm), kind="full", now=now)
    assert off.counts["flags_raised"] == 0 and flags(store) == {}


def test_backlog_respects_the_cooloff_of_earlier_flags(store, crm, now):  # noqa: F811
    # A first sync that ends before anything finishes (quota), after an earlier flag within the cool-off:
    # the records were flagged 10 days ago (cool-off 30): no backlog flag for them now.
    publish(store, ICP_V1, now)
    connector = MemoryConnector(crm)
    connector.quota_after_pages = 0
    stopped = run_sync(store, cfg(), connector, kind="full", now=now)
    assert stopped.status == "quota_reserved"
    with store.session() as s:
        conn_id = s.scalar(select(Connection.id).where(Connection.name == "mem"))
        s.add(ReengageFlag(connection_id=conn_id, object_type="lead", external_id="L1", owner_id="005B",
                           state=FlagState.CLEARED, kind=FlagKind.DISMISSED, from_tier="poor", to_tier="best",
                           from_version=None, to_version=1, reason="dismissed: earlier",
                           raised_at=now - timedelta(days=10), task_status=TaskStatus.NONE))  # fmt: skip
    publish(store, ICP_V2, now)
    first = run_sync(store, cfg(), MemoryConnector(crm), kind="full", now=now)
    assert first.status == "succeeded"
    active = {k for k, f in flags(store).items() if f.state == FlagState.ACTIVE}
    assert active == {"A2", "L2"}, "L1 was flagged within the cool-off"
