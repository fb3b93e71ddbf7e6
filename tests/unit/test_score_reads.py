"""The score phase's batch reads (``worker.store.queries``) give what reading whole rows gives.

``opportunity_statuses`` picks three keys of each status in SQL, ``account_fits`` hands the reasons over
as stored text (decoded on first use) and ``flags`` reads the flags' times with one plain query: each is
compared here with the plain reading of the same rows through the ORM, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select, text

from connectors.files import FilesConnector
from worker.config import ConnectionConfig
from worker.demo.sample_crm import DEMO_SYNONYMS, write_sample_crm
from worker.icp import versions
from worker.icp.reasons import EncodedReasons
from worker.reengage import account_context
from worker.store import queries
from worker.store.bulk import Bulk
from worker.store.db import _json_dumps
from worker.store.models import Connection, RecordFit, RecordSnapshot, ReengageFlag
from worker.store.queries import OPPORTUNITY_STATUS_KEYS
from worker.sync import run_sync

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
DEMO = Path(__file__).resolve().parents[2] / "worker" / "demo"

#: Opportunity statuses as a CRM may leave them: every key, some, none, odd types and values.
STATUSES: list[Any] = [
    {"account_id": "a1", "stage": "Closed Lost", "is_closed": True, "is_won": False, "amount": 13400,
     "close_date": "2026-09-12"},
    {"stage": "Proposal", "is_closed": False, "is_won": False, "close_date": "2026-11-21"},
    {"is_closed": True, "is_won": True},
    {},
    {"is_closed": 1, "is_won": "yes", "close_date": 20260101},
    {"is_closed": "", "is_won": 0.0, "close_date": 1.5e20},
    {"is_closed": True, "is_won": False, "close_date": True},
    {"is_closed": True, "is_won": [], "close_date": {"y": 2026}},
    {"is_closed": [1], "is_won": {"a": None}, "close_date": "2026-01-01 \u00e9\u2192\"q\""},
    {"is_closed": True, "is_won": False, "close_date": 0.30000000000000004},
    None,
]  # fmt: skip


def _connection(session) -> int:
    conn = Connection(name="c", crm="files", config={}, created_at=NOW)
    session.add(conn)
    session.flush()
    return conn.id


def _snapshot(session, conn_id: int, object_type: str, external_id: str, **values: Any) -> RecordSnapshot:
    snap = RecordSnapshot(
        connection_id=conn_id, object_type=object_type, external_id=external_id, pulled_at=NOW, **values
    )
    session.add(snap)
    session.flush()
    return snap


def test_opportunity_statuses_pick_what_the_whole_status_gives(store):
    with store.session() as s:
        conn_id = _connection(s)
        for i, status in enumerate(STATUSES):
            # two accounts, each with opportunities in an order unlike their ids'
            _snapshot(s, conn_id, "opportunity", f"o{i}", parent_id=f"a{i % 2}", status=status)
        _snapshot(s, conn_id, "opportunity", "elsewhere", parent_id="a9", status={"is_closed": False})
    with store.session() as s:
        got = queries.opportunity_statuses(s, conn_id, ["a0", "a1", "a2"])
        whole: dict[str, list[dict[str, Any]]] = {}
        for snap in s.scalars(
            select(RecordSnapshot)
            .where(RecordSnapshot.parent_id.in_(["a0", "a1", "a2"]))
            .order_by(RecordSnapshot.id)
        ):
            whole.setdefault(snap.parent_id or "", []).append(snap.status or {})
    assert set(got) == {"a0", "a1"}
    for account, statuses in whole.items():
        assert len(got[account]) == len(statuses)
        for picked, status in zip(got[account], statuses, strict=True):
            assert {k: picked.get(k) for k in OPPORTUNITY_STATUS_KEYS} == {
                k: status.get(k) for k in OPPORTUNITY_STATUS_KEYS
            }
            assert {type(picked.get(k)) for k in OPPORTUNITY_STATUS_KEYS} == {
                type(status.get(k)) for k in OPPORTUNITY_STATUS_KEYS
            }
        assert account_context(got[account]) == account_context(statuses)


def test_account_fits_hand_over_the_stored_reasons(store):
    reasons = [
        {"code": "industry", "status": "partial", "credit": 0.5, "points": 15.0, "text": "industry IT: +15",
         "value": "IT \u00e9"},
        {"code": "employees", "status": "miss", "credit": 0.0, "points": 0.1 + 0.2, "text": "x", "value": ""},
    ]  # fmt: skip
    with store.session() as s:
        conn_id = _connection(s)
        for external_id, stored in (("a1", reasons), ("a2", [])):
            snap = _snapshot(s, conn_id, "account", external_id)
            s.add(RecordFit(snapshot_id=snap.id, score=40, tier="good", coverage=0.75, reasons=stored,
                            reasons_text="40 good", icp_version=1, desired={}, scored_at=NOW,
                            write_status="pending"))  # fmt: skip
    with store.session() as s:
        fits = queries.account_fits(s, conn_id, {"a1", "a2", "a3"})
    assert set(fits) == {"a1", "a2"}
    fit = fits["a1"]
    assert (fit.score, fit.tier, fit.coverage, fit.reasons_text) == (40, "good", 0.75, "40 good")
    assert isinstance(fit.reasons, EncodedReasons)
    assert fit.reasons.text == _json_dumps(reasons)  # what encoding the decoded list gives
    assert fit.reasons == reasons and list(fit.reasons) == reasons and len(fit.reasons) == 2
    assert fit.reasons[1]["points"] == 0.1 + 0.2 and fit.reasons[:1] == reasons[:1]
    assert fits["a2"].reasons == [] and not fits["a2"].reasons


def test_flags_read_as_the_orm_reads_them(store):
    with store.session() as s:
        conn_id = _connection(s)
        base = dict(connection_id=conn_id, object_type="lead", owner_id="u", kind="stale", from_tier="poor",
                    to_tier="best", to_version=1, reason="why")  # fmt: skip
        for external_id, state, days_ago in (
            ("l1", "cleared", 40), ("l1", "active", 3), ("l2", "cleared", 10), ("l2", "cleared", 90),
            ("l3", "active", 1), ("other", "active", 1),
        ):  # fmt: skip
            s.add(ReengageFlag(external_id=external_id, state=state, raised_at=NOW - timedelta(days=days_ago),
                               **base))  # fmt: skip
    with store.session() as s:
        active, last_raised = queries.flags(s, conn_id, "lead", ["l1", "l2", "l3", "l4"])
        assert {k: (f.external_id, f.reason, f.task_status) for k, f in active.items()} == {
            "l1": ("l1", "why", "none"),
            "l3": ("l3", "why", "none"),
        }
        stored = {
            f.external_id: f for f in s.scalars(select(ReengageFlag).where(ReengageFlag.state == "active"))
        }
        assert {k: (f.id, f.raised_at) for k, f in active.items()} == {
            k: (stored[k].id, queries.aware(stored[k].raised_at)) for k in ("l1", "l3")
        }
        assert last_raised == {
            "l1": NOW - timedelta(days=3),
            "l2": NOW - timedelta(days=10),
            "l3": NOW - timedelta(days=1),
        }
        assert all(moment.tzinfo is not None for moment in last_raised.values())
        assert queries.flags(s, conn_id, "lead", []) == ({}, {})
        assert queries.flags(s, conn_id, "account", ["l1"]) == ({}, {})


def test_a_sync_stores_each_opportunity_with_its_accounts_reasons(store, tmp_path):
    """The score phase copies an account's stored reasons into its opportunities' fits (``EncodedReasons``):
    the same text, and the same values as the account's evaluation gave."""
    write_sample_crm(tmp_path / "crm", accounts=40, today=date(2026, 11, 23))
    options = {"path": str(tmp_path / "crm"), "out": str(tmp_path / "out")}
    cfg = ConnectionConfig(name="reads", crm="files", options=options, industry_synonyms=DEMO_SYNONYMS)
    with store.session() as s:
        versions.publish(s, (DEMO / "icp_v1.yaml").read_text(), filename="icp_v1.yaml", author="t", note="")
    run_sync(store, cfg, FilesConnector.from_config(options), kind="full", now=NOW)
    with store.session() as s:
        pairs = s.execute(
            text(
                "SELECT CAST(af.reasons AS TEXT), CAST(f.reasons AS TEXT), af.reasons_text, f.reasons_text"
                " FROM record_snapshots o JOIN record_fits f ON f.snapshot_id = o.id"
                " JOIN record_snapshots a ON a.external_id = o.parent_id AND a.object_type = 'account'"
                " AND a.connection_id = o.connection_id JOIN record_fits af ON af.snapshot_id = a.id"
                " WHERE o.object_type = 'opportunity'"
            )
        ).all()
    assert len(pairs) > 10
    for account_reasons, reasons, account_text, reasons_text in pairs:
        assert reasons == account_reasons and reasons_text == account_text
        assert reasons == _json_dumps(orjson.loads(reasons)) and orjson.loads(reasons)


def test_sqlite_looks_opportunities_up_by_their_parent_index(sqlite_store):
    """Without statistics SQLite would walk the connection's opportunities through the scan index."""
    with sqlite_store.session() as s:
        bulk = Bulk(s)
        plan = bulk.rows(
            f"EXPLAIN QUERY PLAN SELECT id FROM record_snapshots WHERE {queries.opportunities_of(bulk)}"
            " AND parent_id IN (?, ?)",
            [1, "a1", "a2"],
        )
        update = bulk.rows(
            "EXPLAIN QUERY PLAN UPDATE record_snapshots SET dirty = 1"
            f" WHERE {queries.opportunities_of(bulk)} AND parent_id IN (?, ?)",
            [1, "a1", "a2"],
        )
    for steps in (plan, update):
        assert any("ix_record_snapshots_parent_id" in str(step[-1]) for step in steps), steps
