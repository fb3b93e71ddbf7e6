"""A draft ICP in the console: its checks (the ones ``icp validate`` runs) and its preview (the one
``icp preview`` computes), gathered for the draft and preview pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from worker.config import WorkerConfig
from worker.console import charts
from worker.icp.backtest import BacktestReport, backtest
from worker.icp.model import IcpSpec
from worker.icp.preview import ConnectionPreview, Planned, preview_connection, tier_order
from worker.icp.revisions import diff_specs
from worker.icp.spec import IcpValidationError, parse_icp
from worker.icp.versions import latest_icp, spec_of
from worker.store.history import load_history
from worker.store.models import Connection

FILENAME = "draft.yaml"
#: Records a publish would write, shown on the preview page per connection (the CSV has them all).
SAMPLE_ROWS = 50
#: Columns of the records CSV (those of ``icp preview --records``).
ROW_COLUMNS = (
    "connection", "object_type", "id", "name", "fit_score_before", "fit_score_after", "fit_tier_before",
    "fit_tier_after", "reengage_before", "reengage_after", "reason",
)  # fmt: skip


@dataclass(frozen=True)
class Problem:
    line: int
    field: str
    message: str


@dataclass
class DraftCheck:
    text: str
    spec: IcpSpec | None = None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.spec is not None and not self.errors

    def by_line(self) -> dict[int, list[Problem]]:
        out: dict[int, list[Problem]] = {}
        for p in self.errors:
            out.setdefault(p.line, []).append(p)
        return out

    def listing(self) -> list[tuple[int, str, list[Problem]]]:
        """Every line of the draft with the errors found on it (errors past the end go on the last line)."""
        lines = self.text.splitlines() or [""]
        found = self.by_line()
        last = len(lines)
        extra = [p for n, ps in found.items() if n > last or n < 1 for p in ps]
        return [
            (i, line, found.get(i, []) + (extra if i == last else []))
            for i, line in enumerate(lines, start=1)
        ]


def decode_upload(raw: bytes) -> tuple[str, list[Problem]]:
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return raw.decode("utf-8", errors="replace"), [Problem(line, "", "not valid UTF-8 text")]


def check_draft(text: str) -> DraftCheck:
    """Validate the draft as ``icp validate`` does; every problem with its line."""
    result = DraftCheck(text.replace("\r\n", "\n"))
    try:
        result.spec = parse_icp(result.text, FILENAME)
    except IcpValidationError as exc:
        result.errors = [Problem(e.line, e.field, e.message) for e in exc.errors]
    return result


# ------------------------------------------------------------------------------------------------ preview


@dataclass
class BacktestPair:
    connection: str
    current: BacktestReport
    proposed: BacktestReport

    def rows(self) -> list[dict[str, Any]]:
        """One row per tier (either side's), each side's deals, win rate and lift."""
        names = [t.label for t in self.proposed.tiers] + [
            t.label for t in self.current.tiers if self.proposed.tier(t.label) is None
        ]
        return [
            {"tier": n, "current": self.current.tier(n), "proposed": self.proposed.tier(n)} for n in names
        ]


def record_row(connection: str, record: Planned) -> dict[str, Any]:
    """One record a publish would write: what the CRM holds and what it would hold."""
    before, after = record.before or {}, record.after
    return {
        "connection": connection,
        "object_type": record.object_type,
        "id": record.external_id,
        "name": record.name or "",
        "fit_score_before": before.get("fit_score", ""),
        "fit_score_after": after.get("fit_score", ""),
        "fit_tier_before": before.get("fit_tier", ""),
        "fit_tier_after": after.get("fit_tier", ""),
        "reengage_before": before.get("reengage_flag", ""),
        "reengage_after": after.get("reengage_flag", ""),
        "reason": after.get("reengage_reason") or after.get("fit_reasons", ""),
    }


@dataclass
class ConnectionImpact:
    preview: ConnectionPreview
    tiers: list[str]
    heatmap: Any

    def sample(self) -> list[dict[str, Any]]:
        return [record_row(self.preview.connection, r) for r in self.preview.rows[:SAMPLE_ROWS]]

    @property
    def changed(self) -> int:
        return sum(n for (a, b), n in self.preview.transitions.items() if a != b)


@dataclass
class DraftPreview:
    number: int
    current_number: int | None
    changes: list[str]
    impacts: list[ConnectionImpact]
    backtests: list[BacktestPair]
    skipped: list[str]


def preview_draft(session: Session, config: WorkerConfig, spec: IcpSpec, now: datetime | None = None,
                  examples: int = 25) -> DraftPreview:  # fmt: skip
    """What publishing ``spec`` would change on every configured connection that has been synced."""
    moment = now or datetime.now(UTC)
    current = latest_icp(session)
    number = (current.number + 1) if current else 1
    changes = diff_specs(spec_of(current), spec) if current else ["(first version)"]
    impacts, skipped, pairs = [], [], []
    for cfg in config.connections:
        conn = session.query(Connection).filter_by(name=cfg.name).one_or_none()
        if conn is None:
            skipped.append(cfg.name)
            continue
        p = preview_connection(session, conn, cfg, spec, number, moment, examples, rows=True)
        tiers = tier_order(spec, p.transitions)
        tiers = [
            t for t in tiers if any(p.transitions.get((t, b)) or p.transitions.get((b, t)) for b in tiers)
        ]
        title = f"{cfg.name}: current tier → proposed tier"
        impacts.append(
            ConnectionImpact(p, tiers, charts.transition_heatmap(tiers, p.matrix(tiers), title=title))
        )
        if current is not None:
            history = load_history(session, conn.id)
            if any(h.closed for h in history):
                pairs.append(
                    BacktestPair(cfg.name, backtest(spec_of(current), history), backtest(spec, history))
                )
    return DraftPreview(number, current.number if current else None, changes, impacts, pairs, skipped)


def record_rows(session: Session, config: WorkerConfig, spec: IcpSpec, now: datetime | None = None
                ) -> list[dict[str, Any]]:  # fmt: skip
    """Every record a publish of ``spec`` would write, on every synced connection (the records CSV)."""
    moment = now or datetime.now(UTC)
    current = latest_icp(session)
    number = (current.number + 1) if current else 1
    out: list[dict[str, Any]] = []
    for cfg in config.connections:
        conn = session.query(Connection).filter_by(name=cfg.name).one_or_none()
        if conn is not None:
            p = preview_connection(session, conn, cfg, spec, number, moment, 0, rows=True)
            out.extend(record_row(cfg.name, r) for r in p.rows)
    return out
