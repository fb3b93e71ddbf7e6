"""``Store.session(recomputable=True)``: on PostgreSQL the transaction commits without waiting for its WAL
flush, and only that transaction; SQLite is unchanged."""

from __future__ import annotations

from sqlalchemy import text

from worker.store.db import Store
from worker.store.models import Connection, Cursor


def _setting(store: Store, **kwargs: bool) -> str:
    with store.session(**kwargs) as s:
        if store.engine.dialect.name != "postgresql":
            return "n/a"
        return str(s.execute(text("SHOW synchronous_commit")).scalar())


def test_recomputable_transactions_skip_the_flush_wait_on_postgresql_only(store: Store) -> None:
    if store.engine.dialect.name == "postgresql":
        assert _setting(store) == "on"
        assert _setting(store, recomputable=True) == "off"
        # SET LOCAL: the pooled connection's next transaction is synchronous again.
        assert _setting(store) == "on"
    else:
        assert _setting(store, recomputable=True) == "n/a"


def test_a_recomputable_transaction_commits_and_rolls_back_as_any_other(store: Store, now) -> None:
    with store.session() as s:
        s.add(Connection(name="c", crm="files", created_at=now))
    with store.session() as s:
        conn_id = s.query(Connection.id).scalar()
    with store.session(recomputable=True) as s:
        s.add(Cursor(connection_id=conn_id, object_type="account", value="a", updated_at=now))
    try:
        with store.session(recomputable=True) as s:
            s.add(Cursor(connection_id=conn_id, object_type="lead", value="b", updated_at=now))
            s.flush()
            raise RuntimeError("stop")
    except RuntimeError:
        pass
    with store.session() as s:
        assert [c.object_type for c in s.query(Cursor).all()] == ["account"]


def test_an_in_memory_sqlite_store_is_not_shared_across_threads(tmp_path) -> None:
    assert Store(f"sqlite:///{tmp_path / 'a.db'}").threads_share_data
    assert not Store("sqlite://").threads_share_data
    assert not Store("sqlite:///:memory:").threads_share_data


def test_a_full_sync_on_an_in_memory_store_commits_in_one_thread(now) -> None:
    from testing.memory import MemoryConnector, MemoryCrm
    from worker.config import ConnectionConfig
    from worker.icp import versions
    from worker.sync import run_sync

    store = Store("sqlite://")
    with store.session() as s:
        versions.publish(
            s,
            "name: t\ncriteria:\n  - {key: industry, attribute: industry, weight: 100, type: categorical,"
            " values: {Software: 1.0}}\n",
            filename="icp.yaml", author="t", note="", now=now,
        )  # fmt: skip
    crm = MemoryCrm()
    crm.put("lead", "L1", {"industry": "Software"}, status={"lead_status": "Open"})
    connector = MemoryConnector(crm)
    connector.commit_behind_writes = True  # type: ignore[attr-defined]
    summary = run_sync(store, ConnectionConfig(name="m", crm="files"), connector, kind="full", now=now)
    assert summary.status == "succeeded" and summary.counts["scored"] == 1 and summary.counts["written"] == 1
