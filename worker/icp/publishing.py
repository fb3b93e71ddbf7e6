"""Publishing, rolling back, approving and rejecting ICP versions: the logic behind ``icp publish``,
``icp rollback``, ``icp approve`` and ``icp reject`` (the CLI and the console call these functions).

A publish runs the checks of ``worker.icp.validation`` first (errors refuse it, nothing is stored).
Then, unless ``yes``, it computes the impact (the preview of every synced connection) and, when
``worker.icp.hold`` says so, stores the version as ``held``: nothing scores with it, nothing is
written, until ``approve``. Otherwise the version and its re-evaluation requests (``worker.outbox``)
commit in one transaction, and the re-evaluation is handed to the workers (with a broker) or run here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker import outbox
from worker.config import ConnectionConfig, WorkerConfig
from worker.icp import versions
from worker.icp.checks import CheckReport
from worker.icp.hold import ConnectionImpact, hold_reasons, impact_of, impact_summary
from worker.icp.model import IcpSpec
from worker.icp.preview import ConnectionPreview, preview_connection
from worker.icp.spec import SpecError, icp_content_hash, parse_icp
from worker.icp.validation import check_text, refuse
from worker.settings import Settings, get_settings
from worker.store.db import Store
from worker.store.models import Connection, IcpVersion
from worker.sync import ProgressFn, RunSummary

#: Exit code of a publish or rollback that is held for approval.
EXIT_HELD = 3


class ApprovalError(ValueError):
    """The version cannot be approved or rejected (not held, or overtaken by a newer current one)."""


@dataclass
class Reevaluation:
    """How the re-evaluation of a newly current version is carried out."""

    #: ``queued`` (to the workers), ``in_process`` (done here), ``deferred`` (the broker is down: the
    #: outbox keeps it), or ``none`` (no synced connection, or not asked for).
    mode: str
    queued: dict[str, str] = field(default_factory=dict)
    runs: list[RunSummary] = field(default_factory=list)
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "queued": self.queued,
            "message": self.message,
            "runs": [r.__dict__ for r in self.runs],
        }


@dataclass
class Outcome:
    """What a publish, rollback, approve or reject did."""

    #: ``published``, ``held``, ``unchanged``, ``already_held``, ``approved`` or ``rejected``.
    action: str
    version: IcpVersion
    impacts: list[ConnectionImpact] = field(default_factory=list)
    previews: list[ConnectionPreview] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    warnings: list[SpecError] = field(default_factory=list)
    reevaluation: Reevaluation | None = None

    @property
    def held(self) -> bool:
        return self.action in ("held", "already_held")

    @property
    def exit_code(self) -> int:
        return EXIT_HELD if self.held else 0

    def as_dict(self) -> dict[str, Any]:
        v = self.version
        return {
            "action": self.action,
            "version": v.number,
            "status": v.status,
            "created": self.action in ("published", "held"),
            "hash": v.content_hash,
            "held": self.held,
            "approve": f"icp-worker icp approve {v.number}" if self.held else None,
            "reasons": self.reasons,
            "impact": [i.as_dict() for i in self.impacts],
            "warnings": [str(w) for w in self.warnings],
            "reevaluation": self.reevaluation.as_dict() if self.reevaluation else None,
            "runs": [r.__dict__ for r in self.reevaluation.runs] if self.reevaluation else [],
        }


# --------------------------------------------------------------------------------------------- impact


def hold_limits(cfg: ConnectionConfig, settings: Settings) -> tuple[float, int | None]:
    hold = getattr(cfg, "hold", None)
    share = hold.share if hold is not None and hold.share is not None else settings.icp_hold_share
    writes = hold.writes if hold is not None and hold.writes is not None else settings.icp_hold_writes
    return share, writes


def compute_impact(
    session: Session,
    config: WorkerConfig,
    spec: IcpSpec,
    number: int,
    now: datetime,
    settings: Settings,
) -> tuple[list[ConnectionImpact], list[ConnectionPreview]]:
    """The preview of ``spec`` on every configured connection the store has synced, and its impact."""
    impacts, previews = [], []
    for cfg in config.connections:
        conn = session.scalar(select(Connection).where(Connection.name == cfg.name))
        if conn is None:
            continue
        preview = preview_connection(session, conn, cfg, spec, number, now, 5)
        impacts.append(impact_of_preview(cfg, preview, settings))
        previews.append(preview)
    return impacts, previews


def impact_of_preview(
    cfg: ConnectionConfig, preview: ConnectionPreview, settings: Settings
) -> ConnectionImpact:
    """The hold's view of one connection's preview, under that connection's hold limits."""
    share, writes = hold_limits(cfg, settings)
    return impact_of(
        cfg.name, preview.transitions, sum(preview.to_write.values()), hold_share=share, hold_writes=writes
    )


