"""What a run would change, computed from the snapshot store with no CRM call.

``plan`` walks a connection's records the way the sync's score and write phases do, through the same
per-record evaluation (``worker.evaluate``), and yields for each record what the CRM holds, what it
would hold, and whether it would be written. Two callers:

- the revision preview (``preview_connection``): every record under a proposed ICP version, summed up
  as the tier transition matrix (current tier → proposed tier), how many records' owned fields would
  be written (and so the API calls it costs), and the re-engagement candidates, with examples;
- the dry run (``icp-worker sync --dry-run``): the records the next run would write under the current
  version, after a pull whose snapshots are kept but not scored.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.registry import crm_entry
from worker.config import ConnectionConfig
from worker.evaluate import Carried, Evaluation, Policy, policy_for
from worker.icp.model import IcpSpec
from worker.icp.scoring import Scorer
from worker.store.models import Connection, RecordFit, RecordSnapshot
from worker.store.states import WriteStatus
from worker.sync.score import SCORING_COLUMNS, batch_context, evaluate_row

BATCH = 2000


@dataclass(frozen=True, slots=True)
class Planned:
    """One record of a plan."""

    object_type: str
    external_id: str
    name: str | None
    owner_id: str | None
    #: The tier it has now (None: never scored).
    previous_tier: str | None
    #: Owned values the CRM holds, as last written (None: never written).
    before: Mapping[str, Any] | None
    #: Owned values the CRM would hold after the run.
    after: Mapping[str, Any]
    must_write: bool
    #: The evaluation, when the run would score the record (None: it would keep its fit).
    evaluation: Evaluation | None
    #: The last write failed (it is retried first).
    failed_before: bool = False

    @property
    def tier(self) -> str:
        return str(self.after.get("fit_tier", self.previous_tier or ""))


def plan(session: Session, conn_id: int, policy: Policy, scorer: Scorer, now: datetime) -> Iterator[Planned]:
    """Every record of the policy's objects, as the next run under ``policy`` would leave it.

    A record is evaluated when the run would score it (changed, never scored, scored under another ICP
    version, or an opportunity whose account's fit changes); any other record keeps its fit and is
    written only when its last write is still due (``pending``) or failed (``error``)."""
    evaluated_accounts: dict[str, Carried] = {}
    changed_accounts: set[str] = set()
    for object_type in policy.objects:
        last_id = 0
        while True:
            rows = session.execute(
                select(*SCORING_COLUMNS, RecordSnapshot.name, RecordSnapshot.dirty, RecordFit.desired)
                .outerjoin(RecordFit, RecordFit.snapshot_id == RecordSnapshot.id)
                .where(
                    RecordSnapshot.connection_id == conn_id,
                    RecordSnapshot.object_type == object_type,
                    RecordSnapshot.id > last_id,
                )
                .order_by(RecordSnapshot.id)
                .limit(BATCH)
            ).all()
            if not rows:
                break
            last_id = rows[-1].id
            bc = batch_context(session, conn_id, object_type, rows)
            if object_type == "opportunity":  # accounts evaluated by this plan carry their new fit
                bc.account_fits.update(
                    {p: evaluated_accounts[p] for p in {r.parent_id for r in rows} if p in evaluated_accounts}
                )
            for row in rows:
                scored = (
                    row.dirty
                    or row.fit_id is None
                    or row.icp_version != policy.icp_version
                    or (object_type == "opportunity" and row.parent_id in changed_accounts)
                )
                if not scored:
                    yield Planned(
                        object_type, row.external_id, row.name, row.owner_id, row.tier, row.written,
                        row.desired or {}, row.write_status != WriteStatus.OK, None,
                        row.write_status == WriteStatus.ERROR,
                    )  # fmt: skip
                    continue
                ev = evaluate_row(row, object_type, bc, scorer, policy, now)
                if object_type == "account":
                    evaluated_accounts[row.external_id] = ev.carried()
                    if ev.result_changed and row.fit_id is not None:
                        changed_accounts.add(row.external_id)
                yield Planned(
                    object_type, row.external_id, row.name, row.owner_id,
                    row.tier if row.fit_id is not None else None, row.written, ev.desired, ev.must_write, ev,
                    row.write_status == WriteStatus.ERROR,
                )  # fmt: skip


@dataclass
class Candidate:
    object_type: str
    external_id: str
    name: str | None
    owner_id: str | None
    kind: str
    from_tier: str
    to_tier: str
    reason: str


@dataclass
class ConnectionPreview:
    connection: str
    crm: str
    records: int = 0
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (old, new) -> n
    to_write: Counter[str] = field(default_factory=Counter)  # object type -> n
    candidates: int = 0
    examples: list[Candidate] = field(default_factory=list)
    #: Every record that would be written, when asked for (``preview_connection(rows=True)``).
    rows: list[Planned] = field(default_factory=list)

    @property
    def api_calls(self) -> int:
        batch = crm_entry(self.crm).write_batch_size
        return sum(math.ceil(n / batch) for n in self.to_write.values())

    def matrix(self, tiers: list[str]) -> list[list[int]]:
        return [[self.transitions.get((a, b), 0) for b in tiers] for a in tiers]

    def as_dict(self, tiers: list[str]) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "crm": self.crm,
            "records": self.records,
            "tiers": tiers,
            "transitions": {f"{a} -> {b}": n for (a, b), n in sorted(self.transitions.items())},
            "records_to_write": dict(self.to_write),
            "api_calls": self.api_calls,
            "reengage_candidates": self.candidates,
            "examples": [c.__dict__ for c in self.examples],
        }

    def add(self, record: Planned, examples: int, keep_rows: bool) -> None:
        self.records += 1
        self.transitions[(record.previous_tier or "(new)", record.tier)] += 1
        if record.must_write:
            self.to_write[record.object_type] += 1
            if keep_rows:
                self.rows.append(record)
        ev = record.evaluation
        if ev is not None and ev.raise_kind:
            self.candidates += 1
            if len(self.examples) < examples:
                self.examples.append(
                    Candidate(
                        record.object_type,
                        record.external_id,
                        record.name,
                        record.owner_id,
                        ev.raise_kind,
                        record.previous_tier or "",
                        ev.tier,
                        ev.decision.reason or "",
                    )
                )


def preview_connection(
    session: Session,
    conn: Connection,
    cfg: ConnectionConfig,
    proposed: IcpSpec,
    proposed_number: int,
    now: datetime,
    examples: int = 10,
    *,
    rows: bool = False,
) -> ConnectionPreview:
    """What publishing ``proposed`` as version ``proposed_number`` would do to ``conn``: the re-evaluation
    it starts scores every record of the connection's objects under it (see ``plan``)."""
    out = ConnectionPreview(conn.name, conn.crm)
    policy = policy_for(cfg, proposed, proposed_number)
    for record in plan(session, conn.id, policy, Scorer(proposed), now):
        out.add(record, examples, rows)
    return out


def tier_order(spec: IcpSpec, transitions: Counter[tuple[str, str]]) -> list[str]:
    """Tiers for a matrix: the spec's tiers best first, then any other tier seen (older ICPs, "(new)")."""
    order = list(spec.tier_names)
    for a, b in transitions:
        for t in (a, b):
            if t not in order:
                order.append(t)
    return order
