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
