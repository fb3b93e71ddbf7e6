"""Shared fixtures: a store on SQLite and on a real PostgreSQL, a frozen clock, connection configs."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from worker.store.db import Store

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def now() -> datetime:
    return NOW


def _pg_store() -> tuple[Store, callable]:
    """A store in a fresh PostgreSQL schema, dropped afterwards. PostgreSQL must be running: these
    tests fail (never skip) without it, so CI cannot pass them by accident."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # pragma: no cover - only when PostgreSQL is down
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL}: {exc}. Start it (see .ci/run).")
    sep = "&" if "?" in PG_URL else "?"
    store = Store(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")

    def drop() -> None:
        store.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return store, drop


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    """The store on both back ends: every test using it runs twice."""
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'store.db'}")
        yield s
        s.dispose()
    else:
        s, drop = _pg_store()
        yield s
        drop()


@pytest.fixture
def sqlite_store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.dispose()