# --------------------------------------------------------------------------------------------- storing


def _store_version(
    store: Store,
    config: WorkerConfig,
    text: str,
    *,
    filename: str,
    note: str,
    author: str,
    yes: bool,
    reevaluate: bool,
    reason: str,
    checks: bool,
    now: datetime | None,
    settings: Settings | None,
) -> tuple[Outcome, CheckReport | None]:
    settings = settings or get_settings()
    now = now or datetime.now(UTC)
    report: CheckReport | None = None
    with store.session() as s:
        if checks:
            spec, report = check_text(text, filename, config.connections, s)
            refuse(report)  # nothing stored
        else:
            spec = parse_icp(text, filename)
        current = versions.current_version(s)
        digest = icp_content_hash(text)
        same = current if current is not None and current.content_hash == digest else None
        same = same or versions.held_with(s, digest)
        if same is not None:
            action = "already_held" if same.status == versions.HELD else "unchanged"
            return Outcome(action, same, warnings=report.warnings if report else []), report
        impacts: list[ConnectionImpact] = []
        previews: list[ConnectionPreview] = []
        if current is not None and not yes:  # before any write: the preview may take a while
            impacts, previews = compute_impact(s, config, spec, versions.next_number(s), now, settings)
        reasons = [] if yes else hold_reasons(impacts)
        status = versions.HELD if reasons else versions.PUBLISHED
        version = versions.publish(s, text, filename=filename, author=author, note=note, now=now,
                                   status=status, impact=impact_summary(impacts) if reasons else None,
                                   ).version  # fmt: skip
        if status == versions.PUBLISHED and reevaluate:
            outbox.request(s, version.number, reason, [c.name for c in config.connections], now)
        action = "held" if reasons else "published"
    outcome = Outcome(action, version, impacts, previews, reasons, report.warnings if report else [])
    return outcome, report


def publish_text(
    store: Store,
    config: WorkerConfig,
    text: str,
    *,
    filename: str,
    note: str,
    author: str,
    yes: bool = False,
    reevaluate: bool = True,
    now: datetime | None = None,
    settings: Settings | None = None,
    progress: ProgressFn | None = None,
    broker_url: str | None = None,
) -> Outcome:
    """Check ``text`` (``IcpValidationError`` refuses it, nothing stored), then store it as current or,
    when its impact calls for it and not ``yes``, as held. A current version is re-evaluated (queued
    when a broker is configured; ``broker_url=""`` runs it here whatever the settings say)."""
    outcome, _ = _store_version(store, config, text, filename=filename, note=note, author=author, yes=yes,
                                reevaluate=reevaluate, reason="publish", checks=True, now=now,
                                settings=settings)  # fmt: skip
    if yes and outcome.action == "already_held":  # --yes on a held version's content: approve it
        return approve(store, config, outcome.version.number, by=author, now=now, reevaluate=reevaluate,
                       progress=progress)  # fmt: skip
    if reevaluate and outcome.action in ("published", "unchanged"):
        outcome.reevaluation = carry_out(store, config, progress=progress, broker_url=broker_url)
    return outcome


