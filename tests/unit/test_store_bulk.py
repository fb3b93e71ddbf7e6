"""The sync's bulk statements (``worker.store.bulk``) store exactly what SQLAlchemy's column types store.

A sample CRM goes through a full sync, an incremental (snapshots updated), a re-evaluation under a new
ICP version (fits updated) and their writes; then every snapshot, fit, history and flag row is copied, as
SQLAlchemy reads it, through SQLAlchemy Core into an empty twin store, and both stores' rows are compared
column by column as the database holds them (type and text): the fast path and SQLAlchemy's encoding
are byte-identical, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, insert, select, text

from connectors.files import FilesConnector
from tests.conftest import _pg_store
from worker.config import ConnectionConfig
from worker.demo.sample_crm import DEMO_SYNONYMS, touch_sample_crm, write_sample_crm
from worker.icp import versions
from worker.store.bulk import SQLITE, Statistics
from worker.store.db import Store
from worker.store.models import Connection, ReengageFlag
from worker.sync import run_sync
from worker.sync.tables import FIT, HISTORY, SNAP

FLAGS = ReengageFlag.__table__

DEMO = Path(__file__).resolve().parents[2] / "worker" / "demo"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def twin(store, tmp_path):
    """An empty store on the same back end as ``store``."""
    if store.engine.dialect.name == "sqlite":
        other = Store(f"sqlite:///{tmp_path / 'twin.db'}")
        yield other
        other.dispose()
    else:
        other, drop = _pg_store()
        yield other
        drop()


def _publish(store: Store, name: str, now: datetime) -> None:
    with store.session() as s:
        versions.publish(s, (DEMO / name).read_text(), filename=name, author="test", note="", now=now)


def _synced(store: Store, folder: Path) -> None:
    """Full sync, 10% changed and an incremental, then v2 and a re-evaluation: every bulk statement."""
    write_sample_crm(folder / "crm", accounts=40, today=date(2026, 11, 23))
    options = {"path": str(folder / "crm"), "out": str(folder / "out")}
    cfg = ConnectionConfig(name="bulk", crm="files", options=options, industry_synonyms=DEMO_SYNONYMS)
    _publish(store, "icp_v1.yaml", NOW)
    run_sync(store, cfg, FilesConnector.from_config(options), kind="full", now=NOW)
    touch_sample_crm(folder / "crm", share=0.1, modified_at=datetime(2026, 11, 23, 1, 0))
    later = NOW + timedelta(days=1)
    run_sync(store, cfg, FilesConnector.from_config(options), kind="incremental", now=later)
    _publish(store, "icp_v2.yaml", later)
    run_sync(
        store, cfg, FilesConnector.from_config(options), kind="reevaluate", now=later + timedelta(hours=1)
    )


def _as_stored(store: Store, table: Table, key: str) -> list[tuple[str, ...]]:
    """Every row of ``table``, each column as ``type:text`` the way the database holds it."""
    if store.engine.dialect.name == "sqlite":
        cells = [f"typeof({c.name}) || ':' || coalesce(CAST({c.name} AS TEXT), '')" for c in table.columns]
    else:
        cells = [
            f"pg_typeof({c.name})::text || ':' || coalesce({c.name}::text, '<null>')" for c in table.columns
        ]
    with store.engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(text(f"SELECT {', '.join(cells)} FROM {table.name} ORDER BY {key}"))
        ]


def _copy_through_sqlalchemy(source: Store, target: Store) -> None:
    """The rows as SQLAlchemy reads them, inserted by SQLAlchemy Core (its own bind processing)."""
    with source.session() as s:
        rows: dict[str, list[dict[str, Any]]] = {
            t.name: [dict(r) for r in s.execute(select(t)).mappings()]
            for t in (Connection.__table__, SNAP, FIT, HISTORY, FLAGS)
        }
    with target.session() as t:
        for table in (Connection.__table__, SNAP, FIT, HISTORY, FLAGS):
            t.execute(insert(table), rows[table.name])


def test_bulk_rows_are_what_sqlalchemy_stores(store, twin, tmp_path):
    _synced(store, tmp_path)
    _copy_through_sqlalchemy(store, twin)
    for table, key, least in (
        (SNAP, "id", 100),
        (FIT, "snapshot_id", 100),
        (HISTORY, "id", 100),
        (FLAGS, "id", 3),
    ):
        ours = _as_stored(store, table, key)
        assert len(ours) >= least, table.name  # the sample went through every path
        assert ours == _as_stored(twin, table, key), table.name


def test_sqlite_codec_matches_sqlalchemy_formats():
    moment = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert SQLITE.moment(moment) == "2026-01-02 03:04:05.000006"
    assert SQLITE.read_moment(SQLITE.moment(moment)) == moment.replace(tzinfo=None)
    assert SQLITE.day(date(2026, 1, 2)) == "2026-01-02"
    assert SQLITE.json(None) == "null" and SQLITE.read_json("null") is None
    assert SQLITE.read_json(SQLITE.json({"a": [1, 2.5, "é"]})) == {"a": [1, 2.5, "é"]}


@pytest.mark.postgres
def test_statistics_refresh_as_the_tables_grow():
    """Below the first threshold nothing is analysed; past it, or at the end of an object type with rows
    changed, the tables have planner statistics."""
    store, drop = _pg_store()
    try:

        def reltuples(table: str) -> float:
            with store.engine.connect() as conn:
                return conn.execute(
                    text(
                        "SELECT reltuples FROM pg_class WHERE relname = :t"
                        " AND relnamespace = current_schema()::regnamespace"
                    ),
                    {"t": table},
                ).scalar_one()

        stats = Statistics(("record_snapshots",))
        with store.session() as s:
            stats.changed(s, 10)
        assert reltuples("record_snapshots") == -1  # never analysed
        with store.session() as s:
            stats.changed(s, 5000)
        assert reltuples("record_snapshots") == 0  # analysed (the table is empty)

        at_the_end = Statistics(("record_fits",))
        with store.session() as s:
            at_the_end.refresh(s)  # nothing changed: nothing to do
        assert reltuples("record_fits") == -1
        with store.session() as s:
            at_the_end.changed(s, 10)
            at_the_end.refresh(s)  # an object type done: its rows count now
        assert reltuples("record_fits") == 0
    finally:
        drop()


@pytest.mark.postgres
def test_the_syncs_analyze_samples_less_and_only_in_its_own_transaction():
    from worker.store.bulk import ANALYZE_TARGET, analyze

    store, drop = _pg_store()
    try:
        with store.session() as s:
            configured = s.execute(text("SHOW default_statistics_target")).scalar()
        with store.session() as s:
            analyze(s, ("record_fits",))
            assert s.execute(text("SHOW default_statistics_target")).scalar() == str(ANALYZE_TARGET)
            analysed = s.execute(
                text(
                    "SELECT reltuples FROM pg_class WHERE relname = 'record_fits'"
                    " AND relnamespace = current_schema()::regnamespace"
                )
            ).scalar_one()
        assert analysed == 0  # analysed (empty), not -1
        with store.session() as s:
            assert s.execute(text("SHOW default_statistics_target")).scalar() == configured
    finally:
        drop()


@pytest.mark.parametrize(
    "value",
    [date(1, 1, 1), date(999, 12, 31), date(2026, 11, 23), date(9999, 12, 31), datetime(2026, 1, 2, 3, 4)],
)
def test_sqlite_dates_are_encoded_as_sqlalchemy_stores_them(value: date) -> None:
    from sqlalchemy import Date
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    processor = Date().dialect_impl(dialect).bind_processor(dialect)
    assert processor is not None
    assert SQLITE.day(value) == processor(value)


def test_sqlite_inserts_go_in_a_few_multi_row_statements_of_a_few_sizes(sqlite_store, monkeypatch):
    import worker.store.bulk as bulk_module
    from worker.store.bulk import Bulk
    from worker.sync.score import INSERT_HISTORY

    monkeypatch.setattr(bulk_module, "SQLITE_ROWS_PER_INSERT", 64)
    moment = "2026-11-23 02:00:00.000000"
    rows = [
        (1, "lead", f"L{i:03d}", 1, i, "good", None, None, None, "first", f"text {i}", 1, moment)
        for i in range(200)
    ]  # 64 rows a statement, then 8: four statements of two sizes
    statements: list[str] = []
    with sqlite_store.session() as s:
        s.add(Connection(id=1, name="c", crm="files", created_at=NOW))
    with sqlite_store.session() as s:
        s.connection().connection.set_trace_callback(statements.append)
        Bulk(s).insert(INSERT_HISTORY, rows)
        s.connection().connection.set_trace_callback(None)
    inserts = [sql for sql in statements if sql.startswith("INSERT INTO fit_history")]
    assert [sql.count("(") - 1 for sql in inserts] == [64, 64, 64, 8]  # a row's values in each "("
    assert bulk_module._chunk_sizes(2000, 256) == [256] * 7 + [128, 64, 16]
    with sqlite_store.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT external_id, score, reasons_text FROM fit_history ORDER BY id")
        ).all()
    assert [tuple(r) for r in stored] == [(r[2], r[4], r[10]) for r in rows]
