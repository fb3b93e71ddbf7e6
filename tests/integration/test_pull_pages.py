"""Pulled pages stored in page order (``worker.sync.pull.PageStore``), on SQLite and PostgreSQL: on
PostgreSQL each page commits in a second thread while the next one is planned, and a page sharing a
record with the page in flight waits for it; whatever the back end, the stored rows, cursors and counts
are those of storing the pages one after the other."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.base import CrmRecord, Page
from connectors.files import FilesConnector
from tests.conftest import _pg_store
from tests.processes import Proc, wait_for
from worker.config import ConnectionConfig
from worker.demo.sample_crm import write_sample_crm
from worker.icp import versions
from worker.store import queries
from worker.store.models import Cursor, RecordFit, RecordSnapshot
from worker.sync import pull, run_sync
from worker.sync.counts import RunCounts

CFG = ConnectionConfig(name="pages", crm="files")
ROOT = Path(__file__).resolve().parents[2]


def rec(ext: str, stamp: str, employees: str) -> CrmRecord:
    return CrmRecord("account", ext, {"employees": employees, "industry": "Retail"}, modstamp=stamp)


class Scripted:
    """A connector whose pull yields the given pages, then raises ``fail`` if set."""

    def __init__(self, pages: list[Page], fail: Exception | None = None) -> None:
        self.pages, self.fail = pages, fail

    def pull(self, object_type: str, since: str | None) -> Iterator[Page]:
        yield from self.pages
        if self.fail is not None:
            raise self.fail


def run_pull(
    store, connector, now, object_types=("account",), counts: RunCounts | None = None
) -> tuple[int, RunCounts]:
    """A full pull of ``object_types``; ``counts`` (new if None) holds what it counted, also if it fails."""
    with store.session() as s:
        conn_id = queries.ensure_connection(s, CFG, now).id
    counts = RunCounts() if counts is None else counts
    pull.pull_objects(
        store, conn_id, CFG, connector, list(object_types), full=True, now=now, counts=counts, progress=None
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


class ScriptedParallel:
    """A connector whose object types pull at once (``parallel_pulls``), each from its own pages."""

    parallel_pulls = True

    def __init__(self, pages: dict[str, list[Page]]) -> None:
        self.pages = pages

    def pull(self, object_type: str, since: str | None) -> Iterator[Page]:
        yield from self.pages[object_type]


def lead(ext: str, stamp: str, employees: str) -> CrmRecord:
    return CrmRecord("lead", ext, {"employees": employees}, {"lead_status": "Open"}, modstamp=stamp)


def test_object_types_pulled_at_once_are_each_stored_as_their_pages_have_them(store, now):
    """Pages of two object types arrive interleaved (their pulls run in threads); a repeated account
    and a lead with an account's id are each their own object type's record."""
    pages = {
        "account": [
            Page(
                [rec("X1", "2026-11-01T00:00:00.000Z", "10"), rec("X2", "2026-11-01T00:00:01.000Z", "20")],
                "a1",
            ),
            Page([rec("X1", "2026-11-02T00:00:00.000Z", "11")], "a2"),
        ],
        "lead": [
            Page([lead("X1", "2026-11-01T00:00:00.000Z", "5")], "l1"),
            Page(
                [lead("L2", "2026-11-02T00:00:00.000Z", "6"), lead("X1", "2026-11-03T00:00:00.000Z", "7")],
                "l2",
            ),
        ],
    }
    _, counts = run_pull(store, ScriptedParallel(pages), now, ("account", "lead"))
    with store.session() as s:
        stored = {
            (o, e): a["employees"]
            for o, e, a in s.execute(
                select(RecordSnapshot.object_type, RecordSnapshot.external_id, RecordSnapshot.attributes)
            )
        }
        cursors = {c.object_type: c.value for c in s.scalars(select(Cursor))}
    assert stored == {("account", "X1"): 11, ("account", "X2"): 20, ("lead", "X1"): 7, ("lead", "L2"): 6}
    assert counts.pulled == {"account": 3, "lead": 3}
    assert cursors == {"account": "a2", "lead": "l2"}


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
    counts = RunCounts()
    with pytest.raises(RuntimeError, match="the CRM went away"):
        run_pull(store, Scripted(pages, RuntimeError("the CRM went away")), now, counts=counts)
    assert set(snapshots(store)) == {"A1", "A2"}
    assert counts.pulled == {"account": 2}
    with store.session() as s:
        conn_id = queries.ensure_connection(s, CFG, now).id
        assert s.get(Cursor, (conn_id, "account")).value == "c2"


KILLED_PULL = """
import sys
from datetime import UTC, datetime
from connectors.files import FilesConnector
from worker.config import ConnectionConfig
from worker.store.db import Store
from worker.sync import run_sync

