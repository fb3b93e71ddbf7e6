"""What publishing a proposed ICP would change, computed from the snapshot store with no CRM call.

For each connection: the tier transition matrix (current tier → proposed tier), how many records'
owned fields would be written (and so the API calls it costs), and the re-engagement candidates it
would raise, with examples and their reasons.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.config import ConnectionConfig
from worker.icp.model import IcpSpec
from worker.icp.scoring import Scorer
from worker.reengage import ActiveFlag, decide, rise_explanation
from worker.store import queries
from worker.store.models import Connection, RecordFit, RecordSnapshot

#: Records per write request, by CRM, to turn "records to write" into API calls.
WRITE_BATCH = {"salesforce": 200, "hubspot": 100, "files": 10_000}
BATCH = 2000


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
    transitions: Counter = field(default_factory=Counter)  # (old, new) -> n
    to_write: Counter = field(default_factory=Counter)  # object type -> n
    candidates: int = 0
    examples: list[Candidate] = field(default_factory=list)

    @property
    def api_calls(self) -> int:
        batch = WRITE_BATCH.get(self.crm, 200)
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


def preview_connection(
    session: Session,
    conn: Connection,
    cfg: ConnectionConfig,
    proposed: IcpSpec,
    proposed_number: int,
    now: datetime,
    examples: int = 10,
) -> ConnectionPreview:
    """Score every snapshot of ``conn`` under ``proposed`` and compare with its current fit."""
    out = ConnectionPreview(conn.name, conn.crm)
    scorer = Scorer(proposed)
    targets = frozenset(proposed.reengage_tiers)
    account_results: dict[str, tuple[int, str, str]] = {}
    for object_type in ("account", "opportunity", "lead"):
        last_id = 0
        while True:
            rows = session.execute(
                select(RecordSnapshot, RecordFit)
                .outerjoin(RecordFit, RecordFit.snapshot_id == RecordSnapshot.id)
                .where(
                    RecordSnapshot.connection_id == conn.id,
                    RecordSnapshot.object_type == object_type,
                    RecordSnapshot.id > last_id,
                )
                .order_by(RecordSnapshot.id)
                .limit(BATCH)
            ).all()
            if not rows:
                break
            last_id = rows[-1][0].id
            ids = [snap.external_id for snap, _ in rows]
            opp_statuses = (
                queries.opportunity_statuses(session, conn.id, ids) if object_type == "account" else {}
            )
            active, last_raised = (
                queries.flags(session, conn.id, object_type, ids)
                if object_type != "opportunity"
                else ({}, {})
            )
            for snap, fit in rows:
                out.records += 1
                carried = account_results.get(snap.parent_id or "") if object_type == "opportunity" else None
                if carried is not None:
                    score, tier, text = carried
                    reasons: list[dict[str, Any]] = []
                else:
                    result = scorer.score(snap.attributes or {})
                    score, tier, text = result.score, result.tier, result.compact(255)
                    reasons = result.reasons_json()
                if object_type == "account":
                    account_results[snap.external_id] = (score, tier, text)
                old_tier = fit.tier if fit is not None else "(new)"
                out.transitions[(old_tier, tier)] += 1
                if fit is None or (fit.score, fit.tier, fit.reasons_text) != (score, tier, text):
                    out.to_write[object_type] += 1
                if object_type == "opportunity" or fit is None:
                    continue
                flag = active.get(snap.external_id)
                decision = decide(
                    queries.record_state(snap, opp_statuses),
                    previous_tier=fit.tier,
                    new_tier=tier,
                    target_tiers=targets,
                    active_flag=ActiveFlag(queries.aware(flag.raised_at)) if flag else None,
                    last_raised=last_raised.get(snap.external_id),
                    now=now,
                    dismissed_statuses=cfg.dismissed,
                    stale_days=cfg.reengage.stale_days,
                    cooloff_days=cfg.reengage.cooloff_days,
                    explanation=partial(
                        rise_explanation, fit.tier, tier, proposed_number, fit.reasons or [], reasons
                    ),
                )
                if decision.raise_kind:
                    out.candidates += 1
                    if len(out.examples) < examples:
                        out.examples.append(
                            Candidate(
                                object_type,
                                snap.external_id,
                                snap.name,
                                snap.owner_id,
                                decision.raise_kind,
                                fit.tier,
                                tier,
                                decision.reason or "",
                            )
                        )
    return out


def tier_order(spec: IcpSpec, transitions: Counter) -> list[str]:
    """Tiers for a matrix: the spec's tiers best first, then any other tier seen (older ICPs, "(new)")."""
    order = list(spec.tier_names)
    for a, b in transitions:
        for t in (a, b):
            if t not in order:
                order.append(t)
    return order
