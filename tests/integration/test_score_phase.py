"""The score phase (``worker.sync.score``) on the store (SQLite and PostgreSQL): its batches commit in a
second thread behind the scoring, in order; a commit that fails stops the phase with the batches before
it stored and nothing after it, and the next run scores exactly what is left."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

import worker.sync.score as score_phase
from testing.memory import MemoryConnector, MemoryCrm
from worker.config import ConnectionConfig
from worker.icp import versions
from worker.sync import run_sync

ICP = """
name: test
criteria:
  - {key: industry, attribute: industry, weight: 100, type: categorical, values: {Computer Software: 1.0}}
"""
LEADS = [f"L{i}" for i in range(1, 8)]


@pytest.fixture
def crm() -> MemoryCrm:
    crm = MemoryCrm()
    for i, ext in enumerate(LEADS):
        industry = "Computer Software" if i % 2 else "Retail"
        crm.put("lead", ext, {"industry": industry}, status={"lead_status": "Open"})
    return crm


def _cfg() -> ConnectionConfig:
    return ConnectionConfig(name="mem", crm="files", objects=["lead"])


def _scored(store) -> dict[str, tuple[Any, ...]]:
    """Each scored record's fit and history, and whether it is still marked dirty, as stored."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT s.external_id, f.score, f.tier, f.reasons_text, CAST(f.desired AS TEXT),"
                " (SELECT COUNT(*) FROM fit_history h WHERE h.external_id = s.external_id), s.dirty"
                " FROM record_fits f JOIN record_snapshots s ON s.id = f.snapshot_id"
            )
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_a_failing_commit_keeps_the_batches_before_it_and_the_next_run_scores_the_rest(
    store, crm, now, monkeypatch
):
    with store.session() as s:
        versions.publish(s, ICP, filename="icp.yaml", author="t", note="", now=now)
    monkeypatch.setattr(score_phase, "SCORE_BATCH", 2)
    commit = score_phase._commit_batch
    calls = {"n": 0}

    def failing_third(*args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        commit(*args)

    monkeypatch.setattr(score_phase, "_commit_batch", failing_third)
    with pytest.raises(OSError, match="disk full"):
        run_sync(store, _cfg(), MemoryConnector(crm), kind="full", now=now)
    assert sorted(_scored(store)) == LEADS[:4], "the two batches before the failing one, nothing after"

    monkeypatch.setattr(score_phase, "_commit_batch", commit)
    resumed = run_sync(store, _cfg(), MemoryConnector(crm), now=now + timedelta(minutes=1))
    assert resumed.status == "succeeded" and resumed.counts["scored"] == 3  # only what was left
    scored = _scored(store)

    assert sorted(scored) == LEADS
    assert all(row[4] == 1 and not row[5] for row in scored.values()), "one history entry each, clean"
    assert {ext: row[0] for ext, row in scored.items()} == {
        ext: 100 if i % 2 else 0 for i, ext in enumerate(LEADS)
    }, "the software leads fit, the retail ones do not"


def test_batches_commit_in_order_one_at_a_time(store, crm, now, monkeypatch):
    with store.session() as s:
        versions.publish(s, ICP, filename="icp.yaml", author="t", note="", now=now)
    monkeypatch.setattr(score_phase, "SCORE_BATCH", 2)
    commit = score_phase._commit_batch
    order: list[list[int]] = []
    running = {"now": 0, "most": 0}

    def recording(store_: Any, ctx: Any, writes: Any) -> None:
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        order.append(list(writes.ids))
        try:
            commit(store_, ctx, writes)
        finally:
            running["now"] -= 1

    monkeypatch.setattr(score_phase, "_commit_batch", recording)
    summary = run_sync(store, _cfg(), MemoryConnector(crm), kind="full", now=now)
    assert summary.status == "succeeded" and summary.counts["scored"] == len(LEADS)
    assert [len(ids) for ids in order] == [2, 2, 2, 1]
    flat = [i for ids in order for i in ids]
    assert flat == sorted(flat), "batches committed in snapshot order"
    assert running["most"] == 1


ICP_V2 = """
name: test
criteria:
  - {key: industry, attribute: industry, weight: 100, type: categorical,
     values: {Computer Software: 1.0, Retail: 0.8}}
"""


def test_a_revision_reads_the_stored_reasons_of_the_previous_fit_where_it_needs_them(store, now):
    """The previous fit's reasons reach the evaluation undecoded (``rows_to_score``); the history's
    cause and a raised flag's explanation, the two readers, still see them."""
    crm = MemoryCrm()
    crm.put("lead", "L1", {"industry": "Retail"}, status={"lead_status": "Unqualified"})  # dismissed
    crm.put("lead", "L2", {"industry": "Computer Software"}, status={"lead_status": "Open"})
    crm.put("lead", "L3", {"industry": "Retail"}, status={"lead_status": "Open"})
    cfg = ConnectionConfig(
        name="mem", crm="files", objects=["lead"], reengage={"dismissed_statuses": ["Unqualified"]}
    )
    with store.session() as s:
        versions.publish(s, ICP, filename="icp.yaml", author="t", note="", now=now)
    assert run_sync(store, cfg, MemoryConnector(crm), kind="full", now=now).status == "succeeded"

    crm.put("lead", "L3", {"industry": "Computer Software"}, status={"lead_status": "Open"})
    with store.session() as s:
        versions.publish(s, ICP_V2, filename="icp.yaml", author="t", note="", now=now)
    later = now + timedelta(days=1)
    assert run_sync(store, cfg, MemoryConnector(crm), now=later).status == "succeeded"

    with store.engine.connect() as conn:
        causes = dict(
            conn.execute(text("SELECT external_id, cause FROM fit_history WHERE icp_version = 2")).all()
        )
        flags = dict(conn.execute(text("SELECT external_id, reason FROM reengage_flags")).all())
    assert causes == {"L1": "revision", "L3": "revision+data"}, "L2 kept its score: no entry"
    assert flags == {"L1": "dismissed: poor → best under ICP v2: industry Retail: +80, new in ICP v2"}
