"""The CRM's echo of our own write-back (a new modification stamp, the same content) is not a change.

After a full sync writes every record, Salesforce and HubSpot bump each record's stamp, so the next
incremental pulls them all again. Those whose stored columns encode exactly as before get their new
stamp only: nothing is scored or written again, and no account is made dirty by its opportunity. A
record changed in one attribute is still scored again.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy import select

from testing.memory import MemoryConnector, MemoryCrm
from worker.config import ConnectionConfig
from worker.icp import versions
from worker.store.models import RecordSnapshot
from worker.sync import run_sync

ICP = """
name: echo
criteria:
  - {key: industry, attribute: industry, weight: 50, type: categorical, values: {Computer Software: 1.0}}
  - {key: employees, attribute: employees, weight: 50, type: bands, bands: [{min: 1000, credit: 1.0}]}
"""


def _crm() -> MemoryCrm:
    crm = MemoryCrm()
    crm.put("account", "A1", {"industry": "Computer Software", "employees": "1,200", "country": "USA"})
    crm.put("account", "A2", {"industry": "Retail", "employees": "40"})
    crm.put("opportunity", "O1", status={"account_id": "A1", "is_closed": False})
    crm.put(
        "lead", "L1", {"industry": "Computer Software", "employees": "lots"}, status={"lead_status": "Open"}
    )
    return crm


def _echo(crm: MemoryCrm) -> None:
    """Every record's stamp moves (the CRM saw our write), its content stays."""
    for records in crm.records.values():
        for ext, rec in list(records.items()):
            records[ext] = dataclasses.replace(rec, modstamp=crm.stamp())


def test_echo_of_the_write_back_scores_and_writes_nothing(store, now):
    crm = _crm()
    cfg = ConnectionConfig(name="echo", crm="files")
    with store.session() as s:
        versions.publish(s, ICP, filename="icp.yaml", author="test", note="", now=now)
    full = run_sync(store, cfg, MemoryConnector(crm), kind="full", now=now)
    assert full.counts["scored"] == 4 and full.counts["written"] == 4

    _echo(crm)
    echoed = run_sync(store, cfg, MemoryConnector(crm), kind="incremental", now=now + timedelta(hours=1))
    assert echoed.counts["pulled_account"] == 2 and echoed.counts["pulled_lead"] == 1  # pulled again
    assert echoed.counts["changed_account"] == 0 and echoed.counts["changed_opportunity"] == 0
    assert echoed.counts["scored"] == 0 and echoed.counts["written"] == 0
    with store.session() as s:
        stamps = dict(s.execute(select(RecordSnapshot.external_id, RecordSnapshot.crm_modstamp)).all())
        assert not any(s.scalars(select(RecordSnapshot.dirty)))
    assert stamps == {ext: rec.modstamp for recs in crm.records.values() for ext, rec in recs.items()}

    a2 = crm.records["account"]["A2"]
    crm.records["account"]["A2"] = dataclasses.replace(
        a2, raw={**a2.raw, "industry": "Computer Software"}, modstamp=crm.stamp()
    )
    changed = run_sync(store, cfg, MemoryConnector(crm), kind="incremental", now=now + timedelta(hours=2))
    assert changed.counts["changed_account"] == 1
    assert changed.counts["scored"] == 1 and changed.counts["written"] == 1


def test_a_new_opportunity_marks_its_scored_account_only(store, now):
    # A first sync marks no account (none has a fit: each is scored anyway); once scored, an account whose
    # pipeline changes is marked dirty by the pull, and scored again.
    crm = _crm()
    cfg = ConnectionConfig(name="echo", crm="files")
    with store.session() as s:
        versions.publish(s, ICP, filename="icp.yaml", author="test", note="", now=now)
    run_sync(store, cfg, MemoryConnector(crm), kind="full", now=now, score=False)
    with store.session() as s:
        assert not any(s.scalars(select(RecordSnapshot.dirty)))
    first = run_sync(store, cfg, MemoryConnector(crm), kind="full", now=now + timedelta(hours=1))
    assert first.counts["scored"] == 4

    crm.put("opportunity", "O2", status={"account_id": "A1", "is_closed": False})
    crm.put("opportunity", "O3", status={"account_id": "A9", "is_closed": False})  # an account not pulled
    later = now + timedelta(hours=2)
    run_sync(store, cfg, MemoryConnector(crm), kind="incremental", now=later, score=False)
    with store.session() as s:
        dirty = dict(s.execute(select(RecordSnapshot.external_id, RecordSnapshot.dirty)).all())
    assert dirty == {"A1": True, "A2": False, "O1": False, "O2": False, "O3": False, "L1": False}
    scored = run_sync(store, cfg, MemoryConnector(crm), kind="incremental", now=later)
    assert scored.counts["scored"] >= 3  # A1 again, and the two new opportunities
    with store.session() as s:
        assert not any(s.scalars(select(RecordSnapshot.dirty)))
