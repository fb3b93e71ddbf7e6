"""The write phase (``worker.sync.write``) on the store (SQLite and PostgreSQL) with an in-memory CRM:
what it stores for the records the CRM took, and what a crash re-sends when a connector's commits run
behind its writes (``commit_behind_writes``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

import worker.sync.write as write_phase
from testing.memory import MemoryConnector, MemoryCrm
from worker.config import ConnectionConfig
from worker.icp import versions
from worker.sync import run_sync

ICP = """
name: test
criteria:
  - {key: industry, attribute: industry, weight: 100, type: categorical, values: {Computer Software: 1.0}}
"""
#: Records in the order the write phase sends them, in batches of two (one object type at a time).
BATCHES = [["A1", "A2"], ["A3"], ["O1", "O2"], ["L1", "L2"], ["L3"]]


@pytest.fixture
def crm() -> MemoryCrm:
    crm = MemoryCrm()
    for ext in ("A1", "A2", "A3"):
        crm.put("account", ext, {"industry": "Computer Software" if ext != "A2" else "Retail"})
    for ext in ("O1", "O2"):
        crm.put("opportunity", ext, status={"account_id": "A1", "is_closed": False})
    for ext in ("L1", "L2", "L3"):
        crm.put("lead", ext, {"industry": "Computer Software"}, status={"lead_status": "Open"})
    return crm


def _cfg() -> ConnectionConfig:
    return ConnectionConfig(name="mem", crm="files")


def _connector(crm: MemoryCrm, behind: bool) -> MemoryConnector:
    conn = MemoryConnector(crm, write_batch_size=2)
    conn.commit_behind_writes = behind  # type: ignore[attr-defined]
    return conn


def _fits(store) -> dict[str, tuple[Any, ...]]:
    """Each record's write state, ``written`` and ``desired`` as the database holds their text."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT s.external_id, f.write_status, CAST(f.written AS TEXT), CAST(f.desired AS TEXT),"
                " f.written_at IS NOT NULL, f.write_error, f.write_attempts"
                " FROM record_fits f JOIN record_snapshots s ON s.id = f.snapshot_id"
            )
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


@pytest.mark.parametrize("behind", [False, True], ids=["in-turn", "commit-behind"])
def test_written_is_the_desired_text_and_each_batch_is_reported_once(store, crm, now, behind):
    with store.session() as s:
        versions.publish(s, ICP, filename="icp.yaml", author="t", note="", now=now)
    progress: list[tuple[str, int]] = []
    summary = run_sync(
        store, _cfg(), _connector(crm, behind), kind="full", now=now, progress=lambda *a: progress.append(a)
    )
    assert summary.status == "succeeded" and summary.counts["written"] == 8
    assert [ext for _, ext, _ in crm.writes] == [ext for batch in BATCHES for ext in batch]
    assert [p for p in progress if p[0].startswith("write:")] == [
        ("write:account", 2), ("write:account", 1), ("write:opportunity", 2), ("write:lead", 2),
        ("write:lead", 1),
    ]  # fmt: skip
    fits = _fits(store)
    assert set(fits) == {ext for batch in BATCHES for ext in batch}
    for status, written, desired, has_written_at, error, attempts in fits.values():
        assert (status, has_written_at, error, attempts) == ("ok", True, None, 0)
        assert written == desired and '"fit_score"' in written  # the stored text itself, copied


def test_a_commit_failing_behind_the_writes_re_sends_at_most_two_batches(store, crm, now, monkeypatch):
    with store.session() as s:
        versions.publish(s, ICP, filename="icp.yaml", author="t", note="", now=now)
    calls = {"n": 0}
    store_results = write_phase.store_results

    def failing_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return store_results(*args, **kwargs)

    monkeypatch.setattr(write_phase, "store_results", failing_second)
    with pytest.raises(OSError, match="disk full"):
        run_sync(store, _cfg(), _connector(crm, True), kind="full", now=now)
    # The failing commit was the second batch's; the third was sent while it ran, then the run stopped.
    assert [ext for _, ext, _ in crm.writes] == [*BATCHES[0], *BATCHES[1], *BATCHES[2]]
    assert {ext for ext, fit in _fits(store).items() if fit[0] == "ok"} == set(BATCHES[0])
    monkeypatch.setattr(write_phase, "store_results", store_results)
    crm.writes.clear()
    resumed = run_sync(store, _cfg(), _connector(crm, True), now=now + timedelta(minutes=1))
    assert resumed.status == "succeeded"
    # Re-sent: the two batches sent but not committed, and nothing else twice.
    assert [ext for _, ext, _ in crm.writes] == [ext for batch in BATCHES[1:] for ext in batch]
    assert {fit[0] for fit in _fits(store).values()} == {"ok"}


def test_a_write_failing_while_a_commit_runs_behind_keeps_that_commit(store, crm, now):
    with store.session() as s:
        versions.publish(s, ICP, filename="icp.yaml", author="t", note="", now=now)
    conn = _connector(crm, True)
    conn.crash_after_writes = 2  # the third write request dies while the second batch commits
    with pytest.raises(KeyboardInterrupt):
        run_sync(store, _cfg(), conn, kind="full", now=now)
    assert {ext for ext, fit in _fits(store).items() if fit[0] == "ok"} == {*BATCHES[0], *BATCHES[1]}
    crm.writes.clear()
    run_sync(store, _cfg(), _connector(crm, True), now=now + timedelta(minutes=1))
    assert [ext for _, ext, _ in crm.writes] == [ext for batch in BATCHES[2:] for ext in batch]
