"""What the console's buttons do: publish, roll back, approve, reject. Each calls the functions the CLI calls
(``worker.icp.versions``, ``worker.jobs``) and records who did it and when in the audit log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from worker.config import WorkerConfig
from worker.icp import versions
from worker.jobs import reevaluate_all
from worker.settings import get_settings
from worker.store.db import Store
from worker.store.models import AuditEvent, IcpVersion


@dataclass
class Outcome:
    """What a publish or rollback did: the version, whether it is new, and the re-evaluation."""

    number: int
    created: bool
    held: bool = False
    message: str = ""
    runs: list[Any] = field(default_factory=list)


def audit(session: Session, actor: str, action: str, number: int | None, detail: str = "",
          now: datetime | None = None) -> None:  # fmt: skip
    session.add(
        AuditEvent(
            at=now or datetime.now(UTC),
            actor=actor,
            action=action,
            icp_version=number,
            source="console",
            detail=detail,
        )  # fmt: skip
    )


def _reevaluate(store: Store, config: WorkerConfig) -> tuple[str, list[Any]]:
    """Queue the re-evaluation for the workers (with a broker) or run it here (the embedded default)."""
    if get_settings().broker_url():
        from worker.tasks import enqueue_reevaluation

        ids = enqueue_reevaluation()
        return f"re-evaluation queued for {len(ids)} connection(s)", []
    summaries = reevaluate_all(store, config)
    lines = [
        f"{r.connection}: {r.status}, scored {r.counts.get('scored', 0):,}, "
        f"written {r.counts.get('written', 0):,}"
        for r in summaries
    ]
    return "re-evaluated " + ("; ".join(lines) or "no connection"), summaries


def publish_draft(
    store: Store, config: WorkerConfig, text: str, *, author: str, note: str, filename: str = "draft.yaml"
) -> Outcome:
    """Store ``text`` as the next version (it is validated first) and re-evaluate every connection."""
    with store.session() as s:
        published = versions.publish(s, text, filename=filename, author=author, note=note)
        number, created = published.version.number, published.created
        if created:
            audit(s, author, "publish", number, note)
    if not created:
        return Outcome(number, False, message=f"identical to v{number}: nothing published")
    message, runs = _reevaluate(store, config)
    return Outcome(number, True, message=f"published v{number}; {message}", runs=runs)


def rollback_to(store: Store, config: WorkerConfig, number: int, *, author: str) -> Outcome:
    with store.session() as s:
        published = versions.rollback(s, number, author=author)
        new, created = published.version.number, published.created
        if created:
            audit(s, author, "rollback", new, f"content of v{number}")
    if not created:
        return Outcome(new, False, message=f"v{number} is already the current content (v{new})")
    message, runs = _reevaluate(store, config)
    return Outcome(new, True, message=f"published v{new} with the content of v{number}; {message}", runs=runs)


def held_versions(session: Session) -> list[IcpVersion]:
    """Versions waiting for an approver (none until publishing can hold a version)."""
    status = getattr(IcpVersion, "status", None)
    if status is None:
        return []
    return list(session.query(IcpVersion).filter(status == "held").order_by(IcpVersion.number))


def version_state(version: IcpVersion, current: IcpVersion | None) -> str:
    """``current``, or the version's own state (``held``, ``rejected``, ...) once publishing keeps one."""
    if current is not None and version.number == current.number:
        return "current"
    return str(getattr(version, "status", None) or "published")
