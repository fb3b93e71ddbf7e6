"""A draft ICP in the console: its checks (the ones ``icp validate`` runs) and its preview (the one
``icp preview`` computes), gathered for the draft and preview pages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from worker.config import ConnectionConfig, WorkerConfig
from worker.console import charts
from worker.icp.backtest import BacktestReport, backtest
from worker.icp.hold import ConnectionImpact as HoldImpact
from worker.icp.model import IcpSpec
from worker.icp.preview import ConnectionPreview, preview_connection, tier_order
from worker.icp.publishing import impact_of_preview
from worker.icp.revisions import diff_specs
from worker.icp.spec import IcpValidationError
from worker.icp.validation import check_text
from worker.icp.versions import latest_icp, next_number, spec_of
from worker.settings import get_settings
from worker.store.history import load_history
from worker.store.models import Connection
from worker.sync.plan import record_row

FILENAME = "draft.yaml"
#: Records a publish would write, shown on the preview page per connection (the CSV has them all).
SAMPLE_ROWS = 12


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


def check_draft(text: str, connections: Sequence[ConnectionConfig], session: Session | None) -> DraftCheck:
    """Check the draft as ``icp validate`` does (the spec, then the connections and the store); every
    problem with its line."""
    result = DraftCheck(text.replace("\r\n", "\n"))
    try:
        spec, report = check_text(result.text, FILENAME, connections, session)
    except IcpValidationError as exc:
        result.errors = [Problem(e.line, e.field, e.message) for e in exc.errors]
        return result
    result.spec = spec
    result.errors = [Problem(e.line, e.field, e.message) for e in report.errors]
    result.warnings = [Problem(e.line, e.field, e.message) for e in report.warnings]
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


@dataclass
class ConnectionImpact:
    preview: ConnectionPreview
    tiers: list[str]
    heatmap: Any
    #: The hold's view: share of scored records changing tier, writes, the limits, why it would wait.
    hold: HoldImpact

    def sample(self) -> list[dict[str, Any]]:
        """The first records a publish would write (the dry run's rows), with the text the CRM would show."""
        return [
            record_row(self.preview.connection, r)
            | {"crm_text": r.after.get("reengage_reason") or r.after.get("fit_reasons") or ""}
            for r in self.preview.rows[:SAMPLE_ROWS]
        ]

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

    @property
    def hold_reasons(self) -> list[str]:
        """Why a publish would be held for approval (empty: it would be published at once)."""
        if self.current_number is None:
            return []  # the first version is never held
        return [r for i in self.impacts for r in i.hold.reasons()]


def preview_draft(
    session: Session,
    config: WorkerConfig,
    spec: IcpSpec,
    now: datetime | None = None,
    examples: int = 12,
    number: int | None = None,
) -> DraftPreview:
    """What publishing ``spec`` (as version ``number``, default the next) would change on every configured
    connection that has been synced."""
    moment = now or datetime.now(UTC)
    settings = get_settings()
    current = latest_icp(session)
    number = number or next_number(session)
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
        hold = impact_of_preview(cfg, p, settings)
        heatmap = charts.transition_heatmap(tiers, p.matrix(tiers), title=title)
        impacts.append(ConnectionImpact(p, tiers, heatmap, hold))
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
    number = next_number(session)
    out: list[dict[str, Any]] = []
    for cfg in config.connections:
        conn = session.query(Connection).filter_by(name=cfg.name).one_or_none()
        if conn is not None:
            p = preview_connection(session, conn, cfg, spec, number, moment, 0, rows=True)
            out.extend(record_row(cfg.name, r) for r in p.rows)
    return out
