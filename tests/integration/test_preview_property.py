"""The preview is the exact dry run of a publish: over random stores (fits in ``error``, active flags,
cool-off, opportunities carrying their account's fit, objects not enabled), it predicts record by
record what the publish's re-evaluation then writes, and the flags it raises. SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from connectors.base import OBJECT_TYPES
from testing.memory import MemoryConnector, MemoryCrm
from worker.config import ConnectionConfig, ReengageConfig
from worker.icp import versions
from worker.icp.preview import preview_connection
from worker.icp.spec import parse_icp
from worker.store.models import Connection, ReengageFlag
from worker.sync import run_sync

INDUSTRIES = ("Computer Software", "Retail", "Government", "")
EMPLOYEES = ("150", "700", "1500", "lots")
LEAD_STATUSES = ("Unqualified", "Working", "Open", "Nurture")
_names = itertools.count()


def icp_text(tag: str, software: float, retail: float, band: int, w_industry: int) -> str:
    return f"""
name: {tag}
criteria:
  - key: industry
    attribute: industry
    weight: {w_industry}
    type: categorical
    values: {{Computer Software: {software}, Retail: {retail}}}
  - key: employees
    attribute: employees
    weight: {100 - w_industry}
    type: bands
    bands: [{{min: {band}, credit: 1.0}}]
disqualifiers:
  - {{key: public_sector, attribute: industry, values: [Government]}}
"""


icps = st.tuples(
    st.sampled_from((1.0, 0.5, 0.0)),
    st.sampled_from((1.0, 0.6, 0.0)),
    st.sampled_from((500, 1000, 2000)),
    st.sampled_from((30, 50, 70)),
)
activity = st.one_of(st.none(), st.integers(min_value=0, max_value=400))
accounts = st.lists(
    st.tuples(
        st.sampled_from(INDUSTRIES),
        st.sampled_from(EMPLOYEES),
        # opportunities: (closed, won, days before now it closed)
        st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(1, 300)), max_size=2),
        activity,
    ),
    max_size=5,
)
leads = st.lists(
    st.tuples(
        st.sampled_from(INDUSTRIES),
        st.sampled_from(EMPLOYEES),
        st.sampled_from(LEAD_STATUSES),
        st.booleans(),  # converted
        activity,
        st.sampled_from(("005A", "005B")),
    ),
    max_size=6,
)
object_sets = st.sets(st.sampled_from(OBJECT_TYPES), min_size=1).map(
    lambda s: [t for t in OBJECT_TYPES if t in s]
)
worlds = st.fixed_dictionaries(
    {
        "accounts": accounts,
        "leads": leads,
        "icps": st.lists(icps, min_size=3, max_size=3),
        "objects_before": object_sets,
        "objects_after": object_sets,
        "cooloff_days": st.sampled_from((0, 20, 400)),
        "stale_days": st.sampled_from((30, 90)),
        "middle_revision": st.booleans(),
        "fail_share": st.sampled_from((0, 2, 3)),  # every n-th record's first write fails (0: none)
        "days_between": st.integers(0, 40),
    }
)


def build_crm(world: dict, today: date) -> MemoryCrm:
    crm = MemoryCrm()
    for i, (industry, employees, opps, last) in enumerate(world["accounts"]):
        last_activity = None if last is None else today - timedelta(days=last)
        crm.put(
            "account", f"A{i}", {"industry": industry, "employees": employees}, last_activity=last_activity
        )
        for j, (closed, won, ago) in enumerate(opps):
            status = {"account_id": f"A{i}", "is_closed": closed, "is_won": closed and won}
            status["close_date"] = (today - timedelta(days=ago)).isoformat()
            crm.put("opportunity", f"O{i}-{j}", {"industry": industry}, status=status)
    for i, (industry, employees, lead_status, converted, last, owner) in enumerate(world["leads"]):
        crm.put(
            "lead",
            f"L{i}",
            {"industry": industry, "employees": employees},
            status={"lead_status": lead_status, "is_converted": converted},
            owner=owner,
            last_activity=None if last is None else today - timedelta(days=last),
        )
    return crm


def publish(store, text: str, now) -> int:
    with store.session() as s:
        return versions.publish(s, text, filename="icp.yaml", author="t", note="", now=now).version.number


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds)
def test_preview_predicts_record_by_record_what_the_publish_writes(store, now, world):
    name = f"p{next(_names)}"
    reengage = {"cooloff_days": world["cooloff_days"], "stale_days": world["stale_days"]}

    def config(objects: list[str]) -> ConnectionConfig:
        return ConnectionConfig(name=name, crm="files", objects=objects, reengage=ReengageConfig(**reengage))

    start = now - timedelta(days=2 * world["days_between"] + 1)
    crm = build_crm(world, now.date())
    before = config(world["objects_before"])
    first_icp, middle_icp, proposed_icp = (icp_text(f"{name} v{k}", *p) for k, p in enumerate(world["icps"]))

    # The store's history: a first sync with some writes failing (fits left in ``error``), then maybe a
    # revision that raises flags (active flags, cool-off), each a while apart.
    publish(store, first_icp, start)
    connector = MemoryConnector(crm, page_size=4, write_batch_size=3)
    if world["fail_share"]:
        ids = sorted(i for records in crm.records.values() for i in records)
        connector.fail_ids = {i: ("LOCKED", "row locked") for i in ids[:: world["fail_share"]]}
    run_sync(store, before, connector, kind="full", now=start)
    middle = start + timedelta(days=world["days_between"])
    if world["middle_revision"]:
        publish(store, middle_icp, middle)
        run_sync(store, before, MemoryConnector(crm, write_batch_size=5), kind="reevaluate", now=middle)

    # The preview of the proposed version (possibly with other objects enabled now) ...
    after = config(world["objects_after"])
    with store.session() as s:
        conn = s.scalars(select(Connection).where(Connection.name == name)).one()
        number = versions.latest_icp(s).number + 1
        spec = parse_icp(proposed_icp, "proposed.yaml")
        preview = preview_connection(s, conn, after, spec, number, now, examples=100, rows=True)
        last_flag = s.scalar(select(func.max(ReengageFlag.id))) or 0

    # ... then the publish and its re-evaluation.
    assert publish(store, proposed_icp, now) == number
    crm.writes.clear()
    summary = run_sync(store, after, MemoryConnector(crm, write_batch_size=4), kind="reevaluate", now=now)

    predicted = {(r.object_type, r.external_id): dict(r.after) for r in preview.rows}
    written = {
        (obj, ext): {k: v for k, v in fields.items() if k != "scored_at"} for obj, ext, fields in crm.writes
    }
    assert len(crm.writes) == len(written), "each record is written once"
    assert written == predicted
    assert sum(preview.to_write.values()) == summary.counts["written"]
    assert preview.candidates == summary.counts["flags_raised"]
    with store.session() as s:
        raised = s.execute(
            select(ReengageFlag.object_type, ReengageFlag.external_id, ReengageFlag.kind).where(
                ReengageFlag.connection_id == conn.id, ReengageFlag.id > last_flag
            )
        ).all()
    assert len(preview.examples) == preview.candidates
    assert sorted(raised) == sorted((c.object_type, c.external_id, c.kind) for c in preview.examples)
