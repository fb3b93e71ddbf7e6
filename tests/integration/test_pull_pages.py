"""Pulled pages stored in page order (``worker.sync.pull.PageStore``), on SQLite and PostgreSQL: on
PostgreSQL each page commits in a second thread while the next one is planned, and a page sharing a
record with the page in flight waits for it; whatever the back end, the stored rows, cursors and counts
are those of storing the pages one after the other."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from connectors.base import CrmRecord, Page
from worker.config import ConnectionConfig
from worker.store import queries
from worker.store.models import Cursor, RecordSnapshot
from worker.sync import pull
from worker.sync.counts import RunCounts

CFG = ConnectionConfig(name="pages", crm="files")


def rec(ext: str, stamp: str, employees: str) -> CrmRecord:
    return CrmRecord("account", ext, {"employees": employees, "industry": "Retail"}, modstamp=stamp)


class Scripted:
    """A connector whose pull yields the given pages, then raises ``fail`` if set."""

    def __init__(self, pages: list[Page], fail: Exception | None = None) -> None:
        self.pages, self.fail = pages, fail
        self.received: list[int] = []

    def pull(self, object_type: str, since: str | None) -> Iterator[Page]:
        for i, page in enumerate(self.pages):
            self.received.append(i)
            yield page
        if self.fail is not None:
            raise self.fail


def run_pull(store, connector, now) -> tuple[int, RunCounts]:
    with store.session() as s:
        conn_id = queries.ensure_connection(s, CFG, now).id
    counts = RunCounts()
    pull.pull_objects(
        store, conn_id, CFG, connector, ["account"], full=True, now=now, counts=counts, progress=None
    )
    return conn_id, counts


def snapshots(store) -> dict[str, tuple[str, int]]:
    with store.session() as s:
        rows = s.execute(
            select(RecordSnapshot.external_id, RecordSnapshot.crm_modstamp, RecordSnapshot.attributes)
        )
        return {ext: (stamp, attrs["employees"]) for ext, stamp, attrs in rows}


def test_a_record_on_two_pages_in_a_row_is_stored_once_as_the_later_page_has_it(store, now, monkeypatch):
    """Page 2 repeats A1 with a later stamp while page 1 is still committing (held back here): it must
    be read as page 1 stored it (an update), not as absent (a second insert, which the unique key
    refuses)."""
    applied = pull.apply_page

    def slow(session, conn_id, plan):
        time.sleep(0.3)  # the page's commit takes a while: the next page is planned meanwhile
        applied(session, conn_id, plan)

    monkeypatch.setattr(pull, "apply_page", slow)
    pages = [
        Page(
            [rec("A1", "2026-11-01T00:00:00.000Z", "10"), rec("A2", "2026-11-01T00:00:01.000Z", "20")], "c1"
        ),
        Page(
            [rec("A1", "2026-11-02T00:00:00.000Z", "11"), rec("A3", "2026-11-02T00:00:01.000Z", "30")], "c2"
        ),
        Page([rec("A4", "2026-11-03T00:00:00.000Z", "40")], "c3"),
    ]
    conn_id, counts = run_pull(store, Scripted(pages), now)
    assert snapshots(store) == {
        "A1": ("2026-11-02T00:00:00.000Z", 11),
        "A2": ("2026-11-01T00:00:01.000Z", 20),
        "A3": ("2026-11-02T00:00:01.000Z", 30),
        "A4": ("2026-11-03T00:00:00.000Z", 40),
    }
    assert counts.pulled == {"account": 5}
    assert counts.changed == {"account": 5}  # A1 inserted, then changed
    with store.session() as s:
        assert s.get(Cursor, (conn_id, "account")).value == "c3"


def test_pages_commit_beside_the_pull_on_postgresql_and_at_once_on_sqlite(store, now, monkeypatch):
    threads: list[str] = []
    applied = pull.apply_page

    def spy(session, conn_id, plan):
        threads.append(threading.current_thread().name)
        applied(session, conn_id, plan)

    monkeypatch.setattr(pull, "apply_page", spy)
    pages = [Page([rec(f"A{i}", f"2026-11-01T00:00:0{i}.000Z", str(i))], f"c{i}") for i in range(3)]
    run_pull(store, Scripted(pages), now)
    assert len(threads) == 3
    if store.engine.dialect.name == "postgresql":
        assert all(name.startswith("pull-commit") for name in threads)
    else:
        assert threads == [threading.main_thread().name] * 3
    assert len(snapshots(store)) == 3


def test_a_pull_that_fails_keeps_and_counts_every_page_received_before(store, now):
    """The page in flight when the connector fails still commits with its cursor, and is counted."""
    pages = [
        Page([rec("A1", "2026-11-01T00:00:00.000Z", "10")], "c1"),
        Page([rec("A2", "2026-11-01T00:00:01.000Z", "20")], "c2"),
    ]
    with store.session() as s:
        conn_id = queries.ensure_connection(s, CFG, now).id
    counts = RunCounts()
    with pytest.raises(RuntimeError, match="the CRM went away"):
        pull.pull_objects(
            store, conn_id, CFG, Scripted(pages, RuntimeError("the CRM went away")), ["account"],
            full=True, now=now, counts=counts, progress=None,
        )  # fmt: skip
    assert set(snapshots(store)) == {"A1", "A2"}
    assert counts.pulled == {"account": 2}
    with store.session() as s:
        assert s.get(Cursor, (conn_id, "account")).value == "c2"