def rollback_version(
    store: Store,
    config: WorkerConfig,
    number: int,
    *,
    author: str,
    yes: bool = False,
    now: datetime | None = None,
    settings: Settings | None = None,
    progress: ProgressFn | None = None,
) -> Outcome:
    """Publish version ``number``'s content anew, under the same hold as a publish."""
    with store.session() as s:
        old = versions.rollback_source(s, number)
        text = old.content
    outcome, _ = _store_version(store, config, text, filename=f"ICP v{number}", note=f"rollback to v{number}",
                                author=author, yes=yes, reevaluate=True, reason="rollback", checks=False,
                                now=now, settings=settings)  # fmt: skip
    if yes and outcome.action == "already_held":
        return approve(store, config, outcome.version.number, by=author, now=now, progress=progress)
    if outcome.action == "published":
        outcome.reevaluation = carry_out(store, config, progress=progress)
    return outcome


def _held(session: Session, number: int) -> IcpVersion:
    version = versions.get_version(session, number)
    if version.status != versions.HELD:
        raise ApprovalError(f"v{number} is {version.status}, not held: only a held version can be decided")
    return version


def approve(
    store: Store,
    config: WorkerConfig,
    number: int,
    *,
    by: str,
    now: datetime | None = None,
    reevaluate: bool = True,
    progress: ProgressFn | None = None,
) -> Outcome:
    """Make held version ``number`` current (recording who and when) and re-evaluate."""
    now = now or datetime.now(UTC)
    with store.session() as s:
        version = _held(s, number)
        current = versions.current_version(s)
        if current is not None and current.number > number:
            raise ApprovalError(
                f"v{current.number} became current after v{number} was held; its impact is out of date: "
                f"reject v{number} and publish its content again (icp-worker icp show {number})"
            )
        version.status, version.decided_by, version.decided_at = versions.APPROVED, by, now
        if reevaluate:
            outbox.request(s, number, "approve", [c.name for c in config.connections], now)
        s.flush()
    outcome = Outcome("approved", version)
    if reevaluate:
        outcome.reevaluation = carry_out(store, config, progress=progress)
    return outcome


def reject(store: Store, number: int, *, by: str, now: datetime | None = None) -> Outcome:
    """Drop held version ``number`` (it stays in the history, as rejected, with who and when)."""
    with store.session() as s:
        version = _held(s, number)
        version.status, version.decided_by, version.decided_at = (
            versions.REJECTED,
            by,
            now or datetime.now(UTC),
        )
        s.flush()
    return Outcome("rejected", version)


# --------------------------------------------------------------------------------------------- re-evaluation


def carry_out(
    store: Store,
    config: WorkerConfig,
    *,
    progress: ProgressFn | None = None,
    broker_url: str | None = None,
    run: Callable[..., RunSummary] | None = None,
) -> Reevaluation:
    """Carry out what the outbox owes: queue it for the workers when a broker is configured (saying so
    in one line when it is down), else run it here."""
    url = broker_url if broker_url is not None else get_settings().broker_url()
    if url:
        sent = outbox.dispatch(store)
        if sent.error:
            return Reevaluation(
                "deferred",
                message=(
                    f"re-evaluation not queued: {sent.error}. It is kept in the store and runs when a "
                    "worker's beat finds it (within a minute of the broker's return) or at the next "
                    "`icp-worker sync`"
                ),
            )
        if not sent.queued:
            return Reevaluation("none", message="nothing to re-evaluate (no connection synced yet)")
        return Reevaluation(
            "queued", queued=sent.queued, message=f"re-evaluation queued: {len(sent.queued)} connection(s)"
        )
    if run is None:
        from worker.jobs import sync_connection

        run = sync_connection
    with store.session() as s:
        names = sorted({n for n, _ in outbox.owed(s)})
    by_name = {c.name: c for c in config.connections}
    runs = [run(store, by_name[n], kind="reevaluate", progress=progress) for n in names if n in by_name]
    if not runs:
        return Reevaluation("none", message="nothing to re-evaluate (no connection synced yet)")
    return Reevaluation("in_process", runs=runs, message=f"re-evaluated {len(runs)} connection(s)")
