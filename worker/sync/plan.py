"""What the next run would write, record by record, computed from the snapshot store (no CRM call).

``plan`` walks a connection's records the way the score and write phases do, through the same
per-record evaluation (``worker.evaluate``), and yields for each record what the CRM holds, what it
would hold, and whether it would be written. The revision preview (``worker.icp.preview``) plans under
a proposed ICP version; the dry run (``icp-worker sync --dry-run``) under the current one, after a
pull whose snapshots are kept (still ``dirty``) but not scored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.files.cells import escape_formula
from worker.evaluate import Carried, Evaluation, Policy
from worker.icp.scoring import Scorer
from worker.store.models import RecordFit, RecordSnapshot
from worker.store.states import WriteStatus
from worker.sync.score import SCORING_COLUMNS, batch_context, evaluate_row

BATCH = 2000
#: The columns of a record-level dry run (``--records OUT.csv``; ``--json`` has the same keys).
RECORD_COLUMNS = (
    "connection",
    "object_type",
    "id",
    "name",
    "fit_score_before",
    "fit_score_after",
    "fit_tier_before",
    "fit_tier_after",
    "reengage_before",
    "reengage_after",
    "reason",
)


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


def write_reason(record: Planned) -> str:
    """Why the record would be written: "never written", "tier poor → good", "score 45 → 67",
    "reasons changed", "flag raised: dismissed: ...", "flag cleared: ...", "last write failed"."""
    before, after = record.before, record.after
    if before is None:
        parts = ["never written"]
    else:
        parts = []
        if before.get("fit_tier") != after.get("fit_tier"):
            parts.append(f"tier {before.get('fit_tier')} → {after.get('fit_tier')}")
        if before.get("fit_score") != after.get("fit_score"):
            parts.append(f"score {before.get('fit_score')} → {after.get('fit_score')}")
        if before.get("fit_reasons") != after.get("fit_reasons") and not parts:
            parts.append("reasons changed")
    ev = record.evaluation
    if ev is not None and ev.raise_kind:
        parts.append(f"flag raised: {ev.decision.reason or ev.raise_kind}")
    elif ev is not None and ev.clear_reason:
        parts.append(f"flag cleared: {ev.clear_reason}")
    elif before is not None and before.get("reengage_reason") != after.get("reengage_reason"):
        parts.append("re-engagement reason changed")
    if record.failed_before:
        parts.append("last write failed")
    return "; ".join(parts) or "owned values differ from the CRM's"


def record_row(connection: str, record: Planned) -> dict[str, Any]:
    """One row of the record-level dry run (keys: ``RECORD_COLUMNS``)."""
    before = record.before or {}
    return {
        "connection": connection,
        "object_type": record.object_type,
        "id": record.external_id,
        "name": record.name,
        "fit_score_before": before.get("fit_score"),
        "fit_score_after": record.after.get("fit_score"),
        "fit_tier_before": before.get("fit_tier"),
        "fit_tier_after": record.after.get("fit_tier"),
        "reengage_before": before.get("reengage_flag"),
        "reengage_after": record.after.get("reengage_flag"),
        "reason": write_reason(record),
    }


def record_cells(row: Mapping[str, Any]) -> list[str]:
    """One row of the records CSV in ``RECORD_COLUMNS`` order: blank for none, ``true``/``false``,
    and cells a spreadsheet would run as formulas escaped (names come from the CRM)."""
    cells = []
    for column in RECORD_COLUMNS:
        value = row.get(column)
        if value is None:
            cells.append("")
        elif isinstance(value, bool):
            cells.append("true" if value else "false")
        else:
            cells.append(escape_formula(str(value)))
    return cells