url, crm = sys.argv[1], sys.argv[2]
options = {"path": crm, "out": crm + "-out-killed", "page_size": 200}
cfg = ConnectionConfig(name="pages", crm="files", options=options)
run_sync(Store(url), cfg, FilesConnector.from_config(options), kind="full",
         now=datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
"""


def _state(store) -> tuple[dict, dict, int]:
    with store.session() as s:
        snaps = {
            (o, e): (a, st)
            for o, e, a, st in s.execute(
                select(RecordSnapshot.object_type, RecordSnapshot.external_id, RecordSnapshot.attributes,
                       RecordSnapshot.status)
            )
        }  # fmt: skip
        fits = {
            e: (score, tier, text)
            for e, score, tier, text in s.execute(
                select(
                    RecordSnapshot.external_id, RecordFit.score, RecordFit.tier, RecordFit.reasons_text
                ).join(RecordFit, RecordFit.snapshot_id == RecordSnapshot.id)
            )
        }
        rows = s.scalar(select(func.count()).select_from(RecordSnapshot))
    return snaps, fits, rows


@pytest.mark.postgres
def test_a_postgresql_pull_killed_with_a_page_committing_ends_as_an_uninterrupted_run(tmp_path, now):
    """SIGKILL while pages commit behind the pull (PostgreSQL): the next run stores every record once,
    exactly as a run that was never interrupted."""
    crm = tmp_path / "crm"
    write_sample_crm(crm, accounts=1500, today=now.date())
    icp = (ROOT / "worker" / "demo" / "icp_v1.yaml").read_text()
    stores = {}
    try:
        for name in ("clean", "killed"):
            stores[name] = _pg_store()
            with stores[name][0].session() as s:
                versions.publish(s, icp, filename="icp_v1.yaml", author="test", note="", now=now)
        killed = stores["killed"][0]
        victim = Proc(
            [sys.executable, "-c", KILLED_PULL, killed.url, str(crm)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=tmp_path, log=tmp_path / "killed.log",
        )  # fmt: skip
        try:
            # A few pages stored, the pull still going: kill it (pages of 200 records commit behind it).
            wait_for(lambda: _count(killed) >= 400 or victim.popen.poll() is not None, 120, "pages stored")
            assert victim.popen.poll() is None, victim.text()
            victim.kill()
        finally:
            victim.stop(grace=0)
        stored_at_kill = _count(killed)
        for name in ("killed", "clean"):
            options = {"path": str(crm), "out": str(tmp_path / f"out-{name}"), "page_size": 200}
            cfg = ConnectionConfig(name="pages", crm="files", options=options)
            run_sync(stores[name][0], cfg, FilesConnector.from_config(options), kind="full", now=now)
        clean, after = _state(stores["clean"][0]), _state(killed)
        assert 0 < stored_at_kill < clean[2]  # killed mid-pull
        assert after == clean
        assert after[2] == len(after[0])  # one row per record
    finally:
        for _store, drop in stores.values():
            drop()


def _count(store) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(RecordSnapshot))
