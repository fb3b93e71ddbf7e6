"""What publishing a proposed ICP would change, computed from the snapshot store with no CRM call.

The publish re-evaluates every record of each connection's objects under the new version; the preview
walks them the same way (``worker.sync.plan``, through the sync's own per-record evaluation) and sums
up: the tier transition matrix (current tier → proposed tier), how many records' owned fields would be
written (and so the API calls it costs), the re-engagement candidates with examples, and, when asked
for, every record that would be written (``icp-worker icp preview --records``).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from connectors.registry import crm_entry
from worker.config import ConnectionConfig
from worker.evaluate import policy_for
from worker.icp.model import IcpSpec
from worker.icp.scoring import Scorer
from worker.store.models import Connection
from worker.store.queries import is_first_sync
from worker.sync.plan import Planned, plan, record_row


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

    def record_rows(self) -> list[dict[str, Any]]:
        """The records to write as rows of the record-level dry run (``worker.sync.plan.RECORD_COLUMNS``)."""
        return [record_row(self.connection, p) for p in self.rows]

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
    policy = policy_for(cfg, proposed, proposed_number, first_sync=is_first_sync(session, conn.id))
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
